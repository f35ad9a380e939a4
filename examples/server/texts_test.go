package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Texts that once said something the console does not do.
func TestTextsMatchBehaviour(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)

	t.Run("SSO rule", func(t *testing.T) {
		_, page := owner.get("/security/sso")
		if strings.Contains(page, "users without a password count as SSO users") || !strings.Contains(page, "once they have signed in through the identity provider") {
			t.Errorf("the SSO page: %s", regexp.MustCompile(`<p class="muted"[^>]*>[^<]*SSO[^<]*</p>`).FindAllString(page, -1))
		}
	})
	t.Run("breach check off", func(t *testing.T) {
		_, page := owner.get("/security")
		if !strings.Contains(page, "breached ones not checked") || strings.Contains(page, "common and breached passwords refused") {
			t.Error("the Security page says breached passwords are refused, without -breach-api")
		}
	})
	t.Run("invitation", func(t *testing.T) {
		_, page := owner.get("/users")
		if strings.Contains(page, "Forgot your password?") || !strings.Contains(page, "they are mailed a link to set one") {
			t.Error("the Users page does not say an invitation is mailed")
		}
		owner.post("/users", url.Values{"email": {"ivy@demo.example"}, "name": {"Ivy New"}, "role": {"member"}})
		ivy := newClientOf(t, owner.srv, owner.con)
		u, _ := url.Parse(waitLink(t, owner.con, "ivy@demo.example"))
		resp, _ := ivy.get(u.RequestURI())
		_, page = ivy.get(resp.Header.Get("Location"))
		if !strings.Contains(page, "<h1>Choose your password</h1>") || strings.Contains(page, "breached") {
			t.Errorf("the invitation's page:\n%s", page)
		}
		resp, _ = ivy.post("/reset", url.Values{"password": {"lantern harbour quiet steps"}, "confirm": {"lantern harbour quiet steps"}, "captcha": {standinToken}})
		if msg := flashAfter(ivy, resp); msg != "Your password is set. Sign in with it." {
			t.Errorf("after setting the password: %q", msg)
		}
	})
	t.Run("reset", func(t *testing.T) {
		c := newClientOf(t, owner.srv, owner.con)
		c.post("/forgot", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "captcha": {standinToken}})
		u, _ := url.Parse(waitLink(t, owner.con, ownerEmail))
		resp, _ := c.get(u.RequestURI())
		if _, page := c.get(resp.Header.Get("Location")); !strings.Contains(page, "<h1>Choose a new password</h1>") || strings.Contains(page, "breached") {
			t.Errorf("the reset page:\n%s", page)
		}
	})
	t.Run("email confirmation heading", func(t *testing.T) {
		owner.post("/users", url.Values{"email": {"sam@demo.example"}, "name": {"Sam Staff"}, "role": {"member"}, "password": {"plum tree on the hill 42"}})
		sam := newClientOf(t, owner.srv, owner.con)
		sam.signIn("sam@demo.example", "plum tree on the hill 42")
		if resp, _ := sam.post("/account/email", url.Values{"email": {"samuel@demo.example"}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("email change: %d", resp.StatusCode)
		}
		u, _ := url.Parse(waitLinkTo(t, owner.con, "samuel@demo.example", "/email/confirm"))
		resp, _ := sam.get(u.RequestURI())
		_, page := sam.get(resp.Header.Get("Location"))
		if n := strings.Count(page, "Confirm your new email address</h1>"); n != 1 {
			t.Errorf("the heading shows %d times", n)
		}
	})
	t.Run("roles an admin may grant", func(t *testing.T) {
		const admin, adminPW = "ada@demo.example", "copper kettle morning rain 88"
		owner.post("/users", url.Values{"email": {admin}, "name": {"Ada Admin"}, "role": {"admin"}, "password": {adminPW}})
		resp, _ := owner.post("/users", url.Values{"email": {"tom@demo.example"}, "name": {"Tom"}, "role": {"member"}, "password": {"plum tree on the hill 43"}})
		tom := resp.Header.Get("Location")
		ada := newClientOf(t, owner.srv, owner.con)
		ada.clock = owner.clock
		ada.signInAdmin(admin, adminPW)
		_, page := ada.get("/users")
		add := regexp.MustCompile(`(?s)<select name="role">.*?</select>`).FindString(page)
		if strings.Contains(add, `value="owner"`) || !strings.Contains(add, `value="member"`) {
			t.Errorf("the add-user menu of an admin: %s", add)
		}
		_, page = ada.get(tom)
		grant := regexp.MustCompile(`(?s)<select name="role">.*?</select>`).FindString(page)
		if strings.Contains(grant, "<option>owner</option>") || !strings.Contains(grant, "<option>manager</option>") {
			t.Errorf("the grant menu of an admin: %s", grant)
		}
		// The owner's page offers the admin no action but ending sessions
		// (guard refuses the others: acting on a more privileged user).
		_, me := owner.whoami()
		_, page = ada.get("/users/" + me.UserID)
		if !strings.Contains(page, `id="outranked"`) || !strings.Contains(page, `id="end-sessions"`) ||
			strings.Contains(page, `id="deactivate"`) || strings.Contains(page, `id="delete"`) || strings.Contains(page, `id="expire-password"`) {
			t.Errorf("an admin's view of the owner's page: outranked note %v, buttons deactivate %v, delete %v",
				strings.Contains(page, `id="outranked"`), strings.Contains(page, `id="deactivate"`), strings.Contains(page, `id="delete"`))
		}
		if _, page = ada.get(tom); strings.Contains(page, `id="outranked"`) || !strings.Contains(page, `id="deactivate"`) {
			t.Error("an admin's view of a member's page lacks the actions")
		}
		// So does the access review: no decision on the owner's row.
		_, page = ada.get("/review")
		if strings.Contains(page, `name="user:`+me.UserID+`"`) || !strings.Contains(page, "holds a role you cannot grant") ||
			!strings.Contains(page, `name="user:`+strings.TrimPrefix(tom, "/users/")+`"`) {
			t.Errorf("an admin's review offers a decision on the owner, or none on a member")
		}
		_, page = owner.get(tom)
		if grant := regexp.MustCompile(`(?s)<select name="role">.*?</select>`).FindString(page); !strings.Contains(grant, "<option>owner</option>") {
			t.Errorf("the grant menu of the owner: %s", grant)
		}
		// The same for an API key (guard's GrantableKeyRoles): no owner
		// for an admin (who lacks billing), and a role offered is given.
		_, page = ada.get("/keys")
		if give := regexp.MustCompile(`(?s)<select name="role">.*?</select>`).FindString(page); strings.Contains(give, ">owner</option>") ||
			!strings.Contains(give, ">admin</option>") || !strings.Contains(give, ">reports-only</option>") {
			t.Errorf("the key role menu of an admin: %s", give)
		}
		if resp, page := ada.post("/keys", url.Values{"name": {"ada's export"}, "role": {"admin"}, "days": {"30"}}); resp.StatusCode != http.StatusOK ||
			!strings.Contains(page, `id="api-key"`) {
			t.Errorf("an admin creating a key with a role offered: %d", resp.StatusCode)
		}
		_, page = owner.get("/keys")
		if give := regexp.MustCompile(`(?s)<select name="role">.*?</select>`).FindString(page); !strings.Contains(give, ">owner</option>") {
			t.Errorf("the key role menu of the owner: %s", give)
		}
		// A manager sees the users (users:read) but may grant nothing
		// (no users:manage): no role is offered, not even their own.
		const manager, managerPW = "meg@demo.example", "copper kettle evening rain 89"
		owner.post("/users", url.Values{"email": {manager}, "name": {"Meg Manager"}, "role": {"manager"}, "password": {managerPW}})
		meg := newClientOf(t, owner.srv, owner.con)
		meg.clock = owner.clock
		meg.signInAdmin(manager, managerPW)
		resp, page = meg.get(tom)
		if grant := regexp.MustCompile(`(?s)<select name="role">.*?</select>`).FindString(page); resp.StatusCode != 200 || strings.Contains(grant, "<option>") {
			t.Errorf("the grant menu of a manager: %d %s", resp.StatusCode, grant)
		}
	})
}
