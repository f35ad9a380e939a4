package guard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/store/memstore"
)

// tenantDBs plays the host's OpenTenant: one in-memory "database" per
// tenant, kept across close and reopen like a file on disk, with every
// open and close counted and any use of a closed handle reported.
type tenantDBs struct {
	t      testing.TB
	mu     sync.Mutex
	dbs    map[string]*memstore.Store
	opens  map[string]int
	open   atomic.Int64 // handles open now
	misuse atomic.Int64 // calls on a closed handle
}

func newTenantDBs(t testing.TB) *tenantDBs {
	return &tenantDBs{t: t, dbs: map[string]*memstore.Store{}, opens: map[string]int{}}
}

func (d *tenantDBs) Open(_ context.Context, tenant string) (guard.Stores, io.Closer, error) {
	d.mu.Lock()
	db, ok := d.dbs[tenant]
	if !ok {
		db = memstore.New()
		d.dbs[tenant] = db
	}
	d.opens[tenant]++
	d.mu.Unlock()
	d.open.Add(1)
	h := &handle{d: d, users: db.Users, audit: db.Audit}
	return guard.Stores{Users: h, UserUpdates: h, Audit: h}, h, nil
}

func (d *tenantDBs) db(tenant string) *memstore.Store {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dbs[tenant]
}

// handle is one open "connection" to a tenant database.
type handle struct {
	d      *tenantDBs
	closed atomic.Bool
	users  *memstore.Users
	audit  *memstore.Audit
}

func (h *handle) Close() error {
	if h.closed.Swap(true) {
		h.d.t.Error("a tenant's stores were closed twice")
	}
	h.d.open.Add(-1)
	return nil
}

func (h *handle) check() {
	if h.closed.Load() {
		h.d.misuse.Add(1)
	}
}

func (h *handle) CreateUser(ctx context.Context, u auth.User) error {
	h.check()
	return h.users.CreateUser(ctx, u)
}
func (h *handle) User(ctx context.Context, t, id string) (auth.User, error) {
	h.check()
	return h.users.User(ctx, t, id)
}
func (h *handle) UserByEmail(ctx context.Context, t, e string) (auth.User, error) {
	h.check()
	return h.users.UserByEmail(ctx, t, e)
}
func (h *handle) ListUsers(ctx context.Context, t, after string, n int) ([]auth.User, error) {
	h.check()
	return h.users.ListUsers(ctx, t, after, n)
}
func (h *handle) ListUserSummaries(ctx context.Context, t, after string, n int) ([]auth.UserSummary, error) {
	h.check()
	return h.users.ListUserSummaries(ctx, t, after, n)
}
func (h *handle) DeleteUser(ctx context.Context, t, id string) error {
	h.check()
	return h.users.DeleteUser(ctx, t, id)
}
func (h *handle) SetStatus(ctx context.Context, t, id string, s auth.Status) error {
	h.check()
	return h.users.SetStatus(ctx, t, id, s)
}
func (h *handle) Deactivate(ctx context.Context, t, id string) (bool, error) {
	h.check()
	return h.users.Deactivate(ctx, t, id)
}
func (h *handle) DeactivateIdle(ctx context.Context, t, id string, idleSince time.Time) error {
	h.check()
	return h.users.DeactivateIdle(ctx, t, id, idleSince)
}
func (h *handle) SetReactivatedAt(ctx context.Context, t, id string, at time.Time) error {
	h.check()
	return h.users.SetReactivatedAt(ctx, t, id, at)
}
func (h *handle) SetPassword(ctx context.Context, t, id, hash string, at time.Time, keep int) error {
	h.check()
	return h.users.SetPassword(ctx, t, id, hash, at, keep)
}
func (h *handle) ResetPassword(ctx context.Context, t, id string, was auth.User, hash string, at time.Time, keep int) error {
	h.check()
	return h.users.ResetPassword(ctx, t, id, was, hash, at, keep)
}
func (h *handle) ChangePassword(ctx context.Context, t, id string, was auth.User, hash string, at time.Time, keep int) error {
	h.check()
	return h.users.ChangePassword(ctx, t, id, was, hash, at, keep)
}
func (h *handle) RehashPassword(ctx context.Context, t, id, o, n string) error {
	h.check()
	return h.users.RehashPassword(ctx, t, id, o, n)
}
func (h *handle) ExpirePassword(ctx context.Context, t, id string) (bool, error) {
	h.check()
	return h.users.ExpirePassword(ctx, t, id)
}
func (h *handle) ClearPasswordExpired(ctx context.Context, t, id string) error {
	h.check()
	return h.users.ClearPasswordExpired(ctx, t, id)
}
func (h *handle) RecordLogin(ctx context.Context, t, id string, at time.Time) (auth.User, error) {
	h.check()
	return h.users.RecordLogin(ctx, t, id, at)
}
func (h *handle) RecordSSOLogin(ctx context.Context, t, id string, at time.Time) (auth.User, error) {
	h.check()
	return h.users.RecordSSOLogin(ctx, t, id, at)
}
func (h *handle) SetEmail(ctx context.Context, t, id, e string, unverified bool) error {
	h.check()
	return h.users.SetEmail(ctx, t, id, e, unverified)
}
func (h *handle) ChangeEmail(ctx context.Context, t, id string, was auth.User, e string, unverified bool) error {
	h.check()
	return h.users.ChangeEmail(ctx, t, id, was, e, unverified)
}
func (h *handle) VerifyEmail(ctx context.Context, t, id, e string) error {
	h.check()
	return h.users.VerifyEmail(ctx, t, id, e)
}
func (h *handle) Append(ctx context.Context, t string, evs []audit.Event) error {
	h.check()
	return h.audit.Append(ctx, t, evs)
}
func (h *handle) Head(ctx context.Context, t string) (audit.Link, error) {
	h.check()
	return h.audit.Head(ctx, t)
}
func (h *handle) Query(ctx context.Context, t string, q audit.Query) ([]audit.Event, error) {
	h.check()
	return h.audit.Query(ctx, t, q)
}
func (h *handle) Checkpoint(ctx context.Context, t string) (audit.Checkpoint, error) {
	h.check()
	return h.audit.Checkpoint(ctx, t)
}
func (h *handle) Purge(ctx context.Context, t string, cp audit.Checkpoint) error {
	h.check()
	return h.audit.Purge(ctx, t, cp)
}

// newFenced returns a Guard whose tenants are ring-fenced in tenantDBs,
// with the shared stores (registry, sessions, throttle) in memory.
func newFenced(t testing.TB, maxOpen int) (*guard.Guard, *tenantDBs, *memstore.Store) {
	t.Helper()
	dbs := newTenantDBs(t)
	shared := memstore.New()
	st := shared.Stores().Shared()
	g, err := guard.New(guard.Config{Stores: st, AuditKey: auditKey, Hasher: fastHasher,
		OpenTenant: dbs.Open, MaxOpenTenants: maxOpen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, dbs, shared
}

func TestFencedTenantsKeepTheirDataApart(t *testing.T) {
	g, dbs, shared := newFenced(t, 8)
	ctx := context.Background()
	sys := guard.System("test")
	ids := map[string]guard.User{}
	for _, tn := range []string{"acme", "globex"} {
		if _, err := g.CreateTenant(ctx, sys, tn, tn, guard.Policy{}); err != nil {
			t.Fatal(err)
		}
		u, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: tn, Email: "ada@example.test", Name: "Ada", Password: ownerPW})
		if err != nil {
			t.Fatal(err)
		}
		ids[tn] = u
	}
	// The same email signs in to each tenant with that tenant's account.
	resA, err := g.Login(ctx, guard.LoginRequest{Tenant: "acme", Email: "ada@example.test", Password: ownerPW, IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if resA.User.ID != ids["acme"].ID {
		t.Fatalf("login to acme signed in user %s, want %s", resA.User.ID, ids["acme"].ID)
	}
	pA, err := g.Authenticate(ctx, resA.Token)
	if err != nil {
		t.Fatal(err)
	}

	// Every record is in its own tenant's database and nowhere else.
	for tn, u := range ids {
		db := dbs.db(tn)
		other := "globex"
		if tn == "globex" {
			other = "acme"
		}
		if _, err := db.Users.User(ctx, tn, u.ID); err != nil {
			t.Errorf("user of %s not in its database: %v", tn, err)
		}
		if _, err := dbs.db(other).Users.User(ctx, tn, u.ID); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("user of %s found in %s's database", tn, other)
		}
		evs, err := db.Audit.Query(ctx, tn, audit.Query{Limit: 1000})
		if err != nil || len(evs) == 0 {
			t.Errorf("audit of %s: %d events, %v", tn, len(evs), err)
		}
		for _, e := range evs {
			if e.Tenant != tn {
				t.Errorf("%s's database holds an event of %s", tn, e.Tenant)
			}
		}
		if evs, _ := dbs.db(other).Audit.Query(ctx, tn, audit.Query{}); len(evs) != 0 {
			t.Errorf("%s's events found in %s's database", tn, other)
		}
		if rep, err := g.VerifyAudit(ctx, sys, tn); err != nil || !rep.OK {
			t.Errorf("VerifyAudit(%s) = %+v, %v", tn, rep, err)
		}
	}
	// The shared stores hold no tenant data.
	if n := len(mustQuery(t, shared.Audit, "acme")) + len(mustQuery(t, shared.Audit, "globex")); n != 0 {
		t.Errorf("the shared audit store holds %d events", n)
	}
	if us, _ := shared.Users.ListUsers(ctx, "acme", "", 10); len(us) != 0 {
		t.Errorf("the shared user store holds %d users", len(us))
	}

	// A principal of acme reaches nothing of globex through the facade.
	gid := ids["globex"].ID
	calls := map[string]func() error{
		"User":      func() error { _, err := g.User(ctx, pA, "globex", gid); return err },
		"ListUsers": func() error { _, err := g.ListUsers(ctx, pA, "globex", "", 10); return err },
		"CreateUser": func() error {
			_, err := g.CreateUser(ctx, pA, guard.NewUser{Tenant: "globex", Email: "x@example.test"})
			return err
		},
		"DeactivateUser":     func() error { return g.DeactivateUser(ctx, pA, "globex", gid) },
		"ReactivateUser":     func() error { return g.ReactivateUser(ctx, pA, "globex", gid) },
		"DeleteUser":         func() error { return g.DeleteUser(ctx, pA, "globex", gid) },
		"UnlockUser":         func() error { return g.UnlockUser(ctx, pA, "globex", gid) },
		"LockState":          func() error { _, err := g.LockState(ctx, pA, "globex", gid); return err },
		"UserSessions":       func() error { _, err := g.UserSessions(ctx, pA, "globex", gid); return err },
		"RevokeUserSessions": func() error { _, err := g.RevokeUserSessions(ctx, pA, "globex", gid); return err },
		"SetPolicy":          func() error { _, err := g.SetPolicy(ctx, pA, "globex", guard.Policy{}, 1); return err },
		"QueryAudit":         func() error { _, err := g.QueryAudit(ctx, pA, "globex", audit.Query{}); return err },
		"VerifyAudit":        func() error { _, err := g.VerifyAudit(ctx, pA, "globex"); return err },
		"ExportAudit":        func() error { return g.ExportAudit(ctx, pA, "globex", audit.Query{}, io.Discard, audit.CSV) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, guard.ErrForbidden) {
			t.Errorf("%s on globex by an acme user = %v, want ErrForbidden", name, err)
		}
	}
	if u, err := g.User(ctx, sys, "globex", gid); err != nil || u.Status != auth.StatusActive {
		t.Errorf("globex's user after the attempts: %+v, %v", u, err)
	}
}

func mustQuery(t testing.TB, s audit.Store, tenant string) []audit.Event {
	t.Helper()
	evs, err := s.Query(context.Background(), tenant, audit.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestFencedUnknownTenantOpensNothing(t *testing.T) {
	g, dbs, _ := newFenced(t, 8)
	ctx := context.Background()
	if _, err := g.Login(ctx, guard.LoginRequest{Tenant: "nobody", Email: "a@example.test", Password: ownerPW}); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Errorf("Login to an unknown tenant = %v", err)
	}
	if _, err := g.ListUsers(ctx, guard.System("t"), "nobody", "", 10); !errors.Is(err, guard.ErrTenantNotFound) {
		t.Errorf("ListUsers of an unknown tenant = %v, want ErrTenantNotFound", err)
	}
	if _, err := g.QueryAudit(ctx, guard.System("t"), "nobody", audit.Query{}); !errors.Is(err, guard.ErrTenantNotFound) {
		t.Errorf("QueryAudit of an unknown tenant = %v, want ErrTenantNotFound", err)
	}
	if len(dbs.opens) != 0 {
		t.Errorf("OpenTenant called for %v", dbs.opens)
	}
}

// Many tenants, few open slots, many goroutines: every call succeeds, no
// handle is used after it was closed, and idle tenants are closed down to
// the cap.
func TestFencedPoolCapsOpenTenants(t *testing.T) {
	const tenants, maxOpen = 6, 2
	g, dbs, _ := newFenced(t, maxOpen)
	ctx := context.Background()
	sys := guard.System("test")
	for i := range tenants {
		tn := fmt.Sprintf("t%d", i)
		if _, err := g.CreateTenant(ctx, sys, tn, tn, guard.Policy{}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				tn := fmt.Sprintf("t%d", (w+i)%tenants)
				_, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: tn, Email: fmt.Sprintf("u%d-%d@example.test", w, i), Name: "U"})
				if err != nil {
					t.Errorf("CreateUser in %s: %v", tn, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := dbs.misuse.Load(); n != 0 {
		t.Errorf("%d calls on closed tenant stores", n)
	}
	if n := g.OpenTenants(); n > maxOpen {
		t.Errorf("%d tenants open after the work, cap %d", n, maxOpen)
	}
	if n := dbs.open.Load(); n > maxOpen {
		t.Errorf("%d tenant handles still open, cap %d", n, maxOpen)
	}
	// Data survived closing and reopening.
	total := 0
	for i := range tenants {
		tn := fmt.Sprintf("t%d", i)
		us, err := g.ListUsers(ctx, sys, tn, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		total += len(us)
		if rep, err := g.VerifyAudit(ctx, sys, tn); err != nil || !rep.OK {
			t.Errorf("VerifyAudit(%s) = %+v, %v", tn, rep, err)
		}
	}
	if total != 240 {
		t.Errorf("%d users in all, want 240", total)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if n := dbs.open.Load(); n != 0 {
		t.Errorf("%d tenant handles open after Close", n)
	}
}

func TestFencedConfig(t *testing.T) {
	st := memstore.New().Stores()
	_, err := guard.New(guard.Config{Stores: st, AuditKey: auditKey, OpenTenant: newTenantDBs(t).Open})
	var pe *guard.PolicyError
	if !errors.As(err, &pe) || pe.Field != "Stores" {
		t.Errorf("New with OpenTenant and tenant-data stores = %v, want a PolicyError on Stores", err)
	}
}
