package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/internal/testenv"
)

// The console on PostgreSQL (-postgres) with sessions, throttling and
// one-time codes in Redis (-redis): sign-in, a user created and then
// deactivated (their session dies at once), the access review, the audit
// chain's check, and a sign-in by SSO (the IdP connection in PostgreSQL,
// the tracked request and the replay cache in Redis).
func TestConsoleOnPostgresAndRedis(t *testing.T) {
	dsn, addr := testenv.Postgres(t), testenv.Redis(t)
	var b [4]byte
	rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	schema, prefix := "console_"+suffix, "console_"+suffix+":"
	t.Cleanup(func() {
		ctx := context.Background()
		if pool, err := pgxpool.New(ctx, dsn); err == nil {
			pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			pool.Close()
		}
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	idp := newTestIdP(t)
	o := options{postgres: dsn, pgSchema: schema, redis: addr, redisPrefix: prefix, keys: filepath.Join(t.TempDir(), "keys"),
		baseURL: srv.URL, seed: true, hasher: 1, hasherMemory: 1024, newSPKey: testSPKey, idpMetadata: idp.url + "/metadata"}
	con, err := newConsole(context.Background(), o, &testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { con.Close() })
	if !strings.Contains(con.backend.name, "PostgreSQL") || !strings.Contains(con.backend.name, "Redis") {
		t.Fatalf("backend %q", con.backend.name)
	}
	srv.Config.Handler = con.app.routes()
	owner, sam := newClientOf(t, srv, con), newClientOf(t, srv, con)
	if resp := owner.signInAdmin(ownerEmail, con.password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	resp, _ := owner.post("/users", url.Values{"email": {"sam@demo.example"}, "name": {"Sam Staff"}, "role": {"member"}, "password": {"plum tree on the hill 42"}})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/users/") {
		t.Fatalf("create user: %d %q", resp.StatusCode, loc)
	}
	if resp := sam.signIn("sam@demo.example", "plum tree on the hill 42"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Sam's sign-in: %d", resp.StatusCode)
	}
	if code, w := sam.whoami(); code != 200 || w.Email != "sam@demo.example" {
		t.Fatalf("Sam's whoami: %d %+v", code, w)
	}
	if resp, body := owner.post(loc+"/deactivate", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		pg, _ := con.g.QueryAudit(context.Background(), guard.System("t"), demoTenant, audit.Query{Desc: true, Limit: 5})
		for _, e := range pg.Events {
			t.Logf("%s %s %s %s %v", e.Action, e.Outcome, e.Reason, e.Target, e.Meta)
		}
		t.Fatalf("deactivate: %d %.0s", resp.StatusCode, body)
	}
	if code, _ := sam.whoami(); code != http.StatusUnauthorized {
		t.Fatalf("Sam's session after deactivation: %d", code)
	}
	if resp, body := owner.get("/review"); resp.StatusCode != 200 || !strings.Contains(body, `id="count-dormant">0<`) || !strings.Contains(body, "sam@demo.example") {
		t.Fatalf("review: %d", resp.StatusCode)
	}
	if resp, body := owner.post("/audit/verify", url.Values{}); resp.StatusCode != 200 || !strings.Contains(body, "Integrity verified") {
		t.Fatalf("verify: %d", resp.StatusCode)
	}

	idp.trust(owner)
	idp.addUser("alice", "alice@example.com", "correct horse battery", "staff")
	alice, mallory := newClientOf(t, srv, con), newClientOf(t, srv, con)
	acs, answer := alice.ssoAnswer(idp, "alice", "correct horse battery", "")
	if resp, _ := alice.postFrom(idp.url, "cross-site", acs, answer); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ACS: %d", resp.StatusCode)
	}
	if code, w := alice.whoami(); code != 200 || w.Email != "alice@example.com" || !w.SSO {
		t.Fatalf("whoami after SSO: %d %+v", code, w)
	}
	if resp, _ := mallory.postFrom(idp.url, "cross-site", acs, answer); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the answer replayed: %d", resp.StatusCode)
	}
}
