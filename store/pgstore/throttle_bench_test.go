package pgstore_test

import (
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

// BenchmarkThrottleLogin is the throttle's part of a successful password
// login: reserve the client IP and the account, then release the IP and
// reset the account. SingleKey makes the four single-key calls the facade
// made before ReserveAll and Settle (four round trips), Batch the two
// multi-key calls.
func BenchmarkThrottleLogin(b *testing.B) {
	st := newStore(b)
	ipLim := auth.Limit{Max: 50, ResetAfter: time.Hour, LockFor: 5 * time.Minute, MaxLockFor: time.Hour}
	acctLim := auth.Limit{Max: 5, ResetAfter: 15 * time.Minute, LockFor: time.Minute, MaxLockFor: 15 * time.Minute}
	const ip, acct = "ip:203.0.113.5", "acct:bench"
	b.Run("SingleKey", func(b *testing.B) {
		ctx := b.Context()
		b.ReportAllocs()
		for b.Loop() {
			res, err := st.Throttle.Reserve(ctx, ip, t0, ipLim)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.Throttle.Reserve(ctx, acct, t0, acctLim); err != nil {
				b.Fatal(err)
			}
			if err := st.Throttle.Reset(ctx, acct); err != nil {
				b.Fatal(err)
			}
			if err := st.Throttle.Release(ctx, ip, res); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Batch", func(b *testing.B) {
		ctx := b.Context()
		keys := []auth.ThrottleKey{{Key: ip, Limit: ipLim}, {Key: acct, Limit: acctLim}}
		b.ReportAllocs()
		for b.Loop() {
			res, err := st.Throttle.ReserveAll(ctx, t0, keys)
			if err != nil {
				b.Fatal(err)
			}
			settle := []auth.Settlement{{Key: ip, Reservation: res[0]}, {Key: acct, Reset: true}}
			if err := st.Throttle.Settle(ctx, settle); err != nil {
				b.Fatal(err)
			}
		}
	})
}
