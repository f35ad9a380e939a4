package pgstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/store/pgstore"
)

// ReserveAll and Settle need schema version 8: on an older schema they
// fail with an error that names Migrate and change nothing. After Migrate
// they carry on with the records that Reserve wrote.
func TestThrottleBatchNeedsVersion8(t *testing.T) {
	ctx := t.Context()
	schema := newSchemaName(t)
	dropSchemaOnCleanup(t, schema)
	st, err := pgstore.New(testPool(t), pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := pgstore.MigrateTo(ctx, st, 7); err != nil {
		t.Fatal(err)
	}
	lim := auth.Limit{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	if r, err := st.Throttle.Reserve(ctx, "ip:192.0.2.1", t0, lim); err != nil || r.Failures != 1 {
		t.Fatalf("Reserve at version 7 = %+v, %v", r, err)
	}
	keys := []auth.ThrottleKey{{Key: "ip:192.0.2.1", Limit: lim}, {Key: "acct", Limit: lim}}
	if res, err := st.Throttle.ReserveAll(ctx, t0, keys); err == nil || !strings.Contains(err.Error(), "Migrate") {
		t.Errorf("ReserveAll at version 7 = %+v, %v; want an error naming Migrate", res, err)
	}
	if err := st.Throttle.Settle(ctx, []auth.Settlement{{Key: "ip:192.0.2.1", Reset: true}}); err == nil || !strings.Contains(err.Error(), "Migrate") {
		t.Errorf("Settle at version 7: %v; want an error naming Migrate", err)
	}
	if n := throttleLen(t, st); n != 1 {
		t.Errorf("%d records, want 1", n)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := st.Throttle.ReserveAll(ctx, t0, keys)
	if err != nil || len(res) != 2 || res[0].Failures != 2 || res[1].Failures != 1 {
		t.Errorf("ReserveAll after Migrate = %+v, %v; want Failures 2 and 1", res, err)
	}
}

// ReserveAll drops forgotten records as Reserve does, up to GCBatch a call,
// but never a key of the call: those it reserves from zero.
func TestThrottleBatchDropsForgottenRecords(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	lim := auth.Limit{Max: 3, ResetAfter: time.Minute, LockFor: time.Minute, MaxLockFor: time.Hour}
	const n = 20
	for i := range n {
		if _, err := st.Throttle.Reserve(ctx, fmt.Sprint("ip:", i), t0, lim); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Throttle.Reserve(ctx, fmt.Sprint("ip:", i), t0, lim); err != nil {
			t.Fatal(err)
		}
	}
	later := t0.Add(2 * time.Minute)
	keys := []auth.ThrottleKey{{Key: "ip:0", Limit: lim}, {Key: "ip:1", Limit: lim}}
	res, err := st.Throttle.ReserveAll(ctx, later, keys)
	if err != nil || len(res) != 2 || res[0].Failures != 1 || res[1].Failures != 1 {
		t.Fatalf("ReserveAll of forgotten keys = %+v, %v; want Failures 1 each", res, err)
	}
	if got, want := throttleLen(t, st), n-pgstore.GCBatch; got != want {
		t.Fatalf("%d records after one ReserveAll, want %d (GCBatch dropped)", got, want)
	}
	for range n / pgstore.GCBatch {
		if _, err := st.Throttle.ReserveAll(ctx, later, keys); err != nil {
			t.Fatal(err)
		}
	}
	if got := throttleLen(t, st); got != 2 {
		t.Fatalf("%d records left, want the 2 keys reserved", got)
	}
}

// Calls on pairs of keys whose records are forgotten a microsecond after
// each use race with each other's garbage collection, and with single-key
// Reserves, Releases and Resets of the same keys, on a pool of its own: no
// call fails (PostgreSQL reports a deadlock as an error).
func TestThrottleBatchRacesGC(t *testing.T) {
	st := newStoreOn(t, ownPool(t, 16), "")
	ctx := t.Context()
	lim := auth.Limit{Max: 1 << 20, ResetAfter: time.Microsecond, LockFor: time.Second, MaxLockFor: time.Second}
	const ips, accts, goroutines, rounds = 3, 3, 48, 20
	ip := func(i int) string { return fmt.Sprint("ip:", i%ips) }
	acct := func(i int) string { return fmt.Sprint("acct:", i/ips%accts) }
	raceRounds(t, goroutines, rounds, func(i, r int) error {
		now := t0.Add(time.Duration(r*goroutines+i) * time.Microsecond)
		var err error
		switch i % 3 {
		case 0, 1:
			var res []auth.Reservation
			res, err = st.Throttle.ReserveAll(ctx, now, []auth.ThrottleKey{{Key: ip(i), Limit: lim}, {Key: acct(i), Limit: lim}})
			if err == nil && (len(res) != 2 || !res[0].Allowed || !res[1].Allowed) {
				err = fmt.Errorf("ReserveAll = %+v, want both allowed", res)
			}
			if err == nil {
				err = st.Throttle.Settle(ctx, []auth.Settlement{{Key: ip(i)}, {Key: acct(i), Reset: i%2 == 0}})
			}
		default:
			_, err = st.Throttle.Reserve(ctx, ip(i), now, lim)
			if err == nil {
				_, err = st.Throttle.Reserve(ctx, acct(i), now, lim)
			}
			if err == nil {
				err = st.Throttle.Release(ctx, ip(i))
			}
			if err == nil {
				err = st.Throttle.Reset(ctx, acct(i))
			}
		}
		return err
	})
}
