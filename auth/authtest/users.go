package authtest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

// phcPrefix makes the suite's stand-in hashes look like PHC strings;
// stores treat hashes as opaque strings.
const phcPrefix = "$argon2id$v=19$m=19456,t=2,p=1$YXV0aHRlc3Q$"

// hashOf returns a stand-in password hash for label, so failures name
// hashes by label.
func hashOf(label string) string { return phcPrefix + label }

// hashLabel is the label of a hash made by hashOf.
func hashLabel(h string) string {
	if l, ok := strings.CutPrefix(h, phcPrefix); ok {
		return l
	}
	return fmt.Sprintf("%q", h)
}

// hashes returns the hashes of labels, in order.
func hashes(labels ...string) []string {
	hs := make([]string, len(labels))
	for i, l := range labels {
		hs[i] = hashOf(l)
	}
	return hs
}

// mkUser returns an active user of tenant with email <id>@example.com, a
// password (hash "<id>-0") and no history, created a day before base.
func mkUser(tenant, id string) auth.User {
	return auth.User{
		ID:                id,
		Tenant:            tenant,
		Email:             id + "@example.com",
		Name:              "User " + id,
		Status:            auth.StatusActive,
		PasswordHash:      hashOf(id + "-0"),
		PasswordChangedAt: base.Add(-day),
		CreatedAt:         base.Add(-day),
	}
}

func runUsers(t *testing.T, newStore func(t *testing.T) Users) {
	t.Helper()
	runGroups(t, []group[*userChecker]{
		{"CreateUser", createTests},
		{"User", lookupTests},
		{"ListUsers", listTests},
		{"ListUserSummaries", summaryTests},
		{"DeleteUser", deleteTests},
		{"SetStatus", statusTests},
		{"Deactivate", deactivateTests},
		{"DeactivateIdle", deactivateIdleTests},
		{"SetReactivatedAt", reactivatedTests},
		{"SetPassword", setPasswordTests},
		{"RehashPassword", rehashTests},
		{"ResetPassword", resetPasswordTests},
		{"ChangePassword", changePasswordTests},
		{"RecordLogin", recordLoginTests},
		{"RecordSSOLogin", recordSSOLoginTests},
		{"SetEmail", setEmailTests},
		{"ChangeEmail", changeEmailTests},
		{"EmailVerification", verifyTests},
		{"ExpirePassword", expireTests},
		{"ClearPasswordExpired", clearExpiredTests},
		{"MissingUser", missingTests},
		{"Copies", copyTests},
		{"Tenants", userTenantTests},
	}, func(t *testing.T) *userChecker { return &userChecker{t: t, st: newStore(t)} })
}

var createTests = []test[*userChecker]{
	{"RoundTripEveryField", func(t *testing.T, c *userChecker) {
		u := auth.User{
			ID:           "user-1",
			Tenant:       "tenant-ü",
			Email:        "zoë.o'brien+guard@exämple.com",
			Name:         "Zoë O'Brien-Łukasiewicz 山田",
			Status:       auth.StatusActive,
			PasswordHash: hashOf("current"),
			// Newest first; the order must be kept, and a bcrypt hash of
			// an imported user is an ordinary string.
			PasswordHistory:   []string{hashOf("third"), "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", hashOf("first")},
			PasswordChangedAt: base.Add(-2*day + 7*time.Microsecond),
			PasswordExpired:   true,
			EmailUnverified:   true,
			CreatedAt:         base.Add(-30*day + 123*time.Microsecond),
			LastLoginAt:       base.Add(-time.Hour + 999*time.Microsecond),
			LastSSOAt:         base.Add(-3*day + 5*time.Microsecond),
			ReactivatedAt:     base.Add(-2*time.Hour + 11*time.Microsecond),
		}
		c.create(u)
		c.wantUser(u)
		c.wantAll(u.Tenant, u)
	}},
	{"ZeroFieldsRoundTrip", func(t *testing.T, c *userChecker) {
		// A user invited through SSO: no password, no history, never
		// signed in, no name, and deactivated.
		u := auth.User{
			ID:        "sso-user",
			Tenant:    "t",
			Email:     "sso@example.com",
			Status:    auth.StatusDeactivated,
			CreatedAt: base,
		}
		c.create(u)
		c.wantUser(u)
		got := c.get(u.Tenant, u.ID)
		if !got.LastLoginAt.IsZero() || !got.PasswordChangedAt.IsZero() || !got.LastSSOAt.IsZero() || !got.ReactivatedAt.IsZero() {
			t.Errorf("zero times came back as LastLoginAt %v, PasswordChangedAt %v, LastSSOAt %v, ReactivatedAt %v",
				got.LastLoginAt, got.PasswordChangedAt, got.LastSSOAt, got.ReactivatedAt)
		}
	}},
	{"LongestFieldsRoundTrip", func(t *testing.T, c *userChecker) {
		domain := strings.Repeat("d", 63) + "." + strings.Repeat("e", 63) + "." + strings.Repeat("f", 57) + ".com"
		u := mkUser("t", strings.Repeat("i", auth.MaxIDBytes-2)+"ид"[:2])
		u.Email = strings.Repeat("l", 64-len("ü")) + "ü" + "@" + domain
		u.Name = strings.Repeat("é", auth.MaxNameBytes/2)
		for i := range 24 {
			u.PasswordHistory = append(u.PasswordHistory, hashOf(fmt.Sprintf("old-%02d-%s", i, strings.Repeat("x", 60))))
		}
		if len(u.ID) != auth.MaxIDBytes || len(u.Email) != auth.MaxEmailBytes || len(u.Name) != auth.MaxNameBytes {
			t.Fatalf("suite bug: sizes %d, %d, %d", len(u.ID), len(u.Email), len(u.Name))
		}
		c.create(u)
		c.wantUser(u)
	}},
	{"DuplicateEmailStoresNothing", func(t *testing.T, c *userChecker) {
		a := mkUser("t", "a")
		c.create(a)
		b := mkUser("t", "b")
		b.Email = a.Email
		c.createErr(b, auth.ErrDuplicateEmail)
		c.wantNoID("t", "b")
		c.wantUser(a)
		c.wantAll("t", a)
	}},
	{"DuplicateEmailAndIDStoresNothing", func(t *testing.T, c *userChecker) {
		a := mkUser("t", "a")
		c.create(a)
		b := a
		b.Name = "Another"
		b.PasswordHash = hashOf("b")
		c.createErr(b, auth.ErrDuplicateEmail, auth.ErrDuplicateID)
		c.wantUser(a)
		c.wantAll("t", a)
	}},
	{"DuplicateIDStoresNothing", func(t *testing.T, c *userChecker) {
		a := mkUser("t", "a")
		c.create(a)
		b := mkUser("t", "b")
		b.ID = a.ID
		c.createErr(b, auth.ErrDuplicateID)
		c.wantNoEmail("t", b.Email)
		c.wantUser(a)
		c.wantAll("t", a)
	}},
	{"SameEmailInAnotherTenant", func(t *testing.T, c *userChecker) {
		a := mkUser("acme", "a")
		b := mkUser("globex", "b")
		b.Email = a.Email
		c.create(a, b)
		c.wantUser(a)
		c.wantUser(b)
	}},
	{"SameIDInAnotherTenant", func(t *testing.T, c *userChecker) {
		a := mkUser("acme", "42")
		b := mkUser("globex", "42")
		b.Email = "other@example.com"
		b.Name = "Someone else"
		c.create(a, b)
		c.wantUser(a)
		c.wantUser(b)
	}},
}

var lookupTests = []test[*userChecker]{
	{"UnknownIDNotFound", func(t *testing.T, c *userChecker) {
		c.wantNoID("t", "a")
		c.create(mkUser("t", "a"), mkUser("t", "ab"))
		c.wantNoID("t", "b")
		c.wantNoID("t", "")
		c.wantNoID("t", "A")
	}},
	{"UnknownEmailNotFound", func(t *testing.T, c *userChecker) {
		c.wantNoEmail("t", "a@example.com")
		c.create(mkUser("t", "a"))
		for _, e := range []string{"b@example.com", "a@example.co", "a@example.comm", "xa@example.com", ""} {
			c.wantNoEmail("t", e)
		}
	}},
	{"OtherTenantNotFound", func(t *testing.T, c *userChecker) {
		a := mkUser("acme", "a")
		c.create(a)
		c.wantNoID("globex", a.ID)
		c.wantNoEmail("globex", a.Email)
		c.wantNoID("", a.ID)
		c.wantNoEmail("", a.Email)
	}},
}

// listIDs are ids whose byte order differs from most collations' order.
var listIDs = []string{"B", "a", "Ab", "a-1", "a_1", "a1", "é", "z", "Z", "10", "9", "user-2", "user-10"}

// sortedUsers creates one user of tenant per id, in the order given, and
// returns them sorted by id.
func (c *userChecker) sortedUsers(tenant string, ids ...string) []auth.User {
	c.t.Helper()
	us := make([]auth.User, len(ids))
	for i, id := range ids {
		us[i] = mkUser(tenant, id)
		c.create(us[i])
	}
	slices.SortFunc(us, func(a, b auth.User) int { return strings.Compare(a.ID, b.ID) })
	return us
}

var listTests = []test[*userChecker]{
	{"OrderedByIDBytewise", func(t *testing.T, c *userChecker) {
		all := c.sortedUsers("t", listIDs...)
		c.wantList("t", "", 1000, all)
	}},
	{"AtMostLimit", func(t *testing.T, c *userChecker) {
		all := c.sortedUsers("t", listIDs...)
		for _, n := range []int{1, 2, 5, len(all) - 1, len(all), len(all) + 1} {
			c.wantList("t", "", n, all[:min(n, len(all))])
		}
	}},
	{"LimitZeroReturnsNone", func(t *testing.T, c *userChecker) {
		c.sortedUsers("t", "a", "b")
		c.wantList("t", "", 0, nil)
	}},
	{"StartsAfterGivenID", func(t *testing.T, c *userChecker) {
		all := c.sortedUsers("t", listIDs...)
		for i, u := range all {
			c.wantList("t", u.ID, 1000, all[i+1:])
			c.wantList("t", u.ID, 2, all[i+1:min(i+3, len(all))])
		}
	}},
	{"AfterNeedNotBeAnID", func(t *testing.T, c *userChecker) {
		all := c.sortedUsers("t", "b", "d", "f")
		c.wantList("t", "a", 10, all)
		c.wantList("t", "c", 10, all[1:])
		c.wantList("t", "b\x01", 10, all[1:])
		c.wantList("t", "e", 1, all[2:])
		c.wantList("t", "g", 10, nil)
		c.wantList("t", "\U0010FFFF", 10, nil)
	}},
	{"PagesCoverEveryUserOnce", func(t *testing.T, c *userChecker) {
		all := c.sortedUsers("t", listIDs...)
		for _, size := range []int{1, 2, 3, 5} {
			var got []auth.User
			after := ""
			for range len(all) + 1 {
				page, err := c.st.ListUsers(t.Context(), "t", after, size)
				if err != nil {
					t.Fatalf("ListUsers(%q, %d): %v", after, size, err)
				}
				if len(page) == 0 {
					break
				}
				got = append(got, page...)
				after = page[len(page)-1].ID
			}
			c.wantUsers(fmt.Sprintf("pages of %d", size), got, all)
		}
	}},
	{"OnlyTheTenant", func(t *testing.T, c *userChecker) {
		// Users of other tenants with ids on either side of and between
		// this tenant's ids, one with the same id.
		c.sortedUsers("s", "a", "c", "e")
		c.sortedUsers("u", "b", "d", "f")
		c.sortedUsers("", "a0", "c0")
		c.sortedUsers("tt", "c")
		mine := c.sortedUsers("t", "c", "d")
		c.wantList("t", "", 1000, mine)
		c.wantList("t", "", 1, mine[:1])
		c.wantList("t", "a", 1000, mine)
		c.wantList("t", "c", 1, mine[1:])
		c.wantList("t", "d", 1000, nil)
	}},
	{"UnknownTenantEmpty", func(t *testing.T, c *userChecker) {
		c.wantList("t", "", 10, nil)
		c.sortedUsers("t", "a")
		c.wantList("nowhere", "", 10, nil)
		c.wantList("T", "", 10, nil)
	}},
}

// Every check of ListUsers (wantList) also checks ListUserSummaries with
// the same arguments; these subtests add the cases that matter to
// summaries.
var summaryTests = []test[*userChecker]{
	{"SummariesOfListUsers", func(t *testing.T, c *userChecker) {
		all := c.sortedUsers("t", listIDs...)
		c.sortedUsers("s", "a", "z")
		c.sortedUsers("u", "0", "b")
		for _, after := range append([]string{"", "A", "b", "\U0010FFFF"}, listIDs...) {
			for _, n := range []int{0, 1, 2, 5, len(all), 1000} {
				i, _ := slices.BinarySearchFunc(all, after, func(u auth.User, id string) int { return strings.Compare(u.ID, id) })
				if i < len(all) && all[i].ID == after {
					i++
				}
				c.wantList("t", after, n, all[i:min(i+n, len(all))])
			}
		}
	}},
	{"EveryField", func(t *testing.T, c *userChecker) {
		// A deactivated user without a password who signed in, one with
		// a password and a history who never did, and one whose
		// password was never changed.
		sso := mkUser("t", "a")
		sso.Email, sso.Name = "zoë.o'brien+guard@exämple.com", "Zoë O'Brien-Łukasiewicz 山田"
		sso.Status, sso.PasswordHash, sso.PasswordChangedAt = auth.StatusDeactivated, "", time.Time{}
		sso.LastLoginAt = base.Add(-time.Microsecond)
		sso.LastSSOAt = base.Add(-day - 3*time.Microsecond)
		sso.EmailUnverified = true
		pw := mkUser("t", "b")
		pw.PasswordHistory = hashes("old-2", "old-1")
		pw.PasswordExpired = true
		pw.ReactivatedAt = base.Add(-time.Hour + 3*time.Microsecond)
		fresh := mkUser("t", "c")
		fresh.PasswordChangedAt = time.Time{}
		c.create(sso, pw, fresh)
		c.wantList("t", "", 10, []auth.User{sso, pw, fresh})
		got, err := c.st.ListUserSummaries(t.Context(), "t", "", 10)
		if err != nil || len(got) != 3 {
			t.Fatalf("ListUserSummaries = %d summaries, %v", len(got), err)
		}
		if got[0].HasPassword || !got[1].HasPassword || !got[2].HasPassword {
			t.Errorf("HasPassword = %v, %v, %v; want false, true, true", got[0].HasPassword, got[1].HasPassword, got[2].HasPassword)
		}
		if !got[0].LastSSOAt.Equal(sso.LastSSOAt) || !got[1].LastSSOAt.IsZero() || !got[2].LastSSOAt.IsZero() {
			t.Errorf("LastSSOAt = %v, %v, %v; want %v, zero, zero", got[0].LastSSOAt, got[1].LastSSOAt, got[2].LastSSOAt, sso.LastSSOAt)
		}
		if !got[0].EmailUnverified || got[1].EmailUnverified || got[2].EmailUnverified {
			t.Errorf("EmailUnverified = %v, %v, %v; want true, false, false", got[0].EmailUnverified, got[1].EmailUnverified, got[2].EmailUnverified)
		}
		if got[0].PasswordExpired || !got[1].PasswordExpired || got[2].PasswordExpired {
			t.Errorf("PasswordExpired = %v, %v, %v; want false, true, false", got[0].PasswordExpired, got[1].PasswordExpired, got[2].PasswordExpired)
		}
		if !got[0].ReactivatedAt.IsZero() || !got[1].ReactivatedAt.Equal(pw.ReactivatedAt) || !got[2].ReactivatedAt.IsZero() {
			t.Errorf("ReactivatedAt = %v, %v, %v; want zero, %v, zero", got[0].ReactivatedAt, got[1].ReactivatedAt, got[2].ReactivatedAt, pw.ReactivatedAt)
		}
	}},
	{"LimitZeroReturnsNone", func(t *testing.T, c *userChecker) {
		c.sortedUsers("t", "a", "b")
		if got, err := c.st.ListUserSummaries(t.Context(), "t", "", 0); err != nil || len(got) != 0 {
			t.Errorf("ListUserSummaries(limit 0) = %d summaries, %v; want none", len(got), err)
		}
	}},
	{"AfterUpdates", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "a"), mkUser("t", "b")
		c.create(a, b)
		c.setStatus("t", "a", auth.StatusDeactivated)
		a.Status = auth.StatusDeactivated
		c.setPassword("t", "b", "", base, 0)
		b.PasswordHash, b.PasswordChangedAt = "", base
		a.LastLoginAt = c.recordLogin("t", "a", base).LastLoginAt
		c.setEmail("t", "a", "moved@example.com")
		a.Email = "moved@example.com"
		c.wantAll("t", a, b)
		c.delete("t", "a")
		c.wantAll("t", b)
	}},
}

var deleteTests = []test[*userChecker]{
	{"RemovesUser", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "a"), mkUser("t", "b")
		c.create(a, b)
		c.delete("t", "a")
		c.wantNoID("t", "a")
		c.wantNoEmail("t", a.Email)
		c.wantUser(b)
		c.wantAll("t", b)
	}},
	{"RemovesPasswordHistory", func(t *testing.T, c *userChecker) {
		a := mkUser("t", "a")
		a.PasswordHistory = hashes("old-2", "old-1")
		c.create(a)
		c.setPassword("t", "a", hashOf("new"), base, 5)
		c.delete("t", "a")
		// The same id and email again: nothing of the first user is left.
		again := mkUser("t", "a")
		again.PasswordHash = ""
		again.PasswordChangedAt = time.Time{}
		c.create(again)
		c.wantUser(again)
		c.setPassword("t", "a", hashOf("first"), base.Add(time.Hour), 5)
		again.PasswordHash, again.PasswordChangedAt = hashOf("first"), base.Add(time.Hour)
		c.wantUser(again)
	}},
	{"FreesEmail", func(t *testing.T, c *userChecker) {
		a := mkUser("t", "a")
		c.create(a)
		c.delete("t", "a")
		b := mkUser("t", "b")
		b.Email = a.Email
		c.create(b)
		c.wantUser(b)
		c.wantAll("t", b)
	}},
	{"UnknownNotFound", func(t *testing.T, c *userChecker) {
		a := mkUser("acme", "a")
		c.create(a)
		c.deleteErr("acme", "b")
		c.deleteErr("globex", "a")
		c.wantUser(a)
		c.delete("acme", "a")
		c.deleteErr("acme", "a")
	}},
}

// deactivateIdleTests checks DeactivateIdle's condition: active, and no
// activity (LastLoginAt, else CreatedAt, nor ReactivatedAt) after
// idleSince; the bound itself is idle. Every other field is kept.
var deactivateTests = []test[*userChecker]{
	{"DeactivatesActiveUserOnly", func(t *testing.T, c *userChecker) {
		// Whatever the user's times, an active user is deactivated, and
		// no other field changes.
		a, b := mkUser("t", "a"), mkUser("t", "b")
		a.LastLoginAt, a.LastSSOAt, a.ReactivatedAt = base.Add(day), base.Add(day), base.Add(2*day)
		a.PasswordHistory, a.PasswordExpired, a.EmailUnverified = hashes("old"), true, true
		c.create(a, b)
		if changed, err := c.st.Deactivate(t.Context(), "t", "a"); err != nil || !changed {
			t.Errorf("Deactivate of an active user = %v, %v; want true, nil", changed, err)
		}
		a.Status = auth.StatusDeactivated
		c.wantUser(a)
		c.wantAll("t", a, b)
	}},
	{"SaysWhetherItChangedTheStatus", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		want := func(wantChanged bool) {
			t.Helper()
			if changed, err := c.st.Deactivate(t.Context(), "t", "u"); err != nil || changed != wantChanged {
				t.Errorf("Deactivate = %v, %v; want %v, nil", changed, err, wantChanged)
			}
		}
		want(true)
		want(false) // deactivated already: a no-op that succeeds
		u.Status = auth.StatusDeactivated
		c.wantUser(u)
		c.setStatus("t", "u", auth.StatusActive)
		want(true)
		c.wantUser(u)
	}},
}

var deactivateIdleTests = []test[*userChecker]{
	{"DeactivatesOnlyIdleActiveUsers", func(t *testing.T, c *userChecker) {
		cut := base.Add(-10 * day)
		type row struct {
			u    auth.User
			idle bool
		}
		rows := []row{}
		add := func(id string, idle bool, f func(*auth.User)) {
			u := mkUser("t", id)
			f(&u)
			rows = append(rows, row{u, idle})
		}
		add("login-before", true, func(u *auth.User) { u.CreatedAt, u.LastLoginAt = cut.Add(-day), cut.Add(-time.Microsecond) })
		add("login-at", true, func(u *auth.User) { u.CreatedAt, u.LastLoginAt = cut.Add(-day), cut })
		add("login-after", false, func(u *auth.User) { u.CreatedAt, u.LastLoginAt = cut.Add(-day), cut.Add(time.Microsecond) })
		add("new-after", false, func(u *auth.User) { u.CreatedAt = cut.Add(time.Microsecond) })
		add("new-at", true, func(u *auth.User) { u.CreatedAt = cut })
		add("old-login-new", false, func(u *auth.User) { u.CreatedAt, u.LastLoginAt = cut.Add(-day), cut.Add(day) })
		add("sso-before", true, func(u *auth.User) {
			u.CreatedAt, u.LastLoginAt, u.LastSSOAt = cut.Add(-day), cut.Add(-time.Hour), cut.Add(-time.Hour)
			u.PasswordHistory, u.PasswordExpired = hashes("old"), true
		})
		add("never", true, func(u *auth.User) { u.CreatedAt = time.Time{} })
		add("reactivated-before", true, func(u *auth.User) {
			u.CreatedAt, u.LastLoginAt, u.ReactivatedAt = cut.Add(-2*day), cut.Add(-2*day), cut.Add(-time.Microsecond)
		})
		add("reactivated-at", true, func(u *auth.User) { u.CreatedAt, u.ReactivatedAt = cut.Add(-day), cut })
		add("reactivated-after", false, func(u *auth.User) {
			u.CreatedAt, u.LastLoginAt, u.ReactivatedAt = cut.Add(-2*day), cut.Add(-2*day), cut.Add(time.Microsecond)
		})
		add("reactivated-never-signed-in", false, func(u *auth.User) { u.CreatedAt, u.ReactivatedAt = time.Time{}, cut.Add(day) })
		add("deactivated", false, func(u *auth.User) { u.CreatedAt, u.Status = cut.Add(-day), auth.StatusDeactivated })
		var all []auth.User
		for _, r := range rows {
			c.create(r.u)
		}
		for _, r := range rows {
			err := c.st.DeactivateIdle(t.Context(), "t", r.u.ID, cut)
			switch {
			case r.idle && err != nil:
				t.Errorf("DeactivateIdle(%s) = %v, want nil", r.u.ID, err)
			case !r.idle && !errors.Is(err, auth.ErrConflict):
				t.Errorf("DeactivateIdle(%s) = %v, want ErrConflict", r.u.ID, err)
			}
			if r.idle {
				r.u.Status = auth.StatusDeactivated
			}
			c.wantUser(r.u)
			all = append(all, r.u)
		}
		slices.SortFunc(all, func(a, b auth.User) int { return strings.Compare(a.ID, b.ID) })
		c.wantAll("t", all...)
	}},
	{"OnceThenConflict", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		if err := c.st.DeactivateIdle(t.Context(), "t", "u", base); err != nil {
			t.Fatalf("DeactivateIdle: %v", err)
		}
		if err := c.st.DeactivateIdle(t.Context(), "t", "u", base); !errors.Is(err, auth.ErrConflict) {
			t.Errorf("DeactivateIdle of a deactivated user = %v, want ErrConflict", err)
		}
		u.Status = auth.StatusDeactivated
		c.wantUser(u)
		// Reactivated, the user is idle again.
		c.setStatus("t", "u", auth.StatusActive)
		if err := c.st.DeactivateIdle(t.Context(), "t", "u", base); err != nil {
			t.Errorf("DeactivateIdle of the reactivated user: %v", err)
		}
		c.wantUser(u)
	}},
	{"SeesRecordLogin", func(t *testing.T, c *userChecker) {
		c.idleAfter("a sign-in", func(at time.Time) { c.recordLogin("t", "u", at) }, func(u *auth.User, at time.Time) { u.LastLoginAt = at })
	}},
	{"SeesSetReactivatedAt", func(t *testing.T, c *userChecker) {
		c.idleAfter("a reactivation", func(at time.Time) { c.setReactivatedAt("t", "u", at) },
			func(u *auth.User, at time.Time) { u.ReactivatedAt = at })
	}},
	{"OtherTenant", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "u"), mkUser("other", "u")
		c.create(a, b)
		if err := c.st.DeactivateIdle(t.Context(), "t", "u", base); err != nil {
			t.Fatalf("DeactivateIdle: %v", err)
		}
		a.Status = auth.StatusDeactivated
		c.wantUser(a)
		c.wantUser(b)
	}},
}

// reactivatedTests checks that SetReactivatedAt sets ReactivatedAt (zero
// clears it) and changes no other field.
var reactivatedTests = []test[*userChecker]{
	{"SetsReactivatedAtOnly", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "a"), mkUser("t", "b")
		a.PasswordHistory = hashes("h2", "h1")
		a.LastLoginAt = base.Add(-time.Hour + 7*time.Microsecond)
		a.Status, a.PasswordExpired, a.EmailUnverified = auth.StatusDeactivated, true, true
		b.ReactivatedAt = base.Add(-day)
		c.create(a, b)
		at := base.Add(-time.Minute + 13*time.Microsecond)
		c.setReactivatedAt("t", "a", at)
		a.ReactivatedAt = at
		c.wantUser(a)
		c.wantUser(b)
		c.wantAll("t", a, b)
		// Set again, earlier: the time given is kept.
		c.setReactivatedAt("t", "a", base.Add(-day))
		a.ReactivatedAt = base.Add(-day)
		c.wantUser(a)
	}},
	{"ZeroClears", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		u.ReactivatedAt = base
		c.create(u)
		c.setReactivatedAt("t", "u", time.Time{})
		u.ReactivatedAt = time.Time{}
		c.wantUser(u)
		c.wantAll("t", u)
	}},
	{"OtherUpdatesKeepIt", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		c.setReactivatedAt("t", "u", base)
		c.setStatus("t", "u", auth.StatusDeactivated)
		c.setStatus("t", "u", auth.StatusActive)
		c.setPassword("t", "u", hashOf("new"), base, 3)
		c.setEmail("t", "u", "moved@example.com")
		c.expire("t", "u")
		got := c.recordSSOLogin("t", "u", base.Add(time.Hour))
		u.PasswordHistory = []string{u.PasswordHash}
		u.PasswordHash, u.PasswordChangedAt, u.Email, u.PasswordExpired = hashOf("new"), base, "moved@example.com", true
		u.LastLoginAt, u.LastSSOAt, u.ReactivatedAt = base.Add(time.Hour), base.Add(time.Hour), base
		if d := diffUser(got, u); d != "" {
			t.Errorf("RecordSSOLogin returned %s", d)
		}
		c.wantUser(u)
	}},
}

var statusTests = []test[*userChecker]{
	{"SetsStatus", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "a"), mkUser("t", "b")
		a.LastLoginAt = base.Add(-time.Minute)
		a.PasswordHistory = hashes("old")
		c.create(a, b)
		c.setStatus("t", "a", auth.StatusDeactivated)
		a.Status = auth.StatusDeactivated
		c.wantUser(a)
		c.wantUser(b)
		c.setStatus("t", "a", auth.StatusDeactivated)
		c.wantUser(a)
		c.setStatus("t", "a", auth.StatusActive)
		a.Status = auth.StatusActive
		c.wantUser(a)
		c.wantAll("t", a, b)
	}},
}

var setPasswordTests = []test[*userChecker]{
	{"PushesReplacedHashToFront", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		for i := 1; i <= 3; i++ {
			at := base.Add(time.Duration(i)*time.Hour + time.Duration(i)*time.Microsecond)
			c.setPassword("t", "u", hashOf(fmt.Sprint("u-", i)), at, 10)
			u.PasswordHistory = append([]string{u.PasswordHash}, u.PasswordHistory...)
			u.PasswordHash = hashOf(fmt.Sprint("u-", i))
			u.PasswordChangedAt = at
			c.wantUser(u)
		}
		if want := hashes("u-2", "u-1", "u-0"); !slices.Equal(u.PasswordHistory, want) {
			t.Fatalf("suite bug: history %v", u.PasswordHistory)
		}
	}},
	{"CutToNewestKeep", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		want := [][]string{
			1: hashes("u-0"),
			2: hashes("u-1", "u-0"),
			3: hashes("u-2", "u-1"),
			4: hashes("u-3", "u-2"),
		}
		for i := 1; i <= 4; i++ {
			c.setPassword("t", "u", hashOf(fmt.Sprint("u-", i)), base, 2)
			u.PasswordHash, u.PasswordChangedAt, u.PasswordHistory = hashOf(fmt.Sprint("u-", i)), base, want[i]
			c.wantUser(u)
		}
	}},
	{"KeepShrinksLongerHistory", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		u.PasswordHistory = hashes("h4", "h3", "h2", "h1")
		c.create(u)
		c.setPassword("t", "u", hashOf("new"), base, 2)
		u.PasswordHash, u.PasswordChangedAt, u.PasswordHistory = hashOf("new"), base, hashes("u-0", "h4")
		c.wantUser(u)
	}},
	{"KeepZeroEmpties", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		u.PasswordHistory = hashes("h2", "h1")
		c.create(u)
		c.setPassword("t", "u", hashOf("new"), base, 0)
		u.PasswordHash, u.PasswordChangedAt, u.PasswordHistory = hashOf("new"), base, nil
		c.wantUser(u)
		c.setPassword("t", "u", hashOf("newer"), base.Add(time.Minute), 0)
		u.PasswordHash, u.PasswordChangedAt = hashOf("newer"), base.Add(time.Minute)
		c.wantUser(u)
	}},
	{"SetsPasswordChangedAt", func(t *testing.T, c *userChecker) {
		// Only the password fields change; an earlier time is set as
		// given.
		u := mkUser("t", "u")
		u.LastLoginAt = base.Add(-time.Hour)
		c.create(u)
		for _, at := range []time.Time{base.Add(3*day + 5*time.Microsecond), base.Add(-3 * day)} {
			c.setPassword("t", "u", hashOf("x"), at, 1)
			u.PasswordHistory = []string{u.PasswordHash}
			u.PasswordHash, u.PasswordChangedAt = hashOf("x"), at
			c.wantUser(u)
		}
	}},
	{"NoPasswordPushesNothing", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		u.PasswordHash, u.PasswordChangedAt = "", time.Time{}
		c.create(u)
		c.setPassword("t", "u", hashOf("first"), base, 5)
		u.PasswordHash, u.PasswordChangedAt = hashOf("first"), base
		c.wantUser(u)
	}},
}

var rehashTests = []test[*userChecker]{
	{"ReplacesWhenUnchanged", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		u.PasswordHistory = hashes("h2", "h1")
		c.create(u)
		c.rehash("t", "u", u.PasswordHash, hashOf("rehashed"))
		u.PasswordHash = hashOf("rehashed")
		c.wantUser(u)
	}},
	{"ConflictWhenChanged", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		u.PasswordHistory = hashes("h1")
		c.create(u)
		for _, old := range []string{hashOf("stale"), "", u.PasswordHash + " ", hashOf("h1")} {
			c.rehashErr("t", "u", old, hashOf("rehashed"), auth.ErrConflict)
		}
		c.wantUser(u)
	}},
	{"ConflictAfterSetPassword", func(t *testing.T, c *userChecker) {
		// A login read the user, then the password was changed: the
		// login's rehash of the old password must not undo the change.
		u := mkUser("t", "u")
		c.create(u)
		read := c.get("t", "u")
		c.setPassword("t", "u", hashOf("changed"), base, 3)
		c.rehashErr("t", "u", read.PasswordHash, hashOf("rehashed-old"), auth.ErrConflict)
		u.PasswordHistory = []string{u.PasswordHash}
		u.PasswordHash, u.PasswordChangedAt = hashOf("changed"), base
		c.wantUser(u)
	}},
}

// resetPasswordTests checks ResetPassword: SetPassword and the email
// verified, only while the email, hash, status, expiry mark and
// reactivation time are those of the user the caller read.
var resetPasswordTests = []test[*userChecker]{
	{"SetsPasswordAndVerifiesEmail", func(t *testing.T, c *userChecker) {
		u, v := mkUser("t", "u"), mkUser("t", "v")
		u.PasswordHistory = hashes("h2", "h1")
		u.EmailUnverified, v.EmailUnverified = true, true
		u.LastLoginAt = base.Add(-time.Hour + 3*time.Microsecond)
		c.create(u, v)
		at := base.Add(time.Hour + 5*time.Microsecond)
		c.resetPassword(c.get("t", "u"), hashOf("reset"), at, 2)
		u.PasswordHistory = hashes("u-0", "h2")
		u.PasswordHash, u.PasswordChangedAt, u.EmailUnverified = hashOf("reset"), at, false
		c.wantUser(u)
		c.wantUser(v)
		c.wantAll("t", u, v)
	}},
	{"ClearsPasswordExpired", func(t *testing.T, c *userChecker) {
		// An expired password read expired is reset, the mark cleared.
		u := mkUser("t", "u")
		u.PasswordExpired = true
		c.create(u)
		c.resetPassword(u, hashOf("reset"), base, 5)
		u.PasswordHistory = []string{u.PasswordHash}
		u.PasswordHash, u.PasswordChangedAt, u.PasswordExpired = hashOf("reset"), base, false
		c.wantUser(u)
	}},
	{"HistoryAsSetPassword", func(t *testing.T, c *userChecker) {
		// No password pushes nothing; keep 0 empties the history.
		u := mkUser("t", "u")
		u.PasswordHash, u.PasswordChangedAt = "", time.Time{}
		c.create(u)
		c.resetPassword(u, hashOf("first"), base, 5)
		u.PasswordHash, u.PasswordChangedAt = hashOf("first"), base
		c.wantUser(u)
		c.resetPassword(u, hashOf("second"), base.Add(time.Minute), 0)
		u.PasswordHash, u.PasswordChangedAt = hashOf("second"), base.Add(time.Minute)
		c.wantUser(u)
	}},
	{"OtherFieldsOfWasIgnored", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		u.PasswordHistory = hashes("h1")
		c.create(u)
		was := u
		was.Name, was.EmailUnverified, was.PasswordHistory = "Someone else", true, nil
		was.PasswordChangedAt, was.CreatedAt, was.LastLoginAt, was.LastSSOAt = base, base, base, base
		c.resetPassword(was, hashOf("reset"), base, 3)
		u.PasswordHistory = hashes("u-0", "h1")
		u.PasswordHash, u.PasswordChangedAt = hashOf("reset"), base
		c.wantUser(u)
	}},
	{"ConflictWhenChanged", func(t *testing.T, c *userChecker) {
		// The user read, then changed: each change makes the reset
		// ErrConflict and leaves the user as the change left them.
		eachAccountChange(c, func(name string, read auth.User) {
			if err := c.st.ResetPassword(t.Context(), "t", read.ID, read, hashOf("reset"), base.Add(time.Hour), 3); !errors.Is(err, auth.ErrConflict) {
				t.Errorf("ResetPassword after a change of %s = %v, want ErrConflict", name, err)
			}
		})
	}},
	{"ConflictAfterReset", func(t *testing.T, c *userChecker) {
		// Two resets from one read: the second finds the hash changed.
		u := mkUser("t", "u")
		c.create(u)
		read := c.get("t", "u")
		c.resetPassword(read, hashOf("first"), base, 3)
		if err := c.st.ResetPassword(t.Context(), "t", "u", read, hashOf("second"), base.Add(time.Minute), 3); !errors.Is(err, auth.ErrConflict) {
			t.Errorf("a second ResetPassword from the same read = %v, want ErrConflict", err)
		}
		u.PasswordHistory = []string{u.PasswordHash}
		u.PasswordHash, u.PasswordChangedAt = hashOf("first"), base
		c.wantUser(u)
	}},
}

// changePasswordTests checks ChangePassword: SetPassword, only while the
// email, hash, status, expiry mark and reactivation time are those of the
// user the caller read, and EmailUnverified left as it is.
var changePasswordTests = []test[*userChecker]{
	{"SetsPasswordAsSetPassword", func(t *testing.T, c *userChecker) {
		u, v := mkUser("t", "u"), mkUser("t", "v")
		u.PasswordHistory = hashes("h2", "h1")
		u.LastLoginAt = base.Add(-time.Hour + 3*time.Microsecond)
		c.create(u, v)
		at := base.Add(time.Hour + 5*time.Microsecond)
		c.changePassword(c.get("t", "u"), hashOf("changed"), at, 2)
		u.PasswordHistory = hashes("u-0", "h2")
		u.PasswordHash, u.PasswordChangedAt = hashOf("changed"), at
		c.wantUser(u)
		c.wantUser(v)
		c.wantAll("t", u, v)
	}},
	{"LeavesEmailUnverified", func(t *testing.T, c *userChecker) {
		// Unlike ResetPassword, a change proves nothing about the
		// address: an unverified one stays unverified, a verified one
		// verified.
		u, v := mkUser("t", "u"), mkUser("t", "v")
		u.EmailUnverified = true
		c.create(u, v)
		c.changePassword(u, hashOf("changed"), base, 3)
		c.changePassword(v, hashOf("changed"), base, 3)
		u.PasswordHistory = []string{u.PasswordHash}
		u.PasswordHash, u.PasswordChangedAt = hashOf("changed"), base
		v.PasswordHistory = []string{v.PasswordHash}
		v.PasswordHash, v.PasswordChangedAt = hashOf("changed"), base
		c.wantUser(u)
		c.wantUser(v)
	}},
	{"ClearsPasswordExpired", func(t *testing.T, c *userChecker) {
		// An expired password read expired is changed, the mark cleared.
		u := mkUser("t", "u")
		u.PasswordExpired = true
		c.create(u)
		c.changePassword(u, hashOf("changed"), base, 5)
		u.PasswordHistory = []string{u.PasswordHash}
		u.PasswordHash, u.PasswordChangedAt, u.PasswordExpired = hashOf("changed"), base, false
		c.wantUser(u)
	}},
	{"HistoryAsSetPassword", func(t *testing.T, c *userChecker) {
		// No password pushes nothing; keep 0 empties the history.
		u := mkUser("t", "u")
		u.PasswordHash, u.PasswordChangedAt = "", time.Time{}
		c.create(u)
		c.changePassword(u, hashOf("first"), base, 5)
		u.PasswordHash, u.PasswordChangedAt = hashOf("first"), base
		c.wantUser(u)
		c.changePassword(u, hashOf("second"), base.Add(time.Minute), 0)
		u.PasswordHash, u.PasswordChangedAt = hashOf("second"), base.Add(time.Minute)
		c.wantUser(u)
	}},
	{"OtherFieldsOfWasIgnored", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		u.PasswordHistory = hashes("h1")
		c.create(u)
		was := u
		was.Name, was.EmailUnverified, was.PasswordHistory = "Someone else", true, nil
		was.PasswordChangedAt, was.CreatedAt, was.LastLoginAt, was.LastSSOAt = base, base, base, base
		c.changePassword(was, hashOf("changed"), base, 3)
		u.PasswordHistory = hashes("u-0", "h1")
		u.PasswordHash, u.PasswordChangedAt = hashOf("changed"), base
		c.wantUser(u)
	}},
	{"ConflictWhenChanged", func(t *testing.T, c *userChecker) {
		// The user read, then changed: each change makes the password
		// change ErrConflict and leaves the user as the change left them.
		eachAccountChange(c, func(name string, read auth.User) {
			if err := c.st.ChangePassword(t.Context(), "t", read.ID, read, hashOf("changed"), base.Add(time.Hour), 3); !errors.Is(err, auth.ErrConflict) {
				t.Errorf("ChangePassword after a change of %s = %v, want ErrConflict", name, err)
			}
		})
	}},
	{"ConflictAfterChange", func(t *testing.T, c *userChecker) {
		// Two changes from one read: the second finds the hash changed.
		u := mkUser("t", "u")
		c.create(u)
		read := c.get("t", "u")
		c.changePassword(read, hashOf("first"), base, 3)
		if err := c.st.ChangePassword(t.Context(), "t", "u", read, hashOf("second"), base.Add(time.Minute), 3); !errors.Is(err, auth.ErrConflict) {
			t.Errorf("a second ChangePassword from the same read = %v, want ErrConflict", err)
		}
		u.PasswordHistory = []string{u.PasswordHash}
		u.PasswordHash, u.PasswordChangedAt = hashOf("first"), base
		c.wantUser(u)
	}},
}

var recordLoginTests = []test[*userChecker]{
	{"SetsLastLoginAtAndReturnsUser", func(t *testing.T, c *userChecker) {
		u, v := mkUser("t", "u"), mkUser("t", "v")
		u.PasswordHistory = hashes("h1")
		c.create(u, v)
		at := base.Add(time.Minute + 3*time.Microsecond)
		got := c.recordLogin("t", "u", at)
		u.LastLoginAt = at
		if d := diffUser(got, u); d != "" {
			t.Errorf("RecordLogin returned %s", d)
		}
		c.wantUser(u)
		c.wantUser(v)
	}},
	{"ReturnsChangedStatus", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		// The status changed after the caller read the user.
		c.setStatus("t", "u", auth.StatusDeactivated)
		c.setPassword("t", "u", hashOf("changed"), base, 1)
		got := c.recordLogin("t", "u", base.Add(time.Minute))
		u.Status = auth.StatusDeactivated
		u.PasswordHistory = []string{u.PasswordHash}
		u.PasswordHash, u.PasswordChangedAt = hashOf("changed"), base
		u.LastLoginAt = base.Add(time.Minute)
		if d := diffUser(got, u); d != "" {
			t.Errorf("RecordLogin returned %s", d)
		}
		c.wantUser(u)
	}},
	{"SetsEarlierTime", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		c.recordLogin("t", "u", base.Add(time.Hour))
		got := c.recordLogin("t", "u", base)
		u.LastLoginAt = base
		if d := diffUser(got, u); d != "" {
			t.Errorf("RecordLogin returned %s", d)
		}
		c.wantUser(u)
	}},
}

var recordSSOLoginTests = []test[*userChecker]{
	{"SetsBothTimesAndReturnsUser", func(t *testing.T, c *userChecker) {
		u, v := mkUser("t", "u"), mkUser("t", "v")
		u.PasswordHistory = hashes("h1")
		c.create(u, v)
		at := base.Add(time.Minute + 3*time.Microsecond)
		got := c.recordSSOLogin("t", "u", at)
		u.LastLoginAt, u.LastSSOAt = at, at
		if d := diffUser(got, u); d != "" {
			t.Errorf("RecordSSOLogin returned %s", d)
		}
		c.wantUser(u)
		c.wantUser(v)
		c.wantList("t", "", 10, []auth.User{u, v})
	}},
	{"RecordLoginLeavesLastSSOAt", func(t *testing.T, c *userChecker) {
		// A password sign-in after an SSO one moves LastLoginAt only; a
		// user who only ever signed in with a password has no LastSSOAt.
		u, v := mkUser("t", "u"), mkUser("t", "v")
		c.create(u, v)
		sso := base.Add(time.Minute)
		c.recordSSOLogin("t", "u", sso)
		got := c.recordLogin("t", "u", base.Add(time.Hour))
		u.LastLoginAt, u.LastSSOAt = base.Add(time.Hour), sso
		if d := diffUser(got, u); d != "" {
			t.Errorf("RecordLogin returned %s", d)
		}
		c.recordLogin("t", "v", base.Add(time.Hour))
		v.LastLoginAt = base.Add(time.Hour)
		c.wantUser(u)
		c.wantUser(v)
		c.wantList("t", "", 10, []auth.User{u, v})
	}},
	{"ReturnsChangedStatus", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		c.setStatus("t", "u", auth.StatusDeactivated)
		got := c.recordSSOLogin("t", "u", base.Add(time.Minute))
		u.Status = auth.StatusDeactivated
		u.LastLoginAt, u.LastSSOAt = base.Add(time.Minute), base.Add(time.Minute)
		if d := diffUser(got, u); d != "" {
			t.Errorf("RecordSSOLogin returned %s", d)
		}
		c.wantUser(u)
	}},
	{"SetsEarlierTime", func(t *testing.T, c *userChecker) {
		// As RecordLogin: the time given, even if earlier than the
		// stored one.
		u := mkUser("t", "u")
		c.create(u)
		c.recordSSOLogin("t", "u", base.Add(time.Hour))
		got := c.recordSSOLogin("t", "u", base)
		u.LastLoginAt, u.LastSSOAt = base, base
		if d := diffUser(got, u); d != "" {
			t.Errorf("RecordSSOLogin returned %s", d)
		}
		c.wantUser(u)
	}},
	{"OtherUpdatesKeepIt", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		c.recordSSOLogin("t", "u", base)
		c.rehash("t", "u", u.PasswordHash, hashOf("rehashed"))
		c.setPassword("t", "u", hashOf("new"), base.Add(time.Minute), 1)
		c.expire("t", "u")
		c.setStatus("t", "u", auth.StatusDeactivated)
		c.setEmail("t", "u", "moved@example.com")
		u.PasswordHash, u.PasswordHistory, u.PasswordChangedAt = hashOf("new"), hashes("rehashed"), base.Add(time.Minute)
		u.PasswordExpired, u.Status, u.Email = true, auth.StatusDeactivated, "moved@example.com"
		u.LastLoginAt, u.LastSSOAt = base, base
		c.wantUser(u)
		c.wantList("t", "", 10, []auth.User{u})
	}},
}

var setEmailTests = []test[*userChecker]{
	{"SetsEmailOnly", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "a"), mkUser("t", "b")
		a.PasswordHistory = hashes("h2", "h1")
		a.LastLoginAt = base.Add(-time.Hour + 7*time.Microsecond)
		c.create(a, b)
		old := a.Email
		for _, e := range []string{"zoë.o'brien+guard@exämple.com", "a.new@example.org"} {
			c.setEmail("t", "a", e)
			a.Email = e
			c.wantUser(a)
		}
		c.wantNoEmail("t", old)
		c.wantNoEmail("t", "zoë.o'brien+guard@exämple.com")
		c.wantUser(b)
		c.wantAll("t", a, b)
	}},
	{"LongestEmail", func(t *testing.T, c *userChecker) {
		domain := strings.Repeat("d", 63) + "." + strings.Repeat("e", 63) + "." + strings.Repeat("f", 57) + ".com"
		u := mkUser("t", "u")
		c.create(u)
		u.Email = strings.Repeat("l", 64-len("ü")) + "ü" + "@" + domain
		if len(u.Email) != auth.MaxEmailBytes {
			t.Fatalf("suite bug: email of %d bytes", len(u.Email))
		}
		c.setEmail("t", "u", u.Email)
		c.wantUser(u)
	}},
	{"FreesPreviousEmails", func(t *testing.T, c *userChecker) {
		// a moves twice; b takes a's first email by SetEmail and a new
		// user takes the second by CreateUser.
		a, b := mkUser("t", "a"), mkUser("t", "b")
		c.create(a, b)
		first := a.Email
		c.setEmail("t", "a", "second@example.com")
		c.setEmail("t", "a", "third@example.com")
		a.Email = "third@example.com"
		c.wantNoEmail("t", first)
		c.wantNoEmail("t", "second@example.com")
		c.setEmail("t", "b", first)
		b.Email = first
		n := mkUser("t", "n")
		n.Email = "second@example.com"
		c.create(n)
		c.wantUser(a)
		c.wantUser(b)
		c.wantUser(n)
		c.wantNoEmail("t", "b@example.com")
		c.wantAll("t", a, b, n)
	}},
	{"DuplicateChangesNothing", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "a"), mkUser("t", "b")
		a.PasswordHistory = hashes("h1")
		c.create(a, b)
		c.setEmailErr("t", "a", b.Email, auth.ErrDuplicateEmail)
		c.setEmailErr("t", "b", a.Email, auth.ErrDuplicateEmail)
		c.wantUser(a)
		c.wantUser(b)
		c.wantAll("t", a, b)
		// The refused change left a's email where it was: a can still
		// move, and nobody took its email.
		c.setEmail("t", "a", "free@example.com")
		a.Email = "free@example.com"
		c.wantUser(a)
		c.wantNoEmail("t", "a@example.com")
	}},
	{"OtherTenantsDoNotCount", func(t *testing.T, c *userChecker) {
		a, g := mkUser("acme", "a"), mkUser("globex", "g")
		c.create(a, g)
		c.setEmail("acme", "a", g.Email)
		a.Email = g.Email
		c.wantUser(a)
		c.wantUser(g)
		c.setEmail("globex", "g", "g2@example.com")
		g.Email = "g2@example.com"
		c.wantUser(a)
		c.wantUser(g)
		c.wantNoEmail("globex", "g@example.com")
	}},
	{"CurrentEmailIsNoOp", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "a"), mkUser("t", "b")
		a.PasswordHistory = hashes("h1")
		c.create(a, b)
		c.setEmail("t", "a", a.Email)
		c.setEmail("t", "a", a.Email)
		c.wantUser(a)
		c.wantUser(b)
		c.wantAll("t", a, b)
	}},
	{"CurrentEmailSetsUnverifiedOnly", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "a"), mkUser("t", "b")
		a.PasswordHistory = hashes("h1")
		c.create(a, b)
		c.setUnverified("t", "a", a.Email)
		a.EmailUnverified = true
		c.wantUser(a)
		c.setUnverified("t", "a", a.Email)
		c.wantUser(a)
		c.setEmail("t", "a", a.Email)
		a.EmailUnverified = false
		c.wantUser(a)
		c.wantUser(b)
		c.wantAll("t", a, b)
	}},
	{"NotFoundEvenIfEmailTaken", func(t *testing.T, c *userChecker) {
		a := mkUser("t", "a")
		c.create(a)
		for _, id := range []string{"nobody", "A", ""} {
			c.setEmailErr("t", id, a.Email, auth.ErrNotFound)
			c.wantNoID("t", id)
		}
		c.setEmailErr("other", "a", a.Email, auth.ErrNotFound)
		c.wantNoID("other", "a")
		c.wantUser(a)
		c.wantAll("t", a)
	}},
}

// changeEmailTests checks ChangeEmail: SetEmail, only while the email,
// hash, status, expiry mark and reactivation time are those of the user
// the caller read.
var changeEmailTests = []test[*userChecker]{
	{"SetsEmailAsSetEmail", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "a"), mkUser("t", "b")
		a.PasswordHistory = hashes("h2", "h1")
		a.LastLoginAt = base.Add(-time.Hour + 7*time.Microsecond)
		c.create(a, b)
		old := a.Email
		for i, e := range []string{"zoë.o'brien+guard@exämple.com", "a.new@example.org"} {
			unverified := i == 0
			c.changeEmail(c.get("t", "a"), e, unverified)
			a.Email, a.EmailUnverified = e, unverified
			c.wantUser(a)
		}
		c.wantNoEmail("t", old)
		c.wantNoEmail("t", "zoë.o'brien+guard@exämple.com")
		c.wantUser(b)
		c.wantAll("t", a, b)
	}},
	{"FreesPreviousEmail", func(t *testing.T, c *userChecker) {
		// a moves; b takes a's previous email at once.
		a, b := mkUser("t", "a"), mkUser("t", "b")
		c.create(a, b)
		first := a.Email
		c.changeEmail(a, "second@example.com", true)
		c.changeEmail(b, first, false)
		a.Email, a.EmailUnverified = "second@example.com", true
		b.Email = first
		c.wantUser(a)
		c.wantUser(b)
		c.wantNoEmail("t", "b@example.com")
		c.wantAll("t", a, b)
	}},
	{"CurrentEmailSetsUnverifiedOnly", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "a"), mkUser("t", "b")
		a.PasswordHistory = hashes("h1")
		c.create(a, b)
		c.changeEmail(a, a.Email, true)
		a.EmailUnverified = true
		c.wantUser(a)
		c.changeEmail(a, a.Email, false)
		a.EmailUnverified = false
		c.wantUser(a)
		c.wantUser(b)
		c.wantAll("t", a, b)
	}},
	{"DuplicateChangesNothing", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "a"), mkUser("t", "b")
		a.PasswordHistory = hashes("h1")
		b.EmailUnverified = true
		c.create(a, b)
		c.changeEmailErr(a, b.Email, auth.ErrDuplicateEmail)
		c.changeEmailErr(b, a.Email, auth.ErrDuplicateEmail)
		c.wantUser(a)
		c.wantUser(b)
		c.wantAll("t", a, b)
		// The refused change left a's email where it was: a can still
		// move from the same read.
		c.changeEmail(a, "free@example.com", false)
		a.Email = "free@example.com"
		c.wantUser(a)
		c.wantNoEmail("t", "a@example.com")
	}},
	{"OtherTenantsDoNotCount", func(t *testing.T, c *userChecker) {
		a, g := mkUser("acme", "a"), mkUser("globex", "g")
		c.create(a, g)
		c.changeEmail(a, g.Email, false)
		a.Email = g.Email
		c.wantUser(a)
		c.wantUser(g)
	}},
	{"OtherFieldsOfWasIgnored", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		u.PasswordHistory = hashes("h1")
		c.create(u)
		was := u
		was.Name, was.EmailUnverified, was.PasswordHistory = "Someone else", true, nil
		was.PasswordChangedAt, was.CreatedAt, was.LastLoginAt, was.LastSSOAt = base, base, base, base
		c.changeEmail(was, "changed@example.com", false)
		u.Email = "changed@example.com"
		c.wantUser(u)
	}},
	{"ConflictWhenChanged", func(t *testing.T, c *userChecker) {
		// The user read, then changed: each change makes the change of
		// email ErrConflict and leaves the user as the change left them,
		// the email asked for free.
		eachAccountChange(c, func(name string, read auth.User) {
			for _, e := range []string{"changed-" + read.ID + "@example.com", read.Email} {
				if err := c.st.ChangeEmail(t.Context(), "t", read.ID, read, e, false); !errors.Is(err, auth.ErrConflict) {
					t.Errorf("ChangeEmail to %q after a change of %s = %v, want ErrConflict", e, name, err)
				}
			}
			c.wantNoEmail("t", "changed-"+read.ID+"@example.com")
		})
	}},
	{"ConflictBeforeDuplicate", func(t *testing.T, c *userChecker) {
		// The account changed and the email is taken: ErrConflict.
		a, b := mkUser("t", "a"), mkUser("t", "b")
		c.create(a, b)
		read := c.get("t", "a")
		c.expire("t", "a")
		a.PasswordExpired = true
		if err := c.st.ChangeEmail(t.Context(), "t", "a", read, b.Email, false); !errors.Is(err, auth.ErrConflict) {
			t.Errorf("ChangeEmail to a taken email after a change = %v, want ErrConflict", err)
		}
		c.wantUser(a)
		c.wantUser(b)
		c.wantAll("t", a, b)
	}},
	{"ConflictAfterChange", func(t *testing.T, c *userChecker) {
		// Two changes from one read: the second finds the email changed,
		// even when it asks for the same email.
		u := mkUser("t", "u")
		c.create(u)
		read := c.get("t", "u")
		c.changeEmail(read, "first@example.com", true)
		for _, e := range []string{"second@example.com", "first@example.com"} {
			if err := c.st.ChangeEmail(t.Context(), "t", "u", read, e, false); !errors.Is(err, auth.ErrConflict) {
				t.Errorf("a second ChangeEmail (to %q) from the same read = %v, want ErrConflict", e, err)
			}
		}
		u.Email, u.EmailUnverified = "first@example.com", true
		c.wantUser(u)
		c.wantNoEmail("t", "second@example.com")
		c.wantNoEmail("t", "u@example.com")
	}},
	{"NotFoundEvenIfEmailTaken", func(t *testing.T, c *userChecker) {
		a := mkUser("t", "a")
		c.create(a)
		for _, id := range []string{"nobody", "A", ""} {
			c.changeEmailErr(mkUser("t", id), a.Email, auth.ErrNotFound)
			c.wantNoID("t", id)
		}
		c.changeEmailErr(mkUser("other", "a"), a.Email, auth.ErrNotFound)
		c.wantNoID("other", "a")
		c.wantUser(a)
		c.wantAll("t", a)
	}},
}

// verifyTests check EmailUnverified: SetEmail's flag and VerifyEmail.
var verifyTests = []test[*userChecker]{
	{"SetEmailUnverifiedSetsBoth", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "a"), mkUser("t", "b")
		a.PasswordHistory = hashes("h2", "h1")
		a.LastLoginAt = base.Add(-time.Hour + 7*time.Microsecond)
		c.create(a, b)
		old := a.Email
		c.setUnverified("t", "a", "claimed@example.com")
		a.Email, a.EmailUnverified = "claimed@example.com", true
		c.wantUser(a)
		c.wantNoEmail("t", old)
		c.wantUser(b)
		c.wantAll("t", a, b)
	}},
	{"SetEmailVerifiedClearsIt", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		c.setUnverified("t", "u", "claimed@example.com")
		c.setEmail("t", "u", "proved@example.com")
		u.Email = "proved@example.com"
		c.wantUser(u)
		c.wantAll("t", u)
	}},
	{"NewUserUnverifiedRoundTrips", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		u.EmailUnverified = true
		c.create(u)
		c.wantUser(u)
		c.wantAll("t", u)
	}},
	{"DuplicateLeavesFlag", func(t *testing.T, c *userChecker) {
		// A refused change, verified or not, changes neither the email
		// nor the flag.
		a, b := mkUser("t", "a"), mkUser("t", "b")
		c.create(a, b)
		c.setUnverified("t", "a", "claimed@example.com")
		a.Email, a.EmailUnverified = "claimed@example.com", true
		c.setEmailErr("t", "a", b.Email, auth.ErrDuplicateEmail)
		c.setEmailErr("t", "b", a.Email, auth.ErrDuplicateEmail)
		c.wantUser(a)
		c.wantUser(b)
		c.wantAll("t", a, b)
	}},
	{"VerifyEmailClearsItOnly", func(t *testing.T, c *userChecker) {
		a, b := mkUser("t", "a"), mkUser("t", "b")
		a.PasswordHistory = hashes("h1")
		a.LastLoginAt, a.LastSSOAt = base.Add(-time.Hour), base.Add(-day)
		c.create(a, b)
		c.setUnverified("t", "a", "claimed@example.com")
		c.setUnverified("t", "b", "other@example.com")
		c.verify("t", "a", "claimed@example.com")
		a.Email = "claimed@example.com"
		b.Email, b.EmailUnverified = "other@example.com", true
		c.wantUser(a)
		c.wantUser(b)
		c.wantAll("t", a, b)
	}},
	{"VerifyVerifiedIsNoOp", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		c.verify("t", "u", u.Email)
		c.verify("t", "u", u.Email)
		c.wantUser(u)
	}},
	{"VerifyAnotherEmailConflicts", func(t *testing.T, c *userChecker) {
		// The proof was for an address the user no longer has (their
		// previous one, another user's, one never theirs): ErrConflict,
		// and the flag stays.
		a, b := mkUser("t", "a"), mkUser("t", "b")
		c.create(a, b)
		old := a.Email
		c.setUnverified("t", "a", "claimed@example.com")
		a.Email, a.EmailUnverified = "claimed@example.com", true
		for _, e := range []string{old, b.Email, "never@example.com", "Claimed@example.com", ""} {
			c.verifyErr("t", "a", e, auth.ErrConflict)
		}
		c.wantUser(a)
		c.wantUser(b)
		c.wantNoEmail("t", old)
		c.wantAll("t", a, b)
	}},
	{"VerifyStaysInTenant", func(t *testing.T, c *userChecker) {
		a, g := mkUser("acme", "42"), mkUser("globex", "42")
		c.create(a, g)
		c.setUnverified("acme", "42", "same@example.com")
		c.setUnverified("globex", "42", "same@example.com")
		c.verify("acme", "42", "same@example.com")
		a.Email = "same@example.com"
		g.Email, g.EmailUnverified = "same@example.com", true
		c.wantUser(a)
		c.wantUser(g)
	}},
	{"OtherUpdatesKeepIt", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		c.setUnverified("t", "u", "claimed@example.com")
		c.rehash("t", "u", u.PasswordHash, hashOf("rehashed"))
		c.setPassword("t", "u", hashOf("new"), base.Add(time.Minute), 1)
		c.expire("t", "u")
		c.setStatus("t", "u", auth.StatusDeactivated)
		c.recordLogin("t", "u", base)
		got := c.recordSSOLogin("t", "u", base)
		u.PasswordHash, u.PasswordHistory, u.PasswordChangedAt = hashOf("new"), hashes("rehashed"), base.Add(time.Minute)
		u.PasswordExpired, u.Status, u.Email, u.EmailUnverified = true, auth.StatusDeactivated, "claimed@example.com", true
		u.LastLoginAt, u.LastSSOAt = base, base
		if d := diffUser(got, u); d != "" {
			t.Errorf("RecordSSOLogin returned %s", d)
		}
		c.wantUser(u)
		c.wantAll("t", u)
	}},
}

var expireTests = []test[*userChecker]{
	{"SetsPasswordExpiredOnly", func(t *testing.T, c *userChecker) { c.flagOnly(false, c.expire) }},
	{"ExpiredAgainIsNoOp", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		u.PasswordExpired = true
		c.create(u)
		c.expireSets("t", "u", false)
		c.expireSets("t", "u", false)
		c.wantUser(u)
	}},
	{"SaysWhetherItSetTheFlag", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		c.expireSets("t", "u", true)
		c.expireSets("t", "u", false)
		c.clearExpired("t", "u")
		c.expireSets("t", "u", true)
		u.PasswordExpired = true
		c.wantUser(u)
	}},
	{"NoPasswordToo", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		u.PasswordHash, u.PasswordChangedAt = "", time.Time{}
		c.create(u)
		c.expire("t", "u")
		u.PasswordExpired = true
		c.wantUser(u)
	}},
	{"SetPasswordClearsIt", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		c.expire("t", "u")
		c.setPassword("t", "u", hashOf("new"), base, 3)
		u.PasswordHistory = []string{u.PasswordHash}
		u.PasswordHash, u.PasswordChangedAt = hashOf("new"), base
		c.wantUser(u)
	}},
	{"OtherUpdatesKeepIt", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		c.expire("t", "u")
		c.rehash("t", "u", u.PasswordHash, hashOf("rehashed"))
		c.setStatus("t", "u", auth.StatusDeactivated)
		c.setEmail("t", "u", "moved@example.com")
		got := c.recordLogin("t", "u", base)
		u.PasswordHash, u.Status, u.Email, u.LastLoginAt = hashOf("rehashed"), auth.StatusDeactivated, "moved@example.com", base
		u.PasswordExpired = true
		if d := diffUser(got, u); d != "" {
			t.Errorf("RecordLogin returned %s", d)
		}
		c.wantUser(u)
	}},
}

var clearExpiredTests = []test[*userChecker]{
	{"ClearsPasswordExpiredOnly", func(t *testing.T, c *userChecker) { c.flagOnly(true, c.clearExpired) }},
	{"ClearedAgainIsNoOp", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		c.create(u)
		c.clearExpired("t", "u")
		c.expire("t", "u")
		c.clearExpired("t", "u")
		c.clearExpired("t", "u")
		c.wantUser(u)
		c.expire("t", "u") // and it can be set again
		u.PasswordExpired = true
		c.wantUser(u)
	}},
}

// updaters calls each method that must return ErrNotFound for a missing
// user, by name.
var updaters = []struct {
	name string
	call func(c *userChecker, tenant, id string) error
}{
	{"SetStatus", func(c *userChecker, tenant, id string) error {
		return c.st.SetStatus(c.t.Context(), tenant, id, auth.StatusDeactivated)
	}},
	{"Deactivate", func(c *userChecker, tenant, id string) error {
		_, err := c.st.Deactivate(c.t.Context(), tenant, id)
		return err
	}},
	{"DeactivateIdle", func(c *userChecker, tenant, id string) error {
		return c.st.DeactivateIdle(c.t.Context(), tenant, id, base)
	}},
	{"SetReactivatedAt", func(c *userChecker, tenant, id string) error {
		return c.st.SetReactivatedAt(c.t.Context(), tenant, id, base)
	}},
	{"SetPassword", func(c *userChecker, tenant, id string) error {
		return c.st.SetPassword(c.t.Context(), tenant, id, hashOf("new"), base, 3)
	}},
	{"RehashPassword", func(c *userChecker, tenant, id string) error {
		return c.st.RehashPassword(c.t.Context(), tenant, id, hashOf(id+"-0"), hashOf("new"))
	}},
	{"ResetPassword", func(c *userChecker, tenant, id string) error {
		return c.st.ResetPassword(c.t.Context(), tenant, id, mkUser(tenant, id), hashOf("new"), base, 3)
	}},
	{"ChangePassword", func(c *userChecker, tenant, id string) error {
		return c.st.ChangePassword(c.t.Context(), tenant, id, mkUser(tenant, id), hashOf("new"), base, 3)
	}},
	{"RecordLogin", func(c *userChecker, tenant, id string) error {
		_, err := c.st.RecordLogin(c.t.Context(), tenant, id, base)
		return err
	}},
	{"RecordSSOLogin", func(c *userChecker, tenant, id string) error {
		_, err := c.st.RecordSSOLogin(c.t.Context(), tenant, id, base)
		return err
	}},
	{"SetEmail", func(c *userChecker, tenant, id string) error {
		return c.st.SetEmail(c.t.Context(), tenant, id, "new@example.com", false)
	}},
	{"SetEmailUnverified", func(c *userChecker, tenant, id string) error {
		return c.st.SetEmail(c.t.Context(), tenant, id, "new@example.com", true)
	}},
	{"ChangeEmail", func(c *userChecker, tenant, id string) error {
		return c.st.ChangeEmail(c.t.Context(), tenant, id, mkUser(tenant, id), "new@example.com", false)
	}},
	{"VerifyEmail", func(c *userChecker, tenant, id string) error {
		return c.st.VerifyEmail(c.t.Context(), tenant, id, id+"@example.com")
	}},
	{"ExpirePassword", func(c *userChecker, tenant, id string) error {
		_, err := c.st.ExpirePassword(c.t.Context(), tenant, id)
		return err
	}},
	{"ClearPasswordExpired", func(c *userChecker, tenant, id string) error {
		return c.st.ClearPasswordExpired(c.t.Context(), tenant, id)
	}},
	{"DeleteUser", func(c *userChecker, tenant, id string) error {
		return c.st.DeleteUser(c.t.Context(), tenant, id)
	}},
}

// missingTests checks that every UserUpdater method (and DeleteUser)
// returns ErrNotFound for a user that was never created, that exists only
// in another tenant, or that was deleted, and creates nothing.
var missingTests = func() []test[*userChecker] {
	var tests []test[*userChecker]
	for _, u := range updaters {
		tests = append(tests, test[*userChecker]{u.name + "NotFound", func(t *testing.T, c *userChecker) {
			other := mkUser("globex", "a")
			gone := mkUser("acme", "gone")
			c.create(other, gone)
			c.delete("acme", "gone")
			for _, ref := range [][2]string{{"acme", "nobody"}, {"acme", "a"}, {"acme", "gone"}} {
				if err := u.call(c, ref[0], ref[1]); !errors.Is(err, auth.ErrNotFound) {
					t.Errorf("%s(%q, %q) = %v, want ErrNotFound", u.name, ref[0], ref[1], err)
				}
				c.wantNoID(ref[0], ref[1])
			}
			c.wantAll("acme")
			c.wantUser(other)
			c.wantNoEmail("acme", "new@example.com")
		}})
	}
	return tests
}()

var copyTests = []test[*userChecker]{
	{"CreateUserKeepsNoReference", func(t *testing.T, c *userChecker) {
		u := mkUser("t", "u")
		u.PasswordHistory = hashes("h2", "h1")
		in := u
		in.PasswordHistory = slices.Clone(u.PasswordHistory)
		c.create(in)
		in.PasswordHistory[0] = "mutated"
		c.wantUser(u)
	}},
	{"UserReturnsCopy", func(t *testing.T, c *userChecker) {
		u := c.withHistory()
		got := c.get("t", "u")
		got.PasswordHistory[0] = "mutated"
		c.wantUser(u)
	}},
	{"UserByEmailReturnsCopy", func(t *testing.T, c *userChecker) {
		u := c.withHistory()
		got, err := c.st.UserByEmail(t.Context(), "t", u.Email)
		if err != nil || len(got.PasswordHistory) == 0 {
			t.Fatalf("UserByEmail = %d hashes of history, %v", len(got.PasswordHistory), err)
		}
		got.PasswordHistory[0] = "mutated"
		c.wantUser(u)
	}},
	{"ListUsersReturnsCopies", func(t *testing.T, c *userChecker) {
		u := c.withHistory()
		got, err := c.st.ListUsers(t.Context(), "t", "", 10)
		if err != nil || len(got) != 1 || len(got[0].PasswordHistory) == 0 {
			t.Fatalf("ListUsers = %d users, %v", len(got), err)
		}
		got[0].PasswordHistory[0] = "mutated"
		c.wantUser(u)
	}},
	{"RecordSSOLoginReturnsCopy", func(t *testing.T, c *userChecker) {
		u := c.withHistory()
		got := c.recordSSOLogin("t", "u", base)
		u.LastLoginAt, u.LastSSOAt = base, base
		if len(got.PasswordHistory) == 0 {
			t.Fatalf("RecordSSOLogin returned no history")
		}
		got.PasswordHistory[0] = "mutated"
		c.wantUser(u)
	}},
	{"RecordLoginReturnsCopy", func(t *testing.T, c *userChecker) {
		u := c.withHistory()
		got := c.recordLogin("t", "u", base)
		u.LastLoginAt = base
		if len(got.PasswordHistory) == 0 {
			t.Fatalf("RecordLogin returned no history")
		}
		got.PasswordHistory[0] = "mutated"
		c.wantUser(u)
	}},
}

// withHistory creates user t/u with two hashes of history and returns it.
func (c *userChecker) withHistory() auth.User {
	c.t.Helper()
	u := mkUser("t", "u")
	u.PasswordHistory = hashes("h2", "h1")
	c.create(u)
	return u
}

var userTenantTests = []test[*userChecker]{
	{"NoConfusionOfJoinedNames", func(t *testing.T, c *userChecker) {
		// ("a:b", "c") and ("a", "b:c") are different users, whatever
		// separator a backend uses to build its keys.
		for _, sep := range []string{":", "/", "|", "-", ".", "@", " "} {
			x := mkUser("a"+sep+"b", "c")
			y := mkUser("a", "b"+sep+"c")
			x.Email = "same" + sep + "@example.com"
			y.Email = x.Email
			c.create(x, y)
			c.wantUser(x)
			c.wantUser(y)
			c.wantNoID("a", "c")
			c.wantNoID("a"+sep+"b", "b"+sep+"c")
			c.wantAll("a"+sep+"b", x)
		}
	}},
	{"UpdatesStayInTenant", func(t *testing.T, c *userChecker) {
		a := mkUser("acme", "42")
		g := mkUser("globex", "42")
		g.PasswordHash = a.PasswordHash
		c.create(a, g)
		c.setStatus("acme", "42", auth.StatusDeactivated)
		c.setPassword("acme", "42", hashOf("new"), base, 3)
		c.rehash("acme", "42", hashOf("new"), hashOf("rehashed"))
		c.resetPassword(c.get("acme", "42"), hashOf("reset"), base, 3)
		c.recordLogin("acme", "42", base.Add(time.Minute))
		c.recordSSOLogin("acme", "42", base.Add(time.Hour))
		c.setEmail("acme", "42", "moved@example.com")
		c.setUnverified("acme", "42", "42@example.com")
		c.verify("acme", "42", "42@example.com")
		c.setUnverified("acme", "42", "moved@example.com")
		c.expire("acme", "42")
		c.wantUser(g)
		c.delete("acme", "42")
		c.wantUser(g)
		c.wantAll("globex", g)
	}},
}

// userChecker wraps a user store with assertions.
type userChecker struct {
	t  *testing.T
	st Users
}

func (c *userChecker) create(us ...auth.User) {
	c.t.Helper()
	for _, u := range us {
		if err := c.st.CreateUser(c.t.Context(), u); err != nil {
			c.t.Fatalf("CreateUser(%s): %v", ref(u), err)
		}
	}
}

// createErr checks that CreateUser fails with one of want.
func (c *userChecker) createErr(u auth.User, want ...error) {
	c.t.Helper()
	err := c.st.CreateUser(c.t.Context(), u)
	for _, w := range want {
		if errors.Is(err, w) {
			return
		}
	}
	c.t.Errorf("CreateUser(%s) = %v, want %v", ref(u), err, errors.Join(want...))
}

func (c *userChecker) get(tenant, id string) auth.User {
	c.t.Helper()
	u, err := c.st.User(c.t.Context(), tenant, id)
	if err != nil {
		c.t.Fatalf("User(%q, %q): %v", tenant, id, err)
	}
	return u
}

func (c *userChecker) delete(tenant, id string) {
	c.t.Helper()
	if err := c.st.DeleteUser(c.t.Context(), tenant, id); err != nil {
		c.t.Fatalf("DeleteUser(%q, %q): %v", tenant, id, err)
	}
}

func (c *userChecker) deleteErr(tenant, id string) {
	c.t.Helper()
	if err := c.st.DeleteUser(c.t.Context(), tenant, id); !errors.Is(err, auth.ErrNotFound) {
		c.t.Errorf("DeleteUser(%q, %q) = %v, want ErrNotFound", tenant, id, err)
	}
}

func (c *userChecker) setStatus(tenant, id string, s auth.Status) {
	c.t.Helper()
	if err := c.st.SetStatus(c.t.Context(), tenant, id, s); err != nil {
		c.t.Fatalf("SetStatus(%q, %q, %s): %v", tenant, id, s, err)
	}
}

// idleAfter creates user u of tenant t, records activity of it (what)
// a second past base with act, and checks that DeactivateIdle(base) then
// finds u active since (ErrConflict, the fields as mark sets them), and
// that DeactivateIdle at the time of the activity deactivates u.
func (c *userChecker) idleAfter(what string, act func(at time.Time), mark func(u *auth.User, at time.Time)) {
	c.t.Helper()
	u := mkUser("t", "u")
	c.create(u)
	at := base.Add(time.Second)
	act(at)
	if err := c.st.DeactivateIdle(c.t.Context(), "t", "u", base); !errors.Is(err, auth.ErrConflict) {
		c.t.Errorf("DeactivateIdle after %s past idleSince = %v, want ErrConflict", what, err)
	}
	mark(&u, at)
	c.wantUser(u)
	if err := c.st.DeactivateIdle(c.t.Context(), "t", "u", at); err != nil {
		c.t.Errorf("DeactivateIdle at the time of %s: %v", what, err)
	}
	u.Status = auth.StatusDeactivated
	c.wantUser(u)
}

func (c *userChecker) setReactivatedAt(tenant, id string, at time.Time) {
	c.t.Helper()
	if err := c.st.SetReactivatedAt(c.t.Context(), tenant, id, at); err != nil {
		c.t.Fatalf("SetReactivatedAt(%q, %q, %v): %v", tenant, id, at, err)
	}
}

func (c *userChecker) setPassword(tenant, id, hash string, at time.Time, keep int) {
	c.t.Helper()
	if err := c.st.SetPassword(c.t.Context(), tenant, id, hash, at, keep); err != nil {
		c.t.Fatalf("SetPassword(%q, %q, %s, keep %d): %v", tenant, id, hashLabel(hash), keep, err)
	}
}

func (c *userChecker) rehash(tenant, id, oldHash, newHash string) {
	c.t.Helper()
	if err := c.st.RehashPassword(c.t.Context(), tenant, id, oldHash, newHash); err != nil {
		c.t.Fatalf("RehashPassword(%q, %q, %s, %s): %v", tenant, id, hashLabel(oldHash), hashLabel(newHash), err)
	}
}

func (c *userChecker) rehashErr(tenant, id, oldHash, newHash string, want error) {
	c.t.Helper()
	if err := c.st.RehashPassword(c.t.Context(), tenant, id, oldHash, newHash); !errors.Is(err, want) {
		c.t.Errorf("RehashPassword(%q, %q, %s, %s) = %v, want %v", tenant, id, hashLabel(oldHash), hashLabel(newHash), err, want)
	}
}

// resetPassword calls ResetPassword on the user was names, read as was.
func (c *userChecker) resetPassword(was auth.User, hash string, at time.Time, keep int) {
	c.t.Helper()
	if err := c.st.ResetPassword(c.t.Context(), was.Tenant, was.ID, was, hash, at, keep); err != nil {
		c.t.Fatalf("ResetPassword(%q, %q, %s, keep %d): %v", was.Tenant, was.ID, hashLabel(hash), keep, err)
	}
}

// changePassword calls ChangePassword on the user was names, read as was.
func (c *userChecker) changePassword(was auth.User, hash string, at time.Time, keep int) {
	c.t.Helper()
	if err := c.st.ChangePassword(c.t.Context(), was.Tenant, was.ID, was, hash, at, keep); err != nil {
		c.t.Fatalf("ChangePassword(%q, %q, %s, keep %d): %v", was.Tenant, was.ID, hashLabel(hash), keep, err)
	}
}

// setEmail sets a verified email.
func (c *userChecker) setEmail(tenant, id, email string) {
	c.t.Helper()
	if err := c.st.SetEmail(c.t.Context(), tenant, id, email, false); err != nil {
		c.t.Fatalf("SetEmail(%q, %q, %q, false): %v", tenant, id, email, err)
	}
}

// setUnverified sets an unverified email.
func (c *userChecker) setUnverified(tenant, id, email string) {
	c.t.Helper()
	if err := c.st.SetEmail(c.t.Context(), tenant, id, email, true); err != nil {
		c.t.Fatalf("SetEmail(%q, %q, %q, true): %v", tenant, id, email, err)
	}
}

func (c *userChecker) setEmailErr(tenant, id, email string, want error) {
	c.t.Helper()
	for _, unverified := range []bool{false, true} {
		if err := c.st.SetEmail(c.t.Context(), tenant, id, email, unverified); !errors.Is(err, want) {
			c.t.Errorf("SetEmail(%q, %q, %q, %v) = %v, want %v", tenant, id, email, unverified, err, want)
		}
	}
}

// changeEmail calls ChangeEmail on the user was names, read as was.
func (c *userChecker) changeEmail(was auth.User, email string, unverified bool) {
	c.t.Helper()
	if err := c.st.ChangeEmail(c.t.Context(), was.Tenant, was.ID, was, email, unverified); err != nil {
		c.t.Fatalf("ChangeEmail(%q, %q, %q, %v): %v", was.Tenant, was.ID, email, unverified, err)
	}
}

// changeEmailErr checks that ChangeEmail on the user was names, read as
// was, returns want, verified or not.
func (c *userChecker) changeEmailErr(was auth.User, email string, want error) {
	c.t.Helper()
	for _, unverified := range []bool{false, true} {
		if err := c.st.ChangeEmail(c.t.Context(), was.Tenant, was.ID, was, email, unverified); !errors.Is(err, want) {
			c.t.Errorf("ChangeEmail(%q, %q, %q, %v) = %v, want %v", was.Tenant, was.ID, email, unverified, err, want)
		}
	}
}

func (c *userChecker) verify(tenant, id, email string) {
	c.t.Helper()
	if err := c.st.VerifyEmail(c.t.Context(), tenant, id, email); err != nil {
		c.t.Fatalf("VerifyEmail(%q, %q, %q): %v", tenant, id, email, err)
	}
}

func (c *userChecker) verifyErr(tenant, id, email string, want error) {
	c.t.Helper()
	if err := c.st.VerifyEmail(c.t.Context(), tenant, id, email); !errors.Is(err, want) {
		c.t.Errorf("VerifyEmail(%q, %q, %q) = %v, want %v", tenant, id, email, err, want)
	}
}

func (c *userChecker) expire(tenant, id string) {
	c.t.Helper()
	if _, err := c.st.ExpirePassword(c.t.Context(), tenant, id); err != nil {
		c.t.Fatalf("ExpirePassword(%q, %q): %v", tenant, id, err)
	}
}

// expireSets expires tenant/id's password and checks what ExpirePassword
// says of the flag: set by this call (want) or already set.
func (c *userChecker) expireSets(tenant, id string, want bool) {
	c.t.Helper()
	if set, err := c.st.ExpirePassword(c.t.Context(), tenant, id); err != nil || set != want {
		c.t.Errorf("ExpirePassword(%q, %q) = %v, %v; want set %v", tenant, id, set, err, want)
	}
}

// flagOnly creates users a and b of tenant t, their passwords marked if
// marked, calls op on a, and checks that it turned a's PasswordExpired
// over and changed nothing else.
func (c *userChecker) flagOnly(marked bool, op func(tenant, id string)) {
	c.t.Helper()
	a, b := mkUser("t", "a"), mkUser("t", "b")
	a.PasswordHistory = hashes("h2", "h1")
	a.LastLoginAt = base.Add(-time.Hour + 7*time.Microsecond)
	a.PasswordExpired, b.PasswordExpired = marked, marked
	c.create(a, b)
	op("t", "a")
	a.PasswordExpired = !marked
	c.wantUser(a)
	c.wantUser(b)
	c.wantAll("t", a, b)
}

func (c *userChecker) clearExpired(tenant, id string) {
	c.t.Helper()
	if err := c.st.ClearPasswordExpired(c.t.Context(), tenant, id); err != nil {
		c.t.Fatalf("ClearPasswordExpired(%q, %q): %v", tenant, id, err)
	}
}

func (c *userChecker) recordLogin(tenant, id string, at time.Time) auth.User {
	c.t.Helper()
	u, err := c.st.RecordLogin(c.t.Context(), tenant, id, at)
	if err != nil {
		c.t.Fatalf("RecordLogin(%q, %q): %v", tenant, id, err)
	}
	return u
}

func (c *userChecker) recordSSOLogin(tenant, id string, at time.Time) auth.User {
	c.t.Helper()
	u, err := c.st.RecordSSOLogin(c.t.Context(), tenant, id, at)
	if err != nil {
		c.t.Fatalf("RecordSSOLogin(%q, %q): %v", tenant, id, err)
	}
	return u
}

// wantUser checks that User and UserByEmail both return u exactly.
func (c *userChecker) wantUser(u auth.User) {
	c.t.Helper()
	got, err := c.st.User(c.t.Context(), u.Tenant, u.ID)
	if err != nil {
		c.t.Errorf("User(%q, %q): %v", u.Tenant, u.ID, err)
	} else if d := diffUser(got, u); d != "" {
		c.t.Errorf("User(%q, %q) returned %s", u.Tenant, u.ID, d)
	}
	got, err = c.st.UserByEmail(c.t.Context(), u.Tenant, u.Email)
	if err != nil {
		c.t.Errorf("UserByEmail(%q, %q): %v", u.Tenant, u.Email, err)
	} else if d := diffUser(got, u); d != "" {
		c.t.Errorf("UserByEmail(%q, %q) returned %s", u.Tenant, u.Email, d)
	}
}

// wantNoID checks that User returns ErrNotFound.
func (c *userChecker) wantNoID(tenant, id string) {
	c.t.Helper()
	if u, err := c.st.User(c.t.Context(), tenant, id); !errors.Is(err, auth.ErrNotFound) {
		c.t.Errorf("User(%q, %q) = %s, %v; want ErrNotFound", tenant, id, ref(u), err)
	}
}

// wantNoEmail checks that UserByEmail returns ErrNotFound.
func (c *userChecker) wantNoEmail(tenant, email string) {
	c.t.Helper()
	if u, err := c.st.UserByEmail(c.t.Context(), tenant, email); !errors.Is(err, auth.ErrNotFound) {
		c.t.Errorf("UserByEmail(%q, %q) = %s, %v; want ErrNotFound", tenant, email, ref(u), err)
	}
}

// wantAll checks that tenant holds exactly want, in id order.
func (c *userChecker) wantAll(tenant string, want ...auth.User) {
	c.t.Helper()
	slices.SortFunc(want, func(a, b auth.User) int { return strings.Compare(a.ID, b.ID) })
	c.wantList(tenant, "", 1000, want)
}

// wantList checks one ListUsers call, order and every field included,
// and the ListUserSummaries call with the same arguments.
func (c *userChecker) wantList(tenant, after string, limit int, want []auth.User) {
	c.t.Helper()
	got, err := c.st.ListUsers(c.t.Context(), tenant, after, limit)
	if err != nil {
		c.t.Errorf("ListUsers(%q, %q, %d): %v", tenant, after, limit, err)
	} else {
		c.wantUsers(fmt.Sprintf("ListUsers(%q, %q, %d)", tenant, after, limit), got, want)
	}
	sums, err := c.st.ListUserSummaries(c.t.Context(), tenant, after, limit)
	if err != nil {
		c.t.Errorf("ListUserSummaries(%q, %q, %d): %v", tenant, after, limit, err)
		return
	}
	what := fmt.Sprintf("ListUserSummaries(%q, %q, %d)", tenant, after, limit)
	if len(sums) != len(want) {
		c.t.Errorf("%s = %d summaries, want %s", what, len(sums), refs(want))
		return
	}
	for i := range sums {
		if d := diffUser(summaryUser(sums[i]), summaryUser(want[i].Summary())); d != "" {
			c.t.Errorf("%s[%d]: %s", what, i, d)
		}
	}
}

// summaryUser is s as a user for diffUser, with a PasswordHash that
// stands for HasPassword.
func summaryUser(s auth.UserSummary) auth.User {
	u := auth.User{ID: s.ID, Email: s.Email, EmailUnverified: s.EmailUnverified, Name: s.Name, Status: s.Status,
		PasswordChangedAt: s.PasswordChangedAt, PasswordExpired: s.PasswordExpired, CreatedAt: s.CreatedAt, LastLoginAt: s.LastLoginAt,
		LastSSOAt: s.LastSSOAt, ReactivatedAt: s.ReactivatedAt}
	if s.HasPassword {
		u.PasswordHash = "(a password)"
	}
	return u
}

// wantUsers checks got against want, order and every field included.
func (c *userChecker) wantUsers(what string, got, want []auth.User) {
	c.t.Helper()
	if len(got) != len(want) {
		c.t.Errorf("%s = %s, want %s", what, refs(got), refs(want))
		return
	}
	for i := range got {
		if got[i].Tenant != want[i].Tenant || got[i].ID != want[i].ID {
			c.t.Errorf("%s = %s, want %s", what, refs(got), refs(want))
			return
		}
		if d := diffUser(got[i], want[i]); d != "" {
			c.t.Errorf("%s[%d]: %s", what, i, d)
		}
	}
}

// diffUser describes how got differs from want, or returns "". Times are
// compared with Equal; a nil and an empty PasswordHistory are equal.
func diffUser(got, want auth.User) string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s %v, want %v", field, g, w)) }
	for _, f := range []struct {
		name string
		g, w string
	}{
		{"ID", got.ID, want.ID},
		{"Tenant", got.Tenant, want.Tenant},
		{"Email", got.Email, want.Email},
		{"Name", got.Name, want.Name},
		{"Status", string(got.Status), string(want.Status)},
	} {
		if f.g != f.w {
			add(f.name, fmt.Sprintf("%q", f.g), fmt.Sprintf("%q", f.w))
		}
	}
	if got.PasswordHash != want.PasswordHash {
		add("PasswordHash", hashLabel(got.PasswordHash), hashLabel(want.PasswordHash))
	}
	if !slices.Equal(got.PasswordHistory, want.PasswordHistory) {
		add("PasswordHistory", hashLabels(got.PasswordHistory), hashLabels(want.PasswordHistory))
	}
	if got.PasswordExpired != want.PasswordExpired {
		add("PasswordExpired", got.PasswordExpired, want.PasswordExpired)
	}
	if got.EmailUnverified != want.EmailUnverified {
		add("EmailUnverified", got.EmailUnverified, want.EmailUnverified)
	}
	for _, f := range []struct {
		name string
		g, w time.Time
	}{
		{"PasswordChangedAt", got.PasswordChangedAt, want.PasswordChangedAt},
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"LastLoginAt", got.LastLoginAt, want.LastLoginAt},
		{"LastSSOAt", got.LastSSOAt, want.LastSSOAt},
		{"ReactivatedAt", got.ReactivatedAt, want.ReactivatedAt},
	} {
		if !f.g.Equal(f.w) {
			add(f.name, f.g, f.w)
		}
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprintf("user %s with %s", ref(got), strings.Join(d, "; "))
}

func hashLabels(hs []string) string {
	l := make([]string, len(hs))
	for i, h := range hs {
		l[i] = hashLabel(h)
	}
	return "[" + strings.Join(l, " ") + "]"
}

// ref names a user by tenant and id.
func ref(u auth.User) string {
	if u.ID == "" && u.Tenant == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q/%q", u.Tenant, u.ID)
}

func refs(us []auth.User) string {
	l := make([]string, len(us))
	for i, u := range us {
		l[i] = ref(u)
	}
	return "[" + strings.Join(l, " ") + "]"
}

// accountChanges are the changes of a user that a compare-and-set on the
// user as read (ResetPassword, ChangePassword, ChangeEmail) must notice:
// each makes it in the store and in u, the user as it must be afterwards.
var accountChanges = []struct {
	name   string
	change func(c *userChecker, u *auth.User)
}{
	{"Email", func(c *userChecker, u *auth.User) {
		c.setUnverified("t", u.ID, "moved-"+u.ID+"@example.com")
		u.Email, u.EmailUnverified = "moved-"+u.ID+"@example.com", true
	}},
	{"Password", func(c *userChecker, u *auth.User) {
		c.setPassword("t", u.ID, hashOf("other"), base, 3)
		u.PasswordHistory = append([]string{u.PasswordHash}, u.PasswordHistory...)
		u.PasswordHash, u.PasswordChangedAt = hashOf("other"), base
	}},
	{"Reset", func(c *userChecker, u *auth.User) {
		c.resetPassword(*u, hashOf("reset"), base, 3)
		u.PasswordHistory = append([]string{u.PasswordHash}, u.PasswordHistory...)
		u.PasswordHash, u.PasswordChangedAt, u.EmailUnverified = hashOf("reset"), base, false
	}},
	{"Rehash", func(c *userChecker, u *auth.User) {
		c.rehash("t", u.ID, u.PasswordHash, hashOf("rehashed"))
		u.PasswordHash = hashOf("rehashed")
	}},
	{"Status", func(c *userChecker, u *auth.User) {
		c.setStatus("t", u.ID, auth.StatusDeactivated)
		u.Status = auth.StatusDeactivated
	}},
	{"Expired", func(c *userChecker, u *auth.User) {
		c.expire("t", u.ID)
		u.PasswordExpired = true
	}},
	{"ExpiryCleared", func(c *userChecker, u *auth.User) {
		c.clearExpired("t", u.ID)
		u.PasswordExpired = false
	}},
	{"Reactivated", func(c *userChecker, u *auth.User) {
		// A deactivation and a reactivation: the status is again as
		// read, the reactivation time is not.
		c.setStatus("t", u.ID, auth.StatusDeactivated)
		c.setStatus("t", u.ID, auth.StatusActive)
		c.setReactivatedAt("t", u.ID, base.Add(3*time.Microsecond))
		u.ReactivatedAt = base.Add(3 * time.Microsecond)
	}},
}

// eachAccountChange creates a user for each of accountChanges, reads it,
// makes the change, calls try with the change's name and the user as
// read, and checks that the user is as the change left them.
func eachAccountChange(c *userChecker, try func(name string, read auth.User)) {
	for _, ch := range accountChanges {
		u := mkUser("t", strings.ToLower(ch.name))
		u.PasswordHistory = hashes("h1")
		u.EmailUnverified = true
		u.PasswordExpired = ch.name == "ExpiryCleared"
		c.create(u)
		read := c.get("t", u.ID)
		ch.change(c, &u)
		try(ch.name, read)
		c.wantUser(u)
	}
}
