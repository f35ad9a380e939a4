package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/internal/testenv"
	"github.com/guardhq/guard/store/memstore"
	"github.com/guardhq/guard/store/pgstore"
)

// poolCloser closes a tenant's pool when the facade lets it go.
type poolCloser struct {
	p      *pgxpool.Pool
	closed *sync.Map
	name   string
}

func (c poolCloser) Close() error {
	c.p.Close()
	c.closed.Store(c.name, true)
	return nil
}

// TestRingFencedTenantsInPostgreSQL gives each tenant its own PostgreSQL
// schema and pool, at most two pools open at once: every record lands in
// its tenant's schema, and no facade call of one tenant reaches another.
func TestRingFencedTenantsInPostgreSQL(t *testing.T) {
	dsn := testenv.Postgres(t)
	prefix := "guardfence_" + randomHex(t, 4) + "_"
	var (
		mu     sync.Mutex
		opened = map[string]int{}
		closed sync.Map
	)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		for _, tn := range []string{"acme", "globex", "initech"} {
			c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{prefix + tn}.Sanitize()+" CASCADE")
		}
	})
	open := func(ctx context.Context, tenant string) (guard.Stores, io.Closer, error) {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return guard.Stores{}, nil, err
		}
		cfg.MaxConns = 2
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return guard.Stores{}, nil, err
		}
		st, err := pgstore.New(pool, pgstore.Options{Schema: prefix + tenant})
		if err == nil {
			err = st.Migrate(ctx)
		}
		if err != nil {
			pool.Close()
			return guard.Stores{}, nil, err
		}
		mu.Lock()
		opened[tenant]++
		mu.Unlock()
		return st.Stores(), poolCloser{pool, &closed, tenant}, nil
	}
	shared := memstore.New().Stores().Shared()
	g, err := guard.New(guard.Config{Stores: shared, AuditKey: auditKey, Hasher: auth.HasherConfig{Memory: 64, Time: 1},
		OpenTenant: open, MaxOpenTenants: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ctx := context.Background()
	sys := guard.System("e2e")
	tenants := []string{"acme", "globex", "initech"}
	ids := map[string]string{}
	for _, tn := range tenants {
		if _, err := g.CreateTenant(ctx, sys, tn, tn, guard.Policy{}); err != nil {
			t.Fatal(err)
		}
		u, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: tn, Email: "ada@example.test", Password: password, Roles: []string{"owner"}})
		if err != nil {
			t.Fatal(err)
		}
		ids[tn] = u.ID
		if _, err := g.Login(ctx, guard.LoginRequest{Tenant: tn, Email: "ada@example.test", Password: password}); err != nil {
			t.Fatalf("login to %s: %v", tn, err)
		}
	}
	if n := g.OpenTenants(); n > 2 {
		t.Errorf("%d tenants open, cap 2", n)
	}
	if _, ok := closed.Load("acme"); !ok {
		t.Error("the least recently used tenant's pool was not closed")
	}
	// Each schema holds its own tenant's user and audit chain only.
	admin, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, tn := range tenants {
		st, err := pgstore.New(admin, pgstore.Options{Schema: prefix + tn})
		if err != nil {
			t.Fatal(err)
		}
		for _, other := range tenants {
			us, err := st.Users.ListUsers(ctx, other, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := st.Audit.Query(ctx, other, audit.Query{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 1, false: 0}[other == tn]; len(us) != want || (other != tn && len(evs) != 0) {
				t.Errorf("schema of %s holds %d users and %d events of %s", tn, len(us), len(evs), other)
			}
		}
	}
	// An owner of acme reaches nothing of globex through the facade.
	res, err := g.Login(ctx, guard.LoginRequest{Tenant: "acme", Email: "ada@example.test", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	p, err := g.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"ListUsers":      func() error { _, err := g.ListUsers(ctx, p, "globex", "", 10); return err },
		"DeactivateUser": func() error { return g.DeactivateUser(ctx, p, "globex", ids["globex"]) },
		"QueryAudit":     func() error { _, err := g.QueryAudit(ctx, p, "globex", audit.Query{}); return err },
		"GrantRole":      func() error { return g.GrantRole(ctx, p, "globex", "user:"+ids["acme"], "owner") },
	} {
		if err := call(); !errors.Is(err, guard.ErrForbidden) {
			t.Errorf("%s on globex by an acme owner: %v, want ErrForbidden", name, err)
		}
	}
	for _, tn := range tenants {
		if rep, err := g.VerifyAudit(ctx, sys, tn); err != nil || !rep.OK {
			t.Errorf("audit of %s: %+v, %v", tn, rep, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(len(opened)) != "3" {
		t.Errorf("opened %v", opened)
	}
}
