package guard_test

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/internal/sqlitetest"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/memstore"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fastHasher keeps argon2id real but cheap, so tests (and -race) stay fast.
var fastHasher = auth.HasherConfig{Memory: 256, Time: 1, Threads: 1}

var auditKey = []byte("0123456789abcdef0123456789abcdef")

type fixture struct {
	g     *guard.Guard
	mem   *memstore.Store
	clock *clock
	ctx   context.Context
}

const (
	tenantID = "acme"
	ownerPW  = "correct horse battery staple"
)

func newFixture(t testing.TB, mutate ...func(*guard.Config)) *fixture {
	t.Helper()
	mem := memstore.New()
	c := newClock()
	cfg := guard.Config{Stores: mem.Stores(), AuditKey: auditKey, Hasher: fastHasher, Now: c.Now, Rand: rand.Reader}
	for _, m := range mutate {
		m(&cfg)
	}
	g, err := guard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{g: g, mem: mem, clock: c, ctx: context.Background()}
	if _, err := g.CreateTenant(f.ctx, guard.System("test"), tenantID, "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) createUser(t testing.TB, email, password string) guard.User {
	t.Helper()
	u, err := f.g.CreateUser(f.ctx, guard.System("test"), guard.NewUser{Tenant: tenantID, Email: email, Name: "Some Body", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (f *fixture) login(email, password string) (guard.LoginResult, error) {
	return f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: password, IP: "203.0.113.5", UserAgent: "test"})
}

// events returns the tenant's audit events with the given action, oldest first.
func (f *fixture) events(t testing.TB, action audit.Action) []audit.Event {
	t.Helper()
	var out []audit.Event
	var after uint64
	for {
		p, err := f.g.QueryAudit(f.ctx, guard.System("test"), tenantID, audit.Query{Action: string(action), After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Events...)
		if p.Next == 0 {
			return out
		}
		after = p.Next
	}
}

func reasons(evs []audit.Event) map[string]int {
	m := map[string]int{}
	for _, e := range evs {
		m[e.Reason]++
	}
	return m
}

// failingSessions fails Lookup, Create and DeleteLineage while fail is set.
type failingSessions struct {
	*memstore.Sessions
	mu   sync.Mutex
	fail bool
}

var errDown = errors.New("store down")

func (s *failingSessions) down() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.fail }
func (s *failingSessions) set(v bool) { s.mu.Lock(); s.fail = v; s.mu.Unlock() }

func (s *failingSessions) Lookup(ctx context.Context, h session.Hash) (session.Session, error) {
	if s.down() {
		return session.Session{}, errDown
	}
	return s.Sessions.Lookup(ctx, h)
}

func (s *failingSessions) Create(ctx context.Context, ss session.Session, l session.Limit) ([]session.Session, error) {
	if s.down() {
		return nil, errDown
	}
	return s.Sessions.Create(ctx, ss, l)
}

func (s *failingSessions) DeleteLineage(ctx context.Context, h session.Hash, maxHops int) (session.Session, bool, error) {
	if s.down() {
		return session.Session{}, false, errDown
	}
	return s.Sessions.DeleteLineage(ctx, h, maxHops)
}

// failingThrottle fails Reserve and ReserveAll.
type failingThrottle struct{ *memstore.Throttle }

func (failingThrottle) Reserve(context.Context, string, time.Time, auth.Limit) (auth.Reservation, error) {
	return auth.Reservation{}, errDown
}

func (failingThrottle) ReserveAll(context.Context, time.Time, []auth.ThrottleKey) ([]auth.Reservation, error) {
	return nil, errDown
}

// failingAudit fails Append while fail is set.
type failingAudit struct {
	*memstore.Audit
	mu   sync.Mutex
	fail bool
}

func (a *failingAudit) set(v bool) { a.mu.Lock(); a.fail = v; a.mu.Unlock() }

func (a *failingAudit) Append(ctx context.Context, tenant string, evs []audit.Event) error {
	a.mu.Lock()
	fail := a.fail
	a.mu.Unlock()
	if fail {
		return errDown
	}
	return a.Audit.Append(ctx, tenant, evs)
}

func newMem() guard.Stores { return memstore.New().Stores() }

type memstoreAudit = memstore.Audit

func f0sessions(c *guard.Config) *memstore.Sessions { return c.Stores.Sessions.(*memstore.Sessions) }

// newSQLite returns the stores of a migrated SQLite database in a
// temporary directory (a copy of one migrated once: sqlitetest), closed
// when the test ends.
func newSQLite(t *testing.T) guard.Stores {
	t.Helper()
	return sqlitetest.Open(t).Stores()
}
