package guard_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

// Single sign-on matches an account by email only when its address is
// verified: ChangeEmail stores the address unverified, and a link mailed
// to it (email change or reset) verifies it.

// recoveryGuard is another replica of s's Guard, with single sign-on and
// password recovery, mailing its links to out.
func (s *ssoSite) recoveryGuard(t *testing.T, out *outbox) *guard.Guard {
	t.Helper()
	spKey, spCert := keyPair(t, "sp")
	g, err := guard.New(guard.Config{Stores: s.stores, AuditKey: auditKey, Hasher: fastHasher,
		MFA:      &mfa.Config{Keyring: s.kr, Issuer: "Acme", Email: s.out},
		SSO:      &sso.Config{BaseURL: s.srv.URL, Key: spKey, Certificate: spCert, AllowInsecureMetadata: true},
		Recovery: guard.RecoveryConfig{Email: out, BaseURL: "https://app.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// connect (re)connects the tenant's IdP, mapping Staff to member and
// Admins to admin, with SyncRoles.
func (s *ssoSite) connect(t *testing.T) {
	t.Helper()
	if err := s.connectErr(t); err != nil {
		t.Fatal(err)
	}
}

// connectErr is connect returning SetSSOConnection's error.
func (s *ssoSite) connectErr(t *testing.T) error {
	_, err := s.g.SetSSOConnection(t.Context(), guard.System("test"), sso.Connection{Tenant: tenantID, MetadataURL: s.idpURL + "/metadata",
		JIT: true, AllowedDomains: []string{"corp.example"}, SyncRoles: true,
		GroupRoles: map[string]string{"Staff": rbac.Member, "Admins": rbac.Admin}})
	return err
}

// disconnect removes the tenant's IdP.
func (s *ssoSite) disconnect(t *testing.T) {
	t.Helper()
	if err := s.g.DeleteSSOConnection(t.Context(), guard.System("test"), tenantID); err != nil {
		t.Fatal(err)
	}
}

// passwordUser creates a member with the password ownerPW and returns
// them with the principal of a fresh password sign-in.
func (s *ssoSite) passwordUser(t *testing.T, email string) (guard.User, guard.Principal) {
	t.Helper()
	u, err := s.g.CreateUser(t.Context(), guard.System("test"), guard.NewUser{Tenant: tenantID, Email: email, Name: "N",
		Password: ownerPW, Roles: []string{rbac.Member}})
	if err != nil {
		t.Fatal(err)
	}
	return u, s.passwordSignIn(t, email)
}

// unverifiedUser disconnects the tenant's IdP and makes a member with a
// password who then changes their address to newEmail with ChangeEmail
// (unverified); the IdP stays disconnected.
func (s *ssoSite) unverifiedUser(t *testing.T, email, newEmail string) (guard.User, guard.Principal) {
	t.Helper()
	s.disconnect(t)
	u, p := s.passwordUser(t, email)
	if err := s.g.ChangeEmail(t.Context(), p, newEmail); err != nil {
		t.Fatalf("ChangeEmail: %v", err)
	}
	return u, p
}

func (s *ssoSite) passwordSignIn(t *testing.T, email string) guard.Principal {
	t.Helper()
	res, err := s.g.Login(t.Context(), guard.LoginRequest{Tenant: tenantID, Email: email, Password: ownerPW, IP: "203.0.113.9", UserAgent: "test"})
	if err != nil || res.Token == "" {
		t.Fatalf("password sign-in as %s: %+v, %v", email, res, err)
	}
	p, err := s.g.Authenticate(t.Context(), res.Token)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// idpUser creates a user at the test IdP with email and groups.
func (s *ssoSite) idpUser(t *testing.T, name, email string, groups string) {
	t.Helper()
	s.idpPut(t, "/users/"+name, `{"name":"`+name+`","password":"correct horse","email":"`+email+`","common_name":"`+name+`","groups":[`+groups+`]}`)
}

// ssoStatus signs the IdP user name in by SSO and returns the final
// status, and the principal on success.
func (s *ssoSite) ssoStatus(t *testing.T, name string) (int, guard.Principal) {
	t.Helper()
	b, _, _, resp := s.signIn(t, name, "correct horse")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, guard.Principal{}
	}
	p, err := s.principalOf(t, b)
	if err != nil {
		t.Fatalf("session of %s: %v", name, err)
	}
	return resp.StatusCode, p
}

func (s *ssoSite) user(t *testing.T, id string) guard.User {
	t.Helper()
	u, err := s.g.User(t.Context(), guard.System("test"), tenantID, id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (s *ssoSite) events(t *testing.T, a audit.Action) []audit.Event {
	t.Helper()
	page, err := s.g.QueryAudit(t.Context(), guard.System("test"), tenantID, audit.Query{Action: string(a), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return page.Events
}

// The audit's scenario: Mallory, a member, sets her address to the CEO's
// before the tenant connects its IdP. The CEO's first SSO sign-in is
// refused (email_unverified, Mallory's account named), lands on no
// account, and syncs nothing: Mallory, with her password, is still a
// member.
func TestSSORefusesUnverifiedEmail(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	mallory, _ := s.unverifiedUser(t, "mallory@corp.example", "ceo@corp.example")
	s.connect(t)
	s.idpUser(t, "ceo", "ceo@corp.example", `"Admins"`)
	if status, _ := s.ssoStatus(t, "ceo"); status != http.StatusForbidden {
		t.Fatalf("the CEO's SSO sign-in onto an unverified claim of the address: %d, want 403", status)
	}
	evs := s.events(t, audit.SSOFailed)
	if len(evs) != 1 || evs[0].Reason != guard.ReasonEmailUnverified || evs[0].Actor.ID != mallory.ID {
		t.Errorf("sso.failed events = %+v, want one email_unverified naming Mallory's account", evs)
	}
	if n := len(s.events(t, audit.SSOSucceeded)); n != 0 {
		t.Errorf("%d sso.succeeded events", n)
	}
	if roles, err := s.g.RolesOf(ctx, sys, tenantID, "user:"+mallory.ID); err != nil || !slices.Equal(roles, []string{rbac.Member}) {
		t.Errorf("Mallory's roles = %v, %v; want [member] (nothing synced from the IdP)", roles, err)
	}
	p := s.passwordSignIn(t, "ceo@corp.example")
	if d, err := s.g.Authorize(ctx, p, rbac.Users, rbac.Manage); err == nil || d.Allowed {
		t.Errorf("Mallory's users:manage = %+v, %v; want denied", d, err)
	}
	if u := s.user(t, mallory.ID); u.Email != "ceo@corp.example" || !u.EmailUnverified || !u.LastSSOAt.IsZero() {
		t.Errorf("Mallory's account = %+v, want the unverified claim, never signed in by SSO", u)
	}
	// An administrator deletes the account: the address is free, and
	// the CEO is provisioned just in time.
	if err := s.g.DeleteUser(ctx, sys, tenantID, mallory.ID); err != nil {
		t.Fatal(err)
	}
	status, cp := s.ssoStatus(t, "ceo")
	if status != http.StatusOK || cp.UserID == mallory.ID {
		t.Fatalf("the CEO's SSO sign-in after the claim was deleted: %d, %+v", status, cp)
	}
	if u := s.user(t, cp.UserID); u.EmailUnverified || u.HasPassword {
		t.Errorf("just-in-time user = %+v, want a verified address and no password", u)
	}
}

// A user who changed their address unverified, then confirmed it with the
// email-change link mailed there (asked for while the tenant has an IdP:
// their own unverified address is allowed), signs in by SSO to the same
// account, with the IdP's roles.
func TestSSOAfterEmailChangeConfirmed(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	out := &outbox{}
	rg := s.recoveryGuard(t, out)
	carol, p := s.unverifiedUser(t, "carol@corp.example", "carol.new@corp.example")
	s.connect(t)
	s.idpUser(t, "carol", "carol.new@corp.example", `"Admins"`)
	if status, _ := s.ssoStatus(t, "carol"); status != http.StatusForbidden {
		t.Fatalf("SSO sign-in with the address unverified: %d, want 403", status)
	}
	// Another address is still the IdP's.
	var pe *guard.PolicyError
	if err := rg.RequestEmailChange(ctx, p, "carol.other@corp.example"); !errors.As(err, &pe) {
		t.Errorf("RequestEmailChange of another address with an IdP: %v, want a *PolicyError", err)
	}
	if err := rg.RequestEmailChange(ctx, p, "carol.new@corp.example"); err != nil {
		t.Fatalf("RequestEmailChange of the user's own unverified address: %v", err)
	}
	m := out.lastMail(t)
	if m.To != "carol.new@corp.example" {
		t.Fatalf("link mailed to %s", m.To)
	}
	l := changeLink(t, m)
	if err := rg.ConfirmEmailChange(ctx, guard.EmailChangeConfirm{Tenant: l.Get("tenant"), UserID: l.Get("user"), Email: l.Get("email"),
		Token: l.Get("token"), IP: "203.0.113.9", UserAgent: "test"}); err != nil {
		t.Fatalf("ConfirmEmailChange: %v", err)
	}
	if u := s.user(t, carol.ID); u.Email != "carol.new@corp.example" || u.EmailUnverified {
		t.Fatalf("after the link = %+v, want the address verified", u)
	}
	evs := s.events(t, audit.UserEmailChanged)
	if len(evs) != 2 || evs[0].Meta["email_verified"] != "false" || evs[1].Meta["email_verified"] != "true" {
		t.Errorf("user.email_changed events = %+v, want the unverified change then its verification", evs)
	}
	status, cp := s.ssoStatus(t, "carol")
	if status != http.StatusOK || cp.UserID != carol.ID {
		t.Fatalf("SSO sign-in after the address was confirmed: %d, %+v; want Carol's account", status, cp)
	}
	if roles, _ := s.g.RolesOf(ctx, sys, tenantID, "user:"+carol.ID); !slices.Equal(roles, []string{rbac.Admin}) {
		t.Errorf("roles after the SSO sign-in = %v, want the IdP's [admin]", roles)
	}
}

// A reset link (a forgotten-password link, or an administrator's
// invitation) goes to the user's address: using it verifies the address.
func TestResetLinkVerifiesEmail(t *testing.T) {
	for _, how := range []string{"ForgotPassword", "SendInvitation"} {
		t.Run(how, func(t *testing.T) {
			s := newSSOSite(t)
			ctx := t.Context()
			sys := guard.System("test")
			out := &outbox{}
			rg := s.recoveryGuard(t, out)
			erin, _ := s.unverifiedUser(t, "erin@corp.example", "erin.new@corp.example")
			if how == "ForgotPassword" {
				if err := rg.ForgotPassword(ctx, guard.ForgotRequest{Tenant: tenantID, Email: "erin.new@corp.example", IP: "203.0.113.9"}); err != nil {
					t.Fatal(err)
				}
				rg.Close() // the link is mailed in the background
			} else if err := rg.SendInvitation(ctx, sys, tenantID, erin.ID); err != nil {
				t.Fatal(err)
			}
			m := out.lastMailWith(t, resetPrefix)
			if m.To != "erin.new@corp.example" {
				t.Fatalf("link mailed to %s", m.To)
			}
			l := resetLink(t, m)
			if err := rg.ResetPassword(ctx, guard.ResetRequest{Tenant: l.Get("tenant"), UserID: l.Get("user"), Token: l.Get("token"),
				NewPassword: "purple elephants dance at dawn", IP: "203.0.113.9", UserAgent: "test"}); err != nil {
				t.Fatalf("ResetPassword: %v", err)
			}
			if u := s.user(t, erin.ID); u.EmailUnverified {
				t.Errorf("after the reset link = %+v, want the address verified", u)
			}
			if evs := s.events(t, audit.PasswordReset); len(evs) != 1 || evs[0].Meta["email_verified"] != "true" {
				t.Errorf("password.reset events = %+v, want one with email_verified", evs)
			}
			s.connect(t)
			s.idpUser(t, "erin", "erin.new@corp.example", `"Staff"`)
			if status, cp := s.ssoStatus(t, "erin"); status != http.StatusOK || cp.UserID != erin.ID {
				t.Errorf("SSO sign-in after the reset: %d, %+v; want Erin's account", status, cp)
			}
		})
	}
}

// An administrator's user has a verified address and signs in by SSO as
// before, with the IdP's roles synced.
func TestSSOAdminCreatedUserSignsIn(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	s.connect(t)
	dave, _ := s.passwordUser(t, "dave@corp.example")
	if dave.EmailUnverified {
		t.Errorf("admin-created user = %+v, want a verified address", dave)
	}
	s.idpUser(t, "dave", "dave@corp.example", `"Admins"`)
	status, p := s.ssoStatus(t, "dave")
	if status != http.StatusOK || p.UserID != dave.ID {
		t.Fatalf("SSO sign-in of an admin-created user: %d, %+v", status, p)
	}
	if roles, _ := s.g.RolesOf(ctx, sys, tenantID, "user:"+dave.ID); !slices.Equal(roles, []string{rbac.Admin}) {
		t.Errorf("roles = %v, want the IdP's [admin]", roles)
	}
}

// ChangeEmail stores the address unverified, as User and the access list
// show it; a change confirmed by its link is verified.
func TestChangeEmailMarksUnverified(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	out := &outbox{}
	rg := s.recoveryGuard(t, out)
	u, p := s.unverifiedUser(t, "gina@corp.example", "gina.new@corp.example")
	if got := s.user(t, u.ID); got.Email != "gina.new@corp.example" || !got.EmailUnverified {
		t.Errorf("User after ChangeEmail = %+v, want the new address unverified", got)
	}
	rows, err := s.g.ListUserAccess(ctx, sys, tenantID, "", 10)
	if err != nil || len(rows) != 1 || !rows[0].EmailUnverified {
		t.Errorf("ListUserAccess = %+v, %v; want the address unverified", rows, err)
	}
	// The same address again changes nothing: still unverified.
	if err := s.g.ChangeEmail(ctx, p, "gina.new@corp.example"); err != nil || !s.user(t, u.ID).EmailUnverified {
		t.Errorf("ChangeEmail to the same address: %v, unverified %v", err, s.user(t, u.ID).EmailUnverified)
	}
	// A change made through a link is verified.
	if err := rg.RequestEmailChange(ctx, p, "gina.third@corp.example"); err != nil {
		t.Fatal(err)
	}
	l := changeLink(t, out.lastMail(t))
	if err := rg.ConfirmEmailChange(ctx, guard.EmailChangeConfirm{Tenant: l.Get("tenant"), UserID: l.Get("user"), Email: l.Get("email"),
		Token: l.Get("token")}); err != nil {
		t.Fatal(err)
	}
	if got := s.user(t, u.ID); got.Email != "gina.third@corp.example" || got.EmailUnverified {
		t.Errorf("User after a confirmed change = %+v, want the address verified", got)
	}
}

// The IdP's single logout names a user by email when no subject is kept:
// an account that holds the address unverified is not the IdP's user,
// and its sessions stay.
func TestIdPLogoutSkipsUnverifiedEmail(t *testing.T) {
	st := newMem()
	st.SSO.Subjects = nil
	s := newSSOSiteOn(t, st)
	s.disconnect(t)
	s.passwordUser(t, "hal@corp.example")
	res, err := s.g.Login(t.Context(), guard.LoginRequest{Tenant: tenantID, Email: "hal@corp.example", Password: ownerPW, IP: "203.0.113.9", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.g.Authenticate(t.Context(), res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.g.ChangeEmail(t.Context(), p, "boss@corp.example"); err != nil {
		t.Fatal(err)
	}
	s.connect(t)
	if _, err := s.g.HandleSLO(t.Context(), tenantID, s.idpLogout(t, "id-lo-uv", "boss@corp.example",
		"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.g.Authenticate(t.Context(), res.Token); err != nil {
		t.Errorf("the session of an account holding the address unverified, after the IdP logged the address out: %v", err)
	}
}
