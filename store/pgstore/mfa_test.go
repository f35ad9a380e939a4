package pgstore_test

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/pgstore"
)

// Expired one-time codes, rate windows and pending logins do not pile up:
// each write deletes up to GCBatch of them once they expired MFAGCGrace
// before the time it is given, and never a live one, nor one expired
// more recently (a replica whose clock lags may still use it).
func TestMFADropsExpiredRows(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	const old = 20
	// gc makes writes at the given times and checks the rows left after
	// each.
	gc := func(table string, write func(i int, at time.Time) error, steps []struct {
		at   time.Time
		left int
	}) {
		t.Helper()
		for i, s := range steps {
			if err := write(old+i, s.at); err != nil {
				t.Fatal(err)
			}
			if n := rowCount(t, st, table); n != s.left {
				t.Fatalf("%s: %d rows after write %d at +%v, want %d", table, n, i, s.at.Sub(t0), s.left)
			}
		}
	}
	type step = struct {
		at   time.Time
		left int
	}
	// old rows expire at t0+1m, later ones live an hour; the first steps
	// (before the expiry, then less than MFAGCGrace after it) drop
	// nothing, the others GCBatch then the rest.
	before, within := t0.Add(30*time.Second), t0.Add(time.Minute+pgstore.MFAGCGrace-time.Microsecond)
	after := t0.Add(time.Minute + pgstore.MFAGCGrace)
	steps := []step{{before, old + 1}, {within, old + 2}, {after, old + 3 - pgstore.GCBatch}, {after, old + 4 - 2*pgstore.GCBatch}, {after, 5}}

	code := func(i int, at time.Time) error {
		exp := at.Add(time.Hour)
		if i < old {
			exp = t0.Add(time.Minute)
		}
		return st.MFA.PutCode(ctx, mfa.Code{Tenant: "acme", Txn: fmt.Sprint("txn-", i), UserID: "u1", Kind: mfa.KindEmail,
			Hash: sha256.Sum256([]byte("code")), CreatedAt: at, ExpiresAt: exp, TriesLeft: 5})
	}
	for i := range old {
		if err := code(i, t0); err != nil {
			t.Fatal(err)
		}
	}
	gc("mfa_codes", code, steps)
	if _, err := st.MFA.CheckCode(ctx, "acme", fmt.Sprint("txn-", old), sha256.Sum256([]byte("code")), after); err != nil {
		t.Errorf("CheckCode of a live code after the GC: %v", err)
	}

	hit := func(i int, at time.Time) error {
		window := time.Hour
		if i < old {
			window = time.Minute
		}
		_, err := st.MFA.Hit(ctx, fmt.Sprint("key-", i), at, window)
		return err
	}
	for i := range old {
		if err := hit(i, t0); err != nil {
			t.Fatal(err)
		}
	}
	gc("mfa_rates", hit, steps)

	txn := func(i int, at time.Time) error {
		exp := at.Add(time.Hour)
		if i < old {
			exp = t0.Add(time.Minute)
		}
		return st.MFA.CreateTransaction(ctx, mfa.Transaction{Hash: sha256.Sum256(fmt.Append(nil, "txn-", i)), Tenant: "acme",
			UserID: "u1", CreatedAt: at, ExpiresAt: exp})
	}
	for i := range old {
		if err := txn(i, t0); err != nil {
			t.Fatal(err)
		}
	}
	gc("mfa_transactions", txn, steps)
	if _, err := st.MFA.Transaction(ctx, sha256.Sum256(fmt.Append(nil, "txn-", old))); err != nil {
		t.Errorf("Transaction of a live one after the GC: %v", err)
	}
}
