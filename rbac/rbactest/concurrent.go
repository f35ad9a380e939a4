package rbactest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/rbac"
)

const goroutines = 50

var concurrentPolicyGroups = []group[rbac.PolicyStore]{
	{"Update", []test[rbac.PolicyStore]{
		{"OneWinnerPerVersion", func(t *testing.T, st rbac.PolicyStore) {
			var mu sync.Mutex
			var winners []int
			parallel(goroutines, func(i int) {
				err := st.Update(t.Context(), "acme", 0, nil, []rbac.Rule{grantN(i)})
				switch {
				case err == nil:
					mu.Lock()
					winners = append(winners, i)
					mu.Unlock()
				case !errors.Is(err, rbac.ErrConflict):
					t.Errorf("Update %d: %v, want nil or ErrConflict", i, err)
				}
			})
			if len(winners) != 1 {
				t.Fatalf("%d Updates at version 0 succeeded, want exactly 1", len(winners))
			}
			c := pc{t, st}
			c.wantPolicy("acme", 1, grantN(winners[0]))
			c.wantChanges("acme", 0, rbac.Change{Version: 1, Add: []rbac.Rule{grantN(winners[0])}})
		}},
		{"CompareAndSetLoopsLoseNothing", func(t *testing.T, st rbac.PolicyStore) {
			const writers, each = 10, 8
			var conflicts atomic.Int64
			parallel(writers, func(w int) {
				for j := range each {
					r := grantN(w*each + j)
					for {
						v, err := st.Version(t.Context(), "acme")
						if err != nil {
							t.Errorf("Version: %v", err)
							return
						}
						err = st.Update(t.Context(), "acme", v, nil, []rbac.Rule{r})
						if err == nil {
							break
						}
						if !errors.Is(err, rbac.ErrConflict) {
							t.Errorf("Update: %v", err)
							return
						}
						conflicts.Add(1)
					}
				}
			})
			n := writers * each
			rules := make([]rbac.Rule, n)
			for i := range rules {
				rules[i] = grantN(i)
			}
			c := pc{t, st}
			c.wantPolicy("acme", uint64(n), rules...)
			// Every version was produced by exactly one update adding one rule.
			since := uint64(n - rbac.MinHistory)
			seen := make(map[rbac.Rule]bool)
			for i, ch := range c.changes("acme", since) {
				if ch.Version != since+1+uint64(i) || len(ch.Remove) != 0 || len(ch.Add) != 1 || seen[ch.Add[0]] {
					t.Fatalf("change %d = %s: not one fresh rule at the next version", i, fmtChange(ch))
				}
				seen[ch.Add[0]] = true
			}
			t.Logf("%d conflicts retried", conflicts.Load())
		}},
	}},
	{"Policy", []test[rbac.PolicyStore]{
		{"ConsistentWithItsVersion", func(t *testing.T, st rbac.PolicyStore) {
			// Update i adds rule i: at version v the policy has exactly
			// rules 0..v-1, whatever the interleaving.
			const n = 60
			done := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for {
						select {
						case <-done:
							return
						default:
						}
						rules, v, err := st.Policy(t.Context(), "acme")
						if err != nil {
							t.Errorf("Policy: %v", err)
							return
						}
						want := make([]rbac.Rule, v)
						for i := range want {
							want[i] = grantN(i)
						}
						if !sameRules(rules, want) {
							t.Errorf("Policy at version %d holds %d rules, not rules 0..%d", v, len(rules), int(v)-1)
							return
						}
					}
				})
			}
			for i := range n {
				if err := st.Update(t.Context(), "acme", uint64(i), nil, []rbac.Rule{grantN(i)}); err != nil {
					t.Errorf("Update %d: %v", i, err)
					break
				}
			}
			close(done)
			wg.Wait()
		}},
	}},
}

var concurrentApprovalGroups = []group[rbac.ApprovalStore]{
	{"DecideApproval", []test[rbac.ApprovalStore]{
		{"Once", func(t *testing.T, st rbac.ApprovalStore) {
			a := ac{t, st}.create(mkApproval("acme", 1))
			var wins atomic.Int64
			var winner atomic.Value
			parallel(goroutines, func(i int) {
				by := rbac.User(fmt.Sprint("approver", i))
				status := rbac.StatusApproved
				if i%2 == 1 {
					status = rbac.StatusRejected
				}
				got, err := st.DecideApproval(t.Context(), "acme", a.ID, by, status, base.Add(time.Duration(i)*time.Microsecond))
				switch {
				case err == nil:
					wins.Add(1)
					winner.Store(got)
				case !errors.Is(err, rbac.ErrNotPending):
					t.Errorf("DecideApproval %d: %v, want nil or ErrNotPending", i, err)
				}
			})
			if wins.Load() != 1 {
				t.Fatalf("%d decisions succeeded, want exactly 1", wins.Load())
			}
			ac{t, st}.wantStored(winner.Load().(rbac.Approval))
		}},
	}},
	{"ConsumeApproval", []test[rbac.ApprovalStore]{
		{"Once", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.decide(c.create(mkApproval("acme", 1)), bob, rbac.StatusApproved, base)
			var wins atomic.Int64
			parallel(goroutines, func(i int) {
				_, err := st.ConsumeApproval(t.Context(), "acme", a.ID, claimOf(a), base.Add(time.Duration(i)*time.Microsecond))
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, rbac.ErrConsumed):
					t.Errorf("ConsumeApproval %d: %v, want nil or ErrConsumed", i, err)
				}
			})
			if wins.Load() != 1 {
				t.Fatalf("%d consumptions succeeded, want exactly 1", wins.Load())
			}
			got, err := st.Approval(t.Context(), "acme", a.ID)
			if err != nil || got.Status != rbac.StatusConsumed {
				t.Errorf("after the race: %+v, %v; want consumed", got.Status, err)
			}
		}},
		{"DecideRacesConsume", func(t *testing.T, st rbac.ApprovalStore) {
			// Consumers race the decision: a consumption succeeds only
			// after an approval, and only once.
			c := ac{t, st}
			a := c.create(mkApproval("acme", 1))
			var wins atomic.Int64
			parallel(goroutines, func(i int) {
				if i == 0 {
					if _, err := st.DecideApproval(t.Context(), "acme", a.ID, bob, rbac.StatusApproved, base); err != nil {
						t.Errorf("DecideApproval: %v", err)
					}
					return
				}
				_, err := st.ConsumeApproval(t.Context(), "acme", a.ID, claimOf(a), base)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, rbac.ErrConsumed) && !errors.Is(err, rbac.ErrNotApproved):
					t.Errorf("ConsumeApproval %d: %v", i, err)
				}
			})
			got, err := st.Approval(t.Context(), "acme", a.ID)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case wins.Load() > 1:
				t.Fatalf("%d consumptions succeeded", wins.Load())
			case wins.Load() == 1 && got.Status != rbac.StatusConsumed:
				t.Errorf("consumed once but stored as %s", got.Status)
			case wins.Load() == 0 && got.Status != rbac.StatusApproved:
				t.Errorf("never consumed but stored as %s", got.Status)
			}
		}},
	}},
}
