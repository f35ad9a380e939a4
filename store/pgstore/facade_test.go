package pgstore_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// roundTrips is a pgx tracer that records every statement, batch and copy
// sent to the server: once pgx has prepared a statement on the connection,
// each is one round trip.
type roundTrips struct {
	mu    sync.Mutex
	calls []string
}

func (r *roundTrips) add(what string) {
	r.mu.Lock()
	r.calls = append(r.calls, what)
	r.mu.Unlock()
}

// take returns the calls recorded since the last take and forgets them.
func (r *roundTrips) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.add(label(d.SQL))
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	r.add("batch")
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}
func (r *roundTrips) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	r.add("copy")
	return ctx
}
func (r *roundTrips) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

// label names the store method that sends sql.
func label(sql string) string {
	for _, l := range []struct{ in, name string }{
		{"throttle_reserve", "Throttle.ReserveAll"},
		{"throttle_settle", "Throttle.Settle"},
		{"throttle_apply", "Throttle.Reserve"},
		{"SET failures = failures - 1", "Throttle.Release"},
		{"DELETE FROM {s}.throttle WHERE key", "Throttle.Reset"},
		{"FROM {s}.users WHERE tenant = $1 AND email", "Users.UserByEmail"},
		{"SET last_login_at", "Users.RecordLogin"},
		{"session_create", "Sessions.Create"},
		{"UPDATE {s}.sessions SET last_seen_us = $2\n\t\t\t\tWHERE hash = $1 AND $2 < ends_us", "Sessions.LookupTouch"},
		{"UPDATE {s}.sessions SET last_seen_us = $2 WHERE hash = $1 AND last_seen_us < $2", "Sessions.Touch"},
		{"INSERT INTO {s}.audit_events", "Audit.Append"},
		{"FROM {s}.audit_heads WHERE", "Audit.Head"},
		{"FROM {s}.tenants WHERE id = $1", "Tenants.Tenant"},
		{"SELECT version FROM {s}.ip_lists", "IPLists.Version"},
		{"FROM {s}.ip_lists WHERE", "IPLists.Lists"},
		{"mfa_create_factor", "MFA.CreateFactor"},
		{"mfa_check_code", "MFA.CheckCode"},
		{"INSERT INTO {s}.mfa_codes", "MFA.PutCode"},
		{"INSERT INTO {s}.mfa_rates", "MFA.Hit"},
		{"INSERT INTO {s}.mfa_transactions", "MFA.CreateTransaction"},
		{"FROM {s}.mfa_transactions WHERE hash = $1 RETURNING", "MFA.ConsumeTransaction"},
		{"FROM {s}.mfa_transactions WHERE hash", "MFA.Transaction"},
		{"FROM {s}.mfa_factors WHERE tenant = $1 AND user_id = $2\n", "MFA.Factors"},
		{"confirmed_at IS NOT NULL AND last_step < $4", "MFA.AdvanceStep"},
		{"array_agg(DISTINCT kind", "MFA.Enrolments"},
		{"SELECT version FROM {s}.rbac_versions", "Policies.Version"},
		{"FROM {s}.rbac_versions v LEFT JOIN {s}.rbac_rules", "Policies.Policy"},
		{"FROM {s}.rbac_versions v LEFT JOIN {s}.rbac_changes", "Policies.Changes"},
		{"rbac_update", "Policies.Update"},
		{"rbac_decide_approval", "Approvals.DecideApproval"},
		{"rbac_consume_approval", "Approvals.ConsumeApproval"},
	} {
		if strings.Contains(normalize(sql), l.in) {
			return l.name
		}
	}
	return strings.Join(strings.Fields(sql), " ")
}

// normalize replaces the quoted test schema in sql by {s}.
func normalize(sql string) string {
	if i := strings.Index(sql, `"guardtest_`); i >= 0 {
		if j := strings.IndexByte(sql[i+1:], '"'); j >= 0 {
			return strings.ReplaceAll(sql, sql[i:i+j+2], "{s}")
		}
	}
	return sql
}

// tracedPool returns a pool of one connection whose round trips rt
// records; it never pings on acquire, so every round trip is a statement.
func tracedPool(t *testing.T, rt *roundTrips) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testPoolDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	cfg.ConnConfig.Tracer = rt
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

const (
	facadeTenant   = "acme"
	facadeEmail    = "alice@example.com"
	facadePassword = "correct horse battery staple"
)

var facadeNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// newFacade returns a Guard on stores with one tenant and one user, and
// small argon2id parameters. Its clock is c (facadeNow if c is nil).
func newFacade(t *testing.T, stores guard.Stores, c *clock) *guard.Guard {
	t.Helper()
	if c == nil {
		c = &clock{t: facadeNow}
	}
	g, err := guard.New(guard.Config{
		Stores:   stores,
		AuditKey: auditKey,
		Hasher:   auth.HasherConfig{Memory: 64, Time: 1},
		Defaults: guard.Policy{SessionLimit: 100},
		Now:      c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := g.Tenant(ctx, facadeTenant); err != nil {
		if _, err := g.CreateTenant(ctx, guard.System("test"), facadeTenant, "Acme", guard.Policy{}); err != nil {
			t.Fatal(err)
		}
		if _, err := g.CreateUser(ctx, guard.System("test"), guard.NewUser{Tenant: facadeTenant, Email: facadeEmail, Password: facadePassword}); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func login(t *testing.T, g *guard.Guard) guard.LoginResult {
	t.Helper()
	res, err := g.Login(t.Context(), guard.LoginRequest{Tenant: facadeTenant, Email: facadeEmail, Password: facadePassword, IP: "203.0.113.5", UserAgent: "test"})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return res
}

// The PostgreSQL round trips of one successful password login, with
// everything in PostgreSQL and with throttling and sessions elsewhere (the
// memstore standing in for Redis), and of one request check. A warm login
// with everything in PostgreSQL is 7: Users.UserByEmail, IPLists.Version
// (the IP allow-list check: the tenant has no lists, so nothing more is
// read), Throttle.ReserveAll (client IP and account), Throttle.Settle
// (release the IP, reset the account), Sessions.Create, Users.RecordLogin
// and Audit.Append.
func TestFacadeRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		name string
		// stores returns the facade's stores given the PostgreSQL ones.
		stores   func(pg guard.Stores) guard.Stores
		maxLogin int
		throttle []string // the throttle's round trips of a login
	}{
		{"EverythingInPostgres", func(pg guard.Stores) guard.Stores { return pg }, 6,
			[]string{"Throttle.ReserveAll", "Throttle.Settle"}},
		{"ThrottleAndSessionsElsewhere", func(pg guard.Stores) guard.Stores {
			sessions := memstore.NewSessions()
			pg.Throttle, pg.Sessions, pg.SessionIndex = memstore.NewThrottle(0), sessions, sessions
			return pg
		}, 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := new(roundTrips)
			st := newStoreOn(t, tracedPool(t, rt), "")
			// Allow-list and rbac versions are kept in memory while
			// Watch listens (on a connection of its own, not traced).
			watching(t, st)
			stores := tc.stores(st.Stores())
			g := newFacade(t, stores, nil)
			u, err := st.Users.UserByEmail(t.Context(), facadeTenant, facadeEmail)
			if err != nil {
				t.Fatal(err)
			}
			if err := g.GrantRole(t.Context(), guard.System("test"), facadeTenant, "user:"+u.ID, rbac.Admin); err != nil {
				t.Fatal(err)
			}
			login(t, g) // prepares the statements on the connection
			rt.take()

			// A new Guard: a replica that has just started (no cached
			// policy, no cached audit head).
			c := &clock{t: facadeNow}
			cold := newFacade(t, stores, c)
			rt.take()
			login(t, cold)
			coldCalls := rt.take()
			t.Logf("login, cold replica: %d round trips: %s", len(coldCalls), strings.Join(coldCalls, ", "))

			res := login(t, cold)
			calls := rt.take()
			t.Logf("login, warm replica: %d round trips: %s", len(calls), strings.Join(calls, ", "))
			if len(calls) > tc.maxLogin {
				t.Errorf("a login took %d PostgreSQL round trips, want at most %d", len(calls), tc.maxLogin)
			}
			var throttle []string
			for _, c := range calls {
				if strings.HasPrefix(c, "Throttle.") {
					throttle = append(throttle, c)
				}
			}
			if !slices.Equal(throttle, tc.throttle) {
				t.Errorf("a login's throttle round trips were %q, want %q", throttle, tc.throttle)
			}
			if _, err := cold.Authenticate(t.Context(), res.Token); err != nil {
				t.Fatal(err)
			}
			calls = rt.take()
			t.Logf("request check: %d round trips: %s", len(calls), strings.Join(calls, ", "))
			if tc.name == "EverythingInPostgres" && (len(calls) != 1 || calls[0] != "Sessions.LookupTouch") {
				t.Errorf("a request check took %v, want exactly one Sessions.LookupTouch", calls)
			}
			// A guarded request: the session, the client IP against the
			// tenant's allow-list, a role decision. The first one loads
			// the tenant's rbac policy into this replica.
			guarded := func() guard.Principal {
				r := httptest.NewRequest(http.MethodGet, "/contacts", nil)
				r.RemoteAddr = "203.0.113.5:1234"
				r.AddCookie(&http.Cookie{Name: "__Host-guard", Value: res.Token})
				p, err := cold.AuthenticateRequest(r)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := cold.Authorize(t.Context(), p, rbac.Contacts, rbac.Read); err != nil {
					t.Fatal(err)
				}
				return p
			}
			guarded()
			rt.take()
			p := guarded()
			calls = rt.take()
			t.Logf("guarded request: %d round trips: %s", len(calls), strings.Join(calls, ", "))
			if tc.name == "EverythingInPostgres" && (len(calls) != 1 || calls[0] != "Sessions.LookupTouch") {
				t.Errorf("a guarded request took %v, want exactly one Sessions.LookupTouch", calls)
			}
			if tc.name != "EverythingInPostgres" && len(calls) != 0 {
				t.Errorf("a guarded request with sessions elsewhere took %v PostgreSQL round trips, want none", calls)
			}
			// 45 seconds later LastSeen is due to move (TouchInterval, 30 s)
			// and less than a minute old (MaxTouchGap): still one session
			// round trip, which writes it. This replica's copy of the
			// tenant's policy (which Authenticate applies to the session)
			// is older than PolicyCacheTTL by then: one read of it too,
			// as once per PolicyCacheTTL for each tenant in use.
			later := facadeNow.Add(45 * time.Second)
			c.Set(later)
			p, err = cold.Authenticate(t.Context(), res.Token)
			if err != nil {
				t.Fatal(err)
			}
			calls = rt.take()
			t.Logf("request check with a touch: %d round trips: %s", len(calls), strings.Join(calls, ", "))
			if tc.name == "EverythingInPostgres" {
				if !slices.Equal(calls, []string{"Sessions.LookupTouch", "Tenants.Tenant"}) {
					t.Errorf("a request check with a touch and the policy due took %v, want Sessions.LookupTouch, Tenants.Tenant", calls)
				}
				if _, err := cold.Authenticate(t.Context(), res.Token); err != nil {
					t.Fatal(err)
				}
				if calls := rt.take(); !slices.Equal(calls, []string{"Sessions.LookupTouch"}) {
					t.Errorf("the next request check took %v, want exactly one Sessions.LookupTouch", calls)
				}
				s, err := st.Sessions.Lookup(t.Context(), p.Session)
				if err != nil || !s.LastSeen.Equal(later) {
					t.Errorf("LastSeen after the touch = %v, %v; want %v", s.LastSeen, err, later)
				}
				// After a pause of a minute or more, LookupTouch leaves
				// the session alone and a second round trip writes
				// LastSeen once the tenant's policy has let it through.
				paused := later.Add(time.Minute)
				c.Set(paused)
				rt.take() // the Lookup above
				if _, err := cold.Authenticate(t.Context(), res.Token); err != nil {
					t.Fatal(err)
				}
				if calls := rt.take(); !slices.Equal(calls, []string{"Sessions.LookupTouch", "Tenants.Tenant", "Sessions.Touch"}) {
					t.Errorf("a request check after a pause took %v, want Sessions.LookupTouch, Tenants.Tenant, Sessions.Touch", calls)
				}
				if s, err := st.Sessions.Lookup(t.Context(), p.Session); err != nil || !s.LastSeen.Equal(paused) {
					t.Errorf("LastSeen after the pause = %v, %v; want %v", s.LastSeen, err, paused)
				}
			}
		})
	}
}

// The facade on PostgreSQL end to end: lockout after failed logins, admin
// unlock, deactivation ending sessions, and an audit chain that verifies.
func TestFacadeFlow(t *testing.T) {
	st := newStore(t)
	c := &clock{t: facadeNow}
	g := newFacade(t, st.Stores(), c)
	ctx := t.Context()
	bad := guard.LoginRequest{Tenant: facadeTenant, Email: facadeEmail, Password: "wrong password!", IP: "203.0.113.9"}
	for i := range guard.DefaultAccountLimit.Max {
		if _, err := g.Login(ctx, bad); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("bad login %d: %v", i, err)
		}
	}
	good := guard.LoginRequest{Tenant: facadeTenant, Email: facadeEmail, Password: facadePassword, IP: "203.0.113.9"}
	if _, err := g.Login(ctx, good); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Fatalf("login with the right password while locked: %v, want ErrInvalidCredentials", err)
	}
	u, err := st.Users.UserByEmail(ctx, facadeTenant, facadeEmail)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.UnlockUser(ctx, guard.System("test"), facadeTenant, u.ID); err != nil {
		t.Fatalf("UnlockUser: %v", err)
	}
	res, err := g.Login(ctx, good)
	if err != nil {
		t.Fatalf("login after unlock: %v", err)
	}
	if _, err := g.Authenticate(ctx, res.Token); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if err := g.DeactivateUser(ctx, guard.System("test"), facadeTenant, u.ID); err != nil {
		t.Fatalf("DeactivateUser: %v", err)
	}
	if _, err := g.Authenticate(ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Authenticate after deactivation: %v, want ErrUnauthenticated", err)
	}
	if _, err := g.Login(ctx, good); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Errorf("login of a deactivated user: %v, want ErrInvalidCredentials", err)
	}
	rep, err := g.VerifyAudit(ctx, guard.System("test"), facadeTenant)
	if err != nil || !rep.OK || rep.Checked < 10 {
		t.Errorf("audit Verify = %+v, %v; want OK over every event", rep, err)
	}
	evs, err := st.Audit.Query(ctx, facadeTenant, audit.Query{Action: string(audit.LoginLocked)})
	if err != nil || len(evs) != 1 {
		t.Errorf("login.locked events: %d, %v; want 1", len(evs), err)
	}
}

// A sign-in at the default session limit (one session per user, the
// oldest ending) costs no more round trips than one below it: the
// previous session is evicted in the same Sessions.Create.
func TestFacadeRoundTripsAtTheSessionLimit(t *testing.T) {
	rt := new(roundTrips)
	st := newStoreOn(t, tracedPool(t, rt), "")
	watching(t, st)
	g := newFacade(t, st.Stores(), nil)
	tn, err := g.Tenant(t.Context(), facadeTenant)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	pol.SessionLimit = 1
	if _, err := g.SetPolicy(t.Context(), guard.System("test"), facadeTenant, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	login(t, g)
	login(t, g) // warm: statements prepared, policy and audit head cached
	rt.take()
	res := login(t, g)
	calls := rt.take()
	t.Logf("login at the limit: %d round trips: %s", len(calls), strings.Join(calls, ", "))
	if res.Evicted != 1 {
		t.Errorf("Evicted = %d, want 1", res.Evicted)
	}
	if len(calls) > 6 {
		t.Errorf("a login at the session limit took %d PostgreSQL round trips, want at most 6", len(calls))
	}
}
