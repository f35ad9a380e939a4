package guard_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// refusalRecordMax is the refusals of one kind recorded in a minute.
const refusalRecordMax = 30

// wantRefusalsBounded makes refusalRecordMax+1 refusals with refuse, at
// one time of clock c, and expects each refused with want and the first
// refusalRecordMax recorded (failures counts the refused events recorded
// so far), the one beyond not; then it runs meanwhile, which may record
// refusals of other kinds; a minute later the next refusal is recorded
// again.
func wantRefusalsBounded(t *testing.T, c *clock, want error, refuse func(i int) error, failures func() int, meanwhile ...func()) {
	t.Helper()
	before := failures()
	for i := range refusalRecordMax + 1 {
		if err := refuse(i); !errors.Is(err, want) {
			t.Fatalf("refusal %d: %v, want %v", i+1, err, want)
		}
	}
	if n := failures() - before; n != refusalRecordMax {
		t.Errorf("%d refusals in a minute left %d records, want %d", refusalRecordMax+1, n, refusalRecordMax)
	}
	for _, f := range meanwhile {
		f()
	}
	mid := failures()
	c.Advance(time.Minute)
	if err := refuse(refusalRecordMax + 1); !errors.Is(err, want) {
		t.Fatalf("refusal a minute later: %v, want %v", err, want)
	}
	if n := failures() - mid; n != 1 {
		t.Errorf("a refusal a minute later left %d records, want 1: recording did not resume", n)
	}
}

// failed counts the refused events of action in the tenant's log, of
// target when it is not "".
func (f *fixture) failed(t *testing.T, action audit.Action, target string) func() int {
	return f.counter(t, action, target, audit.Failure)
}

// counter counts the events of action with outcome in the tenant's log,
// of target when it is not "".
func (f *fixture) counter(t *testing.T, action audit.Action, target string, outcome audit.Outcome) func() int {
	return func() int {
		n := 0
		for _, e := range f.events(t, action) {
			if e.Outcome == outcome && (target == "" || e.Target == target) {
				n++
			}
		}
		return n
	}
}

// Refused uses of reset links (made-up, spent or voided) are refused
// every time, but at most 30 a minute are recorded for one user: a loop
// of made-up links cannot flood the tenant's log. The count is per user
// and per kind of link, and a good link still works and is recorded.
func TestResetLinkRefusalsRecordBounded(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, "ada@example.test", ownerPW)
	bob := f.createUser(t, "bob@example.test", ownerPW)
	link := f.forgot(t, "ada@example.test")
	bad := func(user string) func(int) error {
		return func(i int) error {
			tok := strings.Repeat(string(rune('a'+i%26)), 43)
			if i%2 == 1 {
				tok = "short" // refused before the store is asked
			}
			return f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: tenantID, UserID: user, Token: tok,
				NewPassword: "an entirely new passphrase", IP: "203.0.113.5"})
		}
	}
	wantRefusalsBounded(t, f.clock, guard.ErrInvalidResetToken, bad(ada.ID), f.failed(t, audit.PasswordReset, ada.ID))

	// Ada's count is full again: Bob's refusals, and Ada's refused
	// email-change links, are counted apart.
	for range refusalRecordMax - 1 {
		_ = bad(ada.ID)(0)
	}
	if err := bad(bob.ID)(0); !errors.Is(err, guard.ErrInvalidResetToken) {
		t.Fatal(err)
	}
	if n := f.failed(t, audit.PasswordReset, bob.ID)(); n != 1 {
		t.Errorf("Bob's refusal left %d records, want 1", n)
	}
	err := f.g.ConfirmEmailChange(f.ctx, guard.EmailChangeConfirm{Tenant: tenantID, UserID: ada.ID,
		Email: "new@example.test", Token: strings.Repeat("x", 43), IP: "203.0.113.5"})
	if !errors.Is(err, guard.ErrInvalidEmailChange) {
		t.Fatal(err)
	}
	if n := f.failed(t, audit.UserEmailChanged, ada.ID)(); n != 1 {
		t.Errorf("Ada's refused email-change link left %d records, want 1", n)
	}

	// The link mailed to Ada still works, and its use is recorded.
	if err := f.g.ResetPassword(f.ctx, resetTo(link, "an entirely new passphrase")); err != nil {
		t.Fatalf("ResetPassword with the mailed link: %v", err)
	}
	if ok := f.counter(t, audit.PasswordReset, ada.ID, audit.Success)(); ok != 1 {
		t.Errorf("%d successful password.reset events, want 1", ok)
	}
}

// Refused uses of email-change links are refused every time, and at most
// 30 a minute are recorded for one user.
func TestEmailChangeLinkRefusalsRecordBounded(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, "ada@example.test", ownerPW)
	bad := func(i int) error {
		tok := strings.Repeat(string(rune('a'+i%26)), 43)
		if i%2 == 1 {
			tok = "short"
		}
		return f.g.ConfirmEmailChange(f.ctx, guard.EmailChangeConfirm{Tenant: tenantID, UserID: ada.ID,
			Email: "new@example.test", Token: tok, IP: "203.0.113.5"})
	}
	wantRefusalsBounded(t, f.clock, guard.ErrInvalidEmailChange, bad, f.failed(t, audit.UserEmailChanged, ada.ID))
}

// newClockedSSOSite is newSSOSite on a settable clock, which starts at
// the time now (the test IdP's assertions carry it).
func newClockedSSOSite(t *testing.T) (*ssoSite, *clock) {
	t.Helper()
	c := &clock{t: time.Now()}
	return newSSOSiteOn(t, newMem(), func(cfg *guard.Config) { cfg.Now = c.Now }), c
}

// failedSSO counts the tenant's sso.failed events, of single logout
// (Meta step logout) when logout is set, of sign-in otherwise.
func (s *ssoSite) failedSSO(t *testing.T, logout bool) func() int {
	return s.failedSSOWhere(t, func(e audit.Event) bool { return (e.Meta["step"] == "logout") == logout })
}

// failedSSOWhere counts the tenant's sso.failed events that keep selects.
func (s *ssoSite) failedSSOWhere(t *testing.T, keep func(audit.Event) bool) func() int {
	return func() int {
		page, err := s.g.QueryAudit(t.Context(), guard.System("test"), tenantID, audit.Query{Action: string(audit.SSOFailed), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range page.Events {
			if keep(e) {
				n++
			}
		}
		return n
	}
}

// aliceSignedInBySSO is a clocked SSO site where Alice has signed in:
// the ACS URL and the form her browser posted to it.
func aliceSignedInBySSO(t *testing.T) (*ssoSite, *clock, string, url.Values) {
	t.Helper()
	s, c := newClockedSSOSite(t)
	s.idpPut(t, "/users/alice", `{"name":"alice","password":"correct horse","email":"alice@corp.example","groups":["Staff"]}`)
	_, acs, used, resp := s.signIn(t, "alice", "correct horse")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SSO sign-in: %s", resp.Status)
	}
	return s, c, acs, used
}

// postForm is a POST of form to u, as a browser sends it.
func postForm(u string, form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// SAML responses refused before they are accepted (here malformed, in
// two ways) are refused every time, but at most 30 a minute are recorded
// for a tenant and reason: anyone can post them in a loop. A sign-in
// refused once the response was accepted (a deactivated user) is
// recorded all the same. (Other reasons are counted apart:
// TestCompleteSSOJunkFloodKeepsReplayOnRecord.)
func TestCompleteSSORefusalsRecordBounded(t *testing.T) {
	s, c, acs, used := aliceSignedInBySSO(t)
	refuse := func(i int) error {
		form := url.Values{"SAMLResponse": {"not base64!"}, "RelayState": {used.Get("RelayState")}}
		if i%2 == 1 {
			form.Set("SAMLResponse", base64.StdEncoding.EncodeToString([]byte("<x/")))
		}
		_, _, err := s.g.CompleteSSO(t.Context(), guard.SSOResponse{Tenant: tenantID, Request: postForm(acs, form), IP: "203.0.113.5"})
		return err
	}
	accepted := func() {
		// Alice deactivated: her next response is accepted, and the
		// sign-in refused.
		ctx, sys := t.Context(), guard.System("test")
		u, err := s.g.UserByEmail(ctx, sys, tenantID, "alice@corp.example")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.g.DeactivateUser(ctx, sys, tenantID, u.ID); err != nil {
			t.Fatal(err)
		}
		before := s.failedSSO(t, false)()
		_, _, _, resp := s.signIn(t, "alice", "correct horse")
		if resp.StatusCode == http.StatusOK {
			t.Fatal("sign-in of a deactivated user succeeded")
		}
		if n := s.failedSSO(t, false)() - before; n != 1 {
			t.Errorf("a sign-in refused after its response was accepted left %d records, want 1", n)
		}
	}
	wantRefusalsBounded(t, c, guard.ErrSSOFailed, refuse, s.failedSSO(t, false), accepted)
}

// Single logout requests the SP refuses (here signed with a key the IdP
// does not have) are refused every time, but at most 30 a minute are
// recorded for a tenant, counted apart from the refused sign-ins.
func TestHandleSLORefusalsRecordBounded(t *testing.T) {
	s, c := newClockedSSOSite(t)
	sp, err := s.g.SSOServiceProvider(tenantID)
	if err != nil {
		t.Fatal(err)
	}
	key, cert := newKeyPair(t, "mallory")
	refuse := func(i int) error {
		lr := &saml.LogoutRequest{ID: fmt.Sprintf("id-forged-%d", i), Version: "2.0", IssueInstant: time.Now().UTC(),
			Destination: sp.SLOURL, Issuer: &saml.Issuer{Value: s.idpURL + "/metadata"}, NameID: &saml.NameID{Value: "alice@corp.example"}}
		_, err := s.g.HandleSLO(t.Context(), tenantID, signedLogoutPost(t, lr, key, cert))
		return err
	}
	signIns := s.failedSSO(t, false)
	meanwhile := func() {
		// The refused sign-ins have a count of their own.
		_, _, err := s.g.CompleteSSO(t.Context(), guard.SSOResponse{Tenant: tenantID,
			Request: postForm(sp.ACSURL, url.Values{"SAMLResponse": {"not base64!"}}), IP: "203.0.113.5"})
		if !errors.Is(err, guard.ErrSSOFailed) {
			t.Fatalf("CompleteSSO: %v", err)
		}
		if n := signIns(); n != 1 {
			t.Errorf("a refused sign-in after 31 refused logouts left %d records, want 1", n)
		}
	}
	wantRefusalsBounded(t, c, guard.ErrSSOFailed, refuse, s.failedSSO(t, true), meanwhile)
}
