// Package testenv gives backend tests the addresses of the PostgreSQL and
// Redis servers they run against.
//
// A test calls Postgres or Redis first. When the variable is unset the test
// is skipped with a message naming it — unless the CI variable is set, in
// which case the test fails: in CI every backend must run.
package testenv

import (
	"context"
	"net"
	"os"
	"testing"
	"time"
)

// Names of the variables read by this package.
const (
	PostgresVar = "GUARD_TEST_POSTGRES" // a PostgreSQL DSN
	RedisVar    = "GUARD_TEST_REDIS"    // a Redis address, host:port
)

// Postgres returns the DSN in GUARD_TEST_POSTGRES, or skips (fails in CI)
// when it is unset.
func Postgres(tb testing.TB) string {
	tb.Helper()
	return lookup(tb, PostgresVar)
}

// Redis returns the address in GUARD_TEST_REDIS, or skips (fails in CI)
// when it is unset. It also fails when nothing listens there.
func Redis(tb testing.TB) string {
	tb.Helper()
	addr := lookup(tb, RedisVar)
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		tb.Fatalf("%s=%s: Redis unreachable: %v", RedisVar, addr, err)
	}
	c.Close()
	return addr
}

// CI reports whether the tests run in CI (the CI variable is set).
func CI() bool { return os.Getenv("CI") != "" }

func lookup(tb testing.TB, name string) string {
	tb.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if CI() {
		tb.Fatalf("%s is not set, and CI is: the backend tests must run in CI", name)
	}
	tb.Skipf("%s is not set: skipping the tests that need it", name)
	return ""
}
