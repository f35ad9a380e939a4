package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The key file is written only once the database has opened: a start on
// a file that is not a database leaves no new key file behind. A start
// refused for a lost key file names it and writes none either.
func TestKeyFileMadeAfterDatabase(t *testing.T) {
	o := testOptions(t, "https://console.test", nil, "")
	if err := os.WriteFile(o.db, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := newConsole(context.Background(), o, io.Discard); err == nil {
		c.Close()
		t.Fatal("the console started on a file that is not a database")
	}
	if _, err := os.Stat(o.db + ".keys"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a start that failed to open the database left a key file: %v", err)
	}

	o = testOptions(t, "https://console.test", nil, "")
	newTestConsoleWith(t, o, nil).Close()
	os.Remove(o.db + ".keys")
	c, err := newConsole(context.Background(), o, io.Discard)
	if err == nil {
		c.Close()
	}
	var missing *keyFileMissingError
	if !errors.As(err, &missing) || !strings.Contains(err.Error(), o.db+".keys") {
		t.Errorf("a database with data without its key file: %v, want a keyFileMissingError naming the file", err)
	}
	if _, err := os.Stat(o.db + ".keys"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused start wrote a key file: %v", err)
	}
}

// Engine flags that contradict each other, or that the engine chosen
// would ignore, are usage errors naming them; the README's commands are
// not.
func TestEngineFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		bad  string // a flag the error names; "" if the line is fine
	}{
		{nil, ""},
		{[]string{"-postgres", "postgres://h/db", "-redis", "127.0.0.1:6379"}, ""},
		{[]string{"-postgres", "postgres://h/db", "-postgres-schema", "s", "-redis", "r:6379", "-redis-prefix", "p:"}, ""},
		{[]string{"-idp-metadata", "http://127.0.0.1:8081/metadata"}, ""},
		{[]string{"-memory", "-idp-metadata", "http://127.0.0.1:8081/metadata", "-keys", "k"}, ""},
		{[]string{"-db", "other.db", "-redis", "r:6379"}, ""},
		{[]string{"-memory=false", "-postgres", "postgres://h/db"}, ""},
		{[]string{"-memory", "-postgres", "postgres://h/db"}, "-memory and -postgres"},
		{[]string{"-postgres", "postgres://h/db", "-db", "x.db"}, "-db"},
		{[]string{"-memory", "-db", "x.db"}, "-db"},
		{[]string{"-postgres-schema", "s"}, "-postgres-schema"},
		{[]string{"-memory", "-postgres-schema", "s"}, "-postgres-schema"},
		{[]string{"-redis-prefix", "p:"}, "-redis-prefix"},
	} {
		_, err := parseFlags(tc.args)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("parseFlags(%q): %v", tc.args, err)
		case tc.bad != "" && (!errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("parseFlags(%q): %v, want a usage error naming %s", tc.args, err, tc.bad)
		}
	}
}

// A PostgreSQL host that accepts the connection and never answers (as one
// that drops packets) fails the start within the startup deadline, not
// after minutes; the connect timeout is set unless the DSN sets one.
func TestPostgresStartBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := testOptions(t, "https://console.test", nil, "")
	o.keys = o.db + ".keys"
	o.db, o.postgres, o.pgSchema = "", "postgres://guard@"+ln.Addr().String()+"/guard?sslmode=disable", "guard"
	o.startupTimeout = 300 * time.Millisecond
	start := time.Now()
	c, err := newConsole(ctx, o, io.Discard)
	if err == nil {
		c.Close()
		t.Fatal("the console started on a server that never answered")
	}
	if d := time.Since(start); d > 5*time.Second || !strings.Contains(err.Error(), "no answer within") {
		t.Errorf("start on a silent PostgreSQL: %v after %v, want \"no answer within\" at once", err, d)
	}

	for dsn, want := range map[string]time.Duration{
		"postgres://guard@db.example/guard":                   pgConnectTimeout,
		"postgres://guard@db.example/guard?connect_timeout=3": 3 * time.Second,
	} {
		cfg, err := pgPoolConfig(dsn)
		if err != nil || cfg.ConnConfig.ConnectTimeout != want {
			t.Errorf("pgPoolConfig(%q): connect timeout %v, %v; want %v", dsn, cfg.ConnConfig.ConnectTimeout, err, want)
		}
	}
}
