package guard_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// cuttableAudit is an audit store whose newest events can be deleted
// behind Guard's back, as whoever can write to its database can.
type cuttableAudit struct {
	mu sync.Mutex
	audit.Store
}

func (a *cuttableAudit) store() audit.Store { a.mu.Lock(); defer a.mu.Unlock(); return a.Store }

func (a *cuttableAudit) Append(ctx context.Context, tenant string, evs []audit.Event) error {
	return a.store().Append(ctx, tenant, evs)
}

func (a *cuttableAudit) Head(ctx context.Context, tenant string) (audit.Link, error) {
	return a.store().Head(ctx, tenant)
}

func (a *cuttableAudit) Query(ctx context.Context, tenant string, q audit.Query) ([]audit.Event, error) {
	return a.store().Query(ctx, tenant, q)
}

// cut keeps tenant's first keep events only.
func (a *cuttableAudit) cut(t *testing.T, tenant string, keep int) {
	t.Helper()
	evs, err := a.store().Query(context.Background(), tenant, audit.Query{Limit: keep})
	if err != nil || len(evs) != keep {
		t.Fatalf("Query = %d events, %v; want %d", len(evs), err, keep)
	}
	s := memstore.NewAudit()
	if err := s.Append(context.Background(), tenant, evs); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.Store = s
	a.mu.Unlock()
}

// A sign-in whose audit event finds the tenant's chain cut below what
// Guard appended fails closed: ErrUnavailable, wrapping audit.ErrTampered,
// no session, and the cut is not covered by the new event.
func TestAuditTamper_LoginFailsClosedOnTruncatedChain(t *testing.T) {
	ca := &cuttableAudit{Store: memstore.NewAudit()}
	f := newFixture(t, func(c *guard.Config) { c.Stores.Audit = ca })
	f.createUser(t, "alice@example.com", ownerPW)
	if _, err := f.login("alice@example.com", ownerPW); err != nil {
		t.Fatalf("first login: %v", err)
	}
	rep, err := f.g.VerifyAudit(f.ctx, guard.System("test"), tenantID)
	if err != nil || !rep.OK {
		t.Fatalf("VerifyAudit = %+v, %v", rep, err)
	}
	ca.cut(t, tenantID, int(rep.Head.Seq)-1)
	sessions := f.mem.Sessions.Len()
	res, err := f.login("alice@example.com", ownerPW)
	if !errors.Is(err, guard.ErrUnavailable) || !errors.Is(err, audit.ErrTampered) {
		t.Fatalf("login on a cut chain = %+v, %v; want ErrUnavailable wrapping audit.ErrTampered", res, err)
	}
	if n := f.mem.Sessions.Len(); res.Token != "" || n > sessions {
		t.Errorf("refused login: token %q, %d sessions (%d before)", res.Token, n, sessions)
	}
	rep, err = f.g.VerifyAudit(f.ctx, guard.System("test"), tenantID)
	if err != nil || rep.OK || rep.Reason != "missing events" {
		t.Errorf("VerifyAudit after the refused login = %+v, %v; want missing events", rep, err)
	}
}
