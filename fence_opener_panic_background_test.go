package guard_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/store/memstore"
)

// A tenant whose stores are opened by background work (ForgotPassword's
// look-up runs in a goroutine of its own, after the call returned) with an
// opener that panics must not take the process down: fence.acquire
// re-raises the opener's panic in "the call that started the open", which
// here is a goroutine without a caller, so nothing recovers it and an
// anonymous ForgotPassword naming the tenant crashes the whole server
// (net/http recovers a handler's panic; it cannot recover this one). The
// audit Log takes care never to panic in a goroutine without a caller; the
// fence does not. Correct: the look-up fails as an open that failed
// (ErrUnavailable), the process lives on.
//
// The scenario runs in a child process, since the defect kills it.
func TestFencedOpenerPanicInBackgroundLookupKeepsProcess(t *testing.T) {
	if os.Getenv("GUARD_REV_FENCE_PANIC_CHILD") == "1" {
		forgotWithPanickingOpener(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFencedOpenerPanicInBackgroundLookupKeepsProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GUARD_REV_FENCE_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if len(out) > 3000 {
			out = out[:3000]
		}
		t.Fatalf("the process died after a ForgotPassword whose background look-up opened a tenant with a panicking opener: %v\n%s", err, out)
	}
}

func forgotWithPanickingOpener(t *testing.T) {
	var (
		mu       sync.Mutex
		dbs      = map[string]*memstore.Store{}
		panicky  atomic.Bool
		reopened atomic.Int64
	)
	open := func(_ context.Context, tenant string) (guard.Stores, io.Closer, error) {
		if tenant == "acme" && panicky.Load() {
			reopened.Add(1)
			panic("host opener bug")
		}
		mu.Lock()
		defer mu.Unlock()
		if dbs[tenant] == nil {
			dbs[tenant] = memstore.New()
		}
		return dbs[tenant].Stores(), nil, nil
	}
	g, err := guard.New(guard.Config{Stores: memstore.New().Stores().Shared(), AuditKey: auditKey, Hasher: fastHasher,
		OpenTenant: open, MaxOpenTenants: 1,
		Recovery: guard.RecoveryConfig{Email: &outbox{}, BaseURL: "https://app.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sys := guard.System("test")
	if _, err := g.CreateTenant(ctx, sys, "acme", "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: "acme", Email: "ada@example.test", Name: "Ada", Password: ownerPW}); err != nil {
		t.Fatal(err)
	}
	// globex's open closes acme (one tenant open at a time).
	if _, err := g.CreateTenant(ctx, sys, "globex", "Globex", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	panicky.Store(true)
	if err := g.ForgotPassword(ctx, guard.ForgotRequest{Tenant: "acme", Email: "ada@example.test", IP: "192.0.2.1"}); err != nil {
		t.Fatalf("ForgotPassword: %v", err)
	}
	g.Close() // waits for the background look-up
	if reopened.Load() == 0 {
		t.Fatal("the background look-up did not open acme again: the scenario did not happen")
	}
}
