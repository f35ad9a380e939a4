package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
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
