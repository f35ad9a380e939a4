package guard_test

// SSOPROV audit: the account side of SAML single sign-on (just-in-time
// provisioning, group → role sync, the connection's role mapping). Each
// test fails on the code it was written against, for the defect its
// comment names.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

// ssoAnswer starts an SP-initiated login in a fresh browser and signs in
// at the IdP; it returns the browser (which follows no redirect) and the
// ACS form the IdP gave it, not yet posted.
func (s *ssoSite) ssoAnswer(t *testing.T, user, pw string) (*http.Client, string, url.Values) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	page := s.get(t, &http.Client{Jar: jar}, s.srv.URL+"/saml/acme/login")
	action, fields := formOf(t, page)
	fields.Set("user", user)
	fields.Set("password", pw)
	b := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := b.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	acs, acsFields := formOf(t, string(body))
	return b, acs, acsFields
}

// meetUsers holds back the look-ups by email of one address that find
// nobody until two of them have been made (or a second has passed): two
// first sign-ins of the same new user, overlapping as they do when a
// browser retries or the user signs in from two tabs.
type meetUsers struct {
	auth.UserStore
	email   string
	mu      sync.Mutex
	waiting int
	met     chan struct{}
}

func (m *meetUsers) UserByEmail(ctx context.Context, tenant, email string) (auth.User, error) {
	u, err := m.UserStore.UserByEmail(ctx, tenant, email)
	if email != m.email || !errors.Is(err, auth.ErrNotFound) {
		return u, err
	}
	m.mu.Lock()
	m.waiting++
	if m.waiting == 2 {
		close(m.met)
	}
	m.mu.Unlock()
	select {
	case <-m.met:
	case <-time.After(time.Second):
	}
	return u, err
}

// SSOPROV-1. Two first sign-ins of the same new user at once (a retried
// POST, two tabs) both find no account, both provision one, and the
// second CreateUser loses on the address (ErrEmailTaken): CompleteSSO
// refuses that sign-in (ErrSSOFailed, sso.failed reason provisioning,
// detail "email address already in use") although the IdP vouched for
// the user and the account now exists. Provisioning that finds the
// address taken should look the user up again and sign them in (still
// refusing a deactivated or unverified account), not fail.
func TestAuditSSOPROV_1_ConcurrentFirstSignInRefused(t *testing.T) {
	mem := newMem()
	mu := &meetUsers{UserStore: mem.Users, email: "nina@corp.example", met: make(chan struct{})}
	mem.Users = mu
	s := newSSOSiteOn(t, mem)
	s.idpPut(t, "/users/nina", `{"name":"nina","password":"correct horse","email":"nina@corp.example","groups":["Staff"]}`)
	type answer struct {
		b      *http.Client
		acs    string
		fields url.Values
	}
	var as []answer
	for range 2 {
		b, acs, f := s.ssoAnswer(t, "nina", "correct horse")
		as = append(as, answer{b, acs, f})
	}
	codes := make([]int, len(as))
	var wg sync.WaitGroup
	for i, a := range as {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := a.b.PostForm(a.acs, a.fields)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	ctx := t.Context()
	sys := guard.System("test")
	us, err := s.g.ListUsers(ctx, sys, tenantID, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 1 {
		t.Errorf("%d accounts after two first sign-ins of one user, want 1", len(us))
	}
	for i, c := range codes {
		if c != http.StatusSeeOther {
			t.Errorf("first sign-in %d of nina (the IdP vouched for her, her account exists): %d, want 303", i, c)
		}
	}
	page, _ := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOFailed)})
	for _, e := range page.Events {
		t.Logf("sso.failed reason %s %v", e.Reason, e.Meta)
	}
}

// SSOPROV-2. syncRoles grants the wanted roles first and revokes the
// others after, stopping at the first error: a grant that fails (here a
// role the connection maps that the tenant does not define; equally a
// role deleted since, or a store failure) refuses the sign-in after the
// earlier grants were made and before any revocation. Bob, an admin whom
// the IdP now puts in Staff only (plus a group whose role fails), ends up
// with [admin member]: neither his roles before nor the IdP's, and the
// admin role the IdP took away stays (for his API keys, and for password
// sign-ins). A sync that cannot complete should change nothing (check
// every wanted role first), and removals, which only lower privilege,
// should not wait on grants.
func TestAuditSSOPROV_2_PartialRoleSyncKeepsRevokedRole(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	if err := s.g.DefineRole(ctx, sys, tenantID, "zz-auditor", []string{"audit:read"}); err != nil {
		t.Fatal(err)
	}
	s.setConn(t, func(c *sso.Connection) {
		c.SyncRoles = true
		c.GroupRoles = map[string]string{"Staff": rbac.Member, "Auditors": "zz-auditor"}
	})
	// The custom role is deleted later; the mapping stays. (A DeleteRole
	// that refuses to delete a mapped role closes this way in; a store
	// failure during the sync still leaves the same partial roles.)
	if err := s.g.DeleteRole(ctx, sys, tenantID, "zz-auditor"); err != nil {
		t.Logf("DeleteRole of a role the connection maps: %v", err)
		return
	}
	bob, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "bob@corp.example", Password: ownerPW, Roles: []string{rbac.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	s.idpPut(t, "/users/bob", `{"name":"bob","password":"correct horse","email":"bob@corp.example","groups":["Staff","Auditors"]}`)
	_, _, _, resp := s.signIn(t, "bob", "correct horse")
	resp.Body.Close()
	roles, err := s.g.RolesOf(ctx, sys, tenantID, "user:"+bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case slices.Equal(roles, []string{rbac.Admin}):
		// Nothing changed: a sync that could not complete was not applied.
	case !slices.Contains(roles, rbac.Admin):
		// The removal the IdP asked for was made.
	default:
		t.Errorf("roles of bob after a role sync that failed part way (%s): %v; want [admin] (nothing applied) or without admin (the IdP no longer grants it)", resp.Status, roles)
	}
}

// SSOPROV-3. SetSSOConnection accepts a GroupRoles (or DefaultRole) role
// the tenant does not define. Nothing tells the owner: the mistake shows
// only at sign-in, where every just-in-time provisioning of a user in that
// group is refused (sso.failed reason provisioning, "rbac: no such
// role"), and with SyncRoles every sign-in of such a user. The roles
// named should be checked against the tenant's roles when the connection
// is set (an *InputError on GroupRoles / DefaultRole), as CreateUser and
// GrantRole check theirs.
func TestAuditSSOPROV_3_ConnectionMapsUndefinedRole(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	for _, tc := range []struct {
		name string
		edit func(*sso.Connection)
	}{
		{"GroupRoles", func(c *sso.Connection) { c.GroupRoles = map[string]string{"Staff": "no-such-role"} }},
		{"DefaultRole", func(c *sso.Connection) { c.DefaultRole = "no-such-role" }},
	} {
		c, err := s.g.SSOConnection(ctx, sys, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		tc.edit(&c)
		_, err = s.g.SetSSOConnection(ctx, sys, c)
		var ie *guard.InputError
		if !errors.As(err, &ie) {
			t.Errorf("SetSSOConnection with %s naming a role the tenant does not define: %v, want an *InputError", tc.name, err)
		}
	}
	// What the accepted mapping does: a new user of the group cannot sign in.
	s.idpPut(t, "/users/nina", `{"name":"nina","password":"correct horse","email":"nina@corp.example","groups":["Staff"]}`)
	if _, _, _, resp := s.signIn(t, "nina", "correct horse"); resp.StatusCode != http.StatusOK {
		page, _ := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOFailed)})
		for _, e := range page.Events {
			t.Logf("sso.failed reason %s %v", e.Reason, e.Meta)
		}
		t.Errorf("first sign-in of a Staff user under the accepted mapping: %s", resp.Status)
	}
}

// SSOPROV-4. Addresses are case-folded but not Unicode-normalised
// (sso.canonicalEmail, auth.CanonicalEmail): an IdP that sends
// "josé@corp.example" decomposed (e + U+0301, as macOS and some
// directories store it) does not find the account of the same address
// composed (é, U+00E9), so just-in-time provisioning creates a second
// account whose address looks the same everywhere it is shown (console,
// audit log, access review), with roles of its own, beside the existing
// one. RFC 6532 (3.1) asks for NFC; both sides should normalise (or
// refuse non-NFC input) so that one address is one key.
func TestAuditSSOPROV_4_DecomposedEmailProvisionsLookalike(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	jose, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "jos\u00e9@corp.example", Password: ownerPW, Roles: []string{rbac.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	s.idpPut(t, "/users/jose", `{"name":"jose","password":"correct horse","email":"jose\u0301@corp.example","groups":["Staff"]}`)
	_, _, _, resp := s.signIn(t, "jose", "correct horse")
	resp.Body.Close()
	us, err := s.g.ListUsers(ctx, sys, tenantID, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.ID != jose.ID {
			t.Errorf("SSO sign-in as the decomposed form of %q (%s) provisioned another account %s with the address %q (same text once normalised)",
				jose.Email, resp.Status, u.ID, u.Email)
		}
	}
}

// SSOPROV-5. The sso.configured event records JIT, IdP-initiated login,
// SHA-1, CBC, metadata signing and the MFA contexts, but not the
// connection's role mapping: GroupRoles, DefaultRole and SyncRoles (nor
// AllowedDomains). These decide which roles every IdP user gets: an owner
// who maps a group every employee is in to admin (or sets DefaultRole
// admin with SyncRoles) makes the tenant's users admins at their next
// sign-in, and the log shows only "sso.configured" and, later, role
// grants by system:sso that nothing explains. The event should carry
// the mapping (or a digest of it and what changed). (Known: the email
// attribute is unaudited; this is the privilege-bearing part.)
func TestAuditSSOPROV_5_RoleMappingNotOnRecord(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	s.setConn(t, func(c *sso.Connection) {
		c.GroupRoles = map[string]string{"Everyone": rbac.Admin}
		c.DefaultRole = rbac.Admin
		c.SyncRoles = true
	})
	page, err := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOConfigured)})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) == 0 {
		t.Fatal("no sso.configured event")
	}
	e := page.Events[0]
	for _, ev := range page.Events {
		if ev.Seq > e.Seq {
			e = ev
		}
	}
	var all []string
	for k, v := range e.Meta {
		all = append(all, k+"="+v)
	}
	text := strings.Join(all, " ")
	if !strings.Contains(text, "Everyone") || !strings.Contains(text, rbac.Admin) {
		t.Errorf("sso.configured after mapping group Everyone (and DefaultRole) to admin does not name the mapping: %v", e.Meta)
	}
	if !strings.Contains(strings.ToLower(text), "sync") {
		t.Errorf("sso.configured after turning SyncRoles on does not record it: %v", e.Meta)
	}
}

// SSOPROV-6. provision reads the new user back (Users.User) and returns
// that store's error as it is: a store failure there, once the account
// is created and on record, is taken by CompleteSSO for a refusal of the
// IdP's answer (ErrSSOFailed, sso.failed reason provisioning) with the
// store's own error text in the event's detail, where every other store
// failure of the sign-in (provisioning's CreateUser and role grants
// included) is ErrUnavailable with reason unavailable, as the package's
// contract for store failures says. provision should wrap it
// (unavailable("load user", err)).
func TestAuditSSOPROV_6_ProvisionReadBackFailureNotUnavailable(t *testing.T) {
	fc := &faultCounter{}
	s := newSSOSiteOn(t, wrapStores(newMem(), fc))
	ctx := t.Context()
	sys := guard.System("test")
	// No group of Nina's maps to a role: CreateUser grants none, so the
	// first Users.User of the sign-in is provision's read-back.
	s.idpPut(t, "/users/nina", `{"name":"nina","password":"correct horse","email":"nina@corp.example","groups":["Visitors"]}`)
	_, acs, fields := s.ssoAnswer(t, "nina", "correct horse")
	r := httptest.NewRequest(http.MethodPost, acs, strings.NewReader(fields.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")

	fc.armName("Users.User")
	_, _, err := s.g.CompleteSSO(ctx, guard.SSOResponse{Tenant: tenantID, Request: r, IP: "203.0.113.9", UserAgent: "test"})
	calls, fired := fc.disarm()
	if fired != "Users.User" || slices.Index(calls, "Users.CreateUser") > slices.Index(calls, "Users.User") {
		t.Fatalf("the read-back did not fail (fired %q, calls %v): %v", fired, calls, err)
	}
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("CompleteSSO with the user store failing on provisioning's read-back: %v, want ErrUnavailable", err)
	}
	page, _ := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOFailed)})
	for _, e := range page.Events {
		if e.Reason != guard.ReasonUnavailable {
			t.Errorf("sso.failed reason %s %v, want reason %s", e.Reason, e.Meta, guard.ReasonUnavailable)
		}
	}
}

// newSSOBob is newSSOSite where Bob signed in (provisioned just in
// time) through an IdP that names him by the persistent NameID 00u-bob.
func newSSOBob(t *testing.T) (*ssoSite, guard.Principal) {
	t.Helper()
	s := newSSOSite(t)
	s.opaqueNameID(t, "00u-bob")
	_, bob := s.ssoUser(t, "bob", "bob@corp.example")
	return s, bob
}

// SSOPROV-7. Users are matched by email only: the NameID kept for the
// user (the IdP's subject, for single logout) is never compared, so an
// assertion with another persistent NameID but the same email signs into
// the account. At an IdP where users may edit their own email (the
// "nOAuth" takeover), Mallory sets hers to Bob's address and signs in as
// Bob, with his roles. A persistent NameID is the IdP's stable name for
// one person: when the account already has one kept from the tenant's
// current IdP and the assertion's differs, the sign-in should be refused
// (ErrSSOFailed, sso.failed reason subject_mismatch), Bob's kept subject
// left alone, and Bob still let in.
func TestAuditSSOPROV_7_OtherPersistentNameIDSignsIntoAccount(t *testing.T) {
	s, bob := newSSOBob(t)
	ctx := t.Context()
	sys := guard.System("test")

	// Mallory, another person at the same IdP (another persistent NameID),
	// edits her email there to Bob's.
	s.opaqueNameID(t, "00u-mallory")
	s.idpPut(t, "/users/mallory", `{"name":"mallory","password":"correct horse","email":"bob@corp.example","groups":["Staff"]}`)
	b, _, _, resp := s.signIn(t, "mallory", "correct horse")
	resp.Body.Close()
	if p, err := s.principalOf(t, b); err == nil {
		t.Errorf("an assertion of NameID 00u-mallory with Bob's email signed in as %s (Bob is %s)", p.UserID, bob.UserID)
	}
	page, err := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOFailed)})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].Reason != "subject_mismatch" {
		t.Errorf("sso.failed events %+v, want one, reason subject_mismatch", page.Events)
	}
	if sub, err := s.stores.SSO.Subjects.Subject(ctx, tenantID, bob.UserID, time.Now()); err != nil || sub.NameID != "00u-bob" {
		t.Errorf("Bob's kept subject after the refused sign-in: %+v, %v; want NameID 00u-bob", sub, err)
	}

	// Bob himself still signs in.
	s.opaqueNameID(t, "00u-bob")
	if _, p := s.ssoUser(t, "bob", "bob@corp.example"); p.UserID != bob.UserID {
		t.Errorf("Bob signed in as %s, want %s", p.UserID, bob.UserID)
	}
}
