package guard_test

// Audit of ring-fenced tenants and of the fault behaviour around them
// (fence.go, the routed stores, the tenant-only SSO entry points). Each
// test fails on the current code for the reason its comment gives.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/memstore"
)

// memTenants plays a host's OpenTenant: each tenant in a memstore of its
// own (users, audit, roles, MFA, SSO, IP lists), kept across close and
// reopen. Opens can be made to hang, as an open of a PostgreSQL pool does
// when the server stops answering: until the context given to the opener
// ends, or until hang is closed.
type memTenants struct {
	mu    sync.Mutex
	dbs   map[string]*memstore.Store
	opens map[string]int
	hang  chan struct{} // non-nil: opens wait for it or their ctx
}

func newMemTenants() *memTenants {
	return &memTenants{dbs: map[string]*memstore.Store{}, opens: map[string]int{}}
}

func (m *memTenants) setHang(c chan struct{}) {
	m.mu.Lock()
	m.hang = c
	m.mu.Unlock()
}

func (m *memTenants) Open(ctx context.Context, tenant string) (guard.Stores, io.Closer, error) {
	m.mu.Lock()
	m.opens[tenant]++
	hang := m.hang
	m.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
			return guard.Stores{}, nil, errors.New("tenant database did not answer")
		case <-ctx.Done():
			return guard.Stores{}, nil, ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	db, ok := m.dbs[tenant]
	if !ok {
		db = memstore.New()
		m.dbs[tenant] = db
	}
	return db.Stores(), nil, nil
}

// A stopped tenant database must give guarded requests a quick "store
// unavailable" (503), never a request that hangs. fence.fill calls the
// opener with context.WithoutCancel(ctx) (fence.go:148), which drops the
// caller's deadline as well as its cancellation, and the caller that
// triggered the open waits in fill for the opener to return: a host
// opener that connects with ctx (pgxpool/Migrate, as
// store/e2e/fence_test.go does) then blocks that request for as long as
// the connect takes — without connect_timeout, until the kernel gives up
// on TCP (minutes) — whatever the request's own deadline. Only the other
// callers, waiting on d.ready, honour theirs. Here a request with a 100 ms
// deadline is still waiting after 3 s.
func TestAuditFence_HangingOpenIgnoresTheRequestDeadline(t *testing.T) {
	m := newMemTenants()
	g, err := guard.New(guard.Config{Stores: memstore.New().Stores().Shared(), AuditKey: auditKey, Hasher: fastHasher,
		OpenTenant: m.Open, MaxOpenTenants: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ctx := context.Background()
	sys := guard.System("test")
	if _, err := g.CreateTenant(ctx, sys, "acme", "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: "acme", Email: "ada@example.test", Name: "Ada", Password: ownerPW}); err != nil {
		t.Fatal(err)
	}
	res, err := g.Login(ctx, guard.LoginRequest{Tenant: "acme", Email: "ada@example.test", Password: ownerPW, IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	// The tenant's stores are closed (the LRU closes idle acme for
	// globex), and its database stops answering.
	if _, err := g.CreateTenant(ctx, sys, "globex", "Globex", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	hang := make(chan struct{})
	m.setHang(hang)
	defer close(hang) // lets the stuck open end after the test

	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	done := make(chan int, 1)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(rctx)
		req.RemoteAddr = "192.0.2.1:1234"
		req.AddCookie(&http.Cookie{Name: "__Host-guard", Value: res.Token})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		done <- rec.Code
	}()
	select {
	case code := <-done:
		if code != http.StatusServiceUnavailable {
			t.Errorf("guarded request while the tenant's database is stopped: %d, want 503", code)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("guarded request with a 100ms deadline still waiting for the tenant's stores after 3s: the open ignores the request's deadline")
	}
}

// HandleSLO, the anonymous /saml/{tenant}/slo route, does not check that
// the tenant exists (StartSSO and CompleteSSO do, with EffectivePolicy):
// sso.Provider.SLO finds no connection and rejects (not_configured), and
// HandleSLO records that sso.failed in the named tenant's audit log
// (ssoflow.go:733). Without ring-fencing, any anonymous request for any
// name (1–63 characters) so starts an audit chain for a tenant that does
// not exist, one event per request, unthrottled. Correct: an unknown
// tenant is ErrTenantNotFound and nothing is recorded.
func TestAuditFence_SingleLogoutForUnknownTenantWritesItsAuditLog(t *testing.T) {
	spKey, spCert := keyPair(t, "sp")
	mem := memstore.New()
	g, err := guard.New(guard.Config{Stores: mem.Stores(), AuditKey: auditKey, Hasher: fastHasher,
		SSO: &sso.Config{BaseURL: "https://sp.example.test", Key: spKey, Certificate: spCert}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "https://sp.example.test/saml/ghost/slo", nil)
		if _, err := g.HandleSLO(ctx, "ghost", r); !errors.Is(err, guard.ErrTenantNotFound) {
			t.Errorf("HandleSLO for a tenant that does not exist = %v, want ErrTenantNotFound", err)
		}
	}
	evs, err := mem.Audit.Query(ctx, "ghost", audit.Query{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Errorf("%d events recorded for tenant ghost, which does not exist (first: %s %s)", len(evs), evs[0].Action, evs[0].Reason)
	}
}

// Ring-fenced, the same calls for a tenant that does not exist answer
// ErrUnavailable: routedSSO's acquire fails with ErrTenantNotFound,
// sso's storeErr wraps it and ssoErr turns it into unavailable(...)
// (ssoflow.go:808), so the public SLO route answers 503 "service
// unavailable" to any request naming an unknown tenant (alerting on 503s
// fires on a scan), and a host job's RefreshSSOMetadata gets "store
// unavailable" where the unfenced Guard says sso.ErrNotFound. Correct: not
// ErrUnavailable (the unknown tenant reported as such, as
// StartSSO/CompleteSSO report it).
func TestAuditFence_SSOCallsForUnknownTenantSayUnavailable(t *testing.T) {
	spKey, spCert := keyPair(t, "sp")
	m := newMemTenants()
	g, err := guard.New(guard.Config{Stores: memstore.New().Stores().Shared(), AuditKey: auditKey, Hasher: fastHasher,
		OpenTenant: m.Open, SSO: &sso.Config{BaseURL: "https://sp.example.test", Key: spKey, Certificate: spCert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ctx := context.Background()
	r := httptest.NewRequest(http.MethodGet, "https://sp.example.test/saml/ghost/slo", nil)
	if _, err := g.HandleSLO(ctx, "ghost", r); errors.Is(err, guard.ErrUnavailable) || !errors.Is(err, guard.ErrTenantNotFound) {
		t.Errorf("HandleSLO for a tenant that does not exist, ring-fenced = %v, want ErrTenantNotFound (not ErrUnavailable)", err)
	}
	if _, err := g.RefreshSSOMetadata(ctx, "ghost"); errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("RefreshSSOMetadata for a tenant that does not exist, ring-fenced = %v, want not found, not ErrUnavailable", err)
	}
	if len(m.opens) != 0 {
		t.Errorf("OpenTenant called for %v", m.opens)
	}
}
