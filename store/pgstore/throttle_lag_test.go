package pgstore_test

import (
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

// TestThrottleRecordSurvivesLaggingReplica: a throttle record is judged
// at the now each caller gives, and replicas' clocks differ (redisstore
// keeps a key ClockGrace past the record's end, pgstore's MFA and SSO
// garbage waits MFAGCGrace and SSOGCGrace). Reserve and ReserveAll
// deleted other keys' records as soon as they were forgotten at the
// caller's now: one attempt on a replica ahead by two minutes wiped the
// failures a replica behind still counts, whose next attempt then starts
// from 1 (and a lock would end early).
func TestThrottleRecordSurvivesLaggingReplica(t *testing.T) {
	lim := auth.Limit{Max: 5, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	ahead := t0.Add(lim.ResetAfter + 2*time.Minute)
	behind := t0.Add(lim.ResetAfter - time.Minute)
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, st auth.BatchThrottleStore) error
	}{
		{"Reserve", func(t *testing.T, st auth.BatchThrottleStore) error {
			_, err := st.Reserve(t.Context(), "ip:192.0.2.9", ahead, lim)
			return err
		}},
		{"ReserveAll", func(t *testing.T, st auth.BatchThrottleStore) error {
			_, err := st.ReserveAll(t.Context(), ahead, []auth.ThrottleKey{{Key: "ip:192.0.2.9", Limit: lim}, {Key: "acct:other", Limit: lim}})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t).Throttle
			ctx := t.Context()
			// The replica behind: two failures, forgotten at t0+ResetAfter.
			for range 2 {
				if _, err := st.Reserve(ctx, "acct:victim", t0, lim); err != nil {
					t.Fatal(err)
				}
			}
			// The replica ahead (its clock 2 minutes on): another key.
			if err := tc.write(t, st); err != nil {
				t.Fatal(err)
			}
			// The replica behind, a minute before the record is forgotten
			// by its clock.
			res, err := st.Reserve(ctx, "acct:victim", behind, lim)
			if err != nil {
				t.Fatal(err)
			}
			if res.Failures != 3 {
				t.Errorf("Reserve before ResetAfter, by the caller's clock, after a replica 2 min ahead wrote = %+v; want Failures 3: the record was deleted early and counts from 1 again", res)
			}
		})
	}
}
