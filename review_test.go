package guard_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

const day = 24 * time.Hour

// reviewFixture is a tenant seen by an access review: an owner who signs
// in today, a second admin (one more than recommended), a member who never
// signed in since their creation 40 days ago (dormant), a manager who
// signed in 10 days ago, a member with an authenticator app, a deactivated
// user, an API key never used and one used today.
type reviewFixture struct {
	*mfaFixture
	owner, admin                 guard.Principal
	ownerTok, adminTok           string
	dormant, manager, totp, gone guard.User
	unusedKey, usedKey           auth.APIKey
	createdAt                    time.Time
}

func newReviewFixture(t *testing.T) *reviewFixture {
	t.Helper()
	f := &reviewFixture{mfaFixture: newMFAFixture(t), createdAt: newClock().Now()}
	sys := guard.System("test")
	mk := func(email string, roles ...string) guard.User {
		u, err := f.g.CreateUser(f.ctx, sys, guard.NewUser{Tenant: tenantID, Email: email, Name: "U", Password: ownerPW, Roles: roles})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	f.dormant = mk("dora@example.test", rbac.Member)
	f.manager = mk("mona@example.test", rbac.Manager)
	f.totp = mk("tom@example.test", rbac.Member)
	f.gone = mk("gus@example.test", rbac.Member)
	if err := f.g.DeactivateUser(f.ctx, sys, tenantID, f.gone.ID); err != nil {
		t.Fatal(err)
	}
	_, tp := f.signIn(t, "tom@example.test", ownerPW)
	f.enrolTOTP(t, tp)
	f.clock.Advance(30 * day)
	if _, err := f.login("mona@example.test", ownerPW); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * day)
	f.owner, f.ownerTok = f.userWithRoles(t, "olga@example.test", rbac.Owner)
	f.admin, f.adminTok = f.userWithRoles(t, "adam@example.test", rbac.Admin)
	var err error
	if _, f.unusedKey, err = f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "old export", Roles: []string{rbac.ReportsOnly}}); err != nil {
		t.Fatal(err)
	}
	var used string
	if used, f.usedKey, err = f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "crm sync"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.AuthenticateAPIKey(f.ctx, used, netip.MustParseAddr("203.0.113.9")); err != nil {
		t.Fatal(err)
	}
	return f
}

func rowOf(rv guard.Review, id string) (guard.UserAccess, bool) {
	for _, u := range rv.Users {
		if u.ID == id {
			return u, true
		}
	}
	return guard.UserAccess{}, false
}

func ids(rows []guard.UserAccess) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Email
	}
	return out
}

func TestAccessReviewReport(t *testing.T) {
	f := newReviewFixture(t)
	rv, err := f.g.AccessReview(f.ctx, f.owner, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	want := guard.ReviewTotals{Users: 6, Active: 5, Deactivated: 1, Dormant: 2, WithMFA: 1, Neither: 5, Admins: 2}
	if rv.Totals != want {
		t.Errorf("totals %+v, want %+v", rv.Totals, want)
	}
	if len(rv.Users) != 6 || !slices.IsSortedFunc(rv.Users, func(a, b guard.UserAccess) int { return cmpString(a.ID, b.ID) }) {
		t.Fatalf("rows %v", ids(rv.Users))
	}
	d, _ := rowOf(rv, f.dormant.ID)
	if !d.Dormant || !d.LastActive.Equal(f.createdAt) || !slices.Equal(d.Roles, []string{rbac.Member}) || d.Admin || d.MFAOK {
		t.Errorf("dormant row %+v", d)
	}
	if m, _ := rowOf(rv, f.manager.ID); m.Dormant || m.LastActive.IsZero() || !slices.Equal(m.Roles, []string{rbac.Manager}) {
		t.Errorf("manager who signed in 10 days ago: %+v", m)
	}
	// tom enrolled 40 days ago and has not signed in since: dormant, with MFA.
	if tr, _ := rowOf(rv, f.totp.ID); !tr.MFAOK || !slices.Equal(tr.MFA, []mfa.Kind{mfa.KindTOTP}) || !tr.Dormant {
		t.Errorf("TOTP row %+v", tr)
	}
	if g, _ := rowOf(rv, f.gone.ID); g.Status != auth.StatusDeactivated || g.Dormant {
		t.Errorf("deactivated row %+v", g)
	}
	if o, _ := rowOf(rv, f.owner.UserID); !o.Owner || !o.Admin || o.Dormant {
		t.Errorf("owner row %+v", o)
	}
	if rv.AdminWarning == nil || rv.AdminWarning.Count() != 2 {
		t.Errorf("admin warning %+v, want 2 owners and admins", rv.AdminWarning)
	}
	if !rv.KeysShown || len(rv.UnusedKeys) != 1 || rv.UnusedKeys[0].Key.ID != f.unusedKey.ID || !rv.UnusedKeys[0].NeverUsed ||
		!slices.Equal(rv.UnusedKeys[0].Roles, []string{rbac.ReportsOnly}) || rv.UnusedKeys[0].Key.Hash != ([32]byte{}) {
		t.Errorf("unused keys %+v", rv.UnusedKeys)
	}
	// Never reviewed: due 14 days after the tenant was created, long ago.
	if !rv.LastReview.IsZero() || !rv.Due.Equal(f.createdAt.Add(14*day)) || !rv.Overdue || rv.Every != 14*day || rv.DormantAfter != 30*day {
		t.Errorf("due %v overdue %v last %v every %v", rv.Due, rv.Overdue, rv.LastReview, rv.Every)
	}

	// Filters and paging.
	for _, c := range []struct {
		filter guard.ReviewFilter
		want   int
	}{{guard.ReviewAll, 6}, {guard.ReviewDormant, 2}, {guard.ReviewAdmins, 2}, {guard.ReviewNoMFA, 4}, {guard.ReviewDeactivated, 1}, {guard.ReviewUnverified, 0}} {
		rows, next := rv.Rows(c.filter, "", 10)
		if len(rows) != c.want || next != "" || rv.Count(c.filter) != c.want {
			t.Errorf("filter %q: rows %v next %q count %d, want %d", c.filter, ids(rows), next, rv.Count(c.filter), c.want)
		}
	}
	var paged []guard.UserAccess
	after := ""
	for pages := 0; ; pages++ {
		rows, next := rv.Rows(guard.ReviewAll, after, 4)
		if pages > 2 {
			t.Fatal("paging does not end")
		}
		paged = append(paged, rows...)
		if next == "" {
			break
		}
		after = next
	}
	if len(paged) != 6 || !slices.IsSortedFunc(paged, func(a, b guard.UserAccess) int { return cmpString(a.ID, b.ID) }) {
		t.Errorf("paged rows %v", ids(paged))
	}
	if rows, _ := rv.Rows(guard.ReviewNoMFA, paged[2].ID, 10); len(rows) == 0 || rows[0].ID <= paged[2].ID {
		t.Errorf("rows after a cursor: %v", ids(rows))
	}
	if !guard.ReviewFilter("dormant").Valid() || guard.ReviewFilter("bogus").Valid() {
		t.Error("ReviewFilter.Valid")
	}
	// Reading a review records nothing.
	if n := len(f.events(t, audit.ReviewCompleted)); n != 0 {
		t.Errorf("%d review events after reading", n)
	}
}

// The review flags the active users whose address is unverified (set with
// ChangeEmail, not proved by a link): the unverified filter, its count and
// the totals. A verified address, an administrator's, is not flagged, nor
// is a deactivated user's unverified one.
func TestAccessReviewUnverified(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	vera, _ := f.userWithRoles(t, "vera@example.test", rbac.Member)
	claim := func(email, newEmail string) string {
		t.Helper()
		p, _ := f.userWithRoles(t, email, rbac.Member)
		if err := f.g.ChangeEmail(f.ctx, p, newEmail); err != nil {
			t.Fatalf("ChangeEmail: %v", err)
		}
		return p.UserID
	}
	una := claim("una@example.test", "una.new@example.test")
	ulla := claim("ulla@example.test", "ulla.new@example.test")
	gone := claim("gus@example.test", "gus.new@example.test")
	if err := f.g.DeactivateUser(f.ctx, sys, tenantID, gone); err != nil {
		t.Fatal(err)
	}

	rv, err := f.g.AccessReview(f.ctx, owner, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	want := guard.ReviewTotals{Users: 5, Active: 4, Deactivated: 1, Neither: 5, Admins: 1, Unverified: 2}
	if rv.Totals != want {
		t.Errorf("totals %+v, want %+v", rv.Totals, want)
	}
	if u, _ := rowOf(rv, una); !u.EmailUnverified || u.Email != "una.new@example.test" {
		t.Errorf("row of a user who set their address: %+v, want it unverified", u)
	}
	if v, _ := rowOf(rv, vera.UserID); v.EmailUnverified {
		t.Errorf("row of a user whose address an administrator gave: %+v, want it verified", v)
	}
	if g, _ := rowOf(rv, gone); !g.EmailUnverified || g.Status != auth.StatusDeactivated {
		t.Errorf("row of a deactivated user who set their address: %+v", g)
	}
	wantIDs := []string{una, ulla}
	slices.Sort(wantIDs)
	if n := rv.Count(guard.ReviewUnverified); n != 2 {
		t.Errorf("Count(unverified) = %d, want 2", n)
	}
	rows, next := rv.Rows(guard.ReviewUnverified, "", 10)
	if len(rows) != 2 || rows[0].ID != wantIDs[0] || rows[1].ID != wantIDs[1] || next != "" {
		t.Errorf("Rows(unverified) = %v, %q; want una and ulla", ids(rows), next)
	}
	// One row a page.
	first, next := rv.Rows(guard.ReviewUnverified, "", 1)
	if len(first) != 1 || first[0].ID != wantIDs[0] || next != wantIDs[0] {
		t.Fatalf("first page: %v, %q", ids(first), next)
	}
	if second, last := rv.Rows(guard.ReviewUnverified, next, 1); len(second) != 1 || second[0].ID != wantIDs[1] || last != "" {
		t.Errorf("second page: %v, %q", ids(second), last)
	}
	if !guard.ReviewUnverified.Valid() || !guard.ReviewFilter("unverified").Valid() {
		t.Error("the unverified filter is not valid")
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func isInput(err error) bool {
	var ie *guard.InputError
	return errors.As(err, &ie)
}

func TestApplyReview(t *testing.T) {
	f := newReviewFixture(t)
	adminTok := f.adminTok
	ds := []guard.Decision{
		{UserID: f.dormant.ID, Deactivate: true},
		{UserID: f.admin.UserID, DowngradeTo: rbac.ReportsOnly},
		{UserID: f.manager.ID, RevokeRoles: []string{rbac.Manager}},
		{KeyID: f.unusedKey.ID},
	}
	res, err := f.g.ApplyReview(f.ctx, f.owner, tenantID, ds)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deactivated != 1 || res.RolesChanged != 2 || res.KeysRevoked != 1 || res.SessionsEnded != 1 {
		t.Errorf("result %+v", res)
	}
	// The downgraded admin's session died at once; the owner's lives.
	if _, err := f.g.Authenticate(f.ctx, adminTok); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("downgraded admin's session: %v, want ErrUnauthenticated", err)
	}
	if _, err := f.g.Authenticate(f.ctx, f.ownerTok); err != nil {
		t.Errorf("reviewer's session: %v", err)
	}
	if rs, _ := f.g.RolesOf(f.ctx, f.owner, tenantID, "user:"+f.admin.UserID); !slices.Equal(rs, []string{rbac.ReportsOnly}) {
		t.Errorf("downgraded admin's roles %v", rs)
	}
	if rs, _ := f.g.RolesOf(f.ctx, f.owner, tenantID, "user:"+f.manager.ID); len(rs) != 0 {
		t.Errorf("manager's roles after revoke %v", rs)
	}
	if u, _ := f.g.User(f.ctx, f.owner, tenantID, f.dormant.ID); u.Status != auth.StatusDeactivated {
		t.Errorf("dormant user status %s", u.Status)
	}
	ks, _ := f.g.ListAPIKeys(f.ctx, f.owner, tenantID)
	for _, k := range ks {
		if (k.ID == f.unusedKey.ID) == k.RevokedAt.IsZero() {
			t.Errorf("key %s (%s) revoked at %v", k.ID, k.Name, k.RevokedAt)
		}
	}
	evs := f.events(t, audit.ReviewCompleted)
	if len(evs) != 1 || evs[0].Actor.ID != f.owner.UserID || evs[0].Meta["decisions"] != "4" || evs[0].Meta["users"] != "6" ||
		evs[0].Meta["deactivated"] != "1" || evs[0].Meta["dormant"] == "" || evs[0].Seq != res.Recorded.Seq {
		t.Errorf("review events %+v", evs)
	}
	if d := f.events(t, audit.UserDeactivated); d[len(d)-1].Target != f.dormant.ID || d[len(d)-1].Meta["reason"] != "access_review" {
		t.Errorf("user.deactivated %+v", d[len(d)-1])
	}
	// The next review is due 14 days from now.
	rv, err := f.g.AccessReview(f.ctx, f.owner, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if !rv.LastReview.Equal(f.clock.Now()) || !rv.Due.Equal(f.clock.Now().Add(14*day)) || rv.Overdue || rv.LastReviewer.ID != f.owner.UserID {
		t.Errorf("after the review: last %v due %v overdue %v by %+v", rv.LastReview, rv.Due, rv.Overdue, rv.LastReviewer)
	}
	if len(rv.UnusedKeys) != 0 {
		t.Errorf("revoked key still listed as unused: %+v", rv.UnusedKeys)
	}
	f.clock.Advance(14 * day)
	if rv, _ := f.g.AccessReview(f.ctx, guard.System("t"), tenantID); !rv.Overdue {
		t.Error("review not overdue 14 days later")
	}
	// A review with no decision is still recorded.
	if _, err := f.g.ApplyReview(f.ctx, guard.System("t"), tenantID, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(f.events(t, audit.ReviewCompleted)); n != 2 {
		t.Errorf("%d review events, want 2", n)
	}
}

// signInAgain signs a user in (they have no second factor) and returns
// their principal and token.
func (f *reviewFixture) signInAgain(t *testing.T, email string) (guard.Principal, string) {
	t.Helper()
	res, p := f.signIn(t, email, ownerPW)
	p.Addr = netip.MustParseAddr("203.0.113.5")
	return p, res.Token
}

func TestApplyReviewChecksEveryDecisionFirst(t *testing.T) {
	f := newReviewFixture(t)
	sys := guard.System("t")
	ok := guard.Decision{UserID: f.dormant.ID, Deactivate: true}
	for _, c := range []struct {
		name string
		by   guard.Principal
		bad  guard.Decision
		want func(error) bool
	}{
		{"unknown user", f.owner, guard.Decision{UserID: "nobody", Deactivate: true}, is(guard.ErrUserNotFound)},
		{"own account", f.owner, guard.Decision{UserID: f.owner.UserID, DowngradeTo: rbac.Member}, is(guard.ErrForbidden)},
		{"nothing decided", f.owner, guard.Decision{UserID: f.manager.ID}, isInput},
		{"twice", f.owner, ok, isInput},
		{"user and key", f.owner, guard.Decision{UserID: f.manager.ID, Deactivate: true, KeyID: f.unusedKey.ID}, isInput},
		{"unknown key", f.owner, guard.Decision{KeyID: "nokey"}, is(guard.ErrNotFound)},
		{"unknown role", f.owner, guard.Decision{UserID: f.manager.ID, DowngradeTo: "wizard"}, isInput},
		{"role not held", f.owner, guard.Decision{UserID: f.manager.ID, RevokeRoles: []string{rbac.Admin}}, isInput},
		{"escalation", f.admin, guard.Decision{UserID: f.manager.ID, DowngradeTo: rbac.Owner}, is(guard.ErrForbidden)},
		{"admin demoting the owner", f.admin, guard.Decision{UserID: f.owner.UserID, DowngradeTo: rbac.Member}, is(guard.ErrForbidden)},
		{"last owner", sys, guard.Decision{UserID: f.owner.UserID, Deactivate: true}, is(rbac.ErrLastOwner)},
		{"last owner's role", sys, guard.Decision{UserID: f.owner.UserID, RevokeRoles: []string{rbac.Owner}}, is(rbac.ErrLastOwner)},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.g.ApplyReview(f.ctx, c.by, tenantID, []guard.Decision{ok, c.bad})
			if !c.want(err) {
				t.Fatalf("ApplyReview: %v", err)
			}
			if u, _ := f.g.User(f.ctx, sys, tenantID, f.dormant.ID); u.Status != auth.StatusActive {
				t.Fatal("the valid decision before the bad one was applied")
			}
		})
	}
	if n := len(f.events(t, audit.ReviewCompleted)); n != 0 {
		t.Errorf("%d review events after refused reviews", n)
	}
	// Handing the owner role on in the same review is fine.
	if _, err := f.g.ApplyReview(f.ctx, sys, tenantID, []guard.Decision{
		{UserID: f.owner.UserID, Deactivate: true}, {UserID: f.manager.ID, DowngradeTo: rbac.Owner},
	}); err != nil {
		t.Errorf("owner handed over: %v", err)
	}
}

func is(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }

func TestReviewPermissions(t *testing.T) {
	f := newReviewFixture(t)
	member, _ := f.userWithRoles(t, "mel@example.test", rbac.Member)
	manager, _ := f.userWithRoles(t, "max@example.test", rbac.Manager)
	if _, err := f.g.AccessReview(f.ctx, member, tenantID); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("member reading the review: %v", err)
	}
	rv, err := f.g.AccessReview(f.ctx, manager, tenantID)
	if err != nil || rv.KeysShown || len(rv.UnusedKeys) != 0 {
		t.Errorf("manager (users:read, no api-keys:read): keys shown %v %v, %v", rv.KeysShown, rv.UnusedKeys, err)
	}
	if _, err := f.g.ApplyReview(f.ctx, manager, tenantID, nil); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("manager applying a review: %v", err)
	}
	if _, err := f.g.ListUserAccess(f.ctx, member, tenantID, "", 10); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("member listing users: %v", err)
	}
	if _, err := f.g.DeactivateDormant(f.ctx, manager, tenantID); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("manager deactivating dormant users: %v", err)
	}
	// Another tenant's admin sees nothing of this one.
	if _, err := f.g.CreateTenant(f.ctx, guard.System("t"), "other", "Other", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.AccessReview(f.ctx, f.owner, "other"); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("cross-tenant review: %v", err)
	}
	if _, err := f.g.ApplyReview(f.ctx, f.owner, "other", nil); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("cross-tenant apply: %v", err)
	}
}

func TestDeactivateDormant(t *testing.T) {
	f := newReviewFixture(t)
	sys := guard.System("cron")
	if got, err := f.g.DeactivateDormant(f.ctx, sys, tenantID); err != nil || got != nil {
		t.Fatalf("with the policy off: %v, %v", got, err)
	}
	tn, _ := f.g.Tenant(f.ctx, tenantID)
	pol := tn.Policy
	pol.AutoDeactivateDormant = true
	if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	// The owner has not signed in for 60 days either: never deactivated.
	f.clock.Advance(60 * day)
	_, monaTok := f.signInAgain(t, "mona@example.test")
	got, err := f.g.DeactivateDormant(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{f.dormant.ID, f.totp.ID, f.admin.UserID}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("deactivated %v, want %v (dormant, totp, admin)", got, want)
	}
	if u, _ := f.g.User(f.ctx, sys, tenantID, f.owner.UserID); u.Status != auth.StatusActive {
		t.Error("a dormant owner was deactivated")
	}
	if _, err := f.g.Authenticate(f.ctx, monaTok); err != nil {
		t.Errorf("an active user's session: %v", err)
	}
	evs := f.events(t, audit.UserDeactivated)
	if r := evs[len(evs)-1]; r.Meta["reason"] != "dormant" || r.Actor.ID != "cron" {
		t.Errorf("last user.deactivated %+v", r)
	}
	if again, err := f.g.DeactivateDormant(f.ctx, sys, tenantID); err != nil || len(again) != 0 {
		t.Errorf("second run: %v, %v", again, err)
	}
}

func TestListUserAccess(t *testing.T) {
	f := newReviewFixture(t)
	all := allUserAccess(t, f.mfaFixture, f.owner, 2)
	if len(all) != 6 {
		t.Fatalf("%d users", len(all))
	}
	rv, _ := f.g.AccessReview(f.ctx, f.owner, tenantID)
	for _, u := range all {
		r, _ := rowOf(rv, u.ID)
		if !slices.Equal(u.Roles, r.Roles) || !slices.Equal(u.MFA, r.MFA) || u.MFAOK != r.MFAOK || u.Dormant != r.Dormant || u.Admin != r.Admin {
			t.Errorf("ListUserAccess row %+v differs from the review's %+v", u, r)
		}
	}
}

// TestAccessReviewEveryUser reviews a tenant of 2,600 users, created out
// of ID order, more than two batches of the scan and with more than a page
// of enrolments: every user is a row, once, in ID order, with their own
// status, roles and second factors; the totals agree with the rows and
// with MFAAdoption, and ListUserAccess gives the same rows page by page.
func TestAccessReviewEveryUser(t *testing.T) {
	f := newMFAFixture(t)
	st := f.mem.Stores()
	sys := guard.System("test")
	now := f.clock.Now()
	const n = 2600
	type want struct {
		status auth.Status
		roles  []string
		kinds  []mfa.Kind
	}
	wants := map[string]want{}
	for _, i := range rand.New(rand.NewPCG(5, 6)).Perm(n) {
		id := fmt.Sprintf("u%05d", i)
		u := auth.User{ID: id, Tenant: tenantID, Email: id + "@example.test", Name: "U", Status: auth.StatusActive,
			PasswordHash: "$argon2id$stand-in", CreatedAt: now.Add(-time.Duration(i) * time.Minute)}
		if i%17 == 0 {
			u.Status = auth.StatusDeactivated
		}
		if err := st.Users.CreateUser(f.ctx, u); err != nil {
			t.Fatal(err)
		}
		w := want{status: u.Status}
		if i%3 != 0 {
			w.roles = []string{[]string{rbac.Member, rbac.Manager, rbac.ReportsOnly}[i%4%3]}
			if err := f.g.GrantRole(f.ctx, sys, tenantID, "user:"+id, w.roles[0]); err != nil {
				t.Fatal(err)
			}
		}
		for k, kind := range []mfa.Kind{mfa.KindTOTP, mfa.KindEmail} {
			if i%(2+k) != 0 {
				continue
			}
			fa := mfa.Factor{ID: fmt.Sprintf("%s-%d", id, k), Tenant: tenantID, UserID: id, Kind: kind, Label: "x",
				Destination: u.Email, KeyID: "k1", Secret: []byte("sealed"), CreatedAt: now}
			if err := st.MFA.Factors.CreateFactor(f.ctx, fa, 10); err != nil {
				t.Fatal(err)
			}
			if err := st.MFA.FactorUpdates.ConfirmFactor(f.ctx, tenantID, id, fa.ID, now, 1, 0); err != nil {
				t.Fatal(err)
			}
			w.kinds = append(w.kinds, kind)
		}
		slices.Sort(w.kinds)
		wants[id] = w
	}
	rv, err := f.g.AccessReview(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rv.Users) != n || !slices.IsSortedFunc(rv.Users, func(a, b guard.UserAccess) int { return strings.Compare(a.ID, b.ID) }) {
		t.Fatalf("%d rows, sorted: %v", len(rv.Users), slices.IsSortedFunc(rv.Users, func(a, b guard.UserAccess) int { return strings.Compare(a.ID, b.ID) }))
	}
	var tot guard.ReviewTotals
	for _, r := range rv.Users {
		w, ok := wants[r.ID]
		if !ok {
			t.Fatalf("a row of user %q", r.ID)
		}
		delete(wants, r.ID)
		kinds := slices.Sorted(slices.Values(r.MFA))
		if r.Status != w.status || !slices.Equal(r.Roles, w.roles) || !slices.Equal(kinds, w.kinds) ||
			r.MFAOK != slices.Contains(w.kinds, mfa.KindTOTP) || r.SSO || r.Tenant != tenantID || !r.HasPassword {
			t.Fatalf("row %+v, want %+v", r, w)
		}
		tot.Users++
		if r.MFAOK {
			tot.WithMFA++
		} else {
			tot.Neither++
		}
	}
	if rv.Totals.Users != tot.Users || rv.Totals.WithMFA != tot.WithMFA || rv.Totals.Neither != tot.Neither {
		t.Errorf("totals %+v, want %+v", rv.Totals, tot)
	}
	ad, err := f.g.MFAAdoption(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if ad.Users != rv.Totals.Users || ad.WithMFA != rv.Totals.WithMFA || ad.WithSSO != rv.Totals.WithSSO || ad.Neither != rv.Totals.Neither ||
		ad.WouldEnrolTotal != rv.Count(guard.ReviewNoMFA) || len(ad.WouldEnrol) != guard.MaxWouldEnrol {
		t.Errorf("MFAAdoption %d users, %d with MFA, %d SSO, %d neither, %d would enrol (%d listed); the review's totals %+v, %d without MFA",
			ad.Users, ad.WithMFA, ad.WithSSO, ad.Neither, ad.WouldEnrolTotal, len(ad.WouldEnrol), rv.Totals, rv.Count(guard.ReviewNoMFA))
	}
	pages := allUserAccess(t, f, sys, 1000)
	if len(pages) != n {
		t.Fatalf("ListUserAccess: %d rows", len(pages))
	}
	for i, r := range pages {
		v := rv.Users[i]
		if r.ID != v.ID || !slices.Equal(r.Roles, v.Roles) || !slices.Equal(r.MFA, v.MFA) || r.MFAOK != v.MFAOK || r.Admin != v.Admin || r.Dormant != v.Dormant {
			t.Fatalf("ListUserAccess row %+v, the review's %+v", r, v)
		}
	}
}

// allUserAccess reads every row of ListUserAccess, size at a time.
func allUserAccess(t *testing.T, f *mfaFixture, by guard.Principal, size int) []guard.UserAccess {
	t.Helper()
	var all []guard.UserAccess
	for after := ""; ; {
		page, err := f.g.ListUserAccess(f.ctx, by, tenantID, after, size)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < size {
			return all
		}
		after = page[len(page)-1].ID
	}
}

// failingUsers fails ListUsers and ListUserSummaries.
type failingUsers struct{ auth.UserStore }

func (failingUsers) ListUsers(context.Context, string, string, int) ([]auth.User, error) {
	return nil, errDown
}

func (failingUsers) ListUserSummaries(context.Context, string, string, int) ([]auth.UserSummary, error) {
	return nil, errDown
}

func TestAccessReviewFailsClosed(t *testing.T) {
	f := newMFAFixture(t, func(c *guard.Config) { c.Stores.Users = failingUsers{c.Stores.Users} })
	sys := guard.System("t")
	if _, err := f.g.AccessReview(f.ctx, sys, tenantID); !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("AccessReview with the user store down: %v", err)
	}
	if _, err := f.g.ApplyReview(f.ctx, sys, tenantID, nil); !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("ApplyReview with the user store down: %v", err)
	}
	if n := len(f.events(t, audit.ReviewCompleted)); n != 0 {
		t.Errorf("a review was recorded while its report could not be made: %d", n)
	}
}

// The review's admin warning counts active owners and admins only; a
// deactivated user who still holds the admin role is listed apart (and
// still in Totals.Admins and the admins filter, to be cleaned up).
func TestAccessReviewAdminWarningSkipsDeactivated(t *testing.T) {
	f := newReviewFixture(t)
	if err := f.g.GrantRole(f.ctx, guard.System("t"), tenantID, "user:"+f.gone.ID, rbac.Admin); err != nil {
		t.Fatal(err)
	}
	rv, err := f.g.AccessReview(f.ctx, f.owner, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	w := rv.AdminWarning
	if w == nil || w.Count() != 2 || !slices.Equal(w.Excluded, []rbac.Subject{rbac.User(f.gone.ID)}) {
		t.Errorf("admin warning %+v, want olga and adam counted, the deactivated admin excluded", w)
	}
	if rv.Totals.Admins != 3 || rv.Count(guard.ReviewAdmins) != 3 {
		t.Errorf("Totals.Admins %d, admins filter %d; want 3 (the deactivated one included)", rv.Totals.Admins, rv.Count(guard.ReviewAdmins))
	}
}

// A review row says when a user's password must be changed at the next
// sign-in (an administrator marked it compromised): the rows come from the
// stores' user summaries, which used to leave PasswordExpired out, so every
// row said false.
func TestAccessReviewPasswordExpired(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	mark, _ := f.userWithRoles(t, "mark@example.test", rbac.Member)
	kept, _ := f.userWithRoles(t, "kim@example.test", rbac.Member)
	if err := f.g.ExpirePassword(f.ctx, guard.System("test"), tenantID, mark.UserID); err != nil {
		t.Fatal(err)
	}
	rv, err := f.g.AccessReview(f.ctx, owner, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := rowOf(rv, mark.UserID); !u.PasswordExpired {
		t.Errorf("row of a user whose password was marked compromised: %+v, want PasswordExpired", u)
	}
	if u, _ := rowOf(rv, kept.UserID); u.PasswordExpired {
		t.Errorf("row of a user whose password stands: %+v, want no PasswordExpired", u)
	}
}
