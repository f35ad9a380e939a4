package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/store/memstore"
	"github.com/guardhq/guard/store/redisstore"
)

// counter is a go-redis hook that counts the commands sent and the round
// trips they took (a pipeline is one round trip).
type counter struct {
	mu         sync.Mutex
	roundTrips int
	cmds       []string
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.mu.Lock()
		c.roundTrips++
		c.cmds = append(c.cmds, cmd.Name())
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.mu.Lock()
		c.roundTrips++
		for _, cmd := range cmds {
			c.cmds = append(c.cmds, cmd.Name())
		}
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

// reset forgets what was counted.
func (c *counter) reset() {
	c.mu.Lock()
	c.roundTrips, c.cmds = 0, nil
	c.mu.Unlock()
}

// counted returns the round trips and commands counted since reset.
func (c *counter) counted() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roundTrips, append([]string(nil), c.cmds...)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

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

var auditKey = []byte("0123456789abcdef0123456789abcdef")

const (
	tenantID = "acme"
	email    = "alice@example.com"
	password = "correct horse battery staple"
)

// newGuard returns a Guard on memstore for everything but sessions and
// throttling, which are in rs. Its clock starts at the real time (Redis
// expires keys by its own clock) and moves only when told.
func newGuard(t testing.TB, rs *redisstore.Store) (*guard.Guard, *clock) {
	t.Helper()
	clk := &clock{t: time.Now().UTC().Truncate(time.Microsecond)}
	g, err := guard.New(guard.Config{
		Stores:   rs.Stores(memstore.New().Stores()),
		AuditKey: auditKey,
		Hasher:   auth.HasherConfig{Memory: 64, Time: 1},
		Now:      clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return g, clk
}

// countedGuard returns a Guard (newGuard) on a store whose Redis
// commands cnt counts, with the scripts loaded: EVALSHA of a script the
// server has never seen costs a second command (EVAL), once per server.
func countedGuard(t *testing.T) (cnt *counter, rs *redisstore.Store, g *guard.Guard, clk *clock) {
	t.Helper()
	cnt = &counter{}
	rs, _, _ = open(t, cnt)
	if err := rs.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	g, clk = newGuard(t, rs)
	return cnt, rs, g, clk
}

// signedIn creates the tenant and its user, signed in from ip.
func signedIn(t *testing.T, g *guard.Guard, ip string) (guard.User, guard.LoginResult) {
	t.Helper()
	ctx := t.Context()
	if _, err := g.CreateTenant(ctx, guard.System("test"), tenantID, "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	u, err := g.CreateUser(ctx, guard.System("test"), guard.NewUser{Tenant: tenantID, Email: email, Name: "Alice", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	login, err := g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: password, IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	return u, login
}

// TestAuthenticateOneRoundTrip checks the hot path: the facade's check of a
// session costs exactly one Redis command, whether or not it writes
// LastSeen, as long as LastSeen is less than a minute old (MaxTouchGap, the
// shortest idle timeout a tenant's policy may set): steady requests less
// than a minute apart. After a pause of a minute or more since LastSeen was
// written, the request costs two: the LookupTouch script leaves the session
// alone, and the Touch script writes LastSeen once the tenant's policy has
// let the session through.
func TestAuthenticateOneRoundTrip(t *testing.T) {
	cnt, rs, g, clk := countedGuard(t)
	ctx := t.Context()
	u, login := signedIn(t, g, "203.0.113.5")
	created := login.Session.LastSeen

	authenticate := func(what string, trips int) {
		t.Helper()
		cnt.reset()
		p, err := g.Authenticate(ctx, login.Token)
		if err != nil {
			t.Fatalf("%s: Authenticate: %v", what, err)
		}
		if p.Kind != guard.KindUser || p.Tenant != tenantID || p.UserID != u.ID || p.Session != login.Session.Hash {
			t.Errorf("%s: Authenticate = %+v, want the session of %s", what, p, u.ID)
		}
		n, cmds := cnt.counted()
		if n != trips || len(cmds) != trips || slices.ContainsFunc(cmds, func(c string) bool { return c != "evalsha" }) {
			t.Errorf("%s: Authenticate cost %d round trips, commands %v; want %d, each one evalsha", what, n, cmds, trips)
		}
	}
	lastSeen := func(what string, want time.Time) {
		t.Helper()
		if s, err := rs.Lookup(ctx, login.Session.Hash); err != nil || !s.LastSeen.Equal(want) {
			t.Errorf("%s: LastSeen = %v, %v; want %v", what, s.LastSeen, err, want)
		}
	}

	authenticate("no touch due", 1)
	lastSeen("after a request within the touch interval", created)

	clk.Advance(45 * time.Second)
	authenticate("touch due", 1)
	lastSeen("after a request past the touch interval", clk.Now())

	for i := range 3 { // steady requests 59 s apart: each one touches, in its one command
		clk.Advance(59 * time.Second)
		authenticate(fmt.Sprintf("request %d, 59 s apart", i), 1)
		lastSeen("after a request 59 s after the last", clk.Now())
	}

	clk.Advance(20 * time.Second)
	authenticate("no touch due again", 1)
	lastSeen("after a request within the touch interval again", clk.Now().Add(-20*time.Second))

	// What counts is the time since LastSeen was written, not since the
	// last request: 45 s after the last request, 65 s after the last touch.
	clk.Advance(45 * time.Second)
	authenticate("65 s after the last touch", 2)
	lastSeen("65 s after the last touch", clk.Now())

	clk.Advance(time.Second)
	authenticate("right after", 1)

	clk.Advance(time.Minute)
	authenticate("after a pause of a minute", 2)
	lastSeen("after a pause of a minute", clk.Now())

	clk.Advance(time.Second)
	authenticate("right after the pause", 1)
}

// TestFacadeFailsClosed checks that the facade denies when Redis is down:
// Authenticate and Login answer ErrUnavailable, never "anonymous" or
// "wrong password".
func TestFacadeFailsClosed(t *testing.T) {
	rs, err := redisstore.New(t.Context(), deadClient(t), redisstore.Options{SkipEvictionCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := newGuard(t, rs)
	ctx := t.Context()
	if _, err := g.CreateTenant(ctx, guard.System("test"), tenantID, "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.CreateUser(ctx, guard.System("test"), guard.NewUser{Tenant: tenantID, Email: email, Name: "Alice", Password: password}); err != nil {
		t.Fatal(err)
	}
	token := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // well formed: 32 zero bytes
	if p, err := g.Authenticate(ctx, token); !isUnavailable(err) {
		t.Errorf("Authenticate with Redis down = %+v, %v; want ErrUnavailable", p, err)
	}
	if r, err := g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: password, IP: "203.0.113.5"}); !isUnavailable(err) || r.Token != "" {
		t.Errorf("Login with Redis down = token %q, %v; want ErrUnavailable", r.Token, err)
	}
}

// deadClient returns a client of a port where nothing listens. A Store
// on it is made with Options.SkipEvictionCheck: New's check of the
// server fails there (TestNewEvictionCheckUnreachable).
func deadClient(t testing.TB) *redis.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestAllowListRefusalTakesTouchBack: a request that the tenant's
// allow-list for people refuses does not keep its session alive, at no
// cost to the requests it lets through. A request let through costs one
// Redis command for its session, as in TestAuthenticateOneRoundTrip; one
// refused right after its LookupTouch touched the session costs that
// command, the throttle's (whether its ip.denied is due) and an Untouch,
// which puts LastSeen back.
func TestAllowListRefusalTakesTouchBack(t *testing.T) {
	cnt, rs, g, clk := countedGuard(t)
	ctx := t.Context()
	sys := guard.System("test")
	_, login := signedIn(t, g, "192.0.2.5")
	lists, err := g.IPAllowLists(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.SetIPAllowList(ctx, sys, tenantID, guard.IPListChange{Scope: ipfilter.Users,
		Entries: []string{"192.0.2.0/24"}, Version: lists.Version}); err != nil {
		t.Fatal(err)
	}
	request := func(what, remote string, wantErr error, trips int) {
		t.Helper()
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("Cookie", "__Host-guard="+login.Token)
		cnt.reset()
		if _, err := g.AuthenticateRequest(r); !errors.Is(err, wantErr) {
			t.Fatalf("%s: AuthenticateRequest: %v, want %v", what, err, wantErr)
		}
		if n, cmds := cnt.counted(); n != trips || slices.ContainsFunc(cmds, func(c string) bool { return c != "evalsha" }) {
			t.Errorf("%s: %d round trips, commands %v; want %d, each one evalsha", what, n, cmds, trips)
		}
	}
	lastSeen := func(what string, want time.Time) {
		t.Helper()
		if s, err := rs.Lookup(ctx, login.Session.Hash); err != nil || !s.LastSeen.Equal(want) {
			t.Errorf("%s: LastSeen = %v, %v; want %v", what, s.LastSeen, err, want)
		}
	}
	clk.Advance(45 * time.Second)
	request("refused, a touch due", "198.51.100.7:1", guard.ErrIPNotAllowed, 3)
	lastSeen("after the refused request", login.Session.LastSeen)
	request("let through", "192.0.2.5:1", nil, 1)
	lastSeen("after the request let through", clk.Now())
	clk.Advance(45 * time.Second)
	request("let through, a touch due", "192.0.2.5:1", nil, 1)
	lastSeen("after the second request let through", clk.Now())
}

// TestAuthenticateRotatedTokenOneRoundTrip: the token of a rotated
// session is refused in one Redis command, as an unknown one, and signing
// out with it (LogoutToken) ends the session it became.
func TestAuthenticateRotatedTokenOneRoundTrip(t *testing.T) {
	cnt, _, g, _ := countedGuard(t)
	ctx := t.Context()
	_, login := signedIn(t, g, "203.0.113.5")
	nt, _, err := g.RotateSession(ctx, login.Token, 0)
	if err != nil {
		t.Fatal(err)
	}
	cnt.reset()
	if _, err := g.Authenticate(ctx, login.Token); !errors.Is(err, guard.ErrUnauthenticated) || errors.Is(err, guard.ErrSignedInElsewhere) {
		t.Fatalf("Authenticate(rotated token) = %v, want ErrUnauthenticated only", err)
	}
	if n, cmds := cnt.counted(); n != 1 || len(cmds) != 1 || cmds[0] != "evalsha" {
		t.Errorf("Authenticate(rotated token) cost %d round trips, commands %v; want one evalsha", n, cmds)
	}
	if err := g.LogoutToken(ctx, login.Token, "", ""); err != nil {
		t.Fatalf("LogoutToken(rotated token): %v", err)
	}
	if _, err := g.Authenticate(ctx, nt); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("the rotated session after LogoutToken with the old token: %v", err)
	}
}
