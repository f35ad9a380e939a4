package guard_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// keyPrincipal creates an API key by by, holding roles, and returns its
// principal as AuthenticateAPIKey gives it.
func keyPrincipal(t *testing.T, f *fixture, by guard.Principal, name string, roles ...string) guard.Principal {
	t.Helper()
	key, _ := f.newKey(t, by, name, roles...)
	p, err := f.g.AuthenticateAPIKey(f.ctx, key, apikeyAuditAddr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fileApproval files one approval request by p for a target of its own.
func fileApproval(f *fixture, p guard.Principal, target string) error {
	_, err := f.g.RequestApproval(f.ctx, p, "campaigns:send", target, []byte(target), time.Hour)
	return err
}

// An API key's approval requests count in its creator's hourly budget:
// a user and all their keys file at most MaxApprovalRequestsPerHour
// together, so that keys cannot multiply what one person floods the
// approvers with. A key over the budget is refused (ErrTooManyAttempts,
// nothing stored) and the refusal recorded with the key as its actor
// (rate_limited); the keys of another creator, and keys the host
// created (each a budget of its own), are not held back; the next hour
// the keys may file again.
func TestRequestApprovalKeysShareCreatorsBudget(t *testing.T) {
	f := newFixture(t)
	olga, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Owner)
	k1 := keyPrincipal(t, f, olga, "ci", rbac.Member)
	k2 := keyPrincipal(t, f, olga, "cron", rbac.Member)
	annKey := keyPrincipal(t, f, ann, "ann's", rbac.Member)
	sys := guard.System("provisioning")
	sysKey := keyPrincipal(t, f, sys, "host's", rbac.Member)
	sysKey2 := keyPrincipal(t, f, sys, "host's other", rbac.Member)

	for i := range approvalRequestBound {
		if err := fileApproval(f, olga, fmt.Sprintf("olga-%d", i)); err != nil {
			t.Fatalf("Olga's request %d: %v", i+1, err)
		}
	}
	for i, k := range []guard.Principal{k1, k2} {
		if err := fileApproval(f, k, fmt.Sprintf("key-%d", i)); !errors.Is(err, guard.ErrTooManyAttempts) {
			t.Errorf("Olga's key %d, after her %d requests: %v, want ErrTooManyAttempts", i+1, approvalRequestBound, err)
		}
	}
	if n := filedBy(t, f, rbac.Key(k1.KeyID)) + filedBy(t, f, rbac.Key(k2.KeyID)); n != 0 {
		t.Errorf("%d approvals stored for Olga's keys over her budget, want none", n)
	}
	var limited []audit.Event
	for _, e := range f.events(t, audit.ApprovalRequested) {
		if e.Reason == guard.ReasonRateLimited {
			limited = append(limited, e)
		}
	}
	if len(limited) != 2 {
		t.Fatalf("%d rate_limited approval.requested events, want 2 (one per key): %+v", len(limited), limited)
	}
	for i, k := range []guard.Principal{k1, k2} {
		if e := limited[i]; e.Outcome != audit.Failure || e.Actor != (audit.Actor{Kind: audit.ActorAPIKey, ID: k.KeyID}) ||
			e.Meta["permission"] != "campaigns:send" {
			t.Errorf("rate_limited event %+v, want a failure by key %s for campaigns:send", e, k.KeyID)
		}
	}

	// Another creator's key, and the creator, file as before.
	if err := fileApproval(f, annKey, "ann-key"); err != nil {
		t.Errorf("Ann's key: %v", err)
	}
	if err := fileApproval(f, ann, "ann"); err != nil {
		t.Errorf("Ann: %v", err)
	}
	// A key the host created has a budget of its own: another's use
	// leaves it whole.
	for i := range approvalRequestBound {
		if err := fileApproval(f, sysKey, fmt.Sprintf("sys-%d", i)); err != nil {
			t.Fatalf("the host's key, request %d: %v", i+1, err)
		}
	}
	if err := fileApproval(f, sysKey, "sys-over"); !errors.Is(err, guard.ErrTooManyAttempts) {
		t.Errorf("the host's key, request %d: %v, want ErrTooManyAttempts", approvalRequestBound+1, err)
	}
	if err := fileApproval(f, sysKey2, "sys2"); err != nil {
		t.Errorf("the host's other key, after the first used up its budget: %v", err)
	}

	// The next hour Olga's keys file again; then Olga's budget holds
	// what they filed.
	f.clock.Advance(time.Hour)
	for i := range approvalRequestBound {
		k := k1
		if i%2 == 1 {
			k = k2
		}
		if err := fileApproval(f, k, fmt.Sprintf("next-%d", i)); err != nil {
			t.Fatalf("Olga's keys the next hour, request %d: %v", i+1, err)
		}
	}
	if err := fileApproval(f, olga, "olga-next"); !errors.Is(err, guard.ErrTooManyAttempts) {
		t.Errorf("Olga, after her keys filed %d this hour: %v, want ErrTooManyAttempts", approvalRequestBound, err)
	}
}

// A user and their keys filing at once never file more than
// MaxApprovalRequestsPerHour in the hour between them: the budget is one
// count, kept atomically. (Run with -race.)
func TestRequestApprovalKeysShareBudgetConcurrently(t *testing.T) {
	f := newFixture(t)
	olga, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	requesters := []guard.Principal{
		olga,
		keyPrincipal(t, f, olga, "ci", rbac.Member),
		keyPrincipal(t, f, olga, "cron", rbac.Member),
	}
	const each = approvalRequestBound
	var (
		mu          sync.Mutex
		wg          sync.WaitGroup
		ok, limited int
	)
	for _, p := range requesters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, l := floodApprovals(t, f, p, each)
			mu.Lock()
			defer mu.Unlock()
			ok, limited = ok+o, limited+l
		}()
	}
	wg.Wait()
	total := len(requesters) * each
	if ok != approvalRequestBound || limited != total-approvalRequestBound {
		t.Errorf("%d requests at once by a user and two of their keys: %d filed, %d refused as too many; want %d and %d",
			total, ok, limited, approvalRequestBound, total-approvalRequestBound)
	}
	stored := 0
	for _, p := range requesters {
		s := rbac.User(p.UserID)
		if p.Kind == guard.KindAPIKey {
			s = rbac.Key(p.KeyID)
		}
		stored += filedBy(t, f, s)
	}
	if stored != approvalRequestBound {
		t.Errorf("%d approvals stored for the user and their keys, want %d", stored, approvalRequestBound)
	}
}
