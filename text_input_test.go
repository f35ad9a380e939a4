package guard_test

import (
	"errors"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
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

// An administrator whose principal carries a long User-Agent (a request's
// header, or a principal the host builds) still acts, on record: the
// event keeps the first 512 bytes, and an over-long IP its first 64,
// rather than every record of their actions failing.
func TestAdminEventsClipPrincipalText(t *testing.T) {
	f := newFixture(t)
	admin, _ := f.userWithRoles(t, "adam@example.test", "admin")
	u := f.createUser(t, "bob@example.test", ownerPW)
	admin.UserAgent = strings.Repeat("M", 5000)
	admin.IP = strings.Repeat("1", 100)
	if err := f.g.DeactivateUser(f.ctx, admin, tenantID, u.ID); err != nil {
		t.Fatalf("DeactivateUser by a principal with a long user agent: %v", err)
	}
	ev := f.events(t, audit.UserDeactivated)
	if len(ev) != 1 || len(ev[0].UserAgent) != 512 || len(ev[0].IP) != 64 {
		t.Errorf("user.deactivated events %d, user agent %d bytes, IP %d bytes; want one, 512, 64", len(ev), len(ev[0].UserAgent), len(ev[0].IP))
	}
}
