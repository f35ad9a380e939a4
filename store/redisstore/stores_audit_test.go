package redisstore_test

import (
	"testing"
	"time"

	"github.com/guardhq/guard/store/memstore"
)

// TestAuditStores_ReplayJudgedByCallersClock: sso.ReplayCache says
// "Expiry is judged by the now given by the caller, never by the store's
// clock". The Redis InsertID makes the record's key expire at until by the
// Redis server's clock (PEXPIREAT until, with no grace), so on a host
// whose clock is behind the server's, a record still live at the host's
// now is already gone and the same assertion ID is accepted again as new:
// a replay. memstore (and pgstore and sqlitestore, which drop records only
// SSOGCGrace/SweepGrace after until by the caller's now) refuse it.
//
// Here the host's clock is 10 s behind the server's, and the assertion is
// accepted for 5 s more by the host's clock; the replay 1 s later must be
// refused.
func TestAuditStores_ReplayJudgedByCallersClock(t *testing.T) {
	s, c, _ := open(t)
	ctx := t.Context()
	server, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	now := server.Add(-10 * time.Second).UTC().Truncate(time.Microsecond)
	until := now.Add(5 * time.Second)
	ref := memstore.NewSSO()
	for _, st := range []struct {
		name   string
		insert func(until, now time.Time) (bool, error)
	}{
		{"memstore", func(u, n time.Time) (bool, error) { return ref.InsertID(ctx, "acme", "id-1", u, n) }},
		{"redisstore", func(u, n time.Time) (bool, error) { return s.InsertID(ctx, "acme", "id-1", u, n) }},
	} {
		if ok, err := st.insert(until, now); err != nil || !ok {
			t.Fatalf("%s: first InsertID = %v, %v; want true, nil", st.name, ok, err)
		}
		// The replay, 1 s later by the host's clock: until is 4 s ahead.
		if ok, err := st.insert(until, now.Add(time.Second)); err != nil || ok {
			t.Errorf("%s: InsertID of the same ID at now+1s, until now+5s = %v, %v; want false (a replay), nil", st.name, ok, err)
		}
	}
}
