package guard_test

// Audit of the multi-factor flow (axis "mfaflow"): enrolment, sign-in
// with a second factor, recovery codes, removal, step-up and the
// tenant's RequireMFA. Each test fails for the defect it names.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// hookedFactors runs before, once, ahead of the next factor deletion
// (DeleteFactor or DeleteFactorKeeping): the window between what
// RemoveFactor read and what it deletes.
type hookedFactors struct {
	mfa.FactorStore
	mu     sync.Mutex
	before func()
}

func (h *hookedFactors) take() func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn := h.before
	h.before = nil
	return fn
}

func (h *hookedFactors) DeleteFactor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	if fn := h.take(); fn != nil {
		fn()
	}
	return h.FactorStore.DeleteFactor(ctx, tenant, userID, id)
}

func (h *hookedFactors) DeleteFactorKeeping(ctx context.Context, tenant, userID, id string, keep int) (mfa.Factor, error) {
	if fn := h.take(); fn != nil {
		fn()
	}
	return h.FactorStore.DeleteFactorKeeping(ctx, tenant, userID, id, keep)
}

// toggledFactors fails Factors while factors is set and AdvanceStep while
// advance is set.
type toggledFactors struct {
	mfa.FactorStore
	mfa.FactorUpdater
	factors, advance atomic.Bool
}

func (s *toggledFactors) Factors(ctx context.Context, tenant, userID string) ([]mfa.Factor, error) {
	if s.factors.Load() {
		return nil, errDown
	}
	return s.FactorStore.Factors(ctx, tenant, userID)
}

func (s *toggledFactors) AdvanceStep(ctx context.Context, tenant, userID, id string, step int64) error {
	if s.advance.Load() {
		return errDown
	}
	return s.FactorUpdater.AdvanceStep(ctx, tenant, userID, id, step)
}

// requireMFA switches the tenant's RequireMFA on with the given grace
// period, email codes not allowed (MFAAllowEmail off).
func (f *mfaFixture) requireMFA(t *testing.T, grace time.Duration) {
	t.Helper()
	tn, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, guard.Policy{RequireMFA: true, MFAGrace: grace}, tn.Version); err != nil {
		t.Fatal(err)
	}
}

// totpSignIn signs Ada in with her password and a TOTP code of secret at
// the clock's current step, and returns the principal and token.
func (f *mfaFixture) totpSignIn(t *testing.T, secret string) (guard.Principal, string) {
	t.Helper()
	res, err := f.complete(guard.MethodTOTP, f.pending(t, adaEmail, ownerPW).Token, f.code(t, secret))
	if err != nil {
		t.Fatalf("sign-in with TOTP: %v", err)
	}
	p, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	p.IP, p.UserAgent = "203.0.113.5", "test"
	return p, res.Token
}

func factorOfKind(t *testing.T, fs []mfa.Factor, k mfa.Kind) mfa.Factor {
	t.Helper()
	for _, fa := range fs {
		if fa.Kind == k {
			return fa
		}
	}
	t.Fatalf("no %s factor among %+v", k, fs)
	return mfa.Factor{}
}

// withHookedFactors puts the factor store of a config behind h.
func withHookedFactors(h *hookedFactors) func(*guard.Config) {
	return func(c *guard.Config) {
		h.FactorStore = c.Stores.MFA.Factors
		c.Stores.MFA.Factors = h
	}
}

// adaWithApp creates Ada, signs her in with her password and enrols an
// authenticator app: her principal, the app's secret and factor ID.
func (f *mfaFixture) adaWithApp(t *testing.T) (guard.Principal, string, string) {
	t.Helper()
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID)
	if err != nil || len(fs) != 1 {
		t.Fatalf("Factors: %v, %v", fs, err)
	}
	return p, secret, fs[0].ID
}

// Severity: medium. While the tenant requires MFA without allowing email
// codes (Policy.MFAAllowEmail off), a user may remove their own
// authenticator app as long as an email factor is left: RemoveFactor
// (mfaflow.go) keeps "one confirmed factor" of any kind
// (RemoveFactorKeeping(..., 1)), though an email factor does not meet the
// policy (mfa.Satisfies(kinds, false) is false). The session keeps its
// FlagMFA with no factor behind it that the policy accepts — exactly what
// ErrFactorRequired is documented to prevent. Expected: the removal of the
// last factor that satisfies the policy is refused with ErrFactorRequired
// (recorded, reason mfa_required), as for the last factor of all.
// (TestOwnLastFactorKeptUnderRequireMFA asserts the removal succeeds; it
// would change with the fix.)
func TestAuditMfaflow_LastStrongFactorRemovableUnderRequireMFA(t *testing.T) {
	f := newMFAFixture(t)
	p, secret, _ := f.adaWithApp(t)
	f.enrolEmail(t, p, "ada.codes@example.test")
	f.requireMFA(t, 0)
	f.clock.Advance(31 * time.Second)
	p, tok := f.totpSignIn(t, secret)
	fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID)
	if err != nil {
		t.Fatal(err)
	}
	app := factorOfKind(t, fs, mfa.KindTOTP)
	err = f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, app.ID)
	left, _ := f.g.Factors(f.ctx, p, tenantID, p.UserID)
	pa, aerr := f.g.Authenticate(f.ctx, tok)
	if !errors.Is(err, guard.ErrFactorRequired) {
		t.Errorf("removing one's own last authenticator app under RequireMFA (email not allowed): %v, want ErrFactorRequired; "+
			"left kinds %v (satisfy the policy: %v), the session still authenticates (%v) with FlagMFA %v",
			err, mfa.ConfirmedKinds(left), mfa.Satisfies(mfa.ConfirmedKinds(left), false), aerr, pa.HasMFA())
	}
}

// Severity: low. RemoveFactor reads the factor (prev) before deleting it
// and, when a later step fails (the audit record, ending the sessions),
// puts prev back "as it was (secret and last step included)"
// (mfaflow.go, restore/putBack). A sign-in that used a TOTP code between
// the read and the deletion advanced LastStep; the restored copy carries
// the older LastStep, so that same code is accepted a second time, which
// the package promises never happens (mfa/doc.go: "a code is accepted
// once"). Expected: the replayed code is refused (ErrInvalidCode, reason
// reuse): restore the factor as it was deleted (DeleteFactor returns it,
// with its current LastStep), not as first read.
func TestAuditMfaflow_RemovalUndoneReplaysTOTPCode(t *testing.T) {
	var fa *failingAudit
	hooked := &hookedFactors{}
	f := newMFAFixture(t, withFailingAudit(&fa), withHookedFactors(hooked))
	p, secret, app := f.adaWithApp(t)
	f.clock.Advance(31 * time.Second)
	code := f.code(t, secret)
	hooked.before = func() {
		// The user signs in with this step's code while the removal runs,
		// then the audit log goes down before the removal is recorded.
		if _, err := f.complete(guard.MethodTOTP, f.pending(t, adaEmail, ownerPW).Token, code); err != nil {
			t.Errorf("sign-in during the removal: %v", err)
		}
		fa.set(true)
	}
	err := f.g.RemoveFactor(f.ctx, guard.System("test"), tenantID, p.UserID, app)
	fa.set(false)
	wantUnavailable(t, "RemoveFactor", err)
	// Same clock, same step: the code was used once already.
	res, err := f.complete(guard.MethodTOTP, f.pending(t, adaEmail, ownerPW).Token, code)
	if !errors.Is(err, guard.ErrInvalidCode) || res.Token != "" {
		t.Errorf("the TOTP code used once, replayed after the removal was undone: token %t, %v; want ErrInvalidCode (reuse)",
			res.Token != "", err)
	}
}

// Severity: medium. The per-destination send limit of email codes
// (mfa.SendLimits.PerDestination, default 5 an hour, across tenants: it
// protects an address from being flooded by enrolments anyone can start)
// counts the destination exactly as typed. The facade's BeginOOB
// (mfaflow.go) passes the destination to mfa.Manager.BeginOOB without
// canonicalising it, though mfa's checkDestination says "the facade
// passes it canonical" and Guard case-folds every account email
// (auth.CanonicalEmail). Each capitalisation of one address therefore has
// its own count, and one mailbox receives as many codes as there are
// spellings (bounded only by the per-account and per-IP limits, which an
// attacker spreads over accounts and addresses). Expected: at most
// PerDestination codes reach one mailbox per window, whatever the case.
func TestAuditMfaflow_DestinationCaseEscapesSendLimit(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	spellings := []string{
		"victim@example.test", "Victim@example.test", "vIctim@example.test", "viCtim@example.test",
		"vicTim@example.test", "victIm@example.test", "victiM@example.test", "victim@Example.test",
	}
	for _, d := range spellings {
		if _, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, d, ""); err != nil {
			t.Fatalf("BeginOOB(%s): %v", d, err)
		}
	}
	f.g.Close() // waits for background sends
	f.out.mu.Lock()
	got := 0
	for _, m := range f.out.mail {
		if strings.EqualFold(m.To, "victim@example.test") && digits6.MatchString(m.Text) {
			got++
		}
	}
	f.out.mu.Unlock()
	if got > 5 {
		t.Errorf("%d enrolment codes reached victim@example.test within the hour, want at most PerDestination (5)", got)
	}
}

// Severity: low. Reauthenticate documents "Every attempt is recorded
// (session.reauthenticated)", and records a throttle-store failure
// (reason unavailable); but once the password is right, a failure of the
// MFA stores — loading the user's factors, or the atomic step of
// VerifyTOTP — returns ErrUnavailable with no event at all
// (mfaflow.go: `return ..., mfaErr("load factors", err)` and
// `return ..., unavailable("second factor", err)`, not through fail).
// Expected: one failed session.reauthenticated event, reason unavailable,
// as for the throttle store (TestThrottleFailuresOfCredentialStepsRecorded)
// and as CompleteLogin records the same failures (mfa.failed).
func TestAuditMfaflow_StepUpMFAStoreFailureUnrecorded(t *testing.T) {
	tf := &toggledFactors{}
	f := newMFAFixture(t, func(c *guard.Config) {
		tf.FactorStore, tf.FactorUpdater = c.Stores.MFA.Factors, c.Stores.MFA.FactorUpdates
		c.Stores.MFA.Factors, c.Stores.MFA.FactorUpdates = tf, tf
	})
	_, secret, _ := f.adaWithApp(t)
	f.clock.Advance(31 * time.Second)
	p, tok := f.totpSignIn(t, secret)
	for _, tc := range []struct {
		name string
		fail *atomic.Bool
	}{{"Factors", &tf.factors}, {"AdvanceStep", &tf.advance}} {
		t.Run(tc.name, func(t *testing.T) {
			f.clock.Advance(31 * time.Second)
			before := len(f.events(t, audit.Reauthenticated))
			tc.fail.Store(true)
			_, _, err := f.g.Reauthenticate(f.ctx, p, tok, guard.Proof{Password: ownerPW, TOTP: f.code(t, secret)})
			tc.fail.Store(false)
			if !errors.Is(err, guard.ErrUnavailable) {
				t.Fatalf("Reauthenticate with %s failing: %v, want ErrUnavailable", tc.name, err)
			}
			evs := f.events(t, audit.Reauthenticated)[before:]
			if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != guard.ReasonUnavailable {
				t.Errorf("Reauthenticate with %s failing: new session.reauthenticated events %+v, want one failed with reason unavailable",
					tc.name, evs)
			}
		})
	}
}

// Severity: low. ConfirmFactor on a factor that is already confirmed — a
// double submission of the enrolment form, sequential or concurrent —
// gets mfa.ErrConflict from ConfirmTOTP, which codeReason (mfaflow.go)
// does not know: it is reported as a store failure, ErrUnavailable, and
// recorded as mfa.failed with reason unavailable (an outage alarm for a
// user's double click). The same holds for CompletePendingEnrolment.
// Expected: a clean refusal that is not ErrUnavailable (ErrConflict or
// ErrInvalidCode), and no "unavailable" record.
func TestAuditMfaflow_ConfirmAgainReportedUnavailable(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	en, err := f.g.BeginTOTP(f.ctx, p, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	code := f.code(t, en.Secret)
	if _, err := f.g.ConfirmFactor(f.ctx, p, en.Factor.ID, code); err != nil {
		t.Fatal(err)
	}
	_, err = f.g.ConfirmFactor(f.ctx, p, en.Factor.ID, code)
	r := reasons(f.events(t, audit.MFAFailed))
	if err == nil || errors.Is(err, guard.ErrUnavailable) || r[guard.ReasonUnavailable] != 0 {
		t.Errorf("ConfirmFactor submitted twice: %v, mfa.failed reasons %v; want a refusal that is not ErrUnavailable, none recorded as unavailable",
			err, r)
	}
}

// Severity: low. SendLoginCode is documented to send "to one of the
// user's confirmed email or SMS factors" (and its refusal says "is not a
// confirmed email or SMS factor of the user"), but mfa.Manager.SendCode
// accepts a pending factor and sends it its enrolment code instead
// (txn "enrol:"+ID), so a pending sign-in — the password alone — mails
// a code to an address the user never proved, replaces the code the user
// is waiting for, and is recorded as mfa.code_sent. Expected: an
// *InputError (recorded as mfa.failed, bad_input) and no mail.
func TestAuditMfaflow_SendLoginCodeToUnconfirmedFactor(t *testing.T) {
	f := newMFAFixture(t)
	p, _, _ := f.adaWithApp(t)
	const addr = "ada.unproven@example.test"
	pendingFactor, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, addr, "")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute) // past the resend cool-down
	pend := f.pending(t, adaEmail, ownerPW)
	before := len(f.mailTo(addr))
	err = f.g.SendLoginCode(f.ctx, pend.Token, pendingFactor.ID, "203.0.113.5", "test")
	sent := len(f.mailTo(addr)) - before
	var ie *guard.InputError
	if !errors.As(err, &ie) || sent != 0 {
		t.Errorf("SendLoginCode to an unconfirmed factor: %v, %d codes mailed to it; want an InputError and none", err, sent)
	}
}

// Severity: low. A pending sign-in started with a password ends when the
// password changes after it started; loadPending (mfaflow.go) decides
// with `u.PasswordChangedAt.After(txn.CreatedAt)`: two readings of
// possibly different clocks (the replica that changed the password, the
// one that started the sign-in), compared strictly. A change stamped by a
// replica whose clock is behind (ordinary NTP skew), or in the same
// microsecond, leaves the sign-in begun with the old password alive, and
// createSession's passwordMoved compares the user read by loadPending, so
// it does not see it either: the old password still yields a session.
// Expected: ErrLoginExpired (reason password_changed). A per-user
// password version (or a check that does not depend on clock order)
// would close it.
func TestAuditMfaflow_PendingOutlivesPasswordChangeOnSkewedReplica(t *testing.T) {
	var cfg guard.Config
	f := newMFAFixture(t, func(c *guard.Config) { cfg = *c })
	p, secret, _ := f.adaWithApp(t)
	// A second replica on the same stores, its clock two seconds behind.
	cfg.Now = func() time.Time { return f.clock.Now().Add(-2 * time.Second) }
	b, err := guard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	f.clock.Advance(time.Minute)
	pend := f.pending(t, adaEmail, ownerPW) // whoever has the old password, on replica A
	f.clock.Advance(time.Second)
	// Then the user changes the password, through replica B.
	if err := b.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: "an entirely new passphrase"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(31 * time.Second)
	res, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret))
	if !errors.Is(err, guard.ErrLoginExpired) || res.Token != "" {
		t.Errorf("completing a sign-in begun with the old password after it was changed: session %t, %v; want ErrLoginExpired",
			res.Token != "", err)
	}
}

// Severity: low. Inside the grace period of RequireMFA a user without a
// factor begins an enrolment and then cancels it: RemoveFactor of the
// pending factor is refused with ErrFactorRequired (recorded as a failed
// mfa.removed, reason mfa_required), because the self-removal under
// RequireMFA goes through DeleteFactorKeeping(keep 1), which refuses
// "whether the factor is confirmed or pending". RemoveFactor documents the
// refusal only for "their own last confirmed factor"; a pending factor
// is no factor at all, and the refusal is recorded as a security event.
// Expected: the pending factor is removed (keep applies to confirmed
// factors only).
func TestAuditMfaflow_PendingFactorNotRemovableUnderRequireMFA(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	f.requireMFA(t, 24*time.Hour)
	f.clock.Advance(time.Second)
	_, p := f.signIn(t, adaEmail, ownerPW)
	if !p.MustEnrol() {
		t.Fatal("inside the grace period the session is not flagged FlagMustEnrol")
	}
	en, err := f.g.BeginTOTP(f.ctx, p, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	err = f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, en.Factor.ID)
	if err != nil {
		t.Errorf("cancelling one's own pending enrolment under RequireMFA: %v (mfa.removed reasons %v), want it removed",
			err, reasons(f.events(t, audit.MFARemoved)))
	}
}

// Severity: low. BeginOOB for an SMS number outside mfa.Config.SMSPrefixes
// creates no factor (mfa.Manager.BeginOOB returns a zero Factor with
// Suppressed ErrDestinationNotAllowed), yet the facade's BeginOOB
// (mfaflow.go) records mfa.enrol_started as a success with an empty
// target and returns the zero factor with a nil error: the log shows an
// enrolment that never began, and the caller is sent to confirm a factor
// that does not exist. Expected: no successful mfa.enrol_started without
// a factor (an error, or at least a failed record).
func TestAuditMfaflow_RefusedSMSDestinationRecordedAsEnrolment(t *testing.T) {
	f := newMFAFixture(t, func(c *guard.Config) { c.MFA.SMSPrefixes = []string{"+44"} })
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindSMS, "+15555550123", "")
	for _, e := range f.events(t, audit.MFAEnrolStarted) {
		if e.Outcome == audit.Success && e.Target == "" {
			t.Errorf("BeginOOB to a number outside SMSPrefixes: factor %q, %v; recorded %s success with no factor", fa.ID, err, e.Action)
		}
	}
}

// Severity: low. A user's own removal of their last factor is refused
// while the tenant requires MFA (ErrFactorRequired), but RemoveFactor
// reads the policy before it deletes the factor and never again: a
// SetPolicy switching RequireMFA on in between (or another replica's
// cached policy) lets the last factor go while the user's session keeps
// FlagMFA under the policy, with no factor behind it. The break-glass
// floor in the same function is read again after the deletion ("each side
// writes, then reads the other's"); RequireMFA is not. Expected:
// ErrFactorRequired and the factor put back.
func TestAuditMfaflow_LastFactorRemovalRacesRequireMFA(t *testing.T) {
	hooked := &hookedFactors{}
	f := newMFAFixture(t, withHookedFactors(hooked))
	_, secret, app := f.adaWithApp(t)
	f.clock.Advance(31 * time.Second)
	p, tok := f.totpSignIn(t, secret)
	hooked.before = func() { f.requireMFA(t, 0) }
	err := f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, app)
	left, _ := f.g.Factors(f.ctx, p, tenantID, p.UserID)
	pa, aerr := f.g.Authenticate(f.ctx, tok)
	if !errors.Is(err, guard.ErrFactorRequired) || len(left) != 1 {
		t.Errorf("own last factor removed while RequireMFA was switched on: %v, %d factors left; "+
			"want ErrFactorRequired and the factor kept (the session authenticates: %v, FlagMFA %v)",
			err, len(left), aerr, pa.HasMFA())
	}
}
