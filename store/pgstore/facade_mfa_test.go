package pgstore_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/pgstore"
)

// newMFAFacade returns a Guard with MFA on st's stores (everything in
// PostgreSQL), one tenant and one user, and its clock.
func newMFAFacade(t *testing.T, st *pgstore.Store) (*guard.Guard, *clock) {
	t.Helper()
	kr, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")}, Current: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: facadeNow}
	g, err := guard.New(guard.Config{
		Stores:   st.Stores(),
		AuditKey: auditKey,
		Hasher:   auth.HasherConfig{Memory: 64, Time: 1},
		Defaults: guard.Policy{SessionLimit: 100},
		Now:      c.Now,
		MFA:      &mfa.Config{Keyring: kr, Issuer: "Acme"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := g.CreateTenant(ctx, guard.System("test"), facadeTenant, "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	// The user administers the tenant (API keys, IP lists): st.Stores()
	// has the rbac stores, so the facade checks roles.
	if _, err := g.CreateUser(ctx, guard.System("test"), guard.NewUser{Tenant: facadeTenant, Email: facadeEmail, Password: facadePassword,
		Roles: []string{rbac.Owner}}); err != nil {
		t.Fatal(err)
	}
	return g, c
}

// principal signs in with the password (no second factor enrolled yet)
// and returns the session's principal as a request from the test client.
func principal(t *testing.T, g *guard.Guard) guard.Principal {
	t.Helper()
	res := login(t, g)
	if res.Token == "" {
		t.Fatalf("Login = %+v, want a session", res)
	}
	p, err := g.Authenticate(t.Context(), res.Token)
	if err != nil {
		t.Fatal(err)
	}
	p.IP, p.UserAgent, p.Addr = "203.0.113.5", "test", netip.MustParseAddr("203.0.113.5")
	return p
}

// TOTP and recovery codes through the facade, on PostgreSQL: enrolment,
// a sign-in completed with a code, the same code refused for the next
// sign-in (AdvanceStep's replay check), a recovery code used once, and
// the pending sign-ins consumed.
func TestFacadeTOTPAndRecovery(t *testing.T) {
	st := newStore(t)
	g, c := newMFAFacade(t, st)
	ctx := t.Context()
	p := principal(t, g)
	en, err := g.BeginTOTP(ctx, p, "Phone")
	if err != nil {
		t.Fatalf("BeginTOTP: %v", err)
	}
	code := func() string {
		t.Helper()
		s, err := totp.GenerateCode(en.Secret, c.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	recovery, err := g.ConfirmFactor(ctx, p, en.Factor.ID, code())
	if err != nil || len(recovery) != 10 {
		t.Fatalf("ConfirmFactor = %d recovery codes, %v; want 10", len(recovery), err)
	}
	f, err := st.MFA.Factor(ctx, facadeTenant, p.UserID, en.Factor.ID)
	if err != nil || !f.Confirmed() || f.LastStep == 0 || len(f.Secret) == 0 || string(f.Secret) == en.Secret {
		t.Fatalf("stored factor = %+v, %v; want confirmed, with a step and a sealed secret", f, err)
	}
	if es, err := st.MFA.Enrolments(ctx, facadeTenant, "", 10); err != nil || len(es) != 1 || es[0].UserID != p.UserID {
		t.Errorf("Enrolments = %+v, %v; want the user", es, err)
	}

	pending := func() *guard.Pending {
		t.Helper()
		res, err := g.Login(ctx, guard.LoginRequest{Tenant: facadeTenant, Email: facadeEmail, Password: facadePassword, IP: "203.0.113.5", UserAgent: "test"})
		if err != nil || res.Pending == nil || res.Token != "" {
			t.Fatalf("Login = %+v, %v; want a pending sign-in", res, err)
		}
		return res.Pending
	}
	complete := func(pend *guard.Pending, method, code string) (guard.LoginResult, error) {
		return g.CompleteLogin(ctx, guard.SecondFactor{Pending: pend.Token, Method: method, Code: code, IP: "203.0.113.5", UserAgent: "test"})
	}
	c.Set(facadeNow.Add(31 * time.Second))
	first := pending()
	now := code()
	res, err := complete(first, guard.MethodTOTP, now)
	if err != nil || res.Token == "" {
		t.Fatalf("CompleteLogin with TOTP = %+v, %v", res, err)
	}
	if _, err := complete(first, guard.MethodTOTP, now); !errors.Is(err, guard.ErrLoginExpired) {
		t.Errorf("second CompleteLogin of one pending sign-in = %v, want ErrLoginExpired", err)
	}
	second := pending()
	if _, err := complete(second, guard.MethodTOTP, now); !errors.Is(err, guard.ErrInvalidCode) {
		t.Errorf("reused TOTP code = %v, want ErrInvalidCode", err)
	}
	if res, err := complete(second, guard.MethodRecovery, recovery[3]); err != nil || res.Token == "" {
		t.Fatalf("CompleteLogin with a recovery code = %+v, %v", res, err)
	}
	if left, err := st.MFA.RecoveryCodesLeft(ctx, facadeTenant, p.UserID); err != nil || left != 9 {
		t.Errorf("RecoveryCodesLeft = %d, %v; want 9", left, err)
	}
	third := pending()
	if _, err := complete(third, guard.MethodRecovery, recovery[3]); !errors.Is(err, guard.ErrInvalidCode) {
		t.Errorf("reused recovery code = %v, want ErrInvalidCode", err)
	}
	if n := rowCount(t, st, "mfa_transactions"); n != 1 {
		t.Errorf("%d pending sign-ins stored, want 1 (the third)", n)
	}
	rep, err := g.VerifyAudit(ctx, guard.System("test"), facadeTenant)
	if err != nil || !rep.OK {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
}

// API keys and their IP allow-list through the facade, on PostgreSQL.
func TestFacadeAPIKeysAndIPLists(t *testing.T) {
	st := newStore(t)
	g, c := newMFAFacade(t, st)
	ctx := t.Context()
	p := principal(t, g)
	key, k, err := g.CreateAPIKey(ctx, p, guard.NewAPIKey{Tenant: facadeTenant, Name: "CI"})
	if err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	office, home := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9")
	if kp, err := g.AuthenticateAPIKey(ctx, key, home); err != nil || kp.KeyID != k.ID {
		t.Fatalf("AuthenticateAPIKey = %+v, %v", kp, err)
	}
	h, err := auth.ParseAPIKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.APIKeys.APIKeyByHash(ctx, h); err != nil || got.ID != k.ID || !got.LastUsedAt.Equal(facadeNow) {
		t.Errorf("stored key = %+v, %v; want LastUsedAt %v", got, err, facadeNow)
	}
	ap, err := g.SetIPAllowList(ctx, p, facadeTenant, guard.IPListChange{Scope: ipfilter.APIKeys, Entries: []string{"198.51.100.0/24"}})
	if err != nil || ap.Version != 1 {
		t.Fatalf("SetIPAllowList = %+v, %v", ap, err)
	}
	if _, err := g.AuthenticateAPIKey(ctx, key, home); !errors.Is(err, guard.ErrIPNotAllowed) {
		t.Errorf("API key from outside the list = %v, want ErrIPNotAllowed", err)
	}
	c.Set(facadeNow.Add(2 * time.Minute))
	if _, err := g.AuthenticateAPIKey(ctx, key, office); err != nil {
		t.Errorf("API key from the list: %v", err)
	}
	if l, err := st.IPLists.Lists(ctx, facadeTenant); err != nil || l.Version != 1 || len(l.APIKeys.Entries) != 1 || len(l.Users.Entries) != 0 {
		t.Errorf("stored lists = %+v, %v", l, err)
	}
	if _, err := g.SetIPAllowList(ctx, p, facadeTenant, guard.IPListChange{Scope: ipfilter.APIKeys, Version: 0}); !errors.Is(err, guard.ErrConflict) {
		t.Errorf("SetIPAllowList from a stale version = %v, want ErrConflict", err)
	}
	if err := g.RevokeAPIKey(ctx, p, facadeTenant, k.ID); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	if _, err := g.AuthenticateAPIKey(ctx, key, office); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("revoked API key = %v, want ErrUnauthenticated", err)
	}
	ks, err := g.ListAPIKeys(ctx, p, facadeTenant)
	if err != nil || len(ks) != 1 || ks[0].RevokedAt.IsZero() || !ks[0].LastUsedAt.Equal(facadeNow.Add(2*time.Minute)) {
		t.Errorf("ListAPIKeys = %+v, %v; want the key, revoked, last used at +2m", ks, err)
	}
}
