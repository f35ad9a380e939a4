package sqlitestore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/sqlitestore"
)

const alicePW = "correct horse battery staple"

func newGuard(t *testing.T, st *sqlitestore.Store) *guard.Guard {
	t.Helper()
	g, err := guard.New(guard.Config{Stores: st.Stores(), AuditKey: auditKey, Hasher: fastHasher})
	if err != nil {
		t.Fatalf("guard.New: %v", err)
	}
	return g
}

// The facade on SQLite, end to end: tenant, user, login, the per-request
// check, the audit chain; then the same file reopened.
func TestFacadeEndToEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	st := openFile(t, path)
	g := newGuard(t, st)
	ctx := context.Background()
	sys := guard.System("t")
	if _, err := g.CreateTenant(ctx, sys, "acme", "Acme", guard.Policy{}); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	u, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: "acme", Email: "Alice@Example.com", Name: "Alice", Password: alicePW})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if _, err := g.Login(ctx, guard.LoginRequest{Tenant: "acme", Email: "alice@example.com", Password: "wrong password!", IP: "203.0.113.5"}); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Fatalf("Login with a wrong password: %v, want ErrInvalidCredentials", err)
	}
	res, err := g.Login(ctx, guard.LoginRequest{Tenant: "acme", Email: "alice@example.com", Password: alicePW, IP: "203.0.113.5", UserAgent: "test"})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	p, err := g.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if p.Tenant != "acme" || p.UserID != u.ID || p.Session != res.Session.Hash {
		t.Fatalf("Authenticate = %+v, want alice's session in acme", p)
	}
	// One session per user by default: a second login ends the first.
	res2, err := g.Login(ctx, guard.LoginRequest{Tenant: "acme", Email: "alice@example.com", Password: alicePW, IP: "203.0.113.5"})
	if err != nil || res2.Evicted != 1 {
		t.Fatalf("second Login = %+v, %v; want one session evicted", res2, err)
	}
	if _, err := g.Authenticate(ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("Authenticate with the evicted session: %v, want ErrUnauthenticated", err)
	}
	rep, err := g.VerifyAudit(ctx, sys, "acme")
	if err != nil || !rep.OK || rep.Checked < 4 {
		t.Fatalf("audit Verify = %+v, %v; want OK over the tenant, user and login events", rep, err)
	}

	// Everything is in the file.
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st2 := openFile(t, path)
	g2 := newGuard(t, st2)
	if p, err := g2.Authenticate(ctx, res2.Token); err != nil || p.UserID != u.ID {
		t.Fatalf("Authenticate after reopening = %+v, %v", p, err)
	}
	rep2, err := g2.VerifyAudit(ctx, sys, "acme")
	if err != nil || !rep2.OK || rep2.Checked != rep.Checked {
		t.Fatalf("audit Verify after reopening = %+v, %v; want OK over %d events", rep2, err, rep.Checked)
	}
	if err := g2.Logout(ctx, guard.Principal{Kind: guard.KindUser, Tenant: "acme", UserID: u.ID, Session: res2.Session.Hash}); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if _, err := g2.Authenticate(ctx, res2.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("Authenticate after Logout: %v, want ErrUnauthenticated", err)
	}

	// Fail closed: with the store gone, the request check is an error,
	// never a success and never "not signed in".
	res3, err := g2.Login(ctx, guard.LoginRequest{Tenant: "acme", Email: "alice@example.com", Password: alicePW})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if err := st2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := g2.Authenticate(ctx, res3.Token); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("Authenticate on a closed store: %v, want ErrUnavailable", err)
	}
	if _, err := g2.Login(ctx, guard.LoginRequest{Tenant: "acme", Email: "alice@example.com", Password: alicePW}); err == nil {
		t.Fatal("Login on a closed store succeeded")
	}
}

// Ring-fenced tenants open one file each: many Stores at once, each with
// its own data, and Close gives back every file descriptor.
func TestManyStoresOpenAtOnce(t *testing.T) {
	dir := t.TempDir()
	const n = 24
	fdsBefore := openFDs(t)
	stores := make([]*sqlitestore.Store, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := sqlitestore.Open(context.Background(), filepath.Join(dir, fmt.Sprintf("tenant-%d.db", i)))
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
				return
			}
			stores[i] = s
			if err := s.Migrate(context.Background()); err != nil {
				t.Errorf("Migrate %d: %v", i, err)
				return
			}
			now := t0.Add(time.Duration(i) * time.Second)
			sess := session.Session{Hash: session.Hash{byte(i)}, Tenant: fmt.Sprint("tenant-", i), UserID: "u",
				CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour), IdleTimeout: time.Hour}
			if _, err := s.Sessions.Create(context.Background(), sess, session.Limit{Max: 1}); err != nil {
				t.Errorf("Create %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		for _, s := range stores {
			if s != nil {
				s.Close()
			}
		}
		t.FailNow()
	}
	// Each file holds its own tenant only.
	for i, s := range stores {
		for j := range n {
			_, err := s.Sessions.Lookup(context.Background(), session.Hash{byte(j)})
			if (i == j) != (err == nil) {
				t.Fatalf("store %d, Lookup of tenant %d's session: %v", i, j, err)
			}
		}
	}
	if fdsBefore >= 0 && openFDs(t) <= fdsBefore {
		t.Errorf("no file descriptors held by %d open stores?", n)
	}
	for _, s := range stores {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if fdsBefore >= 0 {
		if after := openFDs(t); after > fdsBefore {
			t.Errorf("%d file descriptors open after closing every store, %d before", after, fdsBefore)
		}
	}
}

// openFDs counts this process's open file descriptors (-1 where /proc is
// not available).
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// Ring-fenced tenants: the registry, sessions and throttle in one file,
// each tenant's users and audit chain in a file of its own, opened through
// Config.OpenTenant.
func TestFacadeRingFenced(t *testing.T) {
	dir := t.TempDir()
	shared := openFile(t, filepath.Join(dir, "shared.db"))
	var opened atomic.Int32
	g, err := guard.New(guard.Config{
		Stores:   shared.Stores().Shared(),
		AuditKey: auditKey,
		Hasher:   fastHasher,
		OpenTenant: func(ctx context.Context, tenant string) (guard.Stores, io.Closer, error) {
			st, err := sqlitestore.Open(ctx, filepath.Join(dir, "tenant-"+tenant+".db"))
			if err != nil {
				return guard.Stores{}, nil, err
			}
			if err := st.Migrate(ctx); err != nil {
				st.Close()
				return guard.Stores{}, nil, err
			}
			opened.Add(1)
			return st.Stores(), st, nil
		},
	})
	if err != nil {
		t.Fatalf("guard.New: %v", err)
	}
	defer g.Close()
	ctx := context.Background()
	sys := guard.System("t")
	for _, tenant := range []string{"acme", "globex"} {
		if _, err := g.CreateTenant(ctx, sys, tenant, tenant, guard.Policy{}); err != nil {
			t.Fatalf("CreateTenant(%s): %v", tenant, err)
		}
		if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenant, Email: "alice@example.com", Password: alicePW}); err != nil {
			t.Fatalf("CreateUser(%s): %v", tenant, err)
		}
		res, err := g.Login(ctx, guard.LoginRequest{Tenant: tenant, Email: "alice@example.com", Password: alicePW})
		if err != nil {
			t.Fatalf("Login(%s): %v", tenant, err)
		}
		if p, err := g.Authenticate(ctx, res.Token); err != nil || p.Tenant != tenant {
			t.Fatalf("Authenticate(%s) = %+v, %v", tenant, p, err)
		}
		if rep, err := g.VerifyAudit(ctx, sys, tenant); err != nil || !rep.OK || rep.Checked == 0 {
			t.Fatalf("VerifyAudit(%s) = %+v, %v", tenant, rep, err)
		}
	}
	if n := opened.Load(); n != 2 {
		t.Errorf("OpenTenant called %d times, want once per tenant", n)
	}
	// Each tenant's users and events are in its own file only.
	for _, tc := range []struct {
		file  string
		users int
	}{{"shared.db", 0}, {"tenant-acme.db", 1}, {"tenant-globex.db", 1}} {
		var users, events int
		db := shared.DB()
		if tc.file != "shared.db" {
			st := openFile(t, filepath.Join(dir, tc.file))
			db = st.DB()
		}
		if err := db.QueryRow(`SELECT (SELECT count(*) FROM guard_users), (SELECT count(*) FROM guard_audit_events) + (SELECT count(*) FROM guard_audit_tail)`).Scan(&users, &events); err != nil {
			t.Fatal(err)
		}
		if users != tc.users || (events > 0) != (tc.users > 0) {
			t.Errorf("%s holds %d users and %d audit events", tc.file, users, events)
		}
	}
}

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

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newMFAGuard returns a Guard with MFA on st's stores and the clock c.
func newMFAGuard(t *testing.T, st *sqlitestore.Store, c *clock) *guard.Guard {
	t.Helper()
	kr, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")}, Current: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.New(guard.Config{
		Stores:   st.Stores(),
		AuditKey: auditKey,
		Hasher:   fastHasher,
		Now:      c.Now,
		MFA:      &mfa.Config{Keyring: kr, Issuer: "t"},
	})
	if err != nil {
		t.Fatalf("guard.New: %v", err)
	}
	return g
}

// Password and TOTP through the facade on SQLite: enrolment, a sign-in
// completed with a code, the pending sign-in consumed once, the same code
// refused for the next sign-in (AdvanceStep's replay check), a recovery
// code used once; then, on a second Store of the same file (another
// replica), a sign-in with the next step's code and the earlier code
// still refused.
func TestFacadeLoginWithTOTP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	st := openFile(t, path)
	c := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	g := newMFAGuard(t, st, c)
	ctx := context.Background()
	sys := guard.System("t")
	if _, err := g.CreateTenant(ctx, sys, "acme", "Acme", guard.Policy{SessionLimit: 10}); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	u, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: "acme", Email: "alice@example.com", Password: alicePW})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	login := func(g *guard.Guard) guard.LoginResult {
		t.Helper()
		res, err := g.Login(ctx, guard.LoginRequest{Tenant: "acme", Email: "alice@example.com", Password: alicePW, IP: "203.0.113.5", UserAgent: "test"})
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		return res
	}
	complete := func(g *guard.Guard, pend *guard.Pending, method, code string) (guard.LoginResult, error) {
		return g.CompleteLogin(ctx, guard.SecondFactor{Pending: pend.Token, Method: method, Code: code, IP: "203.0.113.5", UserAgent: "test"})
	}

	// Without a factor, the password opens a session; enrol TOTP in it.
	res := login(g)
	if res.Pending != nil || res.Token == "" {
		t.Fatalf("Login before enrolment = %+v, want a session", res)
	}
	p, err := g.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	p.IP, p.UserAgent, p.Addr = "203.0.113.5", "test", netip.MustParseAddr("203.0.113.5")
	en, err := g.BeginTOTP(ctx, p, "Phone")
	if err != nil {
		t.Fatalf("BeginTOTP: %v", err)
	}
	code := func() string {
		t.Helper()
		s, err := totp.GenerateCode(en.Secret, c.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	recovery, err := g.ConfirmFactor(ctx, p, en.Factor.ID, code())
	if err != nil || len(recovery) != 10 {
		t.Fatalf("ConfirmFactor = %d recovery codes, %v; want 10", len(recovery), err)
	}
	f, err := st.MFA.Factor(ctx, "acme", u.ID, en.Factor.ID)
	if err != nil || !f.Confirmed() || f.LastStep == 0 || len(f.Secret) == 0 || bytes.Contains(f.Secret, []byte(en.Secret)) {
		t.Fatalf("stored factor = %+v, %v; want confirmed, with a step and a sealed secret", f, err)
	}

	// Password, then the next step's code.
	c.Advance(31 * time.Second)
	first := login(g).Pending
	if first == nil {
		t.Fatal("Login after enrolment gave a session, want a pending sign-in")
	}
	if _, err := g.Authenticate(ctx, first.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Authenticate(pending token) = %v, want ErrUnauthenticated", err)
	}
	now := code()
	res, err = complete(g, first, guard.MethodTOTP, now)
	if err != nil || res.Token == "" {
		t.Fatalf("CompleteLogin with TOTP = %+v, %v", res, err)
	}
	if pa, err := g.Authenticate(ctx, res.Token); err != nil || pa.Flags&guard.FlagMFA == 0 || pa.UserID != u.ID {
		t.Fatalf("session after TOTP = %+v, %v; want alice with FlagMFA", pa, err)
	}
	if _, err := complete(g, first, guard.MethodTOTP, now); !errors.Is(err, guard.ErrLoginExpired) {
		t.Errorf("second CompleteLogin of one pending sign-in = %v, want ErrLoginExpired", err)
	}
	second := login(g).Pending
	if _, err := complete(g, second, guard.MethodTOTP, now); !errors.Is(err, guard.ErrInvalidCode) {
		t.Errorf("reused TOTP code = %v, want ErrInvalidCode", err)
	}
	if res, err := complete(g, second, guard.MethodRecovery, recovery[3]); err != nil || res.Token == "" {
		t.Fatalf("CompleteLogin with a recovery code = %+v, %v", res, err)
	}
	if left, err := st.MFA.RecoveryCodesLeft(ctx, "acme", u.ID); err != nil || left != 9 {
		t.Errorf("RecoveryCodesLeft = %d, %v; want 9", left, err)
	}
	third := login(g).Pending
	if _, err := complete(g, third, guard.MethodRecovery, recovery[3]); !errors.Is(err, guard.ErrInvalidCode) {
		t.Errorf("reused recovery code = %v, want ErrInvalidCode", err)
	}
	if n := rows(t, st, "guard_mfa_transactions"); n != 1 {
		t.Errorf("%d pending sign-ins stored, want 1 (the third)", n)
	}

	// Another replica on the same file finishes the third sign-in with
	// the next step's code; the step used on the first replica stays used.
	g2 := newMFAGuard(t, openFile(t, path), c)
	if _, err := complete(g2, third, guard.MethodTOTP, now); !errors.Is(err, guard.ErrInvalidCode) {
		t.Errorf("TOTP code used on the other replica = %v, want ErrInvalidCode", err)
	}
	c.Advance(30 * time.Second)
	if res, err := complete(g2, third, guard.MethodTOTP, code()); err != nil || res.Token == "" {
		t.Fatalf("CompleteLogin on the second replica = %+v, %v", res, err)
	}
	rep, err := g.VerifyAudit(ctx, sys, "acme")
	if err != nil || !rep.OK {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
}

// Roles, four-eyes approvals, API keys and IP allow-lists through the
// facade on SQLite, with a second replica (another Store of the file)
// seeing every change.
func TestFacadeAccessControl(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	c := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	newG := func(st *sqlitestore.Store) *guard.Guard {
		g, err := guard.New(guard.Config{Stores: st.Stores(), AuditKey: auditKey, Hasher: fastHasher, Now: c.Now})
		if err != nil {
			t.Fatalf("guard.New: %v", err)
		}
		return g
	}
	st := openFile(t, path)
	g, g2 := newG(st), newG(openFile(t, path))
	ctx := context.Background()
	sys := guard.System("t")
	if _, err := g.CreateTenant(ctx, sys, "acme", "Acme", guard.Policy{SessionLimit: 10}); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	user := func(g *guard.Guard, email string, roles ...string) guard.Principal {
		t.Helper()
		if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: "acme", Email: email, Password: alicePW, Roles: roles}); err != nil {
			t.Fatalf("CreateUser(%s): %v", email, err)
		}
		res, err := g.Login(ctx, guard.LoginRequest{Tenant: "acme", Email: email, Password: alicePW, IP: "203.0.113.5"})
		if err != nil {
			t.Fatalf("Login(%s): %v", email, err)
		}
		p, err := g.Authenticate(ctx, res.Token)
		if err != nil {
			t.Fatal(err)
		}
		p.Addr, p.IP, p.UserAgent = netip.MustParseAddr("203.0.113.5"), "203.0.113.5", "test"
		return p
	}
	owner := user(g, "alice@example.com", rbac.Owner)
	rob := user(g, "rob@example.com", rbac.Manager)
	ann := user(g2, "ann@example.com", rbac.Manager)
	member := user(g, "max@example.com", rbac.Member)
	if roles, err := g2.RolesOf(ctx, owner, "acme", "user:"+rob.UserID); err != nil || !slices.Contains(roles, rbac.Manager) {
		t.Fatalf("RolesOf(rob) on the second replica = %v, %v; want manager", roles, err)
	}
	if v, err := st.Policies.Version(ctx, "acme"); err != nil || v == 0 {
		t.Fatalf("policy version = %d, %v; want it moved by the grants", v, err)
	}

	// Four eyes: rob asks, rob cannot approve, max may not, ann (on the
	// other replica) approves, rob consumes once.
	if err := g.SetApprovalRequired(ctx, sys, "acme", "campaigns:send", true); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"campaign":"c1"}`)
	ap, err := g.RequestApproval(ctx, rob, "campaigns:send", "c1", payload, time.Hour)
	if err != nil {
		t.Fatalf("RequestApproval: %v", err)
	}
	if _, err := g.ApproveRequest(ctx, rob, ap.ID); !errors.Is(err, rbac.ErrSelfApproval) {
		t.Errorf("self-approval = %v, want ErrSelfApproval", err)
	}
	if _, err := g2.ApproveRequest(ctx, member, ap.ID); err == nil {
		t.Error("a member approved")
	}
	if _, err := g2.ApproveRequest(ctx, ann, ap.ID); err != nil {
		t.Fatalf("ApproveRequest by ann on the second replica: %v", err)
	}
	if _, err := g.ConsumeApproval(ctx, rob, ap.ID, "campaigns:send", "c1", payload); err != nil {
		t.Fatalf("ConsumeApproval: %v", err)
	}
	if _, err := g2.ConsumeApproval(ctx, rob, ap.ID, "campaigns:send", "c1", payload); !errors.Is(err, rbac.ErrConsumed) {
		t.Errorf("second ConsumeApproval on the other replica = %v, want ErrConsumed", err)
	}
	if got, err := st.Approvals.Approval(ctx, "acme", ap.ID); err != nil || got.Status != rbac.StatusConsumed || got.Decider != rbac.User(ann.UserID) {
		t.Errorf("stored approval = %+v, %v; want consumed, decided by ann", got, err)
	}

	// An API key, then an allow-list for keys set on one replica and
	// enforced on the other.
	key, k, err := g.CreateAPIKey(ctx, owner, guard.NewAPIKey{Tenant: "acme", Name: "CI"})
	if err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	office, home := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9")
	if kp, err := g2.AuthenticateAPIKey(ctx, key, home); err != nil || kp.KeyID != k.ID {
		t.Fatalf("AuthenticateAPIKey = %+v, %v", kp, err)
	}
	lists, err := g.IPAllowLists(ctx, owner, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.SetIPAllowList(ctx, owner, "acme", guard.IPListChange{Scope: ipfilter.APIKeys, Entries: []string{"198.51.100.0/24"}, Version: lists.Version}); err != nil {
		t.Fatalf("SetIPAllowList: %v", err)
	}
	if _, err := g.SetIPAllowList(ctx, owner, "acme", guard.IPListChange{Scope: ipfilter.APIKeys, Version: lists.Version}); !errors.Is(err, guard.ErrConflict) {
		t.Errorf("SetIPAllowList from a stale version = %v, want ErrConflict", err)
	}
	if _, err := g2.AuthenticateAPIKey(ctx, key, home); !errors.Is(err, guard.ErrIPNotAllowed) {
		t.Errorf("API key from outside the list on the other replica = %v, want ErrIPNotAllowed", err)
	}
	if _, err := g2.AuthenticateAPIKey(ctx, key, office); err != nil {
		t.Errorf("API key from the list: %v", err)
	}
	if err := g2.RevokeAPIKey(ctx, owner, "acme", k.ID); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	if _, err := g.AuthenticateAPIKey(ctx, key, office); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("revoked API key = %v, want ErrUnauthenticated", err)
	}
	if rep, err := g.VerifyAudit(ctx, sys, "acme"); err != nil || !rep.OK {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
}

// The upgrade note of the package doc: data written by a release without
// role stores has no grants, so with Stores() the facade denies its users
// administration until they are granted a role.
func TestFacadeRolesAfterUpgrade(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	sys := guard.System("t")
	old := st.Stores()
	old.Policies, old.Approvals = nil, nil // as the release before roles
	g, err := guard.New(guard.Config{Stores: old, AuditKey: auditKey, Hasher: fastHasher})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.CreateTenant(ctx, sys, "acme", "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	u, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: "acme", Email: "alice@example.com", Password: alicePW})
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.Login(ctx, guard.LoginRequest{Tenant: "acme", Email: "alice@example.com", Password: alicePW})
	if err != nil {
		t.Fatal(err)
	}
	p, err := g.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.CreateAPIKey(ctx, p, guard.NewAPIKey{Tenant: "acme", Name: "before"}); err != nil {
		t.Fatalf("CreateAPIKey without roles: %v", err)
	}
	g2 := newGuard(t, st)
	if _, _, err := g2.CreateAPIKey(ctx, p, guard.NewAPIKey{Tenant: "acme", Name: "after"}); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("CreateAPIKey with roles and no grant = %v, want ErrForbidden", err)
	}
	if err := g2.GrantRole(ctx, sys, "acme", "user:"+u.ID, rbac.Owner); err != nil {
		t.Fatalf("GrantRole: %v", err)
	}
	if _, _, err := g2.CreateAPIKey(ctx, p, guard.NewAPIKey{Tenant: "acme", Name: "after"}); err != nil {
		t.Errorf("CreateAPIKey after the grant: %v", err)
	}
}
