package pgstore_test

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
)

// Writes that drop expired rows never deadlock with writes of those rows'
// keys. The GC is a CTE that the statement's upsert does not read, so
// PostgreSQL runs it after the upsert, and it skips the rows other writes
// hold (SKIP LOCKED): it never waits. With the GC forced to run first
// (the upsert reading its count), 16 writers re-putting the expired codes
// each other's GCs pick deadlocked within 10 rounds.
func TestGCDoesNotDeadlockWithUpserts(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	const keys, writers = 128, 16
	put := func(i int, at time.Time, exp time.Time) error {
		return st.MFA.PutCode(ctx, mfa.Code{Tenant: "acme", Txn: fmt.Sprint("txn-", i), UserID: "u1", Kind: mfa.KindEmail,
			Hash: sha256.Sum256([]byte("code")), CreatedAt: at, ExpiresAt: exp, TriesLeft: 5})
	}
	for round := range 20 {
		// Expired codes, the oldest first: keys 0..writers-1 are the ones
		// every GC picks, and each writer puts one of them again.
		at := t0.Add(time.Duration(round) * time.Hour)
		for i := range keys {
			if err := put(i, at, at.Add(time.Minute+time.Duration(i)*time.Microsecond)); err != nil {
				t.Fatal(err)
			}
		}
		later := at.Add(2 * time.Minute)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range writers {
			wg.Go(func() {
				<-start
				if err := put(g, later, later.Add(time.Minute)); err != nil {
					t.Errorf("round %d: PutCode: %v", round, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
	}
}
