package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// BeginOOB whose code cannot be sent leaves no pending factor (it could
// never be confirmed) and records a failed mfa.enrol_started, reason
// unavailable, with the kind; once the provider is back, an enrolment
// works as usual.
func TestBeginOOBSendFailedLeavesNoFactor(t *testing.T) {
	fm := &failingMail{outbox: &outbox{}}
	f, p := signedInWithCodeMail(t, fm)
	fm.down.Store(true)
	const addr = "ada.other@example.test"
	if _, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, addr, ""); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("BeginOOB with the provider down = %v, want ErrUnavailable", err)
	}
	if fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID); err != nil || len(fs) != 0 {
		t.Errorf("factors after a failed send = %+v, %v; want none", fs, err)
	}
	evs := f.events(t, audit.MFAEnrolStarted)
	if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != guard.ReasonUnavailable || evs[0].Meta["kind"] != string(mfa.KindEmail) {
		t.Errorf("mfa.enrol_started events = %+v, want one failed, reason unavailable, kind email", evs)
	}
	fm.down.Store(false)
	fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ConfirmFactor(f.ctx, p, fa.ID, fm.lastCodeTo(t, addr)); err != nil {
		t.Fatalf("ConfirmFactor once the provider is back: %v", err)
	}
}

// signedInWithCodeMail is Ada signed in, in a fixture whose email codes
// go through m.
func signedInWithCodeMail(t *testing.T, m mfa.EmailSender) (*mfaFixture, guard.Principal) {
	f := newMFAFixture(t, func(c *guard.Config) { c.MFA.Email = m })
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	return f, p
}
