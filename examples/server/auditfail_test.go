package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// failingAudit is the console's audit store with reads that fail, once
// failing is set, for the queries it picks: a store that stops answering
// in the middle of an export. (A stored event no longer decoding is no
// read error: the store reads it, and Verify reports it as tampering.)
type failingAudit struct {
	audit.Store
	failing atomic.Pointer[func(audit.Query) bool]
}

func (s *failingAudit) Query(ctx context.Context, tenant string, q audit.Query) ([]audit.Event, error) {
	if f := s.failing.Load(); f != nil && (*f)(q) {
		return nil, errors.New("test: the audit store did not answer")
	}
	return s.Store.Query(ctx, tenant, q)
}

// failWhen makes the store's reads fail for the queries f picks.
func (s *failingAudit) failWhen(f func(audit.Query) bool) { s.failing.Store(&f) }

// newFailingAuditClient is newClient on a console whose audit store is a
// failingAudit, which it returns.
func newFailingAuditClient(t *testing.T) (*client, string, *failingAudit) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	clock := &testClock{}
	fa := &failingAudit{}
	o := testOptions(t, srv.URL, clock, "")
	o.wrapStores = func(s guard.Stores) guard.Stores {
		fa.Store, s.Audit = s.Audit, fa
		return s
	}
	con := newTestConsoleWith(t, o, nil)
	srv.Config.Handler = con.app.routes()
	c := newClientOf(t, srv, con)
	c.clock = clock
	return c, con.password, fa
}
