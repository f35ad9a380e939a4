package guard_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/sso"
)

// hookedConnDelete runs hook (once) just before the first IdP connection
// deletion.
type hookedConnDelete struct {
	sso.ConnectionStore
	once sync.Once
	hook func()
}

func (h *hookedConnDelete) DeleteConnection(ctx context.Context, tenant string) error {
	h.once.Do(func() {
		if h.hook != nil {
			h.hook()
		}
	})
	return h.ConnectionStore.DeleteConnection(ctx, tenant)
}

// The other order of TestAuditPolicy_IdPRemovedWhileSSOIsBeingRequired:
// SetPolicy requires SSO between DeleteSSOConnection's check of the policy
// and its removal of the IdP (SetPolicy's own check, after its write,
// still finds the IdP). DeleteSSOConnection reads the policy again once
// the IdP is removed, and puts the IdP back.
func TestDeleteSSOConnectionRacesRequireSSO(t *testing.T) {
	sys := guard.System("test")
	st := newMem()
	cs := &hookedConnDelete{ConnectionStore: st.SSO.Connections}
	st.SSO.Connections = cs
	s := newSSOSiteOn(t, st)
	ctx := t.Context()
	tn, err := s.g.Tenant(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	before := len(s.events(t, audit.SSOConfigured))
	var setErr error
	cs.hook = func() { _, setErr = s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true}, tn.Version) }
	err = s.g.DeleteSSOConnection(ctx, sys, tenantID)
	if setErr != nil {
		t.Fatalf("SetPolicy(RequireSSO) before the removal: %v", setErr)
	}
	var pe *guard.PolicyError
	if !errors.As(err, &pe) || pe.Field != "RequireSSO" {
		t.Errorf("DeleteSSOConnection while SSO was being required: %v, want a *PolicyError on RequireSSO", err)
	}
	if requiresSSOWithoutIdP(t, s) {
		t.Error("the tenant requires SSO and has no IdP")
	}
	if n := len(s.events(t, audit.SSOConfigured)) - before; n != 0 {
		t.Errorf("%d sso.configured events for the refused removal, want none", n)
	}
}
