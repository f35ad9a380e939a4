package guard_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"
	"github.com/pquerna/otp/totp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/internal/ssosite"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

var (
	keysMu sync.Mutex
	keys   = map[string]struct {
		k *rsa.PrivateKey
		c *x509.Certificate
	}{}
)

// keyPair returns an RSA key and self-signed certificate for cn, made once
// per test binary (RSA generation is slow under the race detector).
func keyPair(t testing.TB, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if kp, ok := keys[cn]; ok {
		return kp.k, kp.c
	}
	k, c := newKeyPair(t, cn)
	keys[cn] = struct {
		k *rsa.PrivateKey
		c *x509.Certificate
	}{k, c}
	return k, c
}

func newKeyPair(t testing.TB, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	return ssosite.KeyPair(t, cn)
}

// ssoSite is a host application wired the way the README says: Guard's
// middleware, the SAML routes through the facade, and /api/whoami.
type ssoSite struct {
	g      *guard.Guard
	srv    *httptest.Server
	idp    *httptest.Server
	kr     *mfa.Keyring
	out    *outbox
	idpURL string
	stores guard.Stores
	edit   assertionEdit
}

// assertionEdit changes the assertions the test IdP makes, after crewjam's
// default maker has made them.
type assertionEdit struct {
	mu sync.Mutex
	f  func(*saml.Assertion)
}

func (e *assertionEdit) set(f func(*saml.Assertion)) { e.mu.Lock(); e.f = f; e.mu.Unlock() }

func (e *assertionEdit) MakeAssertion(req *saml.IdpAuthnRequest, session *saml.Session) error {
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, session); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.f != nil {
		e.f(req.Assertion)
	}
	return nil
}

func newSSOSite(t *testing.T) *ssoSite {
	t.Helper()
	return newSSOSiteOn(t, newMem())
}

// newSSOSiteOn is newSSOSite on the given stores, its Config changed by
// mutate.
func newSSOSiteOn(t *testing.T, stores guard.Stores, mutate ...func(*guard.Config)) *ssoSite {
	t.Helper()
	s := &ssoSite{out: &outbox{}, stores: stores}
	spKey, spCert := keyPair(t, "sp")
	idpKey, idpCert := keyPair(t, "idp")
	mux := http.NewServeMux()
	s.srv = httptest.NewServer(nil)
	t.Cleanup(s.srv.Close)
	var err error
	s.kr, err = mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")}, Current: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := guard.Config{Stores: stores, AuditKey: auditKey, Hasher: fastHasher,
		MFA: &mfa.Config{Keyring: s.kr, Issuer: "Acme", Email: s.out},
		SSO: &sso.Config{BaseURL: s.srv.URL, Key: spKey, Certificate: spCert, AllowInsecureMetadata: true}}
	for _, m := range mutate {
		m(&cfg)
	}
	s.g, err = guard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := s.g
	ssosite.Routes(mux, g, "/api/whoami", nil)
	mux.Handle("GET /api/whoami", guard.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := guard.PrincipalFrom(r.Context())
		u, _ := g.User(r.Context(), p, p.Tenant, p.UserID)
		json.NewEncoder(w).Encode(map[string]any{"email": u.Email, "sso": p.Flags&guard.FlagSSO != 0})
	})))
	s.srv.Config.Handler = g.Middleware(mux)

	s.idp = httptest.NewUnstartedServer(nil)
	s.idpURL = "http://" + s.idp.Listener.Addr().String()
	iu, _ := url.Parse(s.idpURL)
	idp, err := samlidp.New(samlidp.Options{URL: *iu, Key: idpKey, Certificate: idpCert, Store: &samlidp.MemoryStore{}, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	idp.IDP.AssertionMaker = &s.edit
	s.idp.Config.Handler = idp
	s.idp.Start()
	t.Cleanup(s.idp.Close)

	ctx := t.Context()
	sys := guard.System("test")
	if _, err := g.CreateTenant(ctx, sys, tenantID, "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.SetSSOConnection(ctx, sys, sso.Connection{Tenant: tenantID, MetadataURL: s.idpURL + "/metadata",
		JIT: true, AllowedDomains: []string{"corp.example"}, GroupRoles: map[string]string{"Staff": rbac.Member}}); err != nil {
		t.Fatal(err)
	}
	s.idpPut(t, "/services/acme", s.get(t, http.DefaultClient, s.srv.URL+"/saml/acme/metadata"))
	return s
}

func (s *ssoSite) idpPut(t *testing.T, path, body string) {
	t.Helper()
	ssosite.IdPPut(t, s.idpURL, path, body)
}

func (s *ssoSite) get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// formOf returns the action and fields of the first form in page.
func formOf(t *testing.T, page string) (string, url.Values) {
	t.Helper()
	return ssosite.FormOf(t, page)
}

// signIn runs an SP-initiated login in a fresh browser and returns the
// browser, the ACS form it posted, and the final response.
func (s *ssoSite) signIn(t *testing.T, user, pw string) (*http.Client, string, url.Values, *http.Response) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar}
	page := s.get(t, b, s.srv.URL+"/saml/acme/login")
	action, fields := formOf(t, page)
	fields.Set("user", user)
	fields.Set("password", pw)
	resp, err := b.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	acs, acsFields := formOf(t, string(body))
	final, err := b.PostForm(acs, acsFields)
	if err != nil {
		t.Fatal(err)
	}
	return b, acs, acsFields, final
}

func TestSSOSignInThroughTheFacade(t *testing.T) {
	s := newSSOSite(t)
	s.idpPut(t, "/users/alice", `{"name":"alice","password":"correct horse","email":"Alice@Corp.Example","common_name":"Alice Example","groups":["Staff"]}`)
	_, acs, fields, resp := s.signIn(t, "alice", "correct horse")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"email":"alice@corp.example"`) || !strings.Contains(string(b), `"sso":true`) {
		t.Fatalf("whoami after SSO: %s %s", resp.Status, b)
	}
	ctx := t.Context()
	sys := guard.System("test")
	us, _ := s.g.ListUsers(ctx, sys, tenantID, "", 10)
	if len(us) != 1 || us[0].HasPassword {
		t.Fatalf("just-in-time user: %+v", us)
	}
	if roles, _ := s.g.RolesOf(ctx, sys, tenantID, "user:"+us[0].ID); len(roles) != 1 || roles[0] != rbac.Member {
		t.Errorf("mapped roles %v, want member", roles)
	}
	// The captured response posted again, by another client, is refused.
	again, err := http.PostForm(acs, fields)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusForbidden {
		t.Errorf("replayed response: %s", again.Status)
	}
	page, _ := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOFailed)})
	if len(page.Events) == 0 || page.Events[0].Reason == "" {
		t.Errorf("sso.failed events: %+v", page.Events)
	}
	if ok, _ := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOSucceeded)}); len(ok.Events) != 1 {
		t.Errorf("%d sso.succeeded events", len(ok.Events))
	}
	ad, err := s.g.MFAAdoption(ctx, sys, tenantID)
	if err != nil || ad.WithSSO != 1 {
		t.Errorf("adoption = %+v, %v; want one user on SSO", ad, err)
	}

	// A deactivated user is refused even with a valid assertion.
	if err := s.g.DeactivateUser(ctx, sys, tenantID, us[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, _, _, resp := s.signIn(t, "alice", "correct horse"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("deactivated user signing in by SSO: %s", resp.Status)
	}
	// A domain outside the connection's allowed domains is refused.
	s.idpPut(t, "/users/eve", `{"name":"eve","password":"correct horse","email":"eve@evil.example","groups":["Staff"]}`)
	if _, _, _, resp := s.signIn(t, "eve", "correct horse"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("user of another domain: %s", resp.Status)
	}
}

// enrolTOTP gives the user an authenticator app, signed in with their
// password (before the tenant requires SSO), and returns its secret. The
// app is confirmed with the code of the previous time step, so a sign-in
// may use the current one.
// userWithTOTP creates a user of the tenant with the password ownerPW
// and role, enrols an authenticator app for them, and returns the user
// and the app's secret.
func (s *ssoSite) userWithTOTP(t *testing.T, email, role string) (guard.User, string) {
	t.Helper()
	u, err := s.g.CreateUser(t.Context(), guard.System("test"), guard.NewUser{Tenant: tenantID, Email: email, Password: ownerPW, Roles: []string{role}})
	if err != nil {
		t.Fatal(err)
	}
	return u, s.enrolTOTP(t, email, ownerPW)
}

func (s *ssoSite) enrolTOTP(t *testing.T, email, pw string) string {
	t.Helper()
	ctx := t.Context()
	res, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: pw, IP: "203.0.113.5", UserAgent: "test"})
	if err != nil || res.Token == "" {
		t.Fatalf("sign-in to enrol: %+v, %v", res, err)
	}
	p, err := s.g.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	en, err := s.g.BeginTOTP(ctx, p, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(en.Secret, time.Now().Add(-30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.g.ConfirmFactor(ctx, p, en.Factor.ID, code); err != nil {
		t.Fatal(err)
	}
	return en.Secret
}

func TestRequireSSOWithBreakGlass(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	owner, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "owner@corp.example", Password: ownerPW, Roles: []string{rbac.Owner}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "bob@corp.example", Password: ownerPW}); err != nil {
		t.Fatal(err)
	}
	tn, _ := s.g.Tenant(ctx, tenantID)
	var pe *guard.PolicyError
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: "nobody"}, tn.Version); !errors.As(err, &pe) {
		t.Fatalf("break-glass user that does not exist: %v", err)
	}
	secret := s.enrolTOTP(t, "owner@corp.example", ownerPW)
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: owner.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	login := func(email string) (guard.LoginResult, error) {
		return s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
	}
	if _, err := login("bob@corp.example"); !errors.Is(err, guard.ErrSSORequired) {
		t.Errorf("password login while SSO is required: %v, want ErrSSORequired", err)
	}
	// The break-glass owner gets no session from the password alone: the
	// factor they have is asked for.
	res, err := login("owner@corp.example")
	if err != nil || res.Pending == nil || res.Pending.Enrol || len(res.Pending.Factors) != 1 || res.Token != "" {
		t.Fatalf("break-glass password login: %+v, %v; want a pending sign-in asking for the app", res, err)
	}
	done, err := s.g.CompleteLogin(ctx, guard.SecondFactor{Pending: res.Pending.Token, Method: guard.MethodTOTP,
		Code: totpCode(t, secret), IP: "203.0.113.5", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.g.Authenticate(ctx, done.Token)
	if err != nil || p.Flags&guard.FlagBreakGlass == 0 || p.Flags&guard.FlagMFA == 0 {
		t.Errorf("break-glass session flags %b, %v; want FlagBreakGlass and FlagMFA", p.Flags, err)
	}
	if page, _ := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.LoginBreakGlass)}); len(page.Events) != 1 {
		t.Errorf("%d login.break_glass events, want 1", len(page.Events))
	}
	if err := s.g.DeleteSSOConnection(ctx, sys, tenantID); !errors.As(err, &pe) {
		t.Errorf("removing the IdP while SSO is required: %v", err)
	}
	// In a tenant with an IdP, addresses are the IdP's.
	if err := s.g.ChangeEmail(ctx, p, "someone.else@corp.example"); !errors.As(err, &pe) {
		t.Errorf("ChangeEmail in an SSO tenant: %v, want a PolicyError", err)
	}
}

// loginFailures returns the reasons of the tenant's login.failed events.
func (s *ssoSite) loginFailures(t *testing.T) map[string]int {
	t.Helper()
	page, err := s.g.QueryAudit(t.Context(), guard.System("test"), tenantID, audit.Query{Action: string(audit.LoginFailed), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return reasons(page.Events)
}

// secondGuard is another replica of s's Guard, on s's stores as given
// (or changed by edit), with a policy cache of its own.
func (s *ssoSite) secondGuard(t *testing.T, edit func(*guard.Stores)) *guard.Guard {
	t.Helper()
	st := s.stores
	if edit != nil {
		edit(&st)
	}
	g, err := guard.New(guard.Config{Stores: st, AuditKey: auditKey, Hasher: fastHasher,
		MFA: &mfa.Config{Keyring: s.kr, Issuer: "Acme", Email: s.out}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// failingVersion fails the role store's Version while fail is set.
type failingVersion struct {
	rbac.PolicyStore
	fail bool
}

func (p *failingVersion) Version(ctx context.Context, tenant string) (uint64, error) {
	if p.fail {
		return 0, errDown
	}
	return p.PolicyStore.Version(ctx, tenant)
}

// The break-glass user signs in with a password only while they hold the
// owner role: a tenant whose break-glass user is not (or no longer) an
// owner refuses them like anyone else, ErrSSORequired after the right
// password, recorded as break_glass_not_owner; when the role cannot be
// read, the sign-in is ErrUnavailable.
func TestBreakGlassSignInNeedsOwner(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	owner, _ := s.userWithTOTP(t, "owner@corp.example", rbac.Owner)
	bob, _ := s.userWithTOTP(t, "bob@corp.example", rbac.Admin)
	var pe *guard.PolicyError
	tn, _ := s.g.Tenant(ctx, tenantID)
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: bob.ID}, tn.Version); !errors.As(err, &pe) {
		t.Fatalf("an admin as the break-glass user: %v, want a PolicyError", err)
	}
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: owner.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	// A policy naming a user who is not an owner, as a demotion racing
	// the policy change (or one from before the role was checked) leaves
	// it; a second replica reads it at once.
	tn, _ = s.g.Tenant(ctx, tenantID)
	if _, err := s.stores.Tenants.SetPolicy(ctx, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: bob.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	g2 := s.secondGuard(t, nil)
	res, err := g2.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "bob@corp.example", Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
	if !errors.Is(err, guard.ErrSSORequired) || res.Pending != nil || res.Token != "" {
		t.Errorf("break-glass user who is not an owner: %+v, %v; want ErrSSORequired", res, err)
	}
	if r := s.loginFailures(t); r[guard.ReasonBreakGlassNotOwner] != 1 {
		t.Errorf("login.failed reasons %v, want one %s", r, guard.ReasonBreakGlassNotOwner)
	}
	if page, _ := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.LoginBreakGlass)}); len(page.Events) != 0 {
		t.Errorf("%d login.break_glass events for a refused sign-in, want none", len(page.Events))
	}

	// Back to the owner: with the role store down, no sign-in.
	tn, _ = s.g.Tenant(ctx, tenantID)
	if _, err := s.stores.Tenants.SetPolicy(ctx, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: owner.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	down := &failingVersion{PolicyStore: s.stores.Policies}
	g3 := s.secondGuard(t, func(st *guard.Stores) { st.Policies = down })
	down.fail = true
	res, err = g3.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "owner@corp.example", Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
	if !errors.Is(err, guard.ErrUnavailable) || res.Pending != nil || res.Token != "" {
		t.Errorf("break-glass sign-in with the role store down: %+v, %v; want ErrUnavailable", res, err)
	}
	down.fail = false
	res, err = g3.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "owner@corp.example", Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
	if err != nil || res.Pending == nil || res.Pending.Enrol {
		t.Errorf("break-glass owner with the store back: %+v, %v; want a pending sign-in", res, err)
	}
}

// The break-glass owner keeps the owner role and the account while the
// tenant requires SSO: revoking the role, deactivating or deleting the
// user, and an access review that would do either are refused with
// ErrBreakGlassUser, change nothing, and the refusal is on record. Once
// another owner is named, the role can go.
func TestBreakGlassOwnerKept(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	owner, _ := s.userWithTOTP(t, "owner@corp.example", rbac.Owner)
	second, _ := s.userWithTOTP(t, "second@corp.example", rbac.Owner)
	tn, _ := s.g.Tenant(ctx, tenantID)
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: owner.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	subject := "user:" + owner.ID
	for name, f := range map[string]func() error{
		"RevokeRole":     func() error { return s.g.RevokeRole(ctx, sys, tenantID, subject, rbac.Owner) },
		"DeactivateUser": func() error { return s.g.DeactivateUser(ctx, sys, tenantID, owner.ID) },
		"DeleteUser":     func() error { return s.g.DeleteUser(ctx, sys, tenantID, owner.ID) },
		"review downgrade": func() error {
			_, err := s.g.ApplyReview(ctx, sys, tenantID, []guard.Decision{{UserID: owner.ID, DowngradeTo: rbac.Admin}})
			return err
		},
		"review revoke": func() error {
			_, err := s.g.ApplyReview(ctx, sys, tenantID, []guard.Decision{{UserID: owner.ID, RevokeRoles: []string{rbac.Owner}}})
			return err
		},
		"review deactivate": func() error {
			_, err := s.g.ApplyReview(ctx, sys, tenantID, []guard.Decision{{UserID: owner.ID, Deactivate: true}})
			return err
		},
	} {
		if err := f(); !errors.Is(err, guard.ErrBreakGlassUser) {
			t.Errorf("%s of the break-glass owner: %v, want ErrBreakGlassUser", name, err)
		}
	}
	if roles, _ := s.g.RolesOf(ctx, sys, tenantID, subject); !slices.Contains(roles, rbac.Owner) {
		t.Errorf("the break-glass owner's roles after the refusals: %v", roles)
	}
	if u, err := s.g.User(ctx, sys, tenantID, owner.ID); err != nil || u.Status != auth.StatusActive {
		t.Errorf("the break-glass owner after the refusals: %+v, %v", u, err)
	}
	page, _ := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Limit: 1000})
	refused := 0
	for _, e := range page.Events {
		if e.Reason == "break_glass_user" && e.Outcome == audit.Failure {
			refused++
		}
	}
	if refused != 6 {
		t.Errorf("%d refusals on record, want 6 (RevokeRole, DeactivateUser, DeleteUser and the three review decisions)", refused)
	}
	// Another break-glass owner named: the first one's role can go.
	tn, _ = s.g.Tenant(ctx, tenantID)
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: second.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	if err := s.g.RevokeRole(ctx, sys, tenantID, subject, rbac.Owner); err != nil {
		t.Errorf("RevokeRole once another owner is the break-glass one: %v", err)
	}
}

// Break-glass sign-in takes a second factor the owner already has: one
// without (who removed theirs) is refused, ErrSSORequired and no pending
// enrolment, recorded as break_glass_no_factor; and SetPolicy refuses to
// name an owner without one (a PolicyError the console shows).
func TestBreakGlassNeedsAFactor(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	owner, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "owner@corp.example", Password: ownerPW, Roles: []string{rbac.Owner}})
	if err != nil {
		t.Fatal(err)
	}
	tn, _ := s.g.Tenant(ctx, tenantID)
	var pe *guard.PolicyError
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: owner.ID}, tn.Version); !errors.As(err, &pe) ||
		pe.Field != "BreakGlassUser" || !strings.Contains(pe.Reason, "second factor") {
		t.Fatalf("an owner without a second factor as the break-glass owner: %v, want a PolicyError", err)
	}
	s.enrolTOTP(t, "owner@corp.example", ownerPW)
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: owner.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	fs, err := s.g.Factors(ctx, sys, tenantID, owner.ID)
	if err != nil || len(fs) != 1 {
		t.Fatalf("factors %v, %v", fs, err)
	}
	// Guard refuses to remove the owner's last factor while SSO is
	// required …
	if err := s.g.RemoveFactor(ctx, sys, tenantID, owner.ID, fs[0].ID); !errors.Is(err, guard.ErrBreakGlassUser) {
		t.Fatalf("removing the break-glass owner's last factor: %v, want ErrBreakGlassUser", err)
	}
	// … but one of two, yes.
	second := mfa.Factor{ID: "secondFactorId0123456a", Tenant: tenantID, UserID: owner.ID, Kind: mfa.KindSMS, Label: "Phone",
		Destination: "+15555550100", CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := s.stores.MFA.Factors.CreateFactor(ctx, second, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.stores.MFA.FactorUpdates.ConfirmFactor(ctx, tenantID, owner.ID, second.ID, second.CreatedAt, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.g.RemoveFactor(ctx, sys, tenantID, owner.ID, fs[0].ID); err != nil {
		t.Fatalf("removing one of the break-glass owner's two factors: %v", err)
	}
	// Take the last one away behind Guard's back (as a removal racing
	// the naming of the break-glass owner still can): sign-in still
	// refuses the owner.
	if _, err := s.stores.MFA.Factors.DeleteFactor(ctx, tenantID, owner.ID, second.ID); err != nil {
		t.Fatal(err)
	}
	res, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "owner@corp.example", Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
	if !errors.Is(err, guard.ErrSSORequired) || res.Pending != nil || res.Token != "" {
		t.Errorf("break-glass owner without a factor: %+v, %v; want ErrSSORequired, no enrolment", res, err)
	}
	if r := s.loginFailures(t); r[guard.ReasonBreakGlassNoFactor] != 1 {
		t.Errorf("login.failed reasons %v, want one %s", r, guard.ReasonBreakGlassNoFactor)
	}
	if page, _ := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.LoginBreakGlass)}); len(page.Events) != 0 {
		t.Errorf("%d login.break_glass events for a refused sign-in, want none", len(page.Events))
	}
}
