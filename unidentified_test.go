package guard_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
)

// IP-17: a request whose client IP cannot be identified (a trusted
// proxy's garbled X-Forwarded-For) gets UnidentifiedIP from ClientIP,
// never "", so that the per-IP login throttle and the per-IP limit on
// reset links count all such requests together instead of skipping them
// (an attacker behind the proxy sent "X-Forwarded-For: unknown" to spray
// passwords unthrottled). Clients with an address keep their own buckets.
func TestUnidentifiedClientsShareOneBucket(t *testing.T) {
	f := newMFAFixture(t, withLimits(guard.LinkLimits{PerIP: 2, PerAccount: 100, PerDestination: 100}), func(c *guard.Config) {
		c.Proxies = ipfilter.ResolverConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
		c.IPLimit = auth.Limit{Max: 10, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	})
	f.createUser(t, "alice@example.com", ownerPW)
	via := func(xff string) string {
		r := httptest.NewRequest("POST", "/login", nil)
		r.RemoteAddr = "10.1.1.1:1234"
		r.Header.Set("X-Forwarded-For", xff)
		return f.g.ClientIP(r)
	}
	garbled := []string{"unknown", "010.0.0.1", "203.0.113.5, not-an-ip"}
	for _, xff := range garbled {
		if ip := via(xff); ip != guard.UnidentifiedIP {
			t.Errorf("ClientIP through a trusted proxy with X-Forwarded-For %q = %q, want %q", xff, ip, guard.UnidentifiedIP)
		}
	}

	for i := range 10 {
		f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: fmt.Sprintf("user%d@example.com", i), Password: "spray password",
			IP: via(garbled[i%len(garbled)])})
	}
	_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "alice@example.com", Password: ownerPW, IP: via("unknown")})
	if !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Fatalf("the 11th sign-in of unidentified clients: %v, want refused", err)
	}
	evs := f.events(t, audit.LoginFailed)
	if r := reasons(evs); r[guard.ReasonIPThrottled] != 1 {
		t.Errorf("login.failed reasons %v, want one %s", r, guard.ReasonIPThrottled)
	}
	for _, e := range evs {
		if e.IP != guard.UnidentifiedIP {
			t.Errorf("login.failed recorded IP %q, want %q", e.IP, guard.UnidentifiedIP)
		}
	}
	if _, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "alice@example.com", Password: ownerPW, IP: via("203.0.113.5")}); err != nil {
		t.Fatalf("a client with an address, through the same proxy: %v", err)
	}

	// Reset links: PerIP is 2 for all unidentified clients together.
	for _, e := range []string{"a@example.test", "b@example.test", "c@example.test"} {
		f.createUser(t, e, ownerPW)
		if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: e, IP: via("unknown")}); err != nil {
			t.Fatal(err)
		}
		f.mailTo(e)
	}
	got := 0
	for _, e := range []string{"a@example.test", "b@example.test", "c@example.test"} {
		got += len(f.mailTo(e))
	}
	if got != 2 {
		t.Errorf("%d reset emails for unidentified clients, want 2", got)
	}
}
