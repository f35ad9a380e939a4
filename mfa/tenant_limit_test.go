package mfa_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
)

// stranger is the i-th enrolment request of a flood spread so that no
// per-destination, per-IP or per-account limit holds it back: its own
// user, its own address or number (email and SMS in turn) and its own
// client IP.
func stranger(tenant string, i int) mfa.OOBRequest {
	r := mfa.OOBRequest{Tenant: tenant, UserID: fmt.Sprint("u", i), Kind: mfa.KindSMS,
		Destination: fmt.Sprintf("+4477%08d", i), IP: fmt.Sprintf("2001:db8::%x", i)}
	if i%2 == 1 {
		r.Kind, r.Destination = mfa.KindEmail, fmt.Sprintf("u%d@example.test", i)
	}
	return r
}

// SMS pumping: codes to many numbers, from many IPs, for many accounts,
// each under its own limit, run up one tenant's SMS bill without end
// unless the tenant's codes are bounded too (SendLimits.PerTenant,
// default 1000 an hour). The code past the bound is suppressed, the
// sender not called, and another tenant's codes still go out.
func TestTenantSendLimitDefault(t *testing.T) {
	f := newFixture(t)
	sent := 0
	for i := range 1001 {
		_, res, err := f.m.BeginOOB(t.Context(), stranger("t", i))
		if err != nil {
			t.Fatalf("BeginOOB %d: %v", i, err)
		}
		switch {
		case res.Sent:
			sent++
		case i < 1000:
			t.Fatalf("BeginOOB %d under the limit suppressed: %v", i, res.Suppressed)
		case !errors.Is(res.Suppressed, mfa.ErrRateLimited):
			t.Errorf("BeginOOB past the limit: Suppressed %v, want ErrRateLimited", res.Suppressed)
		}
	}
	if calls := f.sms.count() + f.email.count(); sent != 1000 || calls != 1000 {
		t.Errorf("%d codes sent (%d sender calls) for one tenant in an hour, want the default limit, 1000", sent, calls)
	}
	if _, res, err := f.m.BeginOOB(t.Context(), stranger("other", 5000)); err != nil || !res.Sent {
		t.Errorf("another tenant's code = %+v, %v; want sent", res, err)
	}
}

// Sends for one tenant from many goroutines at once never exceed its
// limit: the count is one atomic store operation, not a read then a
// write (run with -race).
func TestTenantSendLimitConcurrent(t *testing.T) {
	f := newFixture(t)
	const workers, each = 64, 20 // 1280 requests for a limit of 1000
	var sent, over atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for j := range each {
				_, res, err := f.m.BeginOOB(t.Context(), stranger("t", w*each+j))
				switch {
				case err != nil:
					t.Error(err)
					return
				case res.Sent:
					sent.Add(1)
				case errors.Is(res.Suppressed, mfa.ErrRateLimited):
					over.Add(1)
				default:
					t.Errorf("suppressed: %v", res.Suppressed)
				}
			}
		})
	}
	wg.Wait()
	if calls := f.sms.count() + f.email.count(); sent.Load() != 1000 || calls != 1000 || over.Load() != workers*each-1000 {
		t.Errorf("%d sent (%d sender calls), %d suppressed of %d requests at once, want 1000 sent, the tenant's limit",
			sent.Load(), calls, over.Load(), workers*each)
	}
}

// The tenant's count comes last and counts only what every other limit
// let through: a client held back by its own limit spends none of the
// tenant's, which is spent on enrolments and sign-in codes, email and SMS
// alike, and comes back after the Window. Past it the result says
// Scope "tenant"; another tenant is not held back.
func TestTenantSendLimit(t *testing.T) {
	f := newFixture(t, func(c *mfa.Config) { c.Limits = mfa.SendLimits{PerIP: 2, PerTenant: 5} })
	scope := func(res mfa.SendResult) string {
		var rl *mfa.RateLimitError
		if res.Sent || !errors.As(res.Suppressed, &rl) || !errors.Is(res.Suppressed, mfa.ErrRateLimited) {
			return fmt.Sprintf("not suppressed by a limit: %+v", res)
		}
		return rl.Scope
	}
	sms := f.enrolOOB(t, "sms", mfa.KindSMS, "+447700900123")        // 1
	email := f.enrolOOB(t, "email", mfa.KindEmail, "e@example.test") // 2
	if res := f.send(t, "sms", sms.ID, f.login(t, "sms"), "198.51.100.1"); !res.Sent {
		t.Fatalf("sign-in code 3: %+v", res)
	}
	// One client past its own limit: two sent, the rest held back for
	// "ip" and not counted against the tenant.
	for i := range 6 {
		r := stranger("t", i)
		r.IP = "203.0.113.9"
		_, res, err := f.m.BeginOOB(t.Context(), r)
		switch {
		case err != nil:
			t.Fatal(err)
		case i < 2 && !res.Sent:
			t.Fatalf("enrolment %d from one IP: %+v", i, res)
		case i >= 2 && scope(res) != "ip":
			t.Errorf("enrolment %d from one IP: %s, want ip", i, scope(res))
		}
	}
	// The tenant has sent its five.
	if res := f.send(t, "email", email.ID, f.login(t, "email"), "198.51.100.2"); scope(res) != "tenant" {
		t.Errorf("a sign-in code past the tenant's limit: %s, want tenant", scope(res))
	}
	if _, res, err := f.m.BeginOOB(t.Context(), stranger("t", 100)); err != nil || scope(res) != "tenant" {
		t.Errorf("an enrolment past the tenant's limit: %s, %v; want tenant", scope(res), err)
	}
	if calls := f.sms.count() + f.email.count(); calls != 5 {
		t.Errorf("the senders were called %d times, want the tenant's limit, 5", calls)
	}
	if _, res, err := f.m.BeginOOB(t.Context(), stranger("other", 101)); err != nil || !res.Sent {
		t.Errorf("another tenant's code = %+v, %v; want sent", res, err)
	}
	f.clk.Add(time.Hour)
	if res := f.send(t, "email", email.ID, f.login(t, "email"), "198.51.100.2"); !res.Sent {
		t.Errorf("after the window: %+v", res)
	}
}
