package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
)

// The free texts Guard keeps and shows (tenant names, API key names, the
// user agent and IP of a sign-in) refuse what auth.CheckName refuses in a
// person's name: C1 controls (U+0085 NEL is a line break to many log
// readers, U+009B CSI starts a terminal escape), line separators and
// bidirectional overrides, as well as C0 and DEL. Bad input gets an
// *InputError and creates nothing.
func TestTenantNameRefusesControls(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	for i, name := range []string{"Globex\u0085forged line", "Globex\u009b2J", "Globex\u2028two", "Globex\u202eevil"} {
		id := []string{"globex-a", "globex-b", "globex-c", "globex-d"}[i]
		_, err := f.g.CreateTenant(f.ctx, sys, id, name, guard.Policy{})
		var ie *guard.InputError
		if !errors.As(err, &ie) {
			t.Errorf("CreateTenant(name %q) = %v; want an *InputError", name, err)
		}
		if _, err := f.g.Tenant(f.ctx, id); !errors.Is(err, guard.ErrTenantNotFound) {
			t.Errorf("tenant %s was created from bad input (err %v)", id, err)
		}
	}
}

// The same for the user agent of a sign-in (shown in session lists,
// recorded in audit events): bad input, before the password is weighed.
func TestLoginUserAgentRefusesControls(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, "bob@example.com", ownerPW)
	_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: "acme", Email: "bob@example.com", Password: ownerPW,
		IP: "203.0.113.5", UserAgent: "curl\u0085forged"})
	var ie *guard.InputError
	if !errors.As(err, &ie) {
		t.Errorf("Login(user agent with U+0085) = %v; want an *InputError", err)
	}
}
