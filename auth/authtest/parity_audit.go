package authtest

import (
	"testing"
	"time"
)

// runParityAudit runs the cases the store-parity audit added: points on
// which the backends were found to answer differently.
func runParityAudit(t *testing.T, s Stores) {
	t.Helper()
	if s.Throttle != nil {
		t.Run("AuditParity_ThrottleLockFromTheExactAttempt", func(t *testing.T) {
			// The facade reserves at the clock's now, with nanoseconds
			// (login.go, sessions.go, apikeys.go). Limit.Apply locks
			// until now+LockFor; a store that truncates now to the
			// microsecond lifts the lock up to a microsecond early.
			st := s.Throttle(t)
			first := base.Add(700 * time.Nanosecond)
			r, err := st.Reserve(t.Context(), defaultKey, first, single)
			if err != nil || !r.Allowed || !r.Locks {
				t.Fatalf("first Reserve = %+v, %v; want allowed, locking", r, err)
			}
			end := first.Add(single.LockFor)
			at := end.Add(-400 * time.Nanosecond)
			r, err = st.Reserve(t.Context(), defaultKey, at, single)
			if err != nil {
				t.Fatal(err)
			}
			if r.Allowed {
				t.Errorf("Reserve 400 ns before the lock's end (%v) was allowed: %+v", end, r)
			}
		})
	}
}
