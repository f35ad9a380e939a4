package guard_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

// setConn edits the SSO site's connection through the facade.
func (s *ssoSite) setConn(t *testing.T, edit func(*sso.Connection)) {
	t.Helper()
	ctx := t.Context()
	sys := guard.System("test")
	c, err := s.g.SSOConnection(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	edit(&c)
	if _, err := s.g.SetSSOConnection(ctx, sys, c); err != nil {
		t.Fatal(err)
	}
}

// A deactivated user's SSO sign-in is refused (ReasonDeactivated), but
// CompleteSSO syncs the IdP's roles onto the account before it looks at
// the status: a refused sign-in changes the roles of a deactivated
// account (here an admin becomes a member), as the unverified-address
// case is careful not to do.
func TestAuditSSO_RoleSyncOnDeactivatedUser(t *testing.T) {
	s := newSSOSite(t)
	s.setConn(t, func(c *sso.Connection) { c.SyncRoles = true })
	ctx := t.Context()
	sys := guard.System("test")
	bob, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "bob@corp.example", Password: ownerPW, Roles: []string{rbac.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.g.DeactivateUser(ctx, sys, tenantID, bob.ID); err != nil {
		t.Fatal(err)
	}
	s.idpPut(t, "/users/bob", `{"name":"bob","password":"correct horse","email":"bob@corp.example","groups":["Staff"]}`)
	if _, _, _, resp := s.signIn(t, "bob", "correct horse"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("deactivated user signing in by SSO: %s, want 403", resp.Status)
	}
	roles, err := s.g.RolesOf(ctx, sys, tenantID, "user:"+bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(roles, []string{rbac.Admin}) {
		t.Errorf("roles of the deactivated user after a refused SSO sign-in: %v, want [admin] unchanged", roles)
	}
}

// AllowedDomains is documented as compared case-insensitively, exactly.
// The check uses strings.EqualFold on an address that was only lower-cased,
// so U+017F (LATIN SMALL LETTER LONG S, which folds to s) passes for an
// s: an IdP may assert eve@ſales.example, a different (IDN) domain, under
// AllowedDomains ["sales.example"], and JIT provisions it.
func TestAuditSSO_AllowedDomainsUnicodeFold(t *testing.T) {
	s := newSSOSite(t)
	s.setConn(t, func(c *sso.Connection) { c.AllowedDomains = []string{"sales.example"} })
	s.idpPut(t, "/users/eve", `{"name":"eve","password":"correct horse","email":"eve@\u017fales.example","groups":["Staff"]}`)
	_, _, _, resp := s.signIn(t, "eve", "correct horse")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("an address at ſales.example under AllowedDomains [sales.example]: %s, want 403", resp.Status)
	}
	us, _ := s.g.ListUsers(t.Context(), guard.System("test"), tenantID, "", 10)
	for _, u := range us {
		t.Errorf("user provisioned outside the allowed domains: %q", u.Email)
	}
}

// A store failure while CompleteSSO syncs roles fails closed, but is
// reported as a refusal of the IdP's answer: ErrSSOFailed (the host's
// "your identity provider's answer was not accepted"), recorded as
// sso.failed reason role_sync, where every other store failure of the
// sign-in (loading the user, the IP allow-list, the session) is
// ErrUnavailable with reason unavailable, as the package's contract for
// store failures says.
func TestAuditSSO_RoleSyncStoreFailureNotUnavailable(t *testing.T) {
	fc := &faultCounter{}
	s := newSSOSiteOn(t, wrapStores(newMem(), fc))
	s.setConn(t, func(c *sso.Connection) { c.SyncRoles = true })
	ctx := t.Context()
	sys := guard.System("test")
	if _, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "bob@corp.example", Password: ownerPW, Roles: []string{rbac.Admin}}); err != nil {
		t.Fatal(err)
	}
	s.idpPut(t, "/users/bob", `{"name":"bob","password":"correct horse","email":"bob@corp.example","groups":["Staff"]}`)
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar}
	action, fields := formOf(t, s.get(t, b, s.srv.URL+"/saml/acme/login"))
	fields.Set("user", "bob")
	fields.Set("password", "correct horse")
	resp, err := b.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	acs, acsFields := formOf(t, string(body))
	r := httptest.NewRequest(http.MethodPost, acs, strings.NewReader(acsFields.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")

	fc.armName("Policies.Version")
	_, _, err = s.g.CompleteSSO(ctx, guard.SSOResponse{Tenant: tenantID, Request: r, IP: "203.0.113.9", UserAgent: "test"})
	if _, fired := fc.disarm(); fired != "Policies.Version" {
		t.Fatalf("the role store did not fail (fired %q): %v", fired, err)
	}
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("CompleteSSO with the role store down: %v, want ErrUnavailable", err)
	}
	page, _ := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOFailed)})
	if len(page.Events) != 1 || page.Events[0].Reason != guard.ReasonUnavailable {
		for _, e := range page.Events {
			t.Logf("sso.failed %s %v", e.Reason, e.Meta)
		}
		t.Errorf("%d sso.failed events, want one with reason %s", len(page.Events), guard.ReasonUnavailable)
	}
}

// In a tenant with an IdP "the IdP owns addresses": ChangeEmail and
// RequestEmailChange are refused (prepareEmailChange). ConfirmEmailChange
// does not check it again: a link asked for before the tenant connected
// its IdP, used after, changes the address of an account the IdP's
// sign-ins are matched to by address (the IdP's user of the new address
// lands in it, with its roles synced; the IdP's user of the old one is
// provisioned afresh).
func TestAuditSSO_EmailChangeLinkConfirmedAfterIdPConnected(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	spKey, spCert := keyPair(t, "sp")
	g, err := guard.New(guard.Config{Stores: s.stores, AuditKey: auditKey, Hasher: fastHasher,
		MFA:      &mfa.Config{Keyring: s.kr, Issuer: "Acme", Email: s.out},
		SSO:      &sso.Config{BaseURL: s.srv.URL, Key: spKey, Certificate: spCert, AllowInsecureMetadata: true},
		Recovery: guard.RecoveryConfig{Email: s.out, BaseURL: "https://app.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	ada, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "ada@corp.example", Password: ownerPW})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := g.SSOConnection(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.DeleteSSOConnection(ctx, sys, tenantID); err != nil {
		t.Fatal(err)
	}
	res, err := g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "ada@corp.example", Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
	if err != nil || res.Token == "" {
		t.Fatalf("password sign-in: %+v, %v", res, err)
	}
	p, err := g.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.RequestEmailChange(ctx, p, "sales@corp.example"); err != nil {
		t.Fatal(err)
	}
	link := changeLink(t, s.out.lastMail(t))
	// The tenant connects its IdP; from now on it owns the addresses.
	if _, err := g.SetSSOConnection(ctx, sys, conn); err != nil {
		t.Fatal(err)
	}
	if err := g.RequestEmailChange(ctx, p, "other@corp.example"); err == nil {
		t.Fatal("RequestEmailChange in a tenant with an IdP was allowed")
	}
	err = g.ConfirmEmailChange(ctx, confirmOf(link))
	u, uerr := g.User(ctx, sys, tenantID, ada.ID)
	if uerr != nil {
		t.Fatal(uerr)
	}
	if err == nil || u.Email != "ada@corp.example" {
		t.Errorf("a link confirmed after the tenant connected its IdP: %v, address now %q; want a refusal and ada@corp.example", err, u.Email)
	}
}
