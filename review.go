package guard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
)

// Access reviews: the periodic check, every Policy.ReviewEvery (14 days by
// default), of who has access to a tenant. AccessReview reports every user
// with their roles, status, last sign-in, MFA and SSO status, flags dormant
// accounts (no sign-in for Policy.DormantAfter, 30 days by default),
// addresses their users set without proving they receive mail there
// (User.EmailUnverified), excess admins and unused API keys, and says when the last review was done and
// when the next is due. ApplyReview applies the reviewer's decisions
// (deactivate, downgrade, revoke roles or keys) in one step, ending the
// sessions of every user it changes at once, and records the review as
// done (access_review.completed). DeactivateDormant is for a host's
// scheduled job when the tenant turned on Policy.AutoDeactivateDormant.
// ListUserAccess gives the same rows for one page of users, for a users
// list, at a cost that does not grow with the tenant.

// Bounds of the access review.
const (
	// MaxReviewDecisions bounds the decisions of one ApplyReview.
	MaxReviewDecisions = 1000
	// reviewBatch is the page size of the scans behind a review.
	reviewBatch = 1000
)

// ReviewFilter selects the user rows of an access review.
type ReviewFilter string

// The filters of an access review's rows (Review.Rows, Review.Count).
const (
	ReviewAll         ReviewFilter = ""            // every user
	ReviewDormant     ReviewFilter = "dormant"     // active users without a sign-in for Policy.DormantAfter
	ReviewAdmins      ReviewFilter = "admins"      // owners and holders of users:manage
	ReviewNoMFA       ReviewFilter = "no_mfa"      // active users with neither a second factor that satisfies the policy nor SSO
	ReviewDeactivated ReviewFilter = "deactivated" // deactivated users
	ReviewUnverified  ReviewFilter = "unverified"  // active users whose address is unverified (User.EmailUnverified)
)

// Valid reports whether f is one of the filters above.
func (f ReviewFilter) Valid() bool {
	switch f {
	case ReviewAll, ReviewDormant, ReviewAdmins, ReviewNoMFA, ReviewDeactivated, ReviewUnverified:
		return true
	}
	return false
}

// UserAccess is one user as an access review shows them.
type UserAccess struct {
	User
	// Roles are the user's roles, sorted (nil without RBAC).
	Roles []string
	// Owner: the user holds the owner role. Admin: the user can administer
	// the tenant (owner, or a role with users:manage; every user without
	// RBAC).
	Owner, Admin bool
	// MFA are the kinds of the user's confirmed second factors; MFAOK
	// reports whether they satisfy the tenant's "require MFA" policy
	// (see mfa.Satisfies).
	MFA   []mfa.Kind
	MFAOK bool
	// SSO reports whether the user is on single sign-on: the tenant has
	// an IdP connection, and the user signed in through it (LastSSOAt)
	// within Policy.DormantAfter, or has no password (as users provisioned
	// just in time) and signed in through it at least once. A user with a
	// password who has not signed in through the IdP for DormantAfter is
	// not on SSO, nor is a user invited without a password who never
	// signed in: nothing shows that either can. Only sign-ins through
	// the IdP in place count: none at or before Tenant.IdPChangedAt, when
	// the previous one was replaced or removed.
	SSO bool
	// LastActive is the user's last sign-in, or their creation if they
	// never signed in, or their last reactivation (User.ReactivatedAt)
	// if later: a user an administrator reactivated is not dormant
	// before DormantAfter has passed since.
	LastActive time.Time
	// Dormant: the user is active and LastActive is Policy.DormantAfter
	// ago or more.
	Dormant bool
}

// UnusedKey is an API key that an access review flags: usable (neither
// revoked nor expired) but never used, or not used for Policy.DormantAfter.
type UnusedKey struct {
	Key       auth.APIKey // without its hash
	NeverUsed bool
	Roles     []string
}

// ReviewTotals count a tenant's users for an access review.
type ReviewTotals struct {
	Users       int // every user
	Active      int
	Deactivated int
	Dormant     int // active and dormant
	WithMFA     int // a second factor that satisfies the policy
	WithSSO     int // on SSO (see UserAccess.SSO)
	Neither     int // neither MFA nor SSO
	Admins      int // owners and holders of users:manage (users only, deactivated ones too)
	NoRoles     int // active users without any role (with RBAC)
	Unverified  int // active users whose address is unverified (User.EmailUnverified)
}

// Review is an access review of a tenant at a point in time.
type Review struct {
	Tenant string
	At     time.Time
	// DormantAfter, Every and AutoDeactivateDormant are the tenant's
	// effective policy.
	DormantAfter          time.Duration
	Every                 time.Duration
	AutoDeactivateDormant bool

	Totals ReviewTotals
	// Users are every user of the tenant, ordered by ID. Rows pages and
	// filters them.
	Users []UserAccess
	// AdminWarning is set when the tenant has more owners and admins
	// (active users and usable API keys) than recommended
	// (Config.MaxAdmins); deactivated users and API keys revoked or
	// expired who hold those roles are in its Excluded.
	AdminWarning *rbac.AdminWarning
	// UnusedKeys lists the usable API keys that were never used or not
	// for DormantAfter, oldest first. KeysShown is false when the reviewer
	// may not read API keys (api-keys:read) or the backend keeps none: the
	// list is then empty.
	UnusedKeys []UnusedKey
	KeysShown  bool

	// LastReview is when a review was last recorded (zero if never), by
	// LastReviewer: a purge of the review's record keeps its time with
	// the tenant (Tenant.LastReview), so audit retention does not make a
	// review overdue, and LastReviewer is then zero. Due is when the
	// next review is due: LastReview (or the tenant's creation) plus
	// Every. Overdue reports that At is past Due.
	LastReview   time.Time
	LastReviewer audit.Actor
	Due          time.Time
	Overdue      bool
}

// AccessReview reports on a tenant's access at this moment (see Review):
// every user as a row, the totals and findings, and when the next review
// is due. The principal needs users:read; the unused API keys are shown
// when they also hold api-keys:read. Reading a review changes nothing and
// records nothing; ApplyReview records it as done.
//
// The whole tenant is read by three readers side by side: the users,
// 1,000 at a time and without their password material
// (auth.UserStore.ListUserSummaries), every user's second factors, and the
// role grants with the rest of the report; the rows are then joined in
// one pass in ID order. The cost grows with the number of users: 20 to 30
// ms for 10,000 users in SQLite on a 2-vCPU machine (see BENCHMARKS.md). A
// console shows one page of rows at a time (Review.Rows) and can keep a
// Review for a minute or so while the reviewer pages through it.
func (g *Guard) AccessReview(ctx context.Context, by Principal, tenant string) (Review, error) {
	if err := g.may(ctx, by, tenant, rbac.Users, rbac.Read); err != nil {
		return Review{}, err
	}
	t, err := g.policies.get(ctx, tenant)
	if err != nil {
		return Review{}, err
	}
	pol := t.Policy.withDefaults(g.defaults)
	now := g.now()
	rv := Review{Tenant: tenant, At: now, DormantAfter: pol.DormantAfter, Every: pol.ReviewEvery,
		AutoDeactivateDormant: pol.AutoDeactivateDormant}

	// The users, their second factors and their roles are read side by
	// side, and the rest of the report with the roles.
	var (
		warn *rbac.AdminWarning
		last *audit.Event
		keys bool
		ks   []auth.APIKey // the tenant's API keys, read when needed
	)
	ix, users, err := g.readTenant(ctx, tenant, pol, true, func(ctx context.Context) (err error) {
		if g.rbac != nil {
			if warn, err = g.rbac.AdminWarning(ctx, tenant); err != nil {
				return rbacErr("admin warning", err)
			}
		}
		if g.stores.APIKeys != nil {
			if keys, err = g.allowed(ctx, by, tenant, rbac.APIKeys, rbac.Read); err != nil {
				return err
			}
			// For the unused keys, and for the keys of the warning
			// (whether they can act).
			if keys || warnsOfKeys(warn) {
				if ks, err = g.stores.APIKeys.ListAPIKeys(ctx, tenant); err != nil {
					return unavailable("list api keys", err)
				}
			}
		}
		last, err = g.lastReview(ctx, tenant)
		return err
	})
	if err != nil {
		return Review{}, err
	}
	rv.Users = make([]UserAccess, 0, users.n)
	active := make(map[string]bool, users.n)
	for _, batch := range users.batches {
		for _, u := range batch {
			rv.Users = append(rv.Users, ix.row(u, now, pol.DormantAfter, ix.usesSSO(u, now)))
			rv.Totals.add(&rv.Users[len(rv.Users)-1], g.rbac != nil)
			active[u.ID] = u.Status == auth.StatusActive
		}
	}
	// Deactivated (or deleted) users holding admin roles are not counted,
	// nor API keys revoked, expired (or deleted).
	var usable map[string]bool
	if g.stores.APIKeys != nil {
		usable = usableKeys(ks, now)
	}
	rv.AdminWarning = warn.Excluding(func(s rbac.Subject) bool {
		return s.Kind == rbac.KindUser && !active[s.ID] || s.Kind == rbac.KindKey && usable != nil && !usable[s.ID]
	})
	if keys {
		rv.KeysShown = true
		rv.UnusedKeys = unusedKeys(ks, now, pol.DormantAfter, ix)
	}
	// The newest review on record, or, once retention purged it, its time
	// as PurgeAudit kept it with the tenant (the reviewer is then unknown).
	rv.LastReview = t.LastReview
	if last != nil && !last.Time.Before(rv.LastReview) {
		rv.LastReview, rv.LastReviewer = last.Time, last.Actor
	}
	rv.Due = t.CreatedAt.Add(pol.ReviewEvery)
	if !rv.LastReview.IsZero() {
		rv.Due = rv.LastReview.Add(pol.ReviewEvery)
	}
	rv.Overdue = !now.Before(rv.Due)
	return rv, nil
}

// Rows returns at most limit (at least 1) rows of the review that match
// f, of users whose ID sorts after after ("" starts at the beginning), and
// the cursor of the next page ("" when there is none).
func (rv *Review) Rows(f ReviewFilter, after string, limit int) ([]UserAccess, string) {
	limit = max(limit, 1)
	i, _ := slices.BinarySearchFunc(rv.Users, after, func(u UserAccess, id string) int { return strings.Compare(u.ID, id) })
	if i < len(rv.Users) && rv.Users[i].ID == after {
		i++
	}
	var out []UserAccess
	for ; i < len(rv.Users); i++ {
		if !rv.Users[i].matches(f) {
			continue
		}
		if len(out) == limit {
			return out, out[limit-1].ID
		}
		out = append(out, rv.Users[i])
	}
	return out, ""
}

// Count returns the number of rows of the review that match f.
func (rv *Review) Count(f ReviewFilter) int {
	n := 0
	for i := range rv.Users {
		if rv.Users[i].matches(f) {
			n++
		}
	}
	return n
}

// ListUserAccess returns at most limit (1 to 1000) users of a tenant
// ordered by ID after the ID given in after, each with their roles, MFA and
// SSO status and whether they are dormant: the rows of a users page. The
// principal needs users:read. It reads one page of users and of second
// factors (more of factors only when those of deleted users are left
// among them), so it costs the same whatever the size of the tenant. An
// after no user ID can be (invalid UTF-8, a NUL byte, longer than
// auth.MaxIDBytes) is an *InputError.
func (g *Guard) ListUserAccess(ctx context.Context, by Principal, tenant, after string, limit int) ([]UserAccess, error) {
	if err := g.may(ctx, by, tenant, rbac.Users, rbac.Read); err != nil {
		return nil, err
	}
	if err := checkCursor("after", after); err != nil {
		return nil, err
	}
	pol, err := g.EffectivePolicy(ctx, tenant)
	if err != nil {
		return nil, err
	}
	limit = min(max(limit, 1), 1000)
	us, err := g.stores.Users.ListUserSummaries(ctx, tenant, after, limit)
	if err != nil {
		return nil, unavailable("list users", err)
	}
	ix := newAccessIndex(tenant, pol, g.rbac == nil)
	if err := g.loadIdP(ctx, ix); err != nil {
		return nil, err
	}
	if g.mfa != nil && len(us) > 0 {
		// The users with a factor among the first limit users after after
		// are among the first limit such users after after, as long as
		// every user with a factor exists. The factors of a user whose
		// deletion failed part way are left behind (see DeleteUser) and
		// take places in a page: read on until the page reaches the last
		// user listed.
		last, from := us[len(us)-1].ID, after
		for {
			es, err := g.mfa.Enrolments(ctx, tenant, from, limit)
			if err != nil {
				return nil, mfaErr("enrolments", err)
			}
			ix.mfa.addAll(es)
			if len(es) < limit || es[len(es)-1].UserID >= last {
				break
			}
			from = es[len(es)-1].UserID
		}
	}
	if g.rbac != nil {
		if err := ix.loadManages(ctx, g.rbac, tenant); err != nil {
			return nil, err
		}
		as := make([]rbac.Assignment, 0, len(us))
		for _, u := range us {
			rs, err := g.rbac.RolesOf(ctx, tenant, rbac.User(u.ID))
			var ie *rbac.InputError
			switch {
			case errors.As(err, &ie): // an ID no role can be granted to
			case err != nil:
				return nil, rbacErr("roles", err)
			}
			as = append(as, rbac.Assignment{Subject: rbac.User(u.ID), Roles: rs})
		}
		ix.roles.addAll(as)
	}
	now := g.now()
	out := make([]UserAccess, len(us))
	for i, u := range us {
		out[i] = ix.row(u, now, pol.DormantAfter, ix.usesSSO(u, now))
	}
	return out, nil
}

// accessIndex holds what the rows of a review need beyond the users
// themselves: second factors and role grants.
type accessIndex struct {
	tenant     string
	idp        bool      // the tenant has a single sign-on connection
	idpSince   time.Time // the tenant's IdPChangedAt (see usesSSO)
	allowEmail bool
	noRBAC     bool
	mfa        idList[mfa.Enrolment]   // by user ID
	roles      idList[rbac.Assignment] // of users, by user ID
	keyRoles   idList[rbac.Assignment] // of API keys, by key ID
	manages    map[string]bool         // role → grants users:manage

	dormantAfter time.Duration // the tenant's Policy.DormantAfter (see usesSSO)
}

func newAccessIndex(tenant string, pol Policy, noRBAC bool) *accessIndex {
	userID := func(a *rbac.Assignment) string { return a.Subject.ID }
	return &accessIndex{tenant: tenant, dormantAfter: pol.DormantAfter, allowEmail: pol.MFAAllowEmail, noRBAC: noRBAC,
		mfa:   idList[mfa.Enrolment]{id: func(e *mfa.Enrolment) string { return e.UserID }},
		roles: idList[rbac.Assignment]{id: userID}, keyRoles: idList[rbac.Assignment]{id: userID}}
}

// loadIdP sets ix.idp, whether ix's tenant has an IdP connection, and
// ix.idpSince, when its IdP was last replaced or removed
// (Tenant.IdPChangedAt, as cached: up to Config.PolicyCacheTTL old on a
// Guard other than the one that made the change).
func (g *Guard) loadIdP(ctx context.Context, ix *accessIndex) error {
	t, err := g.policies.get(ctx, ix.tenant)
	if err != nil {
		return err
	}
	if ix.idp, err = g.hasIdP(ctx, ix.tenant); err != nil {
		return err
	}
	ix.idpSince = t.IdPChangedAt
	return nil
}

// tenantUsers are every user of a tenant, in ID order, in the batches
// they were read in.
type tenantUsers struct {
	batches [][]auth.UserSummary
	n       int
}

// readTenant reads every user of tenant, every user's second factors and,
// with roles, the role grants, side by side (the time goes to the stores'
// reads, and the machine may have a core for each), and runs also, if not
// nil, after the role grants. The first failure is the error; the others'
// context is then cancelled.
func (g *Guard) readTenant(ctx context.Context, tenant string, pol Policy, roles bool, also func(context.Context) error) (*accessIndex, tenantUsers, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	fail := func(err error) {
		if err == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
			cancel()
		}
	}
	// Each goroutine writes its own fields of ix.
	ix := newAccessIndex(tenant, pol, g.rbac == nil)
	wg.Go(func() { fail(ix.loadMFA(ctx, g.mfa, tenant)) })
	wg.Go(func() {
		if err := g.loadIdP(ctx, ix); err != nil {
			fail(err)
			return
		}
		if roles && g.rbac != nil {
			if err := ix.loadRoles(ctx, g.rbac, tenant); err != nil {
				fail(err)
				return
			}
		}
		if also != nil {
			fail(also(ctx))
		}
	})
	var users tenantUsers
	fail(g.scanUsers(ctx, tenant, func(batch []auth.UserSummary) {
		users.batches = append(users.batches, batch)
		users.n += len(batch)
	}))
	wg.Wait()
	if first != nil {
		return nil, tenantUsers{}, first
	}
	return ix, users, nil
}

// loadMFA reads the confirmed second factors of every user of tenant
// (none without MFA).
func (ix *accessIndex) loadMFA(ctx context.Context, m *mfa.Manager, tenant string) error {
	if m == nil {
		return nil
	}
	after := ""
	for {
		es, err := m.Enrolments(ctx, tenant, after, mfa.MaxEnrolmentsPage)
		if err != nil {
			return mfaErr("enrolments", err)
		}
		ix.mfa.addAll(es)
		if len(es) < mfa.MaxEnrolmentsPage {
			return nil
		}
		after = es[len(es)-1].UserID
	}
}

// loadManages reads which of the tenant's roles administer it.
func (ix *accessIndex) loadManages(ctx context.Context, e *rbac.Enforcer, tenant string) error {
	roles, err := e.Roles(ctx, tenant)
	if err != nil {
		return rbacErr("roles", err)
	}
	ix.manages = make(map[string]bool, len(roles))
	for _, r := range roles {
		ix.manages[r.Name] = slices.Contains(r.Permissions, rbac.P(rbac.Users, rbac.Manage))
	}
	return nil
}

// loadRoles reads the tenant's role grants and which roles administer it.
func (ix *accessIndex) loadRoles(ctx context.Context, e *rbac.Enforcer, tenant string) error {
	if err := ix.loadManages(ctx, e, tenant); err != nil {
		return err
	}
	as, err := e.Assignments(ctx, tenant)
	if err != nil {
		return rbacErr("roles", err)
	}
	// API keys ("key:…") come before users ("user:…").
	keys := 0
	for keys < len(as) && as[keys].Subject.Kind == rbac.KindKey {
		keys++
	}
	if slices.ContainsFunc(as[keys:], func(a rbac.Assignment) bool { return a.Subject.Kind != rbac.KindUser }) {
		var ks, us []rbac.Assignment
		for _, a := range as {
			switch a.Subject.Kind {
			case rbac.KindUser:
				us = append(us, a)
			case rbac.KindKey:
				ks = append(ks, a)
			}
		}
		as, keys = append(ks, us...), len(ks)
	}
	ix.keyRoles.addAll(as[:keys:keys])
	ix.roles.addAll(as[keys:])
	return nil
}

// row builds the review row of u at now.
func (ix *accessIndex) row(u auth.UserSummary, now time.Time, dormantAfter time.Duration, sso bool) UserAccess {
	ua := UserAccess{User: summaryView(ix.tenant, u), SSO: sso, LastActive: u.LastLoginAt}
	if ua.LastActive.IsZero() {
		ua.LastActive = u.CreatedAt
	}
	if u.ReactivatedAt.After(ua.LastActive) {
		ua.LastActive = u.ReactivatedAt
	}
	ua.Dormant = u.Status == auth.StatusActive && now.Sub(ua.LastActive) >= dormantAfter
	if kinds := ix.mfa.get(u.ID).Kinds; len(kinds) > 0 {
		ua.MFA = kinds
		ua.MFAOK = mfa.Satisfies(kinds, ix.allowEmail)
	}
	if ix.noRBAC {
		ua.Admin = true
		return ua
	}
	ua.Roles = ix.roles.get(u.ID).Roles
	for _, r := range ua.Roles {
		if r == rbac.Owner {
			ua.Owner = true
		}
		if ix.manages[r] {
			ua.Admin = true
		}
	}
	return ua
}

func (ua *UserAccess) matches(f ReviewFilter) bool {
	active := ua.Status == auth.StatusActive
	switch f {
	case ReviewDormant:
		return ua.Dormant
	case ReviewAdmins:
		return ua.Admin
	case ReviewNoMFA:
		return active && !ua.MFAOK && !ua.SSO
	case ReviewDeactivated:
		return !active
	case ReviewUnverified:
		return active && ua.EmailUnverified
	}
	return true
}

func (t *ReviewTotals) add(ua *UserAccess, withRoles bool) {
	t.Users++
	if ua.Status == auth.StatusActive {
		t.Active++
		if withRoles && len(ua.Roles) == 0 {
			t.NoRoles++
		}
		if ua.EmailUnverified {
			t.Unverified++
		}
	} else {
		t.Deactivated++
	}
	if ua.Dormant {
		t.Dormant++
	}
	switch {
	case ua.MFAOK:
		t.WithMFA++
	case ua.SSO:
	default:
		t.Neither++
	}
	if ua.SSO {
		t.WithSSO++
	}
	if ua.Admin {
		t.Admins++
	}
}

// scanUsers calls f with every user of tenant, in ID order, batch by
// batch.
func (g *Guard) scanUsers(ctx context.Context, tenant string, f func([]auth.UserSummary)) error {
	after := ""
	for {
		us, err := g.stores.Users.ListUserSummaries(ctx, tenant, after, reviewBatch)
		if err != nil {
			return unavailable("list users", err)
		}
		f(us)
		if len(us) < reviewBatch {
			return nil
		}
		after = us[len(us)-1].ID
	}
}

// summaryView is the User of a summary.
func summaryView(tenant string, u auth.UserSummary) User {
	return User{ID: u.ID, Tenant: tenant, Email: u.Email, EmailUnverified: u.EmailUnverified, Name: u.Name, Status: u.Status, HasPassword: u.HasPassword,
		PasswordChangedAt: u.PasswordChangedAt, PasswordExpired: u.PasswordExpired, CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt,
		LastSSOAt: u.LastSSOAt, ReactivatedAt: u.ReactivatedAt}
}

// warnsOfKeys reports whether w counts an API key among the owners and
// admins.
func warnsOfKeys(w *rbac.AdminWarning) bool {
	if w == nil {
		return false
	}
	return slices.ContainsFunc(slices.Concat(w.Owners, w.Admins), func(s rbac.Subject) bool { return s.Kind == rbac.KindKey })
}

// usableKeys returns, by ID, the keys of ks usable at now (neither revoked
// nor expired): the API keys that can act. It is never nil.
func usableKeys(ks []auth.APIKey, now time.Time) map[string]bool {
	out := make(map[string]bool, len(ks))
	for _, k := range ks {
		if k.UsableAt(now) {
			out[k.ID] = true
		}
	}
	return out
}

// unusedKeys lists the usable API keys of ks, a tenant's keys, that were
// never used or not for dormantAfter.
func unusedKeys(ks []auth.APIKey, now time.Time, dormantAfter time.Duration, ix *accessIndex) []UnusedKey {
	var out []UnusedKey
	for _, k := range ks {
		if !k.UsableAt(now) {
			continue
		}
		never := k.LastUsedAt.IsZero()
		if !never && now.Sub(k.LastUsedAt) < dormantAfter {
			continue
		}
		k.Hash = [32]byte{}
		out = append(out, UnusedKey{Key: k, NeverUsed: never, Roles: ix.keyRoles.get(k.ID).Roles})
	}
	return out
}

// lastReview returns the tenant's newest access_review.completed event,
// or nil.
func (g *Guard) lastReview(ctx context.Context, tenant string) (*audit.Event, error) {
	p, err := g.audit.Query(ctx, tenant, audit.Query{Action: string(audit.ReviewCompleted), Outcome: audit.Success, Desc: true, Limit: 1})
	if err != nil {
		return nil, auditErr(err)
	}
	if len(p.Events) == 0 {
		return nil, nil
	}
	return &p.Events[0], nil
}

// allowed reports whether by may take action on section in tenant,
// without recording a denial: for parts of a page that are shown only to
// those who may see them. Store failures are errors.
func (g *Guard) allowed(ctx context.Context, by Principal, tenant string, s rbac.Section, a rbac.Action) (bool, error) {
	switch by.Kind {
	case KindSystem:
		return true, nil
	case KindUser, KindAPIKey:
	default:
		return false, nil
	}
	if by.Tenant != tenant {
		return false, nil
	}
	if g.rbac == nil {
		return by.Kind == KindUser, nil
	}
	d, err := g.decide(ctx, by, tenant, s, a)
	if err != nil {
		var ie *rbac.InputError
		if errors.As(err, &ie) {
			return false, nil
		}
		return false, unavailable("access decision", err)
	}
	return d.Allowed, nil
}

// Decision is one reviewer's decision of an access review: about a user
// (UserID) or an API key (KeyID), never both.
type Decision struct {
	// UserID names the user decided on.
	UserID string
	// Deactivate deactivates the user: every session ends and every API
	// key they created is revoked at once (as DeactivateUser does).
	Deactivate bool
	// DowngradeTo replaces every role of the user by this one role (for
	// example admin → reports-only).
	DowngradeTo string
	// RevokeRoles takes these roles from the user, who must hold them.
	RevokeRoles []string
	// KeyID names an API key to revoke; the fields above must then be
	// empty.
	KeyID string
}

// ReviewResult says what ApplyReview did.
type ReviewResult struct {
	// Deactivated counts the users the review deactivated. A Deactivate
	// decision about a user already deactivated when the review was
	// checked is not counted: it finishes their deactivation as
	// DeactivateUser does (ending sessions and revoking keys left, counted
	// in SessionsEnded and KeysRevoked, and recorded as user.deactivated
	// as DeactivateUser records it). Nor is one about a user deactivated
	// by another caller between the check and the write (the same review
	// submitted twice): it finishes the deactivation too, and records no
	// user.deactivated, the other caller's being on record.
	Deactivated  int
	RolesChanged int // users whose roles changed (downgraded or roles revoked)
	// KeysRevoked counts the API keys the review revoked: by key
	// decisions, and with the users deactivated (the keys they created).
	// A key decided on that was already revoked when the review was
	// checked, or that the deactivation of its creator earlier in the
	// review revoked, is not revoked, counted nor recorded again.
	KeysRevoked   int
	SessionsEnded int
	// Recorded is the access_review.completed event.
	Recorded audit.Event
}

// ApplyReview applies the decisions of an access review of a tenant and
// records the review as done (access_review.completed, with the number of
// users, dormant users and decisions): the next review is then due
// Policy.ReviewEvery later. Deciding nothing still records the review.
// The record gives the schedule (see Review.LastReview); before
// retention purges it, PurgeAudit keeps its time with the tenant.
//
// Every decision is checked before any is applied: a malformed one, an
// unknown user, role or key, a role the user does not hold, a decision
// about the reviewer's own account (ErrForbidden, recorded as
// access.denied with reason own_account), a downgrade to a role the
// reviewer could not grant or the removal of one (ErrForbidden, recorded
// as GrantRole and RevokeRole record it: a failed role.granted or
// role.revoked with reason escalation), the deactivation of a user holding
// a role the reviewer could not grant (ErrForbidden, recorded as a failed
// user.deactivated with reason escalation: see "Acting on a more
// privileged user"), the revocation of an API key holding such a role,
// unless the reviewer created it (ErrForbidden, recorded as RevokeAPIKey
// records it: a failed apikey.revoked with reason escalation), decisions
// that would
// leave the tenant without an active owner (rbac.ErrLastOwner, recorded
// as DeactivateUser and RevokeRole record it: each decision taking an
// active owner away as a failed user.deactivated or role.revoked with
// reason last_owner), or one
// that would deactivate the break-glass owner of a tenant that requires
// SSO, or take the owner role from them (ErrBreakGlassUser, recorded as a
// failed user.deactivated or role.revoked with reason break_glass_user),
// change nothing. Then each decision is applied in order, those that make a user
// an owner first (so that a review can hand the role over): a
// deactivation ends the user's sessions and revokes the API keys they
// created at once, and any change of the user's roles ends the user's
// sessions too, so a downgraded user signs in again with their new roles.
// Each change is audited as it happens (user.deactivated, role.granted,
// role.revoked, session.revoked, apikey.revoked). Should a store fail
// midway, the decisions applied so far stay applied, the result counts
// them, the error is returned, and the review is not recorded as done; a
// deactivation stopped part way is left as DeactivateUser leaves one (the
// user deactivated, and Maintain ends the sessions and revokes the keys
// left at its next run).
//
// The active owners are counted again as each deactivation, or removal of
// the owner role, is applied, so that reviews (or DeactivateUser calls)
// running at once cannot together take away every active owner, each
// having checked before the others applied theirs: a decision after which
// no active owner is left is undone, recorded as failed (user.deactivated
// or role.revoked, reason last_owner), and ends the review with
// rbac.ErrLastOwner, as a store failure would. Likewise, each deactivation
// checks again, once written, that the reviewer outranks the user: a role
// the reviewer could not grant, given to the user since the review was
// checked, undoes it (or a failure to read the roles then: ErrUnavailable),
// records it as a failed user.deactivated (reason escalation, Meta role)
// and ends the review with ErrForbidden. The status is written only if
// the user is active, and an undo sets active again only a status the
// review changed: a user another administrator deactivated since the
// check stays deactivated, and one reactivated since is set active again.
//
// The reviewer needs users:manage, and api-keys:manage for key decisions.
// Unlike GrantRole and RevokeRole, ApplyReview needs no recent
// authentication (no ErrStepUpRequired) to take access away: its role
// changes are checked as theirs are in every other way. DowngradeTo is
// not held to a lesser role: one the user does not hold is granted,
// within what the reviewer may grant, and if it gives a permission that
// none of the user's roles gave (a promotion, not a downgrade) a reviewer
// who is a user must have authenticated recently, as for GrantRole
// (ErrStepUpRequired, checked before any decision is applied).
func (g *Guard) ApplyReview(ctx context.Context, by Principal, tenant string, ds []Decision) (ReviewResult, error) {
	if err := g.may(ctx, by, tenant, rbac.Users, rbac.Manage); err != nil {
		return ReviewResult{}, err
	}
	pol, err := g.EffectivePolicy(ctx, tenant)
	if err != nil {
		return ReviewResult{}, err
	}
	plan, err := g.planReview(ctx, by, tenant, ds)
	if err != nil {
		return ReviewResult{}, err
	}
	// The decisions that make a user an owner come first, so that a review
	// can hand the owner role over: the active owners counted again after
	// the deactivation of the previous owner then include the new one.
	ownerFirst := func(p plannedDecision) int {
		if p.grant == rbac.Owner {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(plan, func(a, b plannedDecision) int { return cmp.Compare(ownerFirst(a), ownerFirst(b)) })
	var res ReviewResult
	deactivated := map[string]bool{} // the users deactivated so far
	for _, p := range plan {
		if err := g.applyDecision(ctx, by, tenant, p, &res, deactivated); err != nil {
			return res, fmt.Errorf("guard: access review decision %d: %w", p.i, err)
		}
	}
	ix, users, err := g.readTenant(ctx, tenant, pol, true, nil)
	if err != nil {
		return res, err
	}
	var tot ReviewTotals
	now := g.now()
	for _, batch := range users.batches {
		for _, u := range batch {
			ua := ix.row(u, now, pol.DormantAfter, ix.usesSSO(u, now))
			tot.add(&ua, g.rbac != nil)
		}
	}
	e := g.adminEvent(by, tenant, audit.ReviewCompleted, tenant)
	e.Meta = map[string]string{
		"users": strconv.Itoa(tot.Users), "dormant": strconv.Itoa(tot.Dormant), "decisions": strconv.Itoa(len(ds)),
		"deactivated": strconv.Itoa(res.Deactivated), "roles_changed": strconv.Itoa(res.RolesChanged),
		"keys_revoked": strconv.Itoa(res.KeysRevoked), "sessions_ended": strconv.Itoa(res.SessionsEnded),
	}
	evs, err := g.audit.RecordAll(ctx, e)
	if err != nil {
		return res, unavailable("audit", err)
	}
	res.Recorded = evs[0]
	return res, nil
}

// plannedDecision is a checked decision with what applying it takes.
type plannedDecision struct {
	i      int // the decision's index in the review
	d      Decision
	grant  string      // role to grant first ("" for none)
	revoke []string    // roles to take away
	status auth.Status // the user's status when checked
	perms  rbac.Perms  // the reviewer's permissions it was checked with
	// key is the decided API key as planned: one already revoked then is
	// not revoked again, nor one whose creator (CreatedBy) the review
	// deactivated before.
	key auth.APIKey
}

// planReview checks every decision against the tenant's current state and
// returns what applying them takes, or the first problem.
func (g *Guard) planReview(ctx context.Context, by Principal, tenant string, ds []Decision) ([]plannedDecision, error) {
	if len(ds) > MaxReviewDecisions {
		return nil, &InputError{Field: "decisions", Reason: "too many"}
	}
	var (
		plan     = make([]plannedDecision, 0, len(ds))
		seen     = map[string]bool{}
		roleInfo map[string]rbac.RoleInfo
		defined  []rbac.RoleInfo
		perms    rbac.Perms
		keys     map[string]auth.APIKey
		owners   = map[string]bool{} // decided user → an active owner after the decisions
		// breakGlass is the break-glass owner while SSO is required,
		// read at the first decision that could take it away.
		breakGlass *string
	)
	// The roles are needed to change them, and to check that the
	// reviewer outranks a user they deactivate (see outranks) or a key
	// they revoke (outranksKey).
	needRoles := false
	for _, d := range ds {
		if d.DowngradeTo != "" || len(d.RevokeRoles) > 0 || (d.Deactivate || d.KeyID != "") && g.rbac != nil {
			needRoles = true
		}
	}
	if needRoles {
		if err := g.needRBAC(); err != nil {
			return nil, err
		}
		rs, err := g.rbac.Roles(ctx, tenant)
		if err != nil {
			return nil, rbacErr("roles", err)
		}
		defined = rs
		roleInfo = make(map[string]rbac.RoleInfo, len(rs))
		for _, r := range rs {
			roleInfo[r.Name] = r
		}
		if perms, err = g.permsOf(ctx, by, tenant); err != nil {
			return nil, err
		}
	}
	for i, d := range ds {
		field := "decisions[" + strconv.Itoa(i) + "]"
		if d.KeyID != "" {
			if d.UserID != "" || d.Deactivate || d.DowngradeTo != "" || len(d.RevokeRoles) > 0 {
				return nil, &InputError{Field: field, Reason: "names both an API key and a user decision"}
			}
			if seen["key:"+d.KeyID] {
				return nil, &InputError{Field: field, Reason: "decides on the same key twice"}
			}
			seen["key:"+d.KeyID] = true
			if keys == nil {
				if err := g.may(ctx, by, tenant, rbac.APIKeys, rbac.Manage); err != nil {
					return nil, err
				}
				if g.stores.APIKeys == nil {
					return nil, ErrAPIKeysNotConfigured
				}
				ks, err := g.stores.APIKeys.ListAPIKeys(ctx, tenant)
				if err != nil {
					return nil, unavailable("list api keys", err)
				}
				keys = make(map[string]auth.APIKey, len(ks))
				for _, k := range ks {
					keys[k.ID] = k
				}
			}
			k, ok := keys[d.KeyID]
			if !ok {
				return nil, ErrNotFound
			}
			if needRoles && k.RevokedAt.IsZero() {
				if err := g.outranksKey(ctx, by, perms, tenant, k.ID); err != nil {
					return nil, err
				}
			}
			plan = append(plan, plannedDecision{i: i, d: d, key: k})
			continue
		}
		switch {
		case d.UserID == "":
			return nil, &InputError{Field: field, Reason: "names no user or key"}
		case !d.Deactivate && d.DowngradeTo == "" && len(d.RevokeRoles) == 0:
			return nil, &InputError{Field: field, Reason: "decides nothing"}
		case seen["user:"+d.UserID]:
			return nil, &InputError{Field: field, Reason: "decides on the same user twice"}
		case by.Kind == KindUser && by.UserID == d.UserID:
			return nil, g.refused(ctx, by, rbac.Users, rbac.Manage, reasonOwnAccount)
		case len(d.UserID) > auth.MaxIDBytes:
			return nil, ErrUserNotFound
		}
		seen["user:"+d.UserID] = true
		u, err := g.stores.Users.User(ctx, tenant, d.UserID)
		if err != nil {
			return nil, g.userErr("load user", err)
		}
		p := plannedDecision{i: i, d: d, status: u.Status, perms: perms}
		var held []string
		if needRoles {
			var ie *rbac.InputError
			held, err = g.rbac.RolesOf(ctx, tenant, rbac.User(d.UserID))
			switch {
			case errors.As(err, &ie) && d.DowngradeTo == "" && len(d.RevokeRoles) == 0:
				// A deactivation of an ID no role can be granted to.
			case err != nil:
				return nil, rbacErr("roles", err)
			}
		}
		if d.DowngradeTo != "" {
			r, ok := roleInfo[d.DowngradeTo]
			if !ok {
				return nil, &InputError{Field: field, Reason: "downgrades to an unknown role"}
			}
			if !holdsAll(perms, r) {
				return nil, g.escalation(ctx, by, tenant, audit.RoleGranted, rbac.User(d.UserID).String(), d.DowngradeTo)
			}
			if !slices.Contains(held, d.DowngradeTo) {
				p.grant = d.DowngradeTo
				// A "downgrade" that gives a permission none of the held
				// roles gives is a promotion: as GrantRole, it needs a
				// user's recent authentication.
				if !coveredBy(r, held, roleInfo) {
					if err := g.requireRecentAuthOrKey(ctx, by); err != nil {
						return nil, err
					}
				}
			}
			for _, h := range held {
				if h != d.DowngradeTo {
					p.revoke = append(p.revoke, h)
				}
			}
		}
		for _, r := range d.RevokeRoles {
			if !slices.Contains(held, r) {
				return nil, &InputError{Field: field, Reason: "revokes a role the user does not hold"}
			}
			if r == d.DowngradeTo {
				return nil, &InputError{Field: field, Reason: "revokes the role it downgrades to"}
			}
			if !slices.Contains(p.revoke, r) {
				p.revoke = append(p.revoke, r)
			}
		}
		for _, r := range p.revoke {
			if info, ok := roleInfo[r]; ok && !holdsAll(perms, info) {
				return nil, g.escalation(ctx, by, tenant, audit.RoleRevoked, rbac.User(d.UserID).String(), r)
			}
		}
		// Only a reviewer who outranks the user deactivates them, as for
		// DeactivateUser.
		if role, ok := beyond(perms, held, defined); ok && d.Deactivate && by.Kind != KindSystem {
			return nil, g.escalation(ctx, by, tenant, audit.UserDeactivated, d.UserID, role)
		}
		if d.Deactivate || slices.Contains(p.revoke, rbac.Owner) {
			if breakGlass == nil {
				bg, err := g.breakGlassUser(ctx, tenant)
				if err != nil {
					return nil, err
				}
				breakGlass = &bg
			}
			if *breakGlass != "" && *breakGlass == d.UserID {
				// Refused and recorded as DeactivateUser and RevokeRole do.
				if d.Deactivate {
					return nil, g.refuseBreakGlass(ctx, by, tenant, audit.UserDeactivated, d.UserID)
				}
				return nil, g.refuseBreakGlass(ctx, by, tenant, audit.RoleRevoked, rbac.User(d.UserID).String())
			}
		}
		keepsOwner := slices.Contains(held, rbac.Owner) && !slices.Contains(p.revoke, rbac.Owner) || p.grant == rbac.Owner
		owners[u.ID] = u.Status == auth.StatusActive && !d.Deactivate && keepsOwner
		plan = append(plan, p)
	}
	if err := g.checkOwnersLeft(ctx, by, tenant, plan, owners); err != nil {
		return nil, err
	}
	return plan, nil
}

// checkOwnersLeft refuses decisions that would leave a tenant that has an
// active owner without one: owners lists the decided users who stay active
// owners. The refusal (rbac.ErrLastOwner) is recorded as DeactivateUser
// and RevokeRole record it: each decision taking an active owner away, as
// a failed user.deactivated (Meta reason access_review) or role.revoked
// (Target the subject, Meta role) with reason last_owner.
func (g *Guard) checkOwnersLeft(ctx context.Context, by Principal, tenant string, plan []plannedDecision, owners map[string]bool) error {
	if g.rbac == nil {
		return nil
	}
	removes := false
	for _, p := range plan {
		if p.d.UserID != "" && (p.d.Deactivate || slices.Contains(p.revoke, rbac.Owner)) {
			removes = true
		}
	}
	if !removes {
		return nil
	}
	for _, ok := range owners {
		if ok {
			return nil
		}
	}
	decided := map[string]bool{}
	for _, p := range plan {
		decided[p.d.UserID] = true
	}
	as, err := g.rbac.Assignments(ctx, tenant)
	if err != nil {
		return rbacErr("roles", err)
	}
	var taken []string // the decided active owners
	for _, a := range as {
		if a.Subject.Kind != rbac.KindUser || !slices.Contains(a.Roles, rbac.Owner) {
			continue
		}
		u, err := g.stores.Users.User(ctx, tenant, a.Subject.ID)
		if errors.Is(err, auth.ErrNotFound) {
			continue
		}
		if err != nil {
			return unavailable("load user", err)
		}
		if u.Status != auth.StatusActive {
			continue
		}
		if !decided[u.ID] {
			return nil // an active owner nobody decided on
		}
		taken = append(taken, u.ID)
	}
	if len(taken) == 0 {
		return nil
	}
	var evs []audit.Event
	for _, p := range plan {
		if p.d.UserID == "" || !slices.Contains(taken, p.d.UserID) || !p.d.Deactivate && !slices.Contains(p.revoke, rbac.Owner) {
			continue
		}
		e := g.adminEvent(by, tenant, audit.RoleRevoked, rbac.User(p.d.UserID).String())
		e.Meta = map[string]string{"role": rbac.Owner}
		if p.d.Deactivate {
			e = g.adminEvent(by, tenant, audit.UserDeactivated, p.d.UserID)
			e.Meta = map[string]string{"reason": "access_review"}
		}
		e.Outcome, e.Reason = audit.Failure, "last_owner"
		evs = append(evs, e)
	}
	if len(evs) > 0 {
		if err := g.record(ctx, evs...); err != nil {
			return err
		}
	}
	return rbac.ErrLastOwner
}

// applyDecision carries out one checked decision; deactivated holds the
// users the review deactivated before (and gets the one p deactivates).
// A key already revoked when planned, or by the deactivation of its
// creator earlier in the review (which revoked, counted and recorded it),
// is left alone: neither revoked, counted nor recorded again.
func (g *Guard) applyDecision(ctx context.Context, by Principal, tenant string, p plannedDecision, res *ReviewResult,
	deactivated map[string]bool) error {
	if p.d.KeyID != "" {
		if !p.key.RevokedAt.IsZero() || p.key.CreatedBy != "" && deactivated[p.key.CreatedBy] {
			return nil
		}
		if err := g.RevokeAPIKey(ctx, by, tenant, p.d.KeyID); err != nil {
			return err
		}
		res.KeysRevoked++
		return nil
	}
	id := p.d.UserID
	subject := "user:" + id
	changed := false
	// The roles change first, then the sessions end once. A grant of a
	// role held, or a revocation of one not held (changed meanwhile),
	// changes nothing and is not counted.
	if p.grant != "" {
		_, ch, err := g.changeRole(ctx, by, tenant, subject, p.grant, true, false)
		if err != nil {
			return err
		}
		changed = ch
	}
	for _, r := range p.revoke {
		_, ch, err := g.changeRole(ctx, by, tenant, subject, r, false, false)
		if err != nil {
			return err
		}
		changed = changed || ch
	}
	if changed {
		res.RolesChanged++
	}
	switch {
	case p.d.Deactivate:
		n, keys, ch, err := g.deactivate(ctx, by, p.perms, tenant, id, p.status, "access_review", time.Time{})
		res.SessionsEnded += n
		res.KeysRevoked += keys
		if err != nil {
			return err
		}
		deactivated[id] = true
		// A user deactivated before, or by another caller between the
		// plan and the write, is not counted: the call only finished
		// their deactivation, as DeactivateUser does (see deactivate).
		if ch {
			res.Deactivated++
		}
	case changed:
		// New roles, new sign-in: the user's sessions end now.
		n, err := g.endSessions(ctx, by, tenant, id, "access_review")
		if err != nil {
			return err
		}
		res.SessionsEnded += n
	}
	return nil
}

// deactivate deactivates a user, ends their sessions, voids their mailed
// links, revokes the API keys they created (revokeKeysOf), withdraws the
// four-eyes requests they filed (rejectRequestsOf) and records it all: user.deactivated has
// Meta sessions_ended, api_keys_revoked and, unless empty, reason. It is
// what DeactivateUser, the review's deactivations and DeactivateDormant
// do, and returns the number of live sessions ended and of keys revoked,
// so far when it fails, and whether this call changed the status. A
// failure leaves the user deactivated: the status changes first, so that
// a login racing the deactivation cannot make a session, and a second
// call does the rest. The tenant's last active owner
// is the exception: their deactivation is undone before anything else is
// done, recorded as a failed user.deactivated (reason last_owner) and
// refused with rbac.ErrLastOwner (see setDeactivated). So is a user given,
// since by was found to outrank them (with perms, as outranks returned
// them), a role by could not grant: the
// deactivation is undone (the user set active again, if this call
// deactivated them), recorded as a failed
// user.deactivated (reason escalation, Meta role) and refused with
// ErrForbidden, nothing else done; a failure to read the roles then undoes
// it too (see setDeactivated). A user found active again just before the
// deactivation is recorded (a reactivation landed after the status was
// written) makes it ErrConflict, recorded as a failed user.deactivated
// with reason conflict (Meta as on success), the sessions ended and keys
// revoked meanwhile staying so.
//
// The status is written only if active (setDeactivated): changed reports
// whether this call changed it. A user found already deactivated at the
// write, though active when the caller read them (was), was deactivated
// by another caller meanwhile (the same review submitted twice, two
// administrators at once), which records it: this call finishes the job
// (sessions, links, keys, requests) and records no user.deactivated of
// its own, so one deactivation is on record once. A user deactivated
// when read (was not active) is a call made to finish a deactivation,
// recorded as above.
//
// A non-zero idleSince makes it the deactivation of a dormant user (was
// is then active): the user is deactivated only if still active and not
// signed in after idleSince, and never if an owner (see setIdleDeactivated);
// otherwise it returns errPassedOver, nothing done.
func (g *Guard) deactivate(ctx context.Context, by Principal, perms rbac.Perms, tenant, id string, was auth.Status,
	reason string, idleSince time.Time) (sessions, keys int, changed bool, err error) {
	var meta map[string]string
	if reason != "" {
		meta = map[string]string{"reason": reason}
	}
	if idleSince.IsZero() {
		changed, err = g.setDeactivated(ctx, by, perms, tenant, id, audit.UserDeactivated, meta)
	} else {
		err = g.setIdleDeactivated(ctx, by, perms, tenant, id, idleSince, meta)
		changed = err == nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	// Recorded by the caller that changed the status, or by a call made to
	// finish a deactivation; not by one that lost the write to another.
	recorded := changed || was != auth.StatusActive
	ended, err := g.sessions.RevokeUser(ctx, tenant, id, [32]byte{})
	if err != nil {
		return 0, 0, changed, unavailable("end sessions", err)
	}
	sessions = g.endedLive(ctx, tenant, ended)
	// The user's mailed links (reset, invitation, email change) end too:
	// a reactivation must not bring back a link sent before.
	if err := g.voidLinks(ctx, tenant, id); err != nil {
		return sessions, 0, changed, err
	}
	if keys, err = g.revokeKeysOf(ctx, by, tenant, id, "creator_deactivated"); err != nil {
		return sessions, keys, changed, err
	}
	// And the four-eyes requests the user filed: withdrawn.
	if _, err := g.rejectRequestsOf(ctx, by, tenant, id, reasonRequesterDeactivated); err != nil {
		return sessions, keys, changed, err
	}
	meta = map[string]string{"sessions_ended": strconv.Itoa(sessions), "api_keys_revoked": strconv.Itoa(keys)}
	if reason != "" {
		meta["reason"] = reason
	}
	// A reactivation may have landed since the status was written: the
	// deactivation is then not reported done, nor recorded last.
	if err := g.stillDeactivated(ctx, tenant, id); err != nil {
		if errors.Is(err, ErrConflict) {
			err = g.ownerRefused(ctx, by, tenant, audit.UserDeactivated, id, "conflict", meta, ErrConflict)
		}
		return sessions, keys, changed, err
	}
	if !recorded {
		return sessions, keys, false, nil
	}
	e := g.adminEvent(by, tenant, audit.UserDeactivated, id)
	e.Meta = meta
	return sessions, keys, changed, g.record(ctx, e)
}

// stillDeactivated returns nil if user id of tenant is not active (or
// gone), ErrConflict if active again, and ErrUnavailable if the user
// cannot be read.
func (g *Guard) stillDeactivated(ctx context.Context, tenant, id string) error {
	u, err := g.stores.Users.User(ctx, tenant, id)
	switch {
	case errors.Is(err, auth.ErrNotFound) || err == nil && u.Status != auth.StatusActive:
		return nil
	case err != nil:
		return unavailable("load user", err)
	}
	return ErrConflict
}

// endSessions ends every session of a user whose privileges changed (new
// roles: SECURITY-CHECKLIST SE-3) and records it as session.revoked with
// the reason and the number of live sessions ended (Meta reason,
// sessions_ended); nothing is recorded when no live session ended. It
// returns that number.
func (g *Guard) endSessions(ctx context.Context, by Principal, tenant, id, reason string) (int, error) {
	ended, err := g.sessions.RevokeUser(ctx, tenant, id, session.Hash{})
	if err != nil {
		return 0, unavailable("end sessions", err)
	}
	return g.recordEnded(ctx, by, tenant, id, reason, g.endedLive(ctx, tenant, ended))
}

// recordEnded records the end of n live sessions of user id as
// session.revoked by by (Meta reason, and sessions_ended n); nothing is
// recorded when n is 0. It returns n, and the error of the record.
func (g *Guard) recordEnded(ctx context.Context, by Principal, tenant, id, reason string, n int) (int, error) {
	if n == 0 {
		return 0, nil
	}
	e := g.adminEvent(by, tenant, audit.SessionRevoked, id)
	e.Meta = map[string]string{"sessions_ended": strconv.Itoa(n), "reason": reason}
	return n, g.record(ctx, e)
}

// endedLive counts the sessions of ended, the tenant's sessions a call
// just ended, that were still live: by their own limits (the store also
// hands back expired ones it deleted) and by the tenant's policy as the
// session check reads it (policyKeeps: one idle past a lowered timeout,
// or a password session once SSO is required, had already ended). This is
// the sessions_ended of the records. A policy that cannot be read counts
// by the sessions' own limits: a count in a record is no reason to fail.
func (g *Guard) endedLive(ctx context.Context, tenant string, ended []session.Session) int {
	if len(ended) == 0 {
		return 0
	}
	keeps, err := g.keptByPolicy(ctx, tenant)
	if err != nil {
		return liveCount(ended, g.now())
	}
	n := 0
	for _, s := range ended {
		if s.LiveAt(g.now()) && keeps(s) {
			n++
		}
	}
	return n
}

// liveCount counts the sessions of ended that were still live at now by
// their own limits (the store also hands back expired ones it deleted).
func liveCount(ended []session.Session, now time.Time) int {
	n := 0
	for _, s := range ended {
		if s.LiveAt(now) {
			n++
		}
	}
	return n
}

// DeactivateDormant deactivates the tenant's dormant users (active, no
// sign-in, nor reactivation, for Policy.DormantAfter: see
// UserAccess.LastActive), ends their sessions and revokes the
// API keys they created (as DeactivateUser does), when the tenant turned
// on Policy.AutoDeactivateDormant; otherwise it does nothing.
// It is meant for a host's scheduled job (by = System("cron")), and
// returns the IDs of the users it deactivated, each recorded as
// user.deactivated with reason "dormant". A user is deactivated only if,
// at the deactivation, still active and neither signed in nor reactivated
// for DormantAfter (one store step: auth.UserUpdater.DeactivateIdle), so a
// user who signs in, or whom an admin reactivates, while the run goes
// through the tenant, or whom an admin or another replica's run
// deactivates meanwhile, is passed over (as is one an admin reactivates
// just after the status is written, the deactivation recorded as refused
// with reason conflict: see DeactivateUser): runs on several
// replicas at once deactivate and record each user once. Holders of the
// owner role are never deactivated automatically, found at the scan or at
// the deactivation (a user made owner just before the status is written
// has it set back, recorded as a failed user.deactivated with reason
// owner, and is passed over), nor is the break-glass owner of a
// tenant that requires SSO (rarely used by design): the access review
// lists them as dormant for a person to decide. A user named the
// break-glass owner just before the status is written has it set back
// too, recorded as a failed user.deactivated with reason
// break_glass_user, and is passed over.
// A principal other than the system needs users:manage, is never
// deactivated itself, and passes over the users it does not outrank, who
// hold a role it could not grant (see "Acting on a more privileged user"
// in the package documentation), as it passes over owners; a user given
// such a role during the run is passed over too, their deactivation
// undone and recorded as a failed user.deactivated with reason escalation
// (see DeactivateUser). A store
// failure stops the run with the error (ErrUnavailable); the users
// deactivated before it stay deactivated. A
// user whose sessions or keys the failure left is deactivated, so no
// longer dormant: the next run passes over them, and DeactivateUser on
// them (the access review lists deactivated users), or Maintain at its
// next run, finishes the job.
func (g *Guard) DeactivateDormant(ctx context.Context, by Principal, tenant string) ([]string, error) {
	if err := g.may(ctx, by, tenant, rbac.Users, rbac.Manage); err != nil {
		return nil, err
	}
	pol, err := g.EffectivePolicy(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if !pol.AutoDeactivateDormant {
		return nil, nil
	}
	ix := newAccessIndex(tenant, pol, g.rbac == nil)
	// outranked reports whether by could not grant one of roles.
	outranked := func([]string) bool { return false }
	var perms rbac.Perms // by's, checked again at each deactivation
	if g.rbac != nil {
		if err := ix.loadRoles(ctx, g.rbac, tenant); err != nil {
			return nil, err
		}
		if by.Kind != KindSystem {
			if perms, err = g.permsOf(ctx, by, tenant); err != nil {
				return nil, err
			}
			defined, err := g.rbac.Roles(ctx, tenant)
			if err != nil {
				return nil, rbacErr("roles", err)
			}
			outranked = func(roles []string) bool {
				_, ok := beyond(perms, roles, defined)
				return ok
			}
		}
	}
	now := g.now()
	var dormant []string
	if err := g.scanUsers(ctx, tenant, func(batch []auth.UserSummary) {
		for _, u := range batch {
			ua := ix.row(u, now, pol.DormantAfter, false)
			if ua.Dormant && !ua.Owner && !(by.Kind == KindUser && by.UserID == u.ID) && !(pol.RequireSSO && u.ID == pol.BreakGlassUser) &&
				!outranked(ua.Roles) {
				dormant = append(dormant, u.ID)
			}
		}
	}); err != nil {
		return nil, err
	}
	done := make([]string, 0, len(dormant))
	idleSince := now.Add(-pol.DormantAfter)
	for _, id := range dormant {
		if _, _, _, err := g.deactivate(ctx, by, perms, tenant, id, auth.StatusActive, "dormant", idleSince); err != nil {
			switch {
			case errors.Is(err, ErrUserNotFound):
				continue // deleted meanwhile
			case errors.Is(err, errPassedOver):
				continue // deactivated, signed in or made owner meanwhile
			case errors.Is(err, ErrConflict):
				continue // reactivated just after: the refusal is on record
			case errors.Is(err, rbac.ErrEscalation):
				continue // given a role by could not grant meanwhile: undone, on record
			case errors.Is(err, ErrBreakGlassUser):
				continue // named the break-glass owner meanwhile: undone, on record
			}
			return done, err
		}
		done = append(done, id)
	}
	return done, nil
}

// usesSSO reports whether u is on single sign-on at now (see
// UserAccess.SSO): the one rule of the access review, ListUserAccess and
// MFAAdoption. A sign-in at or before the tenant's IdPChangedAt went
// through an IdP since replaced or removed: it does not count.
func (ix *accessIndex) usesSSO(u auth.UserSummary, now time.Time) bool {
	if !ix.idp || u.LastSSOAt.IsZero() || !u.LastSSOAt.After(ix.idpSince) {
		return false
	}
	return !u.HasPassword || now.Sub(u.LastSSOAt) < ix.dormantAfter
}

// idList is a list of items sorted by ID (what id returns), as stores
// list users, second factors and role grants (addAll sorts a list out of
// order). Lookups in ascending order, as a review makes them, move a
// cursor forward: a pass over the list in all, without the hashing and
// memory of a map; any other lookup is a binary search. A list is for one
// goroutine at a time.
type idList[T any] struct {
	id     func(*T) string
	items  []T
	sorted bool // items are sorted by ID, without duplicates
	next   int  // the cursor: the index after the last lookup's
}

// addAll appends items (the first ones are kept, not copied); of items
// with the same ID, the last one added counts.
func (l *idList[T]) addAll(items []T) {
	if len(items) == 0 {
		return
	}
	n := len(l.items)
	if n == 0 {
		l.items, l.sorted = items, true
	} else {
		l.items = append(l.items, items...)
	}
	for i := max(n, 1); i < len(l.items) && l.sorted; i++ {
		l.sorted = l.id(&l.items[i-1]) < l.id(&l.items[i])
	}
}

// sort orders the items by ID, keeping the last one added of each ID.
func (l *idList[T]) sort() {
	slices.SortStableFunc(l.items, func(a, b T) int { return strings.Compare(l.id(&a), l.id(&b)) })
	out := l.items[:0]
	for i := range l.items {
		if i+1 < len(l.items) && l.id(&l.items[i+1]) == l.id(&l.items[i]) {
			continue // a later item of the same ID follows
		}
		out = append(out, l.items[i])
	}
	l.items, l.sorted, l.next = out, true, 0
}

// get returns the item of id, or the zero value.
func (l *idList[T]) get(id string) (v T) {
	if !l.sorted {
		if len(l.items) == 0 {
			return v
		}
		l.sort()
	}
	// From the cursor when id is past the last lookup's: a few steps,
	// then a binary search of the rest; from the start otherwise.
	lo := l.next
	if lo > 0 && l.id(&l.items[lo-1]) >= id {
		lo = 0
	}
	i := lo
	for ; i < len(l.items) && i < lo+8 && l.id(&l.items[i]) < id; i++ {
	}
	if i == lo+8 {
		k, _ := slices.BinarySearchFunc(l.items[i:], id, func(t T, id string) int { return strings.Compare(l.id(&t), id) })
		i += k
	}
	l.next = i
	if i < len(l.items) && l.id(&l.items[i]) == id {
		l.next = i + 1
		return l.items[i]
	}
	return v
}

// coveredBy reports whether every permission of role r is given by one of
// the roles held (their definitions in info): granting r in their place
// gives the user nothing new.
func coveredBy(r rbac.RoleInfo, held []string, info map[string]rbac.RoleInfo) bool {
	have := map[rbac.Permission]bool{}
	for _, h := range held {
		for _, p := range info[h].Permissions {
			have[p] = true
		}
	}
	for _, p := range r.Permissions {
		if !have[p] {
			return false
		}
	}
	return true
}
