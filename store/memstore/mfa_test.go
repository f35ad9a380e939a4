package memstore_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/mfa/mfatest"
	"github.com/guardhq/guard/store/memstore"
)

func newMFA(*testing.T) mfa.Stores { return memstore.NewMFA().Stores() }

func TestMFA(t *testing.T) { mfatest.Run(t, newMFA) }

func TestMFAConcurrent(t *testing.T) { mfatest.RunConcurrent(t, newMFA) }

// TestMFASplitRoles runs the suite with only some roles, as a backend that
// keeps codes, rates and transactions in a cache would.
func TestMFASplitRoles(t *testing.T) {
	mfatest.Run(t, func(*testing.T) mfa.Stores {
		s := memstore.NewMFA()
		return mfa.Stores{Codes: s, Rates: s, Transactions: s}
	})
}

var t2099 = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)

func TestMFARatesBounded(t *testing.T) {
	s := memstore.NewMFABounded(2000)
	ctx := t.Context()
	// 100,000 distinct keys, each window a minute, one new key a
	// millisecond: at most a minute's worth (60,000) could be live, but
	// the bound is 2000 and expired windows are swept.
	for i := range 100_000 {
		now := t2099.Add(time.Duration(i) * time.Millisecond)
		_, err := s.Hit(ctx, fmt.Sprint("ip-", i), now, time.Second)
		if err != nil {
			t.Fatalf("Hit %d: %v", i, err)
		}
	}
	if _, rates, _ := s.Len(); rates > 2000 {
		t.Errorf("%d rate counters held, want at most 2000", rates)
	}
	// Live windows are never evicted: with 2000 live keys the next new
	// key is refused (fail closed), and a live key keeps its count.
	s = memstore.NewMFABounded(2000)
	for i := range 2000 {
		if _, err := s.Hit(ctx, fmt.Sprint("k", i), t2099, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Hit(ctx, "one-more", t2099, time.Hour); !errors.Is(err, mfa.ErrFull) {
		t.Errorf("Hit beyond the bound = %v, want ErrFull", err)
	}
	if n, err := s.Hit(ctx, "k7", t2099, time.Hour); err != nil || n != 2 {
		t.Errorf("Hit of a live key at the bound = %d, %v; want 2", n, err)
	}
	// Once the windows end, new keys are taken again.
	if _, err := s.Hit(ctx, "one-more", t2099.Add(time.Hour), time.Hour); err != nil {
		t.Errorf("Hit after the windows ended: %v", err)
	}
}

func TestMFACodesAndTransactionsSwept(t *testing.T) {
	s := memstore.NewMFA()
	ctx := t.Context()
	for i := range 20_000 {
		now := t2099.Add(time.Duration(i) * time.Second)
		c := mfa.Code{Tenant: "t", Txn: fmt.Sprint("txn-", i), UserID: "u", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), TriesLeft: 5}
		if err := s.PutCode(ctx, c); err != nil {
			t.Fatal(err)
		}
		x := mfa.Transaction{Hash: mfa.Hash{byte(i), byte(i >> 8), byte(i >> 16)}, Tenant: "t", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
		if err := s.CreateTransaction(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	// Ten minutes of codes (600) and five of transactions (300) are live;
	// the maps are swept when they double past 1024.
	if codes, _, txns := s.Len(); codes > 2*1024 || txns > 2*1024 {
		t.Errorf("%d codes and %d transactions held, want at most 2048 each", codes, txns)
	}
}
