package redisstore_test

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/memstore"
)

// mailbox captures the emails the facade sends.
type mailbox struct {
	mu   sync.Mutex
	mail []mfa.Message
}

func (m *mailbox) SendEmail(_ context.Context, msg mfa.Message) error {
	m.mu.Lock()
	m.mail = append(m.mail, msg)
	m.mu.Unlock()
	return nil
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// lastCode returns the code of the last email.
func (m *mailbox) lastCode(t *testing.T) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.mail) == 0 {
		t.Fatal("no email sent")
	}
	c := sixDigits.FindString(m.mail[len(m.mail)-1].Text)
	if c == "" {
		t.Fatal("no code in the email")
	}
	return c
}

// TestFacadeEmailMFA signs in with an email code through the facade, with
// sessions, throttling, codes, send limits and pending sign-ins in Redis
// (merged from Stores and MFAStores) and everything else in memstore:
// the pending sign-in, the code and the send counters are Redis keys, the
// code works once, and the pending sign-in is consumed.
func TestFacadeEmailMFA(t *testing.T) {
	rs, c, prefix := open(t)
	ctx := t.Context()
	kr, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")}, Current: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	box := &mailbox{}
	mem := memstore.New()
	stores := rs.Stores(mem.Stores())
	m := rs.MFAStores()
	stores.MFA.Codes, stores.MFA.Rates, stores.MFA.Transactions = m.Codes, m.Rates, m.Transactions
	clk := &clock{t: time.Now().UTC().Truncate(time.Microsecond)}
	g, err := guard.New(guard.Config{
		Stores:   stores,
		AuditKey: auditKey,
		Hasher:   auth.HasherConfig{Memory: 64, Time: 1},
		Now:      clk.Now,
		MFA:      &mfa.Config{Keyring: kr, Issuer: "Acme", Email: box},
	})
	if err != nil {
		t.Fatal(err)
	}
	sys := guard.System("test")
	if _, err := g.CreateTenant(ctx, sys, tenantID, "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: email, Name: "Alice", Password: password}); err != nil {
		t.Fatal(err)
	}
	login := func() guard.LoginResult {
		t.Helper()
		res, err := g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: password, IP: "203.0.113.5", UserAgent: "test"})
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		return res
	}
	first := login()
	p, err := g.Authenticate(ctx, first.Token)
	if err != nil {
		t.Fatal(err)
	}
	p.IP, p.UserAgent = "203.0.113.5", "test"
	fa, err := g.BeginOOB(ctx, p, mfa.KindEmail, "alice.second@example.com", "")
	if err != nil {
		t.Fatalf("BeginOOB: %v", err)
	}
	if len(keysOf(t, c, prefix+"mc:*")) != 1 {
		t.Errorf("the enrolment code is not in Redis")
	}
	if _, err := g.ConfirmFactor(ctx, p, fa.ID, box.lastCode(t)); err != nil {
		t.Fatalf("ConfirmFactor: %v", err)
	}

	pend := login()
	if pend.Pending == nil || pend.Token != "" {
		t.Fatalf("Login = %+v, want a pending sign-in", pend)
	}
	if got := keysOf(t, c, prefix+"mt:*"); len(got) != 1 {
		t.Errorf("pending sign-ins in Redis: %q, want 1", got)
	}
	clk.Advance(time.Minute) // past the resend cool-down of the enrolment code
	if err := g.SendLoginCode(ctx, pend.Pending.Token, fa.ID, "203.0.113.5", "test"); err != nil {
		t.Fatalf("SendLoginCode: %v", err)
	}
	code := box.lastCode(t)
	if got := keysOf(t, c, prefix+"mc:*"); len(got) != 1 {
		t.Errorf("codes in Redis: %q, want the login code only", got)
	}
	if got := keysOf(t, c, prefix+"mr:*"); len(got) == 0 {
		t.Error("no send counter in Redis")
	}
	for _, k := range append(keysOf(t, c, prefix+"m*"), keysOf(t, c, prefix+"s:*")...) {
		if d, err := c.PTTL(ctx, k).Result(); err != nil || d <= 0 {
			t.Errorf("PTTL %s = %v, %v; want > 0", k, d, err)
		}
	}
	res, err := g.CompleteLogin(ctx, guard.SecondFactor{Pending: pend.Pending.Token, Method: guard.MethodCode, Code: code, IP: "203.0.113.5", UserAgent: "test"})
	if err != nil || res.Token == "" {
		t.Fatalf("CompleteLogin = %+v, %v; want a session", res, err)
	}
	if _, err := g.Authenticate(ctx, res.Token); err != nil {
		t.Errorf("Authenticate with the new session: %v", err)
	}
	if got := keysOf(t, c, prefix+"mc:*"); len(got) != 0 {
		t.Errorf("codes left in Redis after use: %q", got)
	}
	if got := keysOf(t, c, prefix+"mt:*"); len(got) != 0 {
		t.Errorf("pending sign-ins left in Redis after use: %q", got)
	}
	_, err = g.CompleteLogin(ctx, guard.SecondFactor{Pending: pend.Pending.Token, Method: guard.MethodCode, Code: code, IP: "203.0.113.5", UserAgent: "test"})
	if !errors.Is(err, guard.ErrLoginExpired) {
		t.Errorf("second CompleteLogin = %v, want ErrLoginExpired", err)
	}
}
