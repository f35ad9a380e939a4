package guard_test

import (
	"errors"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// BeginTOTP with a label the mfa package refuses enrols nothing, and the
// refusal is on record as BeginOOB's are: a failed mfa.enrol_started,
// reason bad_input, kind totp (it was not recorded).
func TestBeginTOTPRefusedLabelRecorded(t *testing.T) {
	for _, label := range []string{"my\u202ephone", "a\nb", strings.Repeat("x", 4096)} {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		en, err := f.g.BeginTOTP(f.ctx, p, label)
		var ie *mfa.InputError
		if !errors.As(err, &ie) || en.Factor.ID != "" {
			t.Errorf("BeginTOTP(%.12q): factor %q, %v; want an *mfa.InputError", label, en.Factor.ID, err)
		}
		evs := f.events(t, audit.MFAEnrolStarted)
		if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != guard.ReasonBadInput || evs[0].Meta["kind"] != "totp" {
			t.Errorf("BeginTOTP(%.12q): mfa.enrol_started events %+v, want one failed, reason bad_input, kind totp", label, evs)
		}
		if fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID); err != nil || len(fs) != 0 {
			t.Errorf("BeginTOTP(%.12q): factors after the refusal: %v, %v", label, fs, err)
		}
	}
}
