package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/guardhq/guard/internal/testenv"
	"github.com/guardhq/guard/store/redisstore"
)

// privateServer starts a redis-server of the test's own on a free port
// of 127.0.0.1, without persistence and with maxmemory-policy
// allkeys-lru, and returns a client of it; the server is stopped when t
// ends. The tests that change a server's configuration or users run on
// such a server, never on the shared one (GUARD_TEST_REDIS): other
// packages' tests run against that one at the same time, and their New
// would refuse it while its policy was not noeviction. It skips the test
// when redis-server is not installed, unless CI is set: then it fails.
func privateServer(t *testing.T) *redis.Client {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if testenv.CI() {
			t.Fatalf("redis-server is not installed, and CI is set: %v", err)
		}
		t.Skipf("redis-server is not installed: skipping the test that needs a Redis server of its own: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--maxmemory-policy", "allkeys-lru")
	cmd.Dir = t.TempDir()
	var out bytes.Buffer // read only once the server has exited
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	c := redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", port)})
	t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return c
		}
		select {
		case <-exited:
			t.Fatalf("redis-server on port %s exited: %v\n%s", port, waitErr, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %s did not answer PING within 5s: %v", port, err)
		}
	}
}

// setPolicy sets the maxmemory-policy of the server of c, a private one.
func setPolicy(t *testing.T, c *redis.Client, policy string) {
	t.Helper()
	if err := c.ConfigSet(t.Context(), "maxmemory-policy", policy).Err(); err != nil {
		t.Fatalf("setting maxmemory-policy %s: %v", policy, err)
	}
}

// TestNewRefusesEvictingServer: New refuses a Redis server whose
// maxmemory-policy lets it evict the store's keys. Every key the store
// writes has an expiry, so under any policy but noeviction (volatile-lru
// is the default of common managed services) a server at its maxmemory
// drops them silently: a user's index (u:…) gone while their sessions
// stay leaves sessions that still authenticate but that DeleteByUser
// (deactivation, password change or reset, "end all my sessions", IdP
// logout) no longer finds, and an evicted throttle counter or SAML replay
// record forgets attempts and accepted assertions. The store cannot tell
// such a loss afterwards, so it must not run on such a server.
func TestNewRefusesEvictingServer(t *testing.T) {
	c := privateServer(t)
	// A Ring (as a Cluster client) asks each of its servers.
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": c.Options().Addr}})
	t.Cleanup(func() { ring.Close() })
	for _, policy := range []string{"allkeys-lru", "volatile-lru", "volatile-ttl"} {
		setPolicy(t, c, policy)
		st, err := redisstore.New(t.Context(), c, redisstore.Options{})
		skipped, skipErr := redisstore.New(t.Context(), c, redisstore.Options{SkipEvictionCheck: true})
		_, ringErr := redisstore.New(t.Context(), ring, redisstore.Options{Prefix: "{guard}:"})
		if ee := (*redisstore.EvictionError)(nil); !errors.As(ringErr, &ee) {
			t.Errorf("New with a Ring on a server with maxmemory-policy %s: %v, want an *EvictionError", policy, ringErr)
		}
		var ee *redisstore.EvictionError
		if !errors.As(err, &ee) || ee.Policy != policy || st != nil {
			t.Errorf("New on a server with maxmemory-policy %s = %v, %v; want an *EvictionError naming it", policy, st, err)
		} else if msg := err.Error(); !strings.Contains(msg, "maxmemory-policy") || !strings.Contains(msg, "noeviction") {
			t.Errorf("the error says %q; want it to name maxmemory-policy and noeviction", msg)
		}
		if skipErr != nil || skipped == nil {
			t.Errorf("New with SkipEvictionCheck on a server with maxmemory-policy %s: %v", policy, skipErr)
		}
	}
	setPolicy(t, c, "noeviction")
	if st, err := redisstore.New(t.Context(), c, redisstore.Options{}); err != nil || st == nil {
		t.Errorf("New on a server with maxmemory-policy noeviction: %v", err)
	}
	if _, err := redisstore.New(t.Context(), ring, redisstore.Options{Prefix: "{guard}:"}); err != nil {
		t.Errorf("New with a Ring on a server with maxmemory-policy noeviction: %v", err)
	}
}

// TestNewEvictionCheckRefused: a server that refuses CONFIG GET (here an
// ACL denies it, NOPERM; managed services often disable CONFIG) cannot be
// checked, and New takes it at its operator's word (the package
// documentation tells them to set noeviction).
func TestNewEvictionCheckRefused(t *testing.T) {
	c := privateServer(t) // its policy, allkeys-lru, would be refused
	ctx := t.Context()
	user, pass := "guardtest", randomHex()
	if err := c.Do(ctx, "ACL", "SETUSER", user, "on", ">"+pass, "~*", "&*", "+@all", "-config").Err(); err != nil {
		t.Skipf("redis-server refuses ACL SETUSER: %v", err)
	}
	limited := redis.NewClient(&redis.Options{Addr: c.Options().Addr, Username: user, Password: pass})
	t.Cleanup(func() { limited.Close() })
	if err := limited.ConfigGet(ctx, "maxmemory-policy").Err(); !redis.IsPermissionError(err) {
		t.Fatalf("CONFIG GET as %s: %v, want NOPERM", user, err)
	}
	if st, err := redisstore.New(t.Context(), limited, redisstore.Options{}); err != nil || st == nil {
		t.Errorf("New on a server that refuses CONFIG GET: %v", err)
	}
}

// TestNewEvictionCheckUnreachable: New on a server it cannot reach
// cannot check it, and fails closed: an error, prefixed "redisstore:",
// that is not an *EvictionError.
func TestNewEvictionCheckUnreachable(t *testing.T) {
	st, err := redisstore.New(t.Context(), deadClient(t), redisstore.Options{})
	var ee *redisstore.EvictionError
	if err == nil || st != nil || errors.As(err, &ee) || !errors.Is(err, syscall.ECONNREFUSED) ||
		!strings.HasPrefix(err.Error(), "redisstore: ") {
		t.Errorf("New with Redis down = %v, %v; want a redisstore: error wrapping ECONNREFUSED", st, err)
	}
}

// TestNewEvictionCheckContext: New's check runs within its ctx (a
// cancelled one is an error wrapping context.Canceled), and with
// SkipEvictionCheck New does no I/O, so ctx does not matter.
func TestNewEvictionCheckContext(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if st, err := redisstore.New(ctx, c, redisstore.Options{}); err == nil || st != nil || !errors.Is(err, context.Canceled) {
		t.Errorf("New with a cancelled context = %v, %v; want an error wrapping context.Canceled", st, err)
	}
	if st, err := redisstore.New(ctx, c, redisstore.Options{SkipEvictionCheck: true}); err != nil || st == nil {
		t.Errorf("New with a cancelled context and SkipEvictionCheck: %v", err)
	}
}
