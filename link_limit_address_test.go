package guard_test

import (
	"fmt"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// An address's link limit (LinkLimits.PerDestination) bounds the mail sent
// to it: ForgotPassword requests that mail it nothing, naming a tenant
// that does not exist, do not use it up, so that a stranger who knows the
// address cannot stop its owner's recovery with them.
func TestAddressLinkLimitCountsOnlyMailSent(t *testing.T) {
	var cfg guard.Config
	f := newMFAFixture(t, func(c *guard.Config) { cfg = *c })
	ada := f.createUser(t, adaEmail, ownerPW)
	// The stranger's requests, on another replica sharing the stores,
	// closed once they are done so that they all come first.
	other, err := guard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 { // PerDestination's default
		if err := other.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: "no-such-tenant", Email: adaEmail,
			IP: fmt.Sprintf("198.51.100.%d", 10+i)}); err != nil {
			t.Fatal(err)
		}
	}
	other.Close()
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5"}); err != nil {
		t.Fatal(err)
	}
	f.g.Close()
	if n := len(f.mailTo(adaEmail)); n != 1 {
		var rs []string
		for _, e := range f.events(t, audit.PasswordResetRequested) {
			if e.Target == ada.ID {
				rs = append(rs, e.Reason)
			}
		}
		t.Errorf("%d emails to the owner's own reset request (recorded as %q) after 5 requests for the address in a tenant that does not exist, want 1", n, rs)
	}
}
