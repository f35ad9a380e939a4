package guard_test

import (
	"net/http"
	"slices"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

// An address is folded before AllowedDomains is checked, and Go's
// lower-casing maps U+0130 (İ) to a plain "i": eve@İnfo.example, at
// another (internationalised) domain, must not pass AllowedDomains
// ["info.example"] and be provisioned as eve@info.example.
func TestSSOAllowedDomainsRefuseFoldIntoASCII(t *testing.T) {
	s := newSSOSite(t)
	s.setConn(t, func(c *sso.Connection) { c.AllowedDomains = []string{"info.example"} })
	s.idpPut(t, "/users/eve", `{"name":"eve","password":"correct horse","email":"eve@\u0130nfo.example","groups":["Staff"]}`)
	_, _, _, resp := s.signIn(t, "eve", "correct horse")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("an address at \u0130nfo.example under AllowedDomains [info.example]: %s, want 403", resp.Status)
	}
	us, _ := s.g.ListUsers(t.Context(), guard.System("test"), tenantID, "", 10)
	for _, u := range us {
		t.Errorf("user provisioned outside the allowed domains: %q", u.Email)
	}
}

// GroupRoles matches a group exactly: "Admins\u00a0" (a no-break space
// after it), another group at the IdP, gets none of the roles of
// "Admins" (it used to be trimmed into it with strings.TrimSpace).
func TestSSOGroupRolesMatchExactly(t *testing.T) {
	s := newSSOSite(t)
	s.setConn(t, func(c *sso.Connection) { c.GroupRoles = map[string]string{"Admins": rbac.Admin, "Staff": rbac.Member} })
	s.idpPut(t, "/users/eve", `{"name":"eve","password":"correct horse","email":"eve@corp.example","groups":["Admins\u00a0","Staff"]}`)
	_, _, _, resp := s.signIn(t, "eve", "correct horse")
	resp.Body.Close()
	ctx := t.Context()
	sys := guard.System("test")
	us, _ := s.g.ListUsers(ctx, sys, tenantID, "", 10)
	if len(us) != 1 || us[0].Email != "eve@corp.example" {
		t.Fatalf("users after the sign-in: %+v, want eve, provisioned", us)
	}
	for _, u := range us {
		roles, err := s.g.RolesOf(ctx, sys, tenantID, "user:"+u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(roles, rbac.Member) {
			t.Errorf("%s provisioned with roles %v, want member (Staff)", u.Email, roles)
		}
		if slices.Contains(roles, rbac.Admin) {
			t.Errorf("%s provisioned with roles %v: the IdP's group \"Admins\\u00a0\" is not the mapped group \"Admins\"", u.Email, roles)
		}
	}
}

// The same fold in the local part: the IdP's user İan@corp.example (a
// mailbox apart from ian@corp.example, which an IdP checking uniqueness
// with full Unicode lower-casing, "i̇an", lets someone else hold) must not
// sign in to the account of ian@corp.example.
func TestSSOEmailFoldIntoASCIINotAnAccount(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	ian, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "ian@corp.example", Password: ownerPW})
	if err != nil {
		t.Fatal(err)
	}
	s.idpPut(t, "/users/eve", `{"name":"eve","password":"correct horse","email":"\u0130an@corp.example","groups":["Staff"]}`)
	b, _, _, resp := s.signIn(t, "eve", "correct horse")
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		who := s.get(t, b, s.srv.URL+"/api/whoami")
		t.Errorf("the IdP's user \u0130an@corp.example signed in to %s (%s): %s", ian.Email, ian.ID, who)
	}
}
