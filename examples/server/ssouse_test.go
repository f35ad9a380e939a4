package main

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// The confirmation of "require SSO" lists who would lose access as Guard
// does (Adoption.WouldNeedSSO): the active users not on SSO, except the
// break-glass owner the form names, even when the saved policy names
// another one.
func TestRequireSSOListsWhoWouldLoseAccess(t *testing.T) {
	clock := &testClock{}
	c, idp, password := newSSOClientAdminMFAOff(t, clock)
	c.signIn(ownerEmail, password)
	_, who := c.whoami()
	g, ctx, sys := c.con.app.g, t.Context(), guard.System("test")
	oscar, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: demoTenant, Email: "oscar@demo.example", Name: "Oscar Owner",
		Password: "plum tree on the hill 42", Roles: []string{rbac.Owner}})
	if err != nil {
		t.Fatal(err)
	}
	// The saved policy names Oscar as the break-glass owner.
	tn, err := g.Tenant(ctx, demoTenant)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	pol.BreakGlassUser = oscar.ID
	if _, err := g.SetPolicy(ctx, sys, demoTenant, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	// Alice signs in through the IdP: she is on SSO.
	idp.addUser("alice", "alice@example.com", "correct horse battery", "admins")
	alice := newClientOf(t, c.srv, c.con)
	acs, answer := alice.ssoAnswer(idp, "alice", "correct horse battery", "")
	alice.postFrom(idp.url, "cross-site", acs, answer)
	if code, w := alice.whoami(); code != 200 || !w.SSO {
		t.Fatalf("Alice's SSO sign-in: %d %+v", code, w)
	}

	listed := regexp.MustCompile(`<span class="muted">([^<]+)</span></li>`)
	invited := []string{"max@demo.example", "mia@demo.example", "rita@demo.example"} // no password, never signed in
	for _, tc := range []struct {
		name, breakGlass string
		want             []string
	}{
		{"the saved break-glass owner", oscar.ID, append([]string{ownerEmail}, invited...)},
		{"another break-glass owner", who.UserID, append([]string{"oscar@demo.example"}, invited...)},
		{"no break-glass owner", "", append([]string{ownerEmail, "oscar@demo.example"}, invited...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, page := c.get("/security/sso")
			form := url.Values{"version": {field(t, page, "version")}, "require_sso": {"on"}, "break_glass": {tc.breakGlass}}
			resp, page := c.post("/security/sso/require", form)
			if resp.StatusCode != 200 || !strings.Contains(page, `id="confirm-sso"`) {
				t.Fatalf("require SSO: %d, no confirmation step", resp.StatusCode)
			}
			var got []string
			for _, m := range listed.FindAllStringSubmatch(page[strings.Index(page, `id="password-users"`):], -1) {
				got = append(got, m[1])
			}
			slices.Sort(got)
			slices.Sort(tc.want)
			count := regexp.MustCompile(`id="password-users">(\d+)<`).FindStringSubmatch(page)
			if !slices.Equal(got, tc.want) || count == nil || count[1] != strconv.Itoa(len(tc.want)) {
				t.Errorf("listed %v (count %v), want %v", got, count, tc.want)
			}
		})
	}
}
