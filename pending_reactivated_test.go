package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// A pending enrolment (a password sign-in under RequireMFA, sent to enrol)
// keeps the user's last reactivation as a pending sign-in does: one begun
// before a deactivation ends at its next step once the user is
// reactivated (ErrLoginExpired, mfa.failed reason deactivated), whether or
// not the user had been reactivated before it began; one begun after a
// reactivation goes on.
func TestPendingEnrolmentEndsWithDeactivation(t *testing.T) {
	for _, tc := range []struct {
		name        string
		before      bool // the user was deactivated and reactivated before the sign-in
		cycleDuring bool // and is deactivated and reactivated during it
	}{
		{"never reactivated, cycled during", false, true},
		{"reactivated before, cycled during", true, true},
		{"reactivated before only", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newMFAFixture(t)
			sys := guard.System("test")
			ada := f.createUser(t, adaEmail, ownerPW)
			if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, guard.Policy{RequireMFA: true}, 1); err != nil {
				t.Fatal(err)
			}
			cycle := func() {
				t.Helper()
				f.clock.Advance(time.Minute)
				if err := f.g.DeactivateUser(f.ctx, sys, tenantID, ada.ID); err != nil {
					t.Fatal(err)
				}
				if err := f.g.ReactivateUser(f.ctx, sys, tenantID, ada.ID); err != nil {
					t.Fatal(err)
				}
			}
			if tc.before {
				cycle()
			}
			const ip = "198.51.100.7"
			att, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: adaEmail, Password: ownerPW, IP: ip, UserAgent: "ua"})
			if err != nil || att.Pending == nil || !att.Pending.Enrol {
				t.Fatalf("Login: %+v, %v; want a pending enrolment", att, err)
			}
			if tc.cycleDuring {
				cycle()
			}
			_, err = f.g.BeginPendingTOTP(f.ctx, att.Pending.Token, ip, "ua", "Phone")
			if !tc.cycleDuring {
				if err != nil {
					t.Fatalf("BeginPendingTOTP of a sign-in begun after the reactivation: %v", err)
				}
				return
			}
			if !errors.Is(err, guard.ErrLoginExpired) {
				t.Errorf("BeginPendingTOTP of a sign-in begun before a deactivation, after the reactivation: %v, want ErrLoginExpired", err)
			}
			evs := f.events(t, audit.MFAFailed)
			if len(evs) != 1 || evs[0].Reason != guard.ReasonDeactivated {
				t.Errorf("mfa.failed events %+v; want one, reason deactivated", evs)
			}
		})
	}
}
