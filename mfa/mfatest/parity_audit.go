package mfatest

import (
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
)

// runParityAudit runs the cases the store-parity audit added: points on
// which the backends were found to answer differently. Each runs only
// when the stores provide the role it needs.
func runParityAudit(t *testing.T, newStores func(t *testing.T) mfa.Stores) {
	t.Helper()
	t.Run("AuditParity", func(t *testing.T) {
		for _, tc := range parityTests {
			t.Run(tc.name, func(t *testing.T) { tc.run(t, newStores(t)) })
		}
	})
}

var parityTests = []test{
	// Enrolments takes limit ≥ 1; the SQL stores answer no users below
	// that. An out-of-range limit must not crash the process (memstore
	// slices all[:limit]).
	{"EnrolmentsNegativeLimitDoesNotPanic", func(t *testing.T, st mfa.Stores) {
		if !hasFactors(st) {
			return
		}
		create(t, st, confirmed(totp("t", "u1", "a", 0), 1), 0)
		create(t, st, confirmed(totp("t", "u2", "a", 0), 1), 0)
		var got []mfa.Enrolment
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("Enrolments(limit -1) panicked: %v", r)
				}
			}()
			got, err = st.Enrolments.Enrolments(t.Context(), "t", "", -1)
		}()
		if err == nil && len(got) != 0 {
			t.Errorf("Enrolments(limit -1) = %v, want no users", got)
		}
	}},
	// A window "lasts window" from its first event, and "each later event
	// before its end" counts one more. The facade hands Hit the clock's
	// now, with nanoseconds (linkLimited, mfa.Manager.hit): a store that
	// truncates the first event to the microsecond ends the window up to
	// a microsecond early, and a send in that gap opens a new window.
	{"RatesWindowFromTheExactFirstEvent", func(t *testing.T, st mfa.Stores) {
		if st.Rates == nil {
			return
		}
		first := base.Add(700 * time.Nanosecond)
		hit(t, st, "k", first, time.Hour, 1)
		// 400 ns before the window's end: still inside it.
		hit(t, st, "k", first.Add(time.Hour-400*time.Nanosecond), time.Hour, 2)
		// Past its end: a new window. A store that keeps times to the
		// microsecond rounds the window up (RateStore), so it may end up
		// to 2 µs after first+window, never before.
		hit(t, st, "k", first.Add(time.Hour+2*time.Microsecond), time.Hour, 1)
	}},
}
