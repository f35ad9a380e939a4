package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// A sign-in older than the step-up window changes no role from the
// console: granting and taking away a role, defining and deleting one,
// and creating a user with a role each ask the administrator to confirm
// their identity (the step-up page) and back to the page, with nothing changed;
// once they have, the same forms work.
func TestRoleChangesNeedStepUp(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	resp, _ := owner.post("/users", url.Values{"email": {"sam@demo.example"}, "name": {"Sam Staff"}, "role": {"member"}, "password": {"plum tree on the hill 42"}})
	user := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(user, "/users/") {
		t.Fatalf("create Sam: %d to %q", resp.StatusCode, user)
	}
	if resp, _ := owner.post("/roles", url.Values{"name": {"campaign-editor"}, "perm": {"campaigns:read"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("define campaign-editor: %d", resp.StatusCode)
	}
	owner.clock.Advance(guard.DefaultStepUpWindow + time.Minute)

	g, ctx, sys := owner.con.app.g, t.Context(), guard.System("test")
	sam := "user:" + strings.TrimPrefix(user, "/users/")
	samRoles := func() []string {
		rs, err := g.RolesOf(ctx, sys, demoTenant, sam)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(rs)
		return rs
	}
	roleNames := func() []string {
		rs, err := g.Roles(ctx, sys, demoTenant)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range rs {
			names = append(names, r.Name)
		}
		return names
	}
	for _, c := range []struct {
		name, path string
		form       url.Values
		back       string
	}{
		{"grant", user + "/grant", url.Values{"role": {"admin"}}, user},
		{"revoke", user + "/revoke", url.Values{"role": {"member"}}, user},
		{"define", "/roles", url.Values{"name": {"helpdesk"}, "perm": {"users:manage"}}, "/roles"},
		{"delete", "/roles/delete", url.Values{"name": {"campaign-editor"}}, "/roles"},
		{"create with a role", "/users", url.Values{"email": {"eve@demo.example"}, "name": {"Eve"}, "role": {"admin"}, "password": {"plum tree on the hill 43"}}, "/users"},
	} {
		// A form without a password is kept: the step-up page comes in
		// place (stepup_form_test.go); one with a password goes there.
		resp, page := owner.post(c.path, c.form)
		if c.form.Has("password") {
			if want := "/reauth?next=" + url.QueryEscape(c.back); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
				t.Errorf("%s with an old sign-in: %d to %q, want %s", c.name, resp.StatusCode, resp.Header.Get("Location"), want)
			}
		} else if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="reauth-password"`) || !strings.Contains(page, `name="next" value="`+c.back+`"`) {
			t.Errorf("%s with an old sign-in: %d to %q, want the step-up page back to %s", c.name, resp.StatusCode, resp.Header.Get("Location"), c.back)
		}
	}
	if rs := samRoles(); !slices.Equal(rs, []string{"member"}) {
		t.Errorf("Sam's roles after the refused changes: %v, want [member]", rs)
	}
	if names := roleNames(); slices.Contains(names, "helpdesk") || !slices.Contains(names, "campaign-editor") {
		t.Errorf("roles after the refused changes: %v", names)
	}
	if _, err := g.UserByEmail(ctx, sys, demoTenant, "eve@demo.example"); err == nil {
		t.Error("a user with a role created by an old sign-in")
	}

	// The step-up, back to the user's page; then the grant goes through.
	if resp := owner.stepUp(password, owner.app(ownerEmail), user); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != user {
		t.Fatalf("step-up: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = owner.post(user+"/grant", url.Values{"role": {"manager"}})
	if _, body := owner.get(resp.Header.Get("Location")); resp.StatusCode != http.StatusSeeOther || !strings.Contains(body, "Granted the role manager") {
		t.Fatalf("grant after the step-up: %d", resp.StatusCode)
	}
	if rs := samRoles(); !slices.Equal(rs, []string{rbac.Manager, rbac.Member}) {
		t.Errorf("Sam's roles after the grant: %v", rs)
	}
}
