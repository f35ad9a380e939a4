//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

// A stop signal (SIGINT, SIGTERM: serve's ctx done) lets the requests in
// flight finish on open stores before serve returns. http.Server.Serve
// returns ErrServerClosed as soon as Shutdown is called, so serve returns
// at once and its deferred Close shuts the stores under the sign-in still
// being handled (and main then exits, cutting it off).
func TestAuditOps_ShutdownWaitsForInFlightRequests(t *testing.T) {
	o := testOptions(t, "", nil, "")
	o.addr = "127.0.0.1:0"
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, o, out) }()

	addr := out.waitFor(t, `Guard evaluation console: http://([0-9.:]+)/`, done)
	password := out.waitFor(t, `with the password\n\n    (\S+)\n`, done)

	// A sign-in whose form is still arriving when the stop signal comes.
	body := url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {password}}.Encode()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nSec-Fetch-Site: same-origin\r\nContent-Length: %d\r\n\r\n%s",
		addr, len(body), body[:10])
	time.Sleep(300 * time.Millisecond) // the handler is reading the form
	cancel()
	returned := false
	select {
	case err := <-done:
		returned = true
		t.Errorf("serve returned (%v) while a request was in flight: its stores are closed under it", err)
	case <-time.After(500 * time.Millisecond):
	}
	io.WriteString(conn, body[10:])
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight sign-in got no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the sign-in in flight at shutdown was answered %d, want 303 (signed in): it ran on closed stores", resp.StatusCode)
	}
	if !returned {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("serve did not return after the last request")
		}
	}
}

// A database whose key file is gone (another working directory for
// -postgres's default guard-postgres.keys, a copy of guard.db without
// guard.db.keys, a restore from backup) must not start: the console makes
// new audit, TOTP and SAML keys and runs on the old data, so every event
// it appends extends the tenant's HMAC chain under another key (the chain
// never verifies again), no TOTP secret sealed before opens, and the IdPs
// no longer trust the SP's certificate. It should refuse to start, saying
// the key file is missing for a database that has data.
func TestAuditOps_LostKeyFileRefusedForExistingDatabase(t *testing.T) {
	o := testOptions(t, "https://console.test", nil, "")
	first, err := newConsole(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	if err := os.Remove(o.db + ".keys"); err != nil {
		t.Fatal(err)
	}
	second, err := newConsole(context.Background(), o, io.Discard)
	if err == nil {
		defer second.Close()
		ctx := context.Background()
		sys := guard.System("test")
		// One event under the new key.
		second.g.CreateUser(ctx, sys, guard.NewUser{Tenant: demoTenant, Email: "kim@demo.example", Roles: []string{"member"}})
		rep, verr := second.g.VerifyAudit(ctx, sys, demoTenant)
		t.Errorf("the console started on an existing database with new keys (the key file was missing): "+
			"the audit chain now verifies OK=%v (reason %q, first bad %d, err %v)", rep.OK, rep.Reason, rep.FirstBad, verr)
	}
}

// The SQLite file holds every user's password hash, session and reset
// token hashes, recovery-code hashes and the audit log (emails, IPs);
// the console keeps the key file readable by its owner only, but creates
// guard.db (and its -wal and -shm) with the umask's mode, world-readable
// under the usual 022: any local account can copy the password hashes.
func TestAuditOps_DatabaseFileNotWorldReadable(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	o := testOptions(t, "https://console.test", nil, "")
	newTestConsoleWith(t, o, nil)
	for _, name := range []string{o.db, o.db + "-wal", o.db + "-shm"} {
		fi, err := os.Stat(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v: readable by other accounts (the key file beside it is 0600)", filepath.Base(name), perm)
		}
	}
}

// -memory with -postgres: the console says nothing and keeps everything
// in PostgreSQL (the switch takes -postgres first), where the evaluator
// asked for nothing to be saved. Conflicting engine flags should be a
// usage error that names them.
func TestAuditOps_MemoryWithPostgresRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	keys := filepath.Join(t.TempDir(), "keys")
	// An address where nothing listens: the console must refuse the flags
	// before it tries to connect.
	err := run(ctx, []string{"-addr", "127.0.0.1:0", "-memory", "-postgres", "postgres://guard@127.0.0.1:1/guard?sslmode=disable",
		"-keys", keys}, io.Discard)
	if err == nil || !(errors.Is(err, errUsage) || strings.Contains(err.Error(), "-memory")) {
		t.Errorf("-memory with -postgres: %v, want a usage error naming the conflicting flags", err)
	}
}
