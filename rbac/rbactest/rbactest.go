// Package rbactest checks that a backend keeps the contracts of
// rbac.PolicyStore and rbac.ApprovalStore. Every backend's tests call Run
// and RunConcurrent with the stores it provides; a nil field of Stores is
// not tested:
//
//	var stores = rbactest.Stores{
//		Policies:  func(*testing.T) rbac.PolicyStore { return memstore.NewPolicies() },
//		Approvals: func(*testing.T) rbac.ApprovalStore { return memstore.NewApprovals() },
//	}
//
//	func TestRBACStores(t *testing.T)           { rbactest.Run(t, stores) }
//	func TestRBACStoresConcurrent(t *testing.T) { rbactest.RunConcurrent(t, stores) }
//
// Each sentence of the interfaces' doc comments has a named subtest. Every
// subtest asks Stores for a fresh, empty store and needs nothing else from
// it.
//
// # Time
//
// The suite never reads the clock. Approvals carry fixed times in the year
// 2099, with digits down to the microsecond, so a store that drops old
// approvals by its own clock keeps them for the length of the test, and a
// store that judges expiry by its own clock instead of the time it is
// given fails. Times must come back as the same instant
// (time.Time.Equal) to the microsecond; the location may differ. A zero
// time must come back as a zero time.
//
// # Clarifications
//
// The doc comments leave a few points open; the suite checks these
// readings:
//
//   - Rules and the Remove and Add of a change compare field by field; a
//     nil and an empty slice are equal. The names in rules are those the
//     Enforcer writes (ASCII letters, digits, '-', '_' and one ':' in a
//     subject), up to the lengths rbac allows.
//   - Changes with since below the oldest change held may return either
//     ErrHistoryGone or every change from since+1 on; never a list with a
//     gap.
//   - ListApprovals orders IDs byte by byte (Go's string order), and
//     Before is compared the same way.
package rbactest

import (
	"sync"
	"testing"

	"github.com/guardhq/guard/rbac"
)

// Stores returns fresh, empty stores for one subtest. A nil field is not
// tested.
type Stores struct {
	Policies  func(t *testing.T) rbac.PolicyStore
	Approvals func(t *testing.T) rbac.ApprovalStore
}

type group[S any] struct {
	name  string
	tests []test[S]
}

type test[S any] struct {
	name string
	run  func(t *testing.T, s S)
}

func runGroups[S any](t *testing.T, newStore func(*testing.T) S, groups []group[S]) {
	t.Helper()
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
			}
		})
	}
}

// Run runs the conformance tests of the stores that s returns, one fresh
// empty store per subtest.
func Run(t *testing.T, s Stores) {
	t.Helper()
	runParityAudit(t, s)
	if s.Policies != nil {
		t.Run("PolicyStore", func(t *testing.T) { runGroups(t, s.Policies, policyGroups) })
	}
	if s.Approvals != nil {
		t.Run("ApprovalStore", func(t *testing.T) { runGroups(t, s.Approvals, approvalGroups) })
	}
}

// RunConcurrent hammers the stores that s returns from many goroutines and
// checks the invariants that must hold across replicas: one winner per
// compare-and-set, consistent snapshots, an approval decided once and
// consumed once. Run it with -race.
func RunConcurrent(t *testing.T, s Stores) {
	t.Helper()
	if s.Policies != nil {
		t.Run("PolicyStore", func(t *testing.T) { runGroups(t, s.Policies, concurrentPolicyGroups) })
	}
	if s.Approvals != nil {
		t.Run("ApprovalStore", func(t *testing.T) { runGroups(t, s.Approvals, concurrentApprovalGroups) })
	}
}

// parallel runs f(0..n-1) in n goroutines released at once, and waits.
func parallel(n int, f func(i int)) {
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Go(func() {
			start.Wait()
			f(i)
		})
	}
	start.Done()
	done.Wait()
}
