package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/mfa"
)

// setPolicyAsSystem sets the tenant's policy as the system and moves past
// the policy cache.
func setPolicyAsSystem(t *testing.T, f *mfaFixture, p guard.Policy) {
	t.Helper()
	tn, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, p, tn.Version); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
}

// A recovery code stands in for the user's confirmed factors and counts as
// MFA only as far as they would (CompleteLogin). Confirming an email
// address as a user's first factor makes recovery codes; before, one of
// them gave FlagMFA, so a user with no factor but email passed RequireMFA
// routes and a RequireMFA policy without MFAAllowEmail, was never asked
// to enrol an authenticator app, and, the sign-in being fresh, could
// regenerate the codes and go on so for ever. Now such a sign-in is an
// email code's: FlagEmailCode and no FlagMFA, and under RequireMFA
// without MFAAllowEmail the user must enrol (inside MFAGrace: a session
// flagged FlagMustEnrol). A user with an authenticator app still gets
// FlagMFA from a recovery code.
func TestRecoveryCodeCountsOnlyAsFarAsUsersFactors(t *testing.T) {
	// emailOnly makes ada, whose only factor is an email address, and
	// returns that factor and the recovery codes its confirmation made.
	emailOnly := func(t *testing.T, f *mfaFixture) (mfa.Factor, []string) {
		t.Helper()
		f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		const addr = "ada.codes@example.test"
		fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, addr, "")
		if err != nil {
			t.Fatal(err)
		}
		codes, err := f.g.ConfirmFactor(f.ctx, p, fa.ID, f.out.lastCodeTo(t, addr))
		if err != nil {
			t.Fatal(err)
		}
		if len(codes) == 0 {
			t.Fatal("confirming an email factor as the first one made no recovery codes")
		}
		fa.Destination = addr
		return fa, codes
	}
	t.Run("EmailOnlyUnderRequireMFA", func(t *testing.T) {
		f := newMFAFixture(t)
		fa, codes := emailOnly(t, f)
		setPolicyAsSystem(t, f, guard.Policy{RequireMFA: true}) // email codes do not count
		f.clock.Advance(time.Minute)                            // past the resend cool-down
		if r, err := f.withEmailCode(t, adaEmail, ownerPW, fa); err != nil || r.Pending == nil || !r.Pending.Enrol {
			t.Fatalf("email-code sign-in under RequireMFA: %+v, %v; want a pending enrolment", r, err)
		}
		pend := f.pending(t, adaEmail, ownerPW)
		res, err := f.complete(guard.MethodRecovery, pend.Token, codes[0])
		if err != nil {
			t.Fatal(err)
		}
		if res.Token != "" || res.Pending == nil || !res.Pending.Enrol {
			p, _ := f.g.Authenticate(f.ctx, res.Token)
			t.Fatalf("recovery-code sign-in of an email-only user under RequireMFA: %+v (flags %b); want a pending enrolment and no session", res, p.Flags)
		}
		if res.RecoveryLeft == nil || res.RecoveryLeft.Left != len(codes)-1 {
			t.Errorf("RecoveryLeft %+v, want %d left (the code is spent)", res.RecoveryLeft, len(codes)-1)
		}
	})
	t.Run("EmailOnlyInGrace", func(t *testing.T) {
		f := newMFAFixture(t)
		_, codes := emailOnly(t, f)
		setPolicyAsSystem(t, f, guard.Policy{RequireMFA: true, MFAGrace: time.Hour})
		res, err := f.complete(guard.MethodRecovery, f.pending(t, adaEmail, ownerPW).Token, codes[0])
		if err != nil || res.Token == "" {
			t.Fatalf("recovery-code sign-in inside the grace period: %+v, %v; want a session", res, err)
		}
		p, err := f.g.Authenticate(f.ctx, res.Token)
		if err != nil {
			t.Fatal(err)
		}
		if p.HasMFA() || !p.MustEnrol() || p.Flags&guard.FlagEmailCode == 0 {
			t.Errorf("flags %b; want FlagEmailCode and FlagMustEnrol, no FlagMFA", p.Flags)
		}
	})
	t.Run("EmailOnlyNoPolicy", func(t *testing.T) {
		f := newMFAFixture(t)
		_, codes := emailOnly(t, f)
		res, err := f.complete(guard.MethodRecovery, f.pending(t, adaEmail, ownerPW).Token, codes[0])
		if err != nil || res.Token == "" {
			t.Fatalf("recovery-code sign-in: %+v, %v; want a session", res, err)
		}
		p, err := f.g.Authenticate(f.ctx, res.Token)
		if err != nil {
			t.Fatal(err)
		}
		if p.HasMFA() || p.Flags&guard.FlagEmailCode == 0 {
			t.Errorf("flags %b; want FlagEmailCode, no FlagMFA (as an email code)", p.Flags)
		}
	})
	t.Run("EmailOnlyEmailAllowed", func(t *testing.T) {
		f := newMFAFixture(t)
		_, codes := emailOnly(t, f)
		setPolicyAsSystem(t, f, guard.Policy{RequireMFA: true, MFAAllowEmail: true})
		res, err := f.complete(guard.MethodRecovery, f.pending(t, adaEmail, ownerPW).Token, codes[0])
		if err != nil || res.Token == "" {
			t.Fatalf("recovery-code sign-in with email codes allowed: %+v, %v; want a session", res, err)
		}
		p, err := f.g.Authenticate(f.ctx, res.Token)
		if err != nil {
			t.Fatal(err)
		}
		if p.HasMFA() || p.MustEnrol() || p.Flags&guard.FlagEmailCode == 0 {
			t.Errorf("flags %b; want FlagEmailCode only", p.Flags)
		}
	})
	t.Run("WithTOTP", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		_, codes := f.enrolTOTP(t, p)
		setPolicyAsSystem(t, f, guard.Policy{RequireMFA: true})
		res, err := f.complete(guard.MethodRecovery, f.pending(t, adaEmail, ownerPW).Token, codes[0])
		if err != nil || res.Token == "" {
			t.Fatalf("recovery-code sign-in of a user with an authenticator app: %+v, %v; want a session", res, err)
		}
		if p, err := f.g.Authenticate(f.ctx, res.Token); err != nil || !p.HasMFA() || p.Flags&guard.FlagEmailCode != 0 {
			t.Errorf("flags %b, %v; want FlagMFA", p.Flags, err)
		}
	})
}

// Under RequireMFA without MFAAllowEmail, an email-code session (FlagEmailCode
// without FlagMFA) ends at its next request whenever it was opened, once
// any grace period is over (sessionAllowed). Before, one opened after
// RequireMFA was switched on, while MFAAllowEmail was on, outlived
// MFAAllowEmail being switched off: sessionAllowed ended only sessions
// older than MFARequiredSince or flagged FlagMustEnrol, though new
// email-code sign-ins were sent to enrol.
func TestEmailCodeSessionEndsWhenEmailNoLongerAllowed(t *testing.T) {
	for _, grace := range []time.Duration{0, time.Hour} {
		t.Run("Grace"+grace.String(), func(t *testing.T) {
			f := newMFAFixture(t)
			f.createUser(t, adaEmail, ownerPW)
			_, p := f.signIn(t, adaEmail, ownerPW)
			email := f.enrolEmail(t, p, "ada.codes@example.test")
			setPolicyAsSystem(t, f, guard.Policy{RequireMFA: true, MFAAllowEmail: true, MFAGrace: grace})
			f.clock.Advance(time.Minute) // past the resend cool-down
			res, err := f.withEmailCode(t, adaEmail, ownerPW, email)
			if err != nil {
				t.Fatal(err)
			}
			if pe, err := f.g.Authenticate(f.ctx, res.Token); err != nil || pe.Flags&guard.FlagEmailCode == 0 || pe.HasMFA() || pe.MustEnrol() {
				t.Fatalf("an email-code session: %+v, %v; want FlagEmailCode only", pe, err)
			}
			setPolicyAsSystem(t, f, guard.Policy{RequireMFA: true, MFAGrace: grace}) // email codes no longer count
			if grace > 0 {
				// Inside the grace period (from when RequireMFA was
				// switched on) the session goes on, as one without a
				// factor would.
				if _, err := f.g.Authenticate(f.ctx, res.Token); err != nil {
					t.Fatalf("inside the grace period: %v, want the session kept", err)
				}
				f.clock.Advance(grace)
			}
			f.clock.Advance(time.Minute)
			if r, err := f.withEmailCode(t, adaEmail, ownerPW, email); err != nil || r.Pending == nil || !r.Pending.Enrol {
				t.Fatalf("a new email-code sign-in: %+v, %v; want a pending enrolment", r, err)
			}
			if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrPolicyChanged) {
				t.Fatalf("an email-code session opened after RequireMFA, once MFAAllowEmail is off: %v, want ErrPolicyChanged", err)
			}
		})
	}
}
