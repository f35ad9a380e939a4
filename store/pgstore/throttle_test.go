package pgstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/store/pgstore"
)

// Every throttle method but Peek needs schema version 20 (the row keeps
// its last_us before its last Reserve, for a give-back): on an older
// schema they fail with an error that names Migrate and change nothing.
// After Migrate they carry on with the records the code of the older
// version wrote.
func TestThrottleNeedsVersion20(t *testing.T) {
	ctx := t.Context()
	schema := newSchemaName(t)
	dropSchemaOnCleanup(t, schema)
	st, err := pgstore.New(testPool(t), pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := pgstore.MigrateTo(ctx, st, 19); err != nil {
		t.Fatal(err)
	}
	lim := auth.Limit{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	// A record as the code of version 19 reserved it.
	if _, err := testPool(t).Exec(ctx, `SELECT * FROM `+pgx.Identifier{schema}.Sanitize()+`.throttle_reserve(
		ARRAY['ip:192.0.2.1'::bytea], $1, ARRAY[3], ARRAY[3600000000::bigint], ARRAY[60000000000::bigint],
		ARRAY[3600000000000::bigint], ARRAY[0], 8)`, t0.UnixMicro()); err != nil {
		t.Fatal(err)
	}
	wantMigrate := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "Migrate") {
			t.Errorf("%s at version 19: %v; want an error naming Migrate", what, err)
		}
	}
	_, err = st.Throttle.Reserve(ctx, "ip:192.0.2.1", t0, lim)
	wantMigrate("Reserve", err)
	keys := []auth.ThrottleKey{{Key: "ip:192.0.2.1", Limit: lim}, {Key: "acct", Limit: lim}}
	_, err = st.Throttle.ReserveAll(ctx, t0, keys)
	wantMigrate("ReserveAll", err)
	given := auth.Reservation{Allowed: true, Failures: 1, Last: t0.Truncate(time.Microsecond)}
	wantMigrate("Release", st.Throttle.Release(ctx, "ip:192.0.2.1", given))
	wantMigrate("Settle", st.Throttle.Settle(ctx, []auth.Settlement{{Key: "ip:192.0.2.1", Reservation: given}}))
	if s, err := st.Throttle.Peek(ctx, "ip:192.0.2.1", t0, lim); err != nil || s.Failures != 1 {
		t.Errorf("Peek at version 19 = %+v, %v; want 1 failure", s, err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := st.Throttle.ReserveAll(ctx, t0, keys)
	if err != nil || len(res) != 2 || res[0].Failures != 2 || res[1].Failures != 1 {
		t.Fatalf("ReserveAll after Migrate = %+v, %v; want Failures 2 and 1", res, err)
	}
	if err := st.Throttle.Settle(ctx, []auth.Settlement{{Key: "ip:192.0.2.1", Reservation: res[0]}, {Key: "acct", Reservation: res[1]}}); err != nil {
		t.Fatal(err)
	}
	if s, err := st.Throttle.Peek(ctx, "ip:192.0.2.1", t0, lim); err != nil || s.Failures != 1 {
		t.Errorf("Peek after the give-back = %+v, %v; want the 1 failure of before", s, err)
	}
}

// ReserveAll drops forgotten records as Reserve does, up to GCBatch a call
// once forgotten ThrottleGCGrace before its now, but never a key of the
// call: those it reserves from zero as soon as they are forgotten.
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
	keys := []auth.ThrottleKey{{Key: "ip:0", Limit: lim}, {Key: "ip:1", Limit: lim}}
	// Forgotten (at t0+1m), but less than ThrottleGCGrace ago: the keys
	// of the call start from zero, no other record is dropped.
	within := t0.Add(time.Minute + pgstore.ThrottleGCGrace - time.Microsecond)
	res, err := st.Throttle.ReserveAll(ctx, within, keys)
	if err != nil || len(res) != 2 || res[0].Failures != 1 || res[1].Failures != 1 {
		t.Fatalf("ReserveAll of forgotten keys = %+v, %v; want Failures 1 each", res, err)
	}
	if got := throttleLen(t, st); got != n {
		t.Fatalf("%d records after a ReserveAll within ThrottleGCGrace, want %d", got, n)
	}
	// Forgotten ThrottleGCGrace ago: GCBatch dropped, none of the call's
	// keys (counted on from the call before).
	later := t0.Add(time.Minute + pgstore.ThrottleGCGrace)
	res, err = st.Throttle.ReserveAll(ctx, later, keys)
	if err != nil || len(res) != 2 || res[0].Failures != 2 || res[1].Failures != 2 {
		t.Fatalf("ReserveAll of live keys = %+v, %v; want Failures 2 each", res, err)
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
// each use, at nows ThrottleGCGrace and a microsecond apart (so every
// record an earlier call wrote is garbage to a later one), race with each
// other's garbage collection, and with single-key Reserves, Releases and
// Resets of the same keys, on a pool of its own: no call fails
// (PostgreSQL reports a deadlock as an error).
func TestThrottleBatchRacesGC(t *testing.T) {
	st := newStoreOn(t, ownPool(t, 16), "")
	ctx := t.Context()
	lim := auth.Limit{Max: 1 << 20, ResetAfter: time.Microsecond, LockFor: time.Second, MaxLockFor: time.Second}
	const ips, accts, goroutines, rounds = 3, 3, 48, 20
	ip := func(i int) string { return fmt.Sprint("ip:", i%ips) }
	acct := func(i int) string { return fmt.Sprint("acct:", i/ips%accts) }
	raceRounds(t, goroutines, rounds, func(i, r int) error {
		now := t0.Add(time.Duration(r*goroutines+i) * (lim.ResetAfter + pgstore.ThrottleGCGrace))
		var err error
		switch i % 3 {
		case 0, 1:
			var res []auth.Reservation
			res, err = st.Throttle.ReserveAll(ctx, now, []auth.ThrottleKey{{Key: ip(i), Limit: lim}, {Key: acct(i), Limit: lim}})
			if err == nil && (len(res) != 2 || !res[0].Allowed || !res[1].Allowed) {
				err = fmt.Errorf("ReserveAll = %+v, want both allowed", res)
			}
			if err == nil {
				err = st.Throttle.Settle(ctx, []auth.Settlement{{Key: ip(i), Reservation: res[0]},
					{Key: acct(i), Reset: i%2 == 0, Reservation: res[1]}})
			}
		default:
			var res auth.Reservation
			res, err = st.Throttle.Reserve(ctx, ip(i), now, lim)
			if err == nil {
				_, err = st.Throttle.Reserve(ctx, acct(i), now, lim)
			}
			if err == nil {
				err = st.Throttle.Release(ctx, ip(i), res)
			}
			if err == nil {
				err = st.Throttle.Reset(ctx, acct(i))
			}
		}
		return err
	})
}
