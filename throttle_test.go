package guard_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/store/memstore"
)

// throttleLog records the throttle calls the facade makes, naming an
// account key "acct" (it is a hash).
type throttleLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *throttleLog) add(format string, args ...any) {
	l.mu.Lock()
	l.calls = append(l.calls, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *throttleLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls = nil
	return c
}

func keyName(k string) string {
	if strings.HasPrefix(k, "acct:") {
		return "acct"
	}
	return k
}

// singleKeyThrottle is a plain auth.ThrottleStore (no multi-key calls)
// that logs its calls.
type singleKeyThrottle struct {
	st  *memstore.Throttle
	log *throttleLog
}

func (s singleKeyThrottle) Reserve(ctx context.Context, key string, now time.Time, lim auth.Limit) (auth.Reservation, error) {
	s.log.add("Reserve(%s)", keyName(key))
	return s.st.Reserve(ctx, key, now, lim)
}

func (s singleKeyThrottle) Release(ctx context.Context, key string, res auth.Reservation) error {
	s.log.add("Release(%s)", keyName(key))
	return s.st.Release(ctx, key, res)
}

func (s singleKeyThrottle) Reset(ctx context.Context, key string) error {
	s.log.add("Reset(%s)", keyName(key))
	return s.st.Reset(ctx, key)
}

func (s singleKeyThrottle) Peek(ctx context.Context, key string, now time.Time, lim auth.Limit) (auth.State, error) {
	return s.st.Peek(ctx, key, now, lim)
}

// batchThrottle is an auth.BatchThrottleStore that logs its calls.
type batchThrottle struct {
	singleKeyThrottle
	// reserveAll, if set, replaces the memstore's ReserveAll.
	reserveAll func(res []auth.Reservation) []auth.Reservation
}

func (b batchThrottle) ReserveAll(ctx context.Context, now time.Time, keys []auth.ThrottleKey) ([]auth.Reservation, error) {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = keyName(k.Key)
	}
	b.log.add("ReserveAll(%s)", strings.Join(names, ", "))
	res, err := b.st.ReserveAll(ctx, now, keys)
	if b.reserveAll != nil {
		res = b.reserveAll(res)
	}
	return res, err
}

func (b batchThrottle) Settle(ctx context.Context, keys []auth.Settlement) error {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = "release " + keyName(k.Key)
		if k.Reset {
			names[i] = "reset " + keyName(k.Key)
		}
	}
	b.log.add("Settle(%s)", strings.Join(names, ", "))
	return b.st.Settle(ctx, keys)
}

// A login reserves its IP and account in one call and settles them in one,
// the IP first; with a throttle store that has no multi-key calls, it makes
// the single-key calls one after another, in the same order.
func TestLoginThrottleCalls(t *testing.T) {
	const ip = "ip:203.0.113.5"
	for _, tc := range []struct {
		name              string
		batch             bool
		success, wrongPwd []string
	}{
		{"Batch", true,
			[]string{"ReserveAll(" + ip + ", acct)", "Settle(release " + ip + ", reset acct)"},
			[]string{"ReserveAll(" + ip + ", acct)"}},
		{"SingleKeyStore", false,
			[]string{"Reserve(" + ip + ")", "Reserve(acct)", "Release(" + ip + ")", "Reset(acct)"},
			[]string{"Reserve(" + ip + ")", "Reserve(acct)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := new(throttleLog)
			plain := singleKeyThrottle{st: memstore.NewThrottle(0), log: log}
			f := newFixture(t, func(c *guard.Config) {
				c.Stores.Throttle = plain
				if tc.batch {
					c.Stores.Throttle = batchThrottle{singleKeyThrottle: plain}
				}
			})
			f.createUser(t, "alice@example.com", ownerPW)
			log.take()
			if _, err := f.login("alice@example.com", ownerPW); err != nil {
				t.Fatal(err)
			}
			if got := log.take(); !slices.Equal(got, tc.success) {
				t.Errorf("a login made %q, want %q", got, tc.success)
			}
			if _, err := f.login("alice@example.com", "wrong password"); !errors.Is(err, guard.ErrInvalidCredentials) {
				t.Fatal(err)
			}
			if got := log.take(); !slices.Equal(got, tc.wrongPwd) {
				t.Errorf("a wrong password made %q, want %q", got, tc.wrongPwd)
			}
		})
	}
}

// A throttle store whose ReserveAll answers with the wrong number of
// Reservations denies the login (fail closed).
func TestLoginThrottleBrokenStore(t *testing.T) {
	for name, broken := range map[string]func([]auth.Reservation) []auth.Reservation{
		"None":         func([]auth.Reservation) []auth.Reservation { return nil },
		"TooMany":      func(r []auth.Reservation) []auth.Reservation { return append(r, r[0]) },
		"StopsAllowed": func(r []auth.Reservation) []auth.Reservation { return r[:1] },
	} {
		t.Run(name, func(t *testing.T) {
			st := batchThrottle{singleKeyThrottle: singleKeyThrottle{st: memstore.NewThrottle(0), log: new(throttleLog)}, reserveAll: broken}
			f := newFixture(t, func(c *guard.Config) { c.Stores.Throttle = st })
			f.createUser(t, "alice@example.com", ownerPW)
			if _, err := f.login("alice@example.com", ownerPW); !errors.Is(err, guard.ErrUnavailable) {
				t.Fatalf("Login = %v, want ErrUnavailable", err)
			}
			if r := reasons(f.events(t, audit.LoginFailed)); r[guard.ReasonUnavailable] != 1 {
				t.Fatalf("reasons %v", r)
			}
		})
	}
}
