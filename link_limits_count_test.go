package guard_test

import (
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// The link limit of a client IP counts every ForgotPassword, for an
// address without an account and in a tenant that does not exist too,
// so that what it answers elsewhere (an email change, in any tenant)
// never depends on where the address has an account; that of an address
// counts only the emails sent to it, so those requests leave it be. A
// RequestEmailChange over a limit sends nothing, is recorded as
// rate_limited, and is answered as if the link went out.
func TestLinkLimitsCountEveryForgotPassword(t *testing.T) {
	for _, c := range []struct {
		name    string
		limits  guard.LinkLimits
		ip, to  string // of the two ForgotPassword requests, and where the change then goes
		counted bool   // whether the two requests count toward the limit
	}{
		{"PerDestination", guard.LinkLimits{PerDestination: 2, PerAccount: 100, PerIP: 100}, "198.51.100.9", "nobody@example.test", false},
		{"PerIP", guard.LinkLimits{PerIP: 2, PerAccount: 100, PerDestination: 100}, "203.0.113.5", "someone@example.test", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newMFAFixture(t, withLimits(c.limits))
			f.createUser(t, adaEmail, ownerPW)
			for _, tenant := range []string{tenantID, "no-such-tenant"} {
				if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenant, Email: "nobody@example.test", IP: c.ip}); err != nil {
					t.Fatal(err)
				}
			}
			f.g.Close()
			_, p := f.signIn(t, adaEmail, ownerPW) // from 203.0.113.5
			if err := f.g.RequestEmailChange(f.ctx, p, c.to); err != nil {
				t.Errorf("RequestEmailChange = %v, want nil (sent, or as if sent)", err)
			}
			want, wantLimited := 1, 0
			if c.counted {
				want, wantLimited = 0, 1
			}
			if n := len(f.mailTo(c.to)); n != want {
				t.Errorf("%d emails to %s after two reset requests for an address without an account, want %d", n, c.to, want)
			}
			if r := reasons(f.events(t, audit.UserEmailChangeRequested)); r[guard.ReasonRateLimited] != wantLimited {
				t.Errorf("user.email_change_requested reasons %v, want %d %s", r, wantLimited, guard.ReasonRateLimited)
			}
		})
	}
}
