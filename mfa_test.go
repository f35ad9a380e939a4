package guard_test

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

// outbox captures email and SMS.
type outbox struct {
	mu   sync.Mutex
	mail []mfa.Message
	sms  []string
}

func (o *outbox) SendEmail(_ context.Context, m mfa.Message) error {
	o.mu.Lock()
	o.mail = append(o.mail, m)
	o.mu.Unlock()
	return nil
}

func (o *outbox) SendSMS(_ context.Context, to, text string) error {
	o.mu.Lock()
	o.sms = append(o.sms, to+"|"+text)
	o.mu.Unlock()
	return nil
}

func (o *outbox) lastMail(t testing.TB) mfa.Message {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.mail) == 0 {
		t.Fatal("no email sent")
	}
	return o.mail[len(o.mail)-1]
}

// lastMailWith returns the last email whose text contains s: notices are
// sent in the background, so they may arrive after the mail looked for.
func (o *outbox) lastMailWith(t testing.TB, s string) mfa.Message {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.mail) - 1; i >= 0; i-- {
		if strings.Contains(o.mail[i].Text, s) {
			return o.mail[i]
		}
	}
	t.Fatalf("no email with %q among %d", s, len(o.mail))
	return mfa.Message{}
}

func (o *outbox) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.mail) + len(o.sms)
}

var digits6 = regexp.MustCompile(`\b\d{6}\b`)

type mfaFixture struct {
	*fixture
	out *outbox
}

func newMFAFixture(t testing.TB, mutate ...func(*guard.Config)) *mfaFixture {
	t.Helper()
	out := &outbox{}
	kr, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")}, Current: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, append([]func(*guard.Config){func(c *guard.Config) {
		c.MFA = &mfa.Config{Keyring: kr, Issuer: "Acme", Email: out, SMS: out}
		c.Recovery = guard.RecoveryConfig{Email: out, BaseURL: "https://app.example.test"}
	}}, mutate...)...)
	return &mfaFixture{fixture: f, out: out}
}

// signIn logs in with a password and expects a session.
func (f *mfaFixture) signIn(t testing.TB, email, pw string) (guard.LoginResult, guard.Principal) {
	t.Helper()
	res, err := f.login(email, pw)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if res.Pending != nil || res.Token == "" {
		t.Fatalf("Login gave a pending sign-in, want a session")
	}
	p, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	p.IP, p.UserAgent = "203.0.113.5", "test"
	return res, p
}

// enrolTOTP enrols an authenticator app for the signed-in user and returns
// its secret.
func (f *mfaFixture) enrolTOTP(t testing.TB, p guard.Principal) (secret string, recovery []string) {
	t.Helper()
	en, err := f.g.BeginTOTP(f.ctx, p, "Phone")
	if err != nil {
		t.Fatalf("BeginTOTP: %v", err)
	}
	if len(en.QRPNG) < 8 || string(en.QRPNG[1:4]) != "PNG" || !strings.HasPrefix(en.URI, "otpauth://totp/") {
		t.Fatalf("enrolment without QR PNG or otpauth URI: %q", en.URI)
	}
	codes, err := f.g.ConfirmFactor(f.ctx, p, en.Factor.ID, f.code(t, en.Secret))
	if err != nil {
		t.Fatalf("ConfirmFactor: %v", err)
	}
	return en.Secret, codes
}

// enrolEmail adds a confirmed email factor sending to addr for the
// signed-in user p.
func (f *mfaFixture) enrolEmail(t testing.TB, p guard.Principal, addr string) mfa.Factor {
	t.Helper()
	fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ConfirmFactor(f.ctx, p, fa.ID, f.out.lastCodeTo(t, addr)); err != nil {
		t.Fatal(err)
	}
	return fa
}

// enrolSMS adds a confirmed SMS factor sending to number for the
// signed-in user p.
func (f *mfaFixture) enrolSMS(t testing.TB, p guard.Principal, number string) mfa.Factor {
	t.Helper()
	fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindSMS, number, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ConfirmFactor(f.ctx, p, fa.ID, f.out.lastSMSCode(t)); err != nil {
		t.Fatal(err)
	}
	return fa
}

// lastCodeTo returns the six-digit code of the newest mail to addr that
// holds one: notices go out in the background and may arrive after a
// code (a "factor added" notice after the next sign-in's code).
func (o *outbox) lastCodeTo(t testing.TB, addr string) string {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.mail) - 1; i >= 0; i-- {
		if c := digits6.FindString(o.mail[i].Text); o.mail[i].To == addr && c != "" {
			return c
		}
	}
	t.Fatalf("no code mailed to %s among %d mails", addr, len(o.mail))
	return ""
}

// withEmailCode signs in with the password, then the code sent by the
// email factor fa, and returns CompleteLogin's answer.
func (f *mfaFixture) withEmailCode(t testing.TB, email, pw string, fa mfa.Factor) (guard.LoginResult, error) {
	t.Helper()
	pend := f.pending(t, email, pw)
	if err := f.g.SendLoginCode(f.ctx, pend.Token, fa.ID, "203.0.113.5", "test"); err != nil {
		t.Fatal(err)
	}
	return f.complete(guard.MethodCode, pend.Token, f.out.lastCodeTo(t, fa.Destination))
}

func (f *mfaFixture) code(t testing.TB, secret string) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *mfaFixture) pending(t testing.TB, email, pw string) *guard.Pending {
	t.Helper()
	res, err := f.login(email, pw)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if res.Pending == nil || res.Token != "" {
		t.Fatalf("Login = %+v, want a pending sign-in and no session", res)
	}
	return res.Pending
}

func (f *mfaFixture) complete(method, pending, code string) (guard.LoginResult, error) {
	return f.g.CompleteLogin(f.ctx, guard.SecondFactor{Pending: pending, Method: method, Code: code, IP: "203.0.113.5", UserAgent: "test"})
}

const adaEmail = "ada@example.test"

// SECURITY-CHECKLIST MF-1.
func TestLoginWithPasswordAndTOTP(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, recovery := f.enrolTOTP(t, p)
	if len(recovery) != 10 {
		t.Fatalf("first factor gave %d recovery codes, want 10", len(recovery))
	}
	f.clock.Advance(31 * time.Second)

	pend := f.pending(t, adaEmail, ownerPW)
	if len(pend.Factors) != 1 || pend.Factors[0].Kind != mfa.KindTOTP || pend.Factors[0].Secret != nil {
		t.Fatalf("pending factors = %+v", pend.Factors)
	}
	// The pending token opens nothing.
	if _, err := f.g.Authenticate(f.ctx, pend.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Authenticate(pending token) = %v, want ErrUnauthenticated", err)
	}
	code := f.code(t, secret)
	res, err := f.complete(guard.MethodTOTP, pend.Token, code)
	if err != nil {
		t.Fatalf("CompleteLogin: %v", err)
	}
	pa, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil || pa.Flags&guard.FlagMFA == 0 {
		t.Fatalf("session after TOTP: %+v, %v; want FlagMFA", pa, err)
	}
	// The pending sign-in is used up.
	if _, err := f.complete(guard.MethodTOTP, pend.Token, code); !errors.Is(err, guard.ErrLoginExpired) {
		t.Errorf("second CompleteLogin = %v, want ErrLoginExpired", err)
	}
	// The same code is never accepted twice, not even for a new sign-in.
	pend2 := f.pending(t, adaEmail, ownerPW)
	if _, err := f.complete(guard.MethodTOTP, pend2.Token, code); !errors.Is(err, guard.ErrInvalidCode) {
		t.Errorf("reused TOTP code = %v, want ErrInvalidCode", err)
	}
	if r := reasons(f.events(t, audit.MFAFailed)); r[guard.ReasonCodeReuse] != 1 {
		t.Errorf("mfa.failed reasons = %v, want one reuse", r)
	}
	// An earlier step is refused after a later one was used.
	f.clock.Advance(30 * time.Second)
	later := f.code(t, secret)
	if _, err := f.complete(guard.MethodTOTP, pend2.Token, later); err != nil {
		t.Fatalf("next step's code: %v", err)
	}
	if n := len(f.events(t, audit.MFASucceeded)); n != 2 {
		t.Errorf("%d mfa.succeeded events, want 2", n)
	}
	if n := len(f.events(t, audit.MFAEnrolled)); n != 1 {
		t.Errorf("%d mfa.enrolled events, want 1", n)
	}
}

// SECURITY-CHECKLIST MF-6.
func TestSecondFactorFailuresCountInLockout(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	f.enrolTOTP(t, p)
	f.clock.Advance(time.Minute)
	pend := f.pending(t, adaEmail, ownerPW)
	for i := range guard.DefaultAccountLimit.Max {
		if _, err := f.complete(guard.MethodTOTP, pend.Token, "000000"); !errors.Is(err, guard.ErrInvalidCode) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	// The account is now locked: the right password is refused too, and
	// logging in again does not reset the count.
	if _, err := f.login(adaEmail, ownerPW); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Fatalf("login after 5 wrong codes = %v, want ErrInvalidCredentials (locked)", err)
	}
	if r := reasons(f.events(t, audit.LoginFailed)); r[guard.ReasonLocked] != 1 {
		t.Errorf("login.failed reasons %v, want one locked", r)
	}
	if n := len(f.events(t, audit.LoginLocked)); n != 1 {
		t.Errorf("%d login.locked events, want 1", n)
	}
}

func TestPasswordStepDoesNotResetSecondFactorFailures(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	f.enrolTOTP(t, p)
	f.clock.Advance(time.Minute)
	// Knowing the password must not buy unlimited code guesses.
	wrong := 0
	for range 20 {
		res, err := f.login(adaEmail, ownerPW)
		if err != nil {
			break
		}
		for range 2 {
			if _, err := f.complete(guard.MethodTOTP, res.Pending.Token, "000000"); err == nil {
				t.Fatal("a wrong code was accepted")
			}
			wrong++
		}
	}
	if wrong > guard.DefaultAccountLimit.Max+1 {
		t.Errorf("%d wrong codes evaluated before the lock, limit %d", wrong, guard.DefaultAccountLimit.Max)
	}
}

// SECURITY-CHECKLIST MF-20.
func TestPendingSignInBoundToClient(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	f.clock.Advance(time.Minute)
	pend := f.pending(t, adaEmail, ownerPW)
	_, err := f.g.CompleteLogin(f.ctx, guard.SecondFactor{Pending: pend.Token, Method: guard.MethodTOTP, Code: f.code(t, secret), UserAgent: "another browser"})
	if !errors.Is(err, guard.ErrLoginExpired) {
		t.Errorf("CompleteLogin from another client = %v, want ErrLoginExpired", err)
	}
	f.clock.Advance(6 * time.Minute)
	if _, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret)); !errors.Is(err, guard.ErrLoginExpired) {
		t.Errorf("CompleteLogin after the pending sign-in expired = %v, want ErrLoginExpired", err)
	}
}

func TestConcurrentSecondFactorOneSession(t *testing.T) {
	f := newMFAFixture(t, func(c *guard.Config) { c.Defaults.SessionLimit = 100 })
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	f.clock.Advance(time.Minute)
	pends := make([]string, 20)
	for i := range pends {
		pends[i] = f.pending(t, adaEmail, ownerPW).Token
	}
	code := f.code(t, secret)
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if _, err := f.complete(guard.MethodTOTP, pends[i%20], code); err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if n := ok.Load(); n != 1 {
		t.Errorf("%d sign-ins completed with one TOTP code, want 1", n)
	}
}

func TestRecoveryCodeSignIn(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	_, codes := f.enrolTOTP(t, p)
	pend := f.pending(t, adaEmail, ownerPW)
	res, err := f.complete(guard.MethodRecovery, pend.Token, codes[3])
	if err != nil {
		t.Fatalf("CompleteLogin with a recovery code: %v", err)
	}
	if res.RecoveryLeft == nil || res.RecoveryLeft.Left != 9 {
		t.Errorf("RecoveryLeft = %+v, want 9 left", res.RecoveryLeft)
	}
	pend = f.pending(t, adaEmail, ownerPW)
	if _, err := f.complete(guard.MethodRecovery, pend.Token, codes[3]); !errors.Is(err, guard.ErrInvalidCode) {
		t.Errorf("reused recovery code = %v, want ErrInvalidCode", err)
	}
	if evs := f.events(t, audit.RecoveryUsed); len(evs) != 1 || evs[0].Meta["left"] != "9" {
		t.Errorf("mfa.recovery_used events = %+v", evs)
	}
	f.g.Close() // waits for the notice (the enrolment's may come after it)
	if m := f.out.lastMailWith(t, "recovery codes was just used"); m.To != adaEmail || strings.Contains(m.Text, codes[3]) {
		t.Errorf("notice of recovery code use: %+v", m)
	}
}

func TestEmailCodeSignIn(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, "ada.second@example.test", "")
	if err != nil {
		t.Fatalf("BeginOOB: %v", err)
	}
	code := f.out.lastCodeTo(t, "ada.second@example.test")
	if _, err := f.g.ConfirmFactor(f.ctx, p, fa.ID, code); err != nil {
		t.Fatalf("ConfirmFactor(email): %v", err)
	}
	a := f.pending(t, adaEmail, ownerPW)
	if err := f.g.SendLoginCode(f.ctx, a.Token, fa.ID, "203.0.113.5", "test"); err != nil {
		t.Fatalf("SendLoginCode: %v", err)
	}
	codeA := f.out.lastCodeTo(t, "ada.second@example.test")
	b := f.pending(t, adaEmail, ownerPW)
	// A code sent for sign-in A fails in sign-in B.
	if _, err := f.complete(guard.MethodCode, b.Token, codeA); !errors.Is(err, guard.ErrInvalidCode) {
		t.Errorf("code of A used in B = %v, want ErrInvalidCode", err)
	}
	res, err := f.complete(guard.MethodCode, a.Token, codeA)
	if err != nil {
		t.Fatalf("CompleteLogin with the email code: %v", err)
	}
	if res.Token == "" {
		t.Fatal("no session")
	}
	// A resend inside the cool-down looks the same but sends nothing.
	c := f.pending(t, adaEmail, ownerPW)
	before := f.out.count()
	for range 2 {
		if err := f.g.SendLoginCode(f.ctx, c.Token, fa.ID, "203.0.113.5", "test"); err != nil {
			t.Fatalf("SendLoginCode: %v", err)
		}
	}
	if n := f.out.count() - before; n != 1 {
		t.Errorf("%d codes sent for two requests inside the cool-down, want 1", n)
	}
	if r := reasons(f.events(t, audit.MFACodeSuppressed)); r["cool_down"] != 1 {
		t.Errorf("mfa.code_suppressed reasons %v, want one cool_down", r)
	}
}

func TestRequireMFAForcesEnrolment(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	f.createUser(t, "bob@example.test", ownerPW)
	sys := guard.System("test")
	ad, err := f.g.MFAAdoption(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if ad.Users != 2 || ad.WithMFA != 0 || ad.Neither != 2 || ad.WouldEnrolTotal != 2 || len(ad.WouldEnrol) != 2 {
		t.Fatalf("adoption before = %+v", ad)
	}
	tn, _ := f.g.Tenant(f.ctx, tenantID)
	if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, guard.Policy{RequireMFA: true}, tn.Version); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	pend := f.pending(t, adaEmail, ownerPW)
	if !pend.Enrol {
		t.Fatal("a user without a factor was not sent to enrol")
	}
	// An enrolment sign-in cannot be completed as a second-factor one.
	if _, err := f.complete(guard.MethodTOTP, pend.Token, "123456"); !errors.Is(err, guard.ErrLoginExpired) {
		t.Errorf("CompleteLogin on an enrolment = %v, want ErrLoginExpired", err)
	}
	en, err := f.g.BeginPendingTOTP(f.ctx, pend.Token, "203.0.113.5", "test", "")
	if err != nil {
		t.Fatalf("BeginPendingTOTP: %v", err)
	}
	res, err := f.g.CompletePendingEnrolment(f.ctx, guard.SecondFactor{Pending: pend.Token, FactorID: en.Factor.ID, Code: f.code(t, en.Secret), IP: "203.0.113.5", UserAgent: "test"})
	if err != nil {
		t.Fatalf("CompletePendingEnrolment: %v", err)
	}
	if res.Token == "" || len(res.RecoveryCodes) != 10 {
		t.Fatalf("enrolment sign-in gave token %q and %d recovery codes", res.Token, len(res.RecoveryCodes))
	}
	ad, err = f.g.MFAAdoption(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if ad.WithMFA != 1 || ad.Neither != 1 || ad.WouldEnrolTotal != 1 || ad.WouldEnrol[0].Email != "bob@example.test" {
		t.Errorf("adoption after = %+v", ad)
	}
	var pe *guard.PolicyError
	plain := newFixture(t)
	if _, err := plain.g.SetPolicy(plain.ctx, sys, tenantID, guard.Policy{RequireMFA: true}, 1); !errors.As(err, &pe) {
		t.Errorf("RequireMFA without Config.MFA = %v, want a PolicyError", err)
	}
}

func TestRequireMFAGracePeriod(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	sys := guard.System("test")
	tn, _ := f.g.Tenant(f.ctx, tenantID)
	if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, guard.Policy{RequireMFA: true, MFAGrace: 24 * time.Hour}, tn.Version); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	res, p := f.signIn(t, adaEmail, ownerPW)
	if !p.MustEnrol() || res.Pending != nil {
		t.Errorf("inside the grace period: flags %b, want FlagMustEnrol and a session", p.Flags)
	}
	f.clock.Advance(24 * time.Hour)
	if pend := f.pending(t, adaEmail, ownerPW); !pend.Enrol {
		t.Error("after the grace period the user was not sent to enrol")
	}
}

func TestStepUp(t *testing.T) {
	f := newMFAFixture(t)
	if _, err := f.g.CreateUser(f.ctx, guard.System("test"), guard.NewUser{Tenant: tenantID, Email: adaEmail, Name: "Ada", Password: ownerPW, Roles: []string{"owner"}}); err != nil {
		t.Fatal(err)
	}
	res, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	fs, _ := f.g.Factors(f.ctx, p, tenantID, p.UserID)
	f.clock.Advance(16 * time.Minute)
	p, _ = f.g.Authenticate(f.ctx, res.Token)
	if err := f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, fs[0].ID); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Fatalf("RemoveFactor on an old session = %v, want ErrStepUpRequired", err)
	}
	if _, err := f.g.SetPolicy(f.ctx, p, tenantID, guard.Policy{}, 1); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Errorf("SetPolicy on an old session = %v, want ErrStepUpRequired", err)
	}
	if _, _, err := f.g.Reauthenticate(f.ctx, p, res.Token, guard.Proof{Password: ownerPW}); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Errorf("Reauthenticate without the TOTP code = %v, want ErrInvalidCredentials", err)
	}
	tok, _, err := f.g.Reauthenticate(f.ctx, p, res.Token, guard.Proof{Password: ownerPW, TOTP: f.code(t, secret)})
	if err != nil {
		t.Fatalf("Reauthenticate: %v", err)
	}
	if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Error("the old token still works after Reauthenticate")
	}
	p, _ = f.g.Authenticate(f.ctx, tok)
	if err := f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, fs[0].ID); err != nil {
		t.Fatalf("RemoveFactor after step-up: %v", err)
	}
	if left, _ := f.g.Factors(f.ctx, p, tenantID, p.UserID); len(left) != 0 {
		t.Errorf("%d factors left", len(left))
	}
	if evs := f.events(t, audit.MFARemoved); len(evs) != 1 {
		t.Errorf("%d mfa.removed events", len(evs))
	}
}

const resetPrefix = "https://app.example.test/reset?"

func resetLink(t testing.TB, m mfa.Message) url.Values {
	t.Helper()
	return mailLink(t, m, resetPrefix)
}

// lastResetLink returns the reset link of the newest mail among ms that
// holds one: notices go out in the background, so a "password changed"
// notice of an earlier step may come after the reset mail.
func lastResetLink(t testing.TB, ms []mfa.Message) url.Values {
	t.Helper()
	for i := len(ms) - 1; i >= 0; i-- {
		if strings.Contains(ms[i].Text, resetPrefix) {
			return resetLink(t, ms[i])
		}
	}
	t.Fatalf("no reset link among %d mails", len(ms))
	return nil
}

// mailLink returns the query of the link in m that starts with prefix.
func mailLink(t testing.TB, m mfa.Message, prefix string) url.Values {
	t.Helper()
	i := strings.Index(m.Text, prefix)
	if i < 0 {
		t.Fatalf("no link %s… in %q", prefix, m.Text)
	}
	u, err := url.Parse(strings.Fields(m.Text[i:])[0])
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestPasswordResetKeepsMFA(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	f.enrolTOTP(t, p)
	req := guard.ForgotRequest{Tenant: tenantID, Email: "ADA@example.test ", IP: "203.0.113.5", UserAgent: "test"}
	if err := f.g.ForgotPassword(f.ctx, req); err != nil {
		t.Fatal(err)
	}
	f.g.Close() // waits for the background send
	first := resetLink(t, f.out.lastMailWith(t, resetPrefix))
	if err := f.g.ForgotPassword(f.ctx, req); err != nil {
		t.Fatal(err)
	}
	f.g.Close()
	second := resetLink(t, f.out.lastMailWith(t, resetPrefix))
	newPW := "an entirely new passphrase"
	rr := func(q url.Values) guard.ResetRequest {
		return guard.ResetRequest{Tenant: q.Get("tenant"), UserID: q.Get("user"), Token: q.Get("token"), NewPassword: newPW}
	}
	// A newer request voids the older link.
	if err := f.g.ResetPassword(f.ctx, rr(first)); !errors.Is(err, guard.ErrInvalidResetToken) {
		t.Fatalf("reset with the voided link = %v, want ErrInvalidResetToken", err)
	}
	weak := rr(second)
	weak.NewPassword = "password1"
	var pe *auth.PolicyError
	if err := f.g.ResetPassword(f.ctx, weak); !errors.As(err, &pe) {
		t.Fatalf("reset to a common password = %v, want a PolicyError", err)
	}
	if err := f.g.ResetPassword(f.ctx, rr(second)); err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	if _, err := f.g.Authenticate(f.ctx, "x"); err == nil {
		t.Fatal("garbage token authenticated")
	}
	if ss, _ := f.g.UserSessions(f.ctx, guard.System("t"), tenantID, p.UserID); len(ss) != 0 {
		t.Errorf("%d sessions survived the reset", len(ss))
	}
	// Single use.
	if err := f.g.ResetPassword(f.ctx, rr(second)); !errors.Is(err, guard.ErrInvalidResetToken) {
		t.Errorf("second use of the link = %v, want ErrInvalidResetToken", err)
	}
	// The reset did not disable MFA.
	if pend := f.pending(t, adaEmail, newPW); pend.Enrol || len(pend.Factors) != 1 {
		t.Errorf("after the reset: pending %+v, want the TOTP factor still asked for", pend)
	}
	if n := len(f.events(t, audit.PasswordReset)); n < 2 {
		t.Errorf("%d password.reset events, want the refusal and the reset", n)
	}
}

// SECURITY-CHECKLIST RS-1.
func TestForgotPasswordSameAnswer(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	for _, email := range []string{adaEmail, "nobody@example.test"} {
		if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: email}); err != nil {
			t.Errorf("ForgotPassword(%s) = %v", email, err)
		}
	}
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: "no-such-tenant", Email: adaEmail}); err != nil {
		t.Errorf("ForgotPassword in an unknown tenant = %v", err)
	}
	f.g.Close()
	if n := f.out.count(); n != 1 {
		t.Errorf("%d emails sent, want 1 (only to the existing account)", n)
	}
	if m := f.out.lastMail(t); m.To != adaEmail || strings.Contains(m.Text, "Host") {
		t.Errorf("mail to %q", m.To)
	}
	if r := reasons(f.events(t, audit.PasswordResetRequested)); r[guard.ReasonUnknownUser] != 1 || r[""] != 1 {
		t.Errorf("password.reset_requested reasons %v", r)
	}
}

func TestCaptchaFailsClosed(t *testing.T) {
	var calls atomic.Int32
	captcha := auth.CaptchaFunc(func(_ context.Context, token, _ string) error {
		calls.Add(1)
		if token != "human" {
			return errors.New("captcha refused")
		}
		return nil
	})
	f := newMFAFixture(t, func(c *guard.Config) { c.Captcha = captcha })
	f.createUser(t, adaEmail, ownerPW)
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail}); !errors.Is(err, guard.ErrCaptchaRequired) {
		t.Errorf("ForgotPassword without a CAPTCHA = %v, want ErrCaptchaRequired", err)
	}
	// The first failures need no CAPTCHA; after CaptchaAfter they do.
	for range 3 {
		if _, err := f.login(adaEmail, "wrong password!"); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("CAPTCHA asked %d times during the first failures", calls.Load())
	}
	if _, err := f.login(adaEmail, ownerPW); !errors.Is(err, guard.ErrCaptchaRequired) {
		t.Errorf("login after 3 failures without a CAPTCHA = %v, want ErrCaptchaRequired", err)
	}
	res, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: adaEmail, Password: ownerPW, IP: "203.0.113.5", UserAgent: "test", Captcha: "human"})
	if err != nil || res.Token == "" {
		t.Errorf("login with a CAPTCHA = %v", err)
	}
}

func totpCode(t testing.TB, secret string) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestInvitationAndConveniences(t *testing.T) {
	f := newMFAFixture(t)
	sys := guard.System("test")
	u, err := f.g.CreateUser(f.ctx, sys, guard.NewUser{Tenant: tenantID, Email: "new@example.test", Name: "New"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.g.UserByEmail(f.ctx, sys, tenantID, "NEW@example.test"); err != nil || got.ID != u.ID {
		t.Fatalf("UserByEmail = %+v, %v", got, err)
	}
	if err := f.g.SendInvitation(f.ctx, sys, tenantID, u.ID); err != nil {
		t.Fatal(err)
	}
	q := resetLink(t, f.out.lastMailWith(t, resetPrefix))
	if err := f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: q.Get("tenant"), UserID: q.Get("user"), Token: q.Get("token"), NewPassword: "an invited user's passphrase"}); err != nil {
		t.Fatalf("setting the password from the invitation: %v", err)
	}
	if _, err := f.login("new@example.test", "an invited user's passphrase"); err != nil {
		t.Errorf("login after the invitation: %v", err)
	}
	// Can records nothing; Authorize records the denial.
	p, _ := f.userWithRoles(t, "rita@example.test", rbac.ReportsOnly)
	before := len(f.events(t, audit.AccessDenied))
	if ok, err := f.g.Can(f.ctx, p, rbac.Contacts, rbac.Read); ok || err != nil {
		t.Errorf("Can(reports-only, contacts) = %v, %v", ok, err)
	}
	if ok, _ := f.g.Can(f.ctx, p, rbac.Reports, rbac.Read); !ok {
		t.Error("Can(reports-only, reports) = false")
	}
	if n := len(f.events(t, audit.AccessDenied)); n != before {
		t.Errorf("Can recorded %d denials", n-before)
	}
	if err := f.g.SetApprovalRequired(f.ctx, sys, tenantID, "campaigns:send", true); err != nil {
		t.Fatal(err)
	}
	if rules, err := f.g.ApprovalRules(f.ctx, p, tenantID); err != nil || len(rules) != 1 || rules[0].String() != "campaigns:send" {
		t.Errorf("ApprovalRules = %v, %v", rules, err)
	}
}

// An invitation lives Recovery.InviteTTL (default 3 days), not the 30
// minutes of a reset link: an invited person may read it days later. Its
// email says how long.
func TestInvitationLinkLivesDays(t *testing.T) {
	f := newMFAFixture(t)
	sys := guard.System("test")
	invite := func(email string) url.Values {
		t.Helper()
		u, err := f.g.CreateUser(f.ctx, sys, guard.NewUser{Tenant: tenantID, Email: email, Name: "New"})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.g.SendInvitation(f.ctx, sys, tenantID, u.ID); err != nil {
			t.Fatal(err)
		}
		m := f.out.lastMailWith(t, resetPrefix)
		if !strings.Contains(m.Text, "within 3 days") {
			t.Errorf("invitation text %q does not say 3 days", m.Text)
		}
		return resetLink(t, m)
	}
	set := func(q url.Values) error {
		return f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: q.Get("tenant"), UserID: q.Get("user"), Token: q.Get("token"),
			NewPassword: "an invited user's passphrase"})
	}
	early, late := invite("early@example.test"), invite("late@example.test")
	f.clock.Advance(3*24*time.Hour - time.Minute)
	if err := set(early); err != nil {
		t.Errorf("the invitation a minute before 3 days: %v", err)
	}
	f.clock.Advance(2 * time.Minute)
	if err := set(late); err == nil {
		t.Error("the invitation a minute after 3 days was accepted")
	}
	for _, ttl := range []time.Duration{-time.Hour, 8 * 24 * time.Hour} {
		var pe *guard.PolicyError
		_, err := guard.New(guard.Config{Stores: newMem(), AuditKey: auditKey, Recovery: guard.RecoveryConfig{Email: f.out,
			BaseURL: "https://app.example.test", InviteTTL: ttl}})
		if !errors.As(err, &pe) || pe.Field != "Recovery.InviteTTL" {
			t.Errorf("InviteTTL %v: %v, want a PolicyError on Recovery.InviteTTL", ttl, err)
		}
	}
}
