package guard_test

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// approvalRequestBound is the bound under test: the requests one
// requester may file in an hour.
const approvalRequestBound = guard.MaxApprovalRequestsPerHour

// floodApprovals files n approval requests by p at once, each for its own
// target, and returns how many succeeded and how many were refused with
// ErrTooManyAttempts; any other error fails the test.
func floodApprovals(t *testing.T, f *fixture, p guard.Principal, n int) (ok, limited int) {
	t.Helper()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := "c" + string(rune('A'+i%26)) + string(rune('a'+i/26))
			_, err := f.g.RequestApproval(f.ctx, p, "campaigns:send", target, []byte(target), time.Hour)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, guard.ErrTooManyAttempts):
				limited++
			default:
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		t.Errorf("RequestApproval: %v", err)
	}
	return ok, limited
}

// filedBy counts the approvals stored for requester s.
func filedBy(t *testing.T, f *fixture, s rbac.Subject) int {
	t.Helper()
	aps, err := f.mem.Approvals.ListApprovals(f.ctx, tenantID, rbac.ApprovalQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range aps {
		if a.Requester == s {
			n++
		}
	}
	return n
}

// One requester cannot flood the approvers: of many requests filed at
// once exactly the hour's bound succeed, the rest are refused with
// ErrTooManyAttempts and not stored, and the refusals are on record as
// failed approval.requested events (rate_limited), no more of them than
// recordRefusal lets through in a minute. Another requester is not held
// back, but an API key of the same user is (it files within its
// creator's bound); the next hour the requester may file again.
func TestRequestApprovalBoundedPerRequester(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)

	ok, limited := floodApprovals(t, f, owner, 3*approvalRequestBound)
	if ok != approvalRequestBound || limited != 2*approvalRequestBound {
		t.Fatalf("%d requests at once: %d filed, %d refused as too many; want %d and %d",
			3*approvalRequestBound, ok, limited, approvalRequestBound, 2*approvalRequestBound)
	}
	if n := filedBy(t, f, rbac.User(owner.UserID)); n != approvalRequestBound {
		t.Errorf("%d approvals stored for the requester, want %d", n, approvalRequestBound)
	}
	var filed, rateLimited int
	for _, e := range f.events(t, audit.ApprovalRequested) {
		if e.Actor.ID != owner.UserID {
			continue
		}
		switch {
		case e.Outcome == audit.Success:
			filed++
		case e.Reason == guard.ReasonRateLimited:
			rateLimited++
			if e.Meta["permission"] != "campaigns:send" {
				t.Errorf("rate_limited event's permission = %q, want campaigns:send", e.Meta["permission"])
			}
		default:
			t.Errorf("unexpected approval.requested event: %+v", e)
		}
	}
	// recordRefusal records the first 30 of a kind in a minute.
	if filed != approvalRequestBound || rateLimited != 30 {
		t.Errorf("approval.requested: %d filed, %d rate_limited recorded; want %d and 30", filed, rateLimited, approvalRequestBound)
	}

	// Another requester files as before.
	if _, err := f.g.RequestApproval(f.ctx, ann, "campaigns:send", "ann", []byte("ann"), time.Hour); err != nil {
		t.Errorf("another user's request: %v", err)
	}
	// A key of the owner's files within the owner's bound, used up.
	key, _, err := f.g.CreateAPIKey(f.ctx, owner, guard.NewAPIKey{Tenant: tenantID, Name: "ci", Roles: []string{rbac.Member}})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := f.g.AuthenticateAPIKey(f.ctx, key, netip.MustParseAddr("203.0.113.5"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, limited := floodApprovals(t, f, kp, 5); ok != 0 || limited != 5 {
		t.Errorf("the owner's key's requests: %d filed, %d refused; want 0 and 5", ok, limited)
	}
	if n := filedBy(t, f, rbac.Key(kp.KeyID)); n != 0 {
		t.Errorf("%d approvals stored for the owner's key, want none", n)
	}

	// The next hour the owner may ask again.
	f.clock.Advance(time.Hour)
	if _, err := f.g.RequestApproval(f.ctx, owner, "campaigns:send", "later", []byte("later"), time.Hour); err != nil {
		t.Errorf("a request the next hour: %v", err)
	}
}

// A throttle store that cannot count the request fails closed: the
// request is refused with ErrUnavailable, and nothing is stored or
// recorded as filed.
func TestRequestApprovalCountFailureStoresNothing(t *testing.T) {
	fx := newFaultFix(t, false)
	rob, _ := fx.user(t, "rob@example.test", rbac.Manager)
	fx.fc.armName("Throttle.Reserve")
	_, err := fx.g.RequestApproval(fx.ctx, rob, "campaigns:send", "c1", []byte("p"), time.Hour)
	_, fired := fx.fc.disarm()
	if fired != "Throttle.Reserve" || !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("RequestApproval with the count failing: %v (failed call %q), want ErrUnavailable", err, fired)
	}
	if n := filedBy(t, fx.fixture, rbac.User(rob.UserID)); n != 0 {
		t.Errorf("%d approvals stored, want none", n)
	}
	for _, e := range fx.events(t, audit.ApprovalRequested) {
		if e.Outcome == audit.Success {
			t.Errorf("recorded as filed: %+v", e)
		}
	}
}
