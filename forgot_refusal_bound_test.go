package guard_test

import (
	"fmt"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// ForgotPassword asks nothing of the caller, so its refusals can be made
// at will: a loop of requests for made-up addresses, or for one address
// past its link limit, recorded each as a failed password.reset_requested,
// flooded the tenant's log. At most 30 of one kind are recorded a minute
// (made-up or inactive accounts: the tenant's count; an account over its
// limit: the account's); every request is answered alike all the same.
func TestForgotPasswordRefusalsRecordBounded(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, "ada@example.test", ownerPW)
	forgot := func(email string) func(int) error {
		return func(i int) error {
			err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: email,
				IP: fmt.Sprintf("203.0.%d.%d", i/200, i%200+1)})
			f.g.Close() // waits for the background work
			return err
		}
	}
	made := func(i int) error { return forgot(fmt.Sprintf("nobody%d@example.test", i))(i) }
	wantRefusalsBounded(t, f.clock, nil, made, f.failed(t, audit.PasswordResetRequested, ""))

	// Ada's requests past her hour's limit are counted apart from
	// made-up ones: the first mail links (recorded as successes), the
	// rest are refused as rate_limited, 30 of them recorded a minute.
	refused := f.failed(t, audit.PasswordResetRequested, ada.ID)
	for i := 0; refused() == 0; i++ {
		if i > 100 {
			t.Fatal("no rate_limited refusal of Ada's requests")
		}
		_ = forgot("ada@example.test")(i)
	}
	f.clock.Advance(time.Minute)
	wantRefusalsBounded(t, f.clock, nil, forgot("ada@example.test"), refused)
	for _, e := range f.events(t, audit.PasswordResetRequested) {
		if e.Target == ada.ID && e.Outcome == audit.Failure && e.Reason != guard.ReasonRateLimited {
			t.Errorf("Ada's refusal recorded with reason %q, want rate_limited", e.Reason)
		}
	}
}
