package guard_test

import (
	"testing"

	"github.com/guardhq/guard/audit"
)

// A holder of a pending sign-in (the password, not the second factor)
// looping SendLoginCode is answered alike every time, but the refusals it
// causes are recorded as other refusals a caller may repeat at will are:
// at most 30 of one kind (actor, action, reason) a minute, the 30th marked
// recording_paused. Both kinds are bounded: codes the resend cool-down
// holds back (mfa.code_suppressed, reason cool_down) and factor IDs that
// name no confirmed email or SMS factor (mfa.failed, reason bad_input).
// Without the bound one pending sign-in wrote an event per call.
func TestSendLoginCodeRefusalsBounded(t *testing.T) {
	const addr = "ada.codes@example.test"
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	fa := f.enrolEmail(t, p, addr)
	pend := f.pending(t, adaEmail, ownerPW)
	const loops = 45
	for i := range loops {
		if err := f.g.SendLoginCode(f.ctx, pend.Token, fa.ID, "203.0.113.5", "test"); err != nil {
			t.Fatalf("SendLoginCode #%d: %v", i, err)
		}
		if err := f.g.SendLoginCode(f.ctx, pend.Token, "f-made-up", "203.0.113.5", "test"); err == nil {
			t.Fatalf("SendLoginCode of a made-up factor #%d: nil error, want an input error", i)
		}
	}
	if n := len(f.events(t, audit.MFACodeSent)); n != 2 {
		t.Errorf("%d mfa.code_sent events, want 2 (the enrolment's, the first sign-in code)", n)
	}
	for _, c := range []struct {
		action audit.Action
		reason string
		want   int
	}{
		{audit.MFACodeSuppressed, "cool_down", 30},
		{audit.MFAFailed, "bad_input", 30},
	} {
		evs := f.events(t, c.action)
		n, paused := 0, 0
		for _, e := range evs {
			if e.Reason != c.reason || e.Actor.ID != p.UserID {
				continue
			}
			n++
			if e.Meta["recording_paused"] == "true" {
				paused++
			}
		}
		if n != c.want || paused != 1 {
			t.Errorf("%s reason %s: %d recorded (%d marked recording_paused) for %d refusals; want %d (1)",
				c.action, c.reason, n, paused, loops, c.want)
		}
	}
}
