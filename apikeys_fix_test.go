package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

// A key the host creates records its System label as CreatedBy as the
// audit log records the actor: valid UTF-8, clipped; a label with a NUL
// byte, which not every backend can keep, is refused on every backend.
func TestAPIKeySystemLabelCreatedBy(t *testing.T) {
	f := newFixture(t)
	_, k, err := f.g.CreateAPIKey(f.ctx, guard.System("nightly \xff"), guard.NewAPIKey{Tenant: tenantID, Name: "host"})
	if err != nil {
		t.Fatal(err)
	}
	evs := f.events(t, audit.APIKeyCreated)
	if len(evs) != 1 || k.CreatedBy != "nightly \uFFFD" || evs[0].Actor.ID != k.CreatedBy {
		t.Errorf("CreatedBy %q, events %+v: want %q, the actor of apikey.created", k.CreatedBy, evs, "nightly \uFFFD")
	}
	var ie *guard.InputError
	if _, _, err := f.g.CreateAPIKey(f.ctx, guard.System("nightly\x00"), guard.NewAPIKey{Tenant: tenantID, Name: "host"}); !errors.As(err, &ie) {
		t.Errorf("CreateAPIKey by a System label with a NUL byte: %v, want an *InputError", err)
	}
	if n := len(f.events(t, audit.APIKeyCreated)); n != 1 {
		t.Errorf("%d apikey.created events, want 1", n)
	}
}

// An API key never passes a step-up check, whatever its roles: every
// step-up-gated call refuses it with ErrForbidden, recorded as
// access.denied with reason api_key (APIKEY-3).
func TestAPIKeyRefusedStepUp(t *testing.T) {
	f := newMFAFixture(t).fixture
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	adam, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	key, k := f.newKey(t, owner, "owner automation", rbac.Owner)
	p, err := f.g.AuthenticateAPIKey(f.ctx, key, apikeyAuditAddr)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"CreateAPIKey": func() error {
			_, _, err := f.g.CreateAPIKey(f.ctx, p, guard.NewAPIKey{Tenant: tenantID, Name: "more"})
			return err
		},
		"SetIPAllowList": func() error {
			_, err := f.g.SetIPAllowList(f.ctx, p, tenantID, guard.IPListChange{Scope: ipfilter.APIKeys, Entries: []string{"203.0.113.0/24"}})
			return err
		},
		"SetPolicy": func() error {
			_, err := f.g.SetPolicy(f.ctx, p, tenantID, guard.Policy{}, 0)
			return err
		},
		"RemoveFactor":       func() error { return f.g.RemoveFactor(f.ctx, p, tenantID, adam.UserID, "f") },
		"ChangeEmail":        func() error { return f.g.ChangeEmail(f.ctx, p, "key@example.test") },
		"RequestEmailChange": func() error { return f.g.RequestEmailChange(f.ctx, p, "key@example.test") },
		"BeginOOB": func() error {
			_, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, "key@example.test", "key")
			return err
		},
		"BeginTOTP": func() error {
			_, err := f.g.BeginTOTP(f.ctx, p, "key")
			return err
		},
		"RegenerateRecoveryCodes": func() error {
			_, err := f.g.RegenerateRecoveryCodes(f.ctx, p)
			return err
		},
	}
	for name, call := range calls {
		before := len(f.events(t, audit.AccessDenied))
		if err := call(); !errors.Is(err, guard.ErrForbidden) {
			t.Errorf("%s by an owner API key: %v, want ErrForbidden", name, err)
			continue
		}
		evs := f.events(t, audit.AccessDenied)
		if len(evs) != before+1 {
			t.Errorf("%s by an owner API key: %d access.denied events, want %d", name, len(evs), before+1)
			continue
		}
		if e := evs[len(evs)-1]; e.Actor.Kind != audit.ActorAPIKey || e.Actor.ID != k.ID || e.Reason != "api_key" || e.IP != apikeyAuditAddr.String() {
			t.Errorf("%s by an owner API key recorded %+v, want actor the key, reason api_key, its IP", name, e)
		}
	}
}
