package guard_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
)

// Black-box tests of SECURITY-CHECKLIST items that are implemented but
// were not covered elsewhere: RS-2, RS-4, RS-7, PW-8, PW-9, PW-13, AU-11,
// RB-9, IP-19, RL-5, SE-3 and SE-7.

// resetTo builds the ResetPassword request for a mailed reset link.
func resetTo(link url.Values, newPassword string) guard.ResetRequest {
	return guard.ResetRequest{Tenant: link.Get("tenant"), UserID: link.Get("user"), Token: link.Get("token"),
		NewPassword: newPassword, IP: "203.0.113.5", UserAgent: "test"}
}

// RS-2: the token of a reset link carries 256 random bits (43 base64url
// characters), and 200 links for one account are all different.
func TestResetTokenEntropy(t *testing.T) {
	f := newMFAFixture(t, withLimits(guard.LinkLimits{PerAccount: 1000, PerDestination: 1000, PerIP: 1000}))
	f.createUser(t, adaEmail, ownerPW)
	const n = 200
	req := guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5"}
	for range n {
		if err := f.g.ForgotPassword(f.ctx, req); err != nil {
			t.Fatal(err)
		}
		f.g.Close() // one after the other: the last mail holds the live link
	}
	sent := f.mailTo(adaEmail)
	if len(sent) != n {
		t.Fatalf("%d reset emails for %d requests, want %d", len(sent), n, n)
	}
	seen := map[string]bool{}
	var last url.Values
	for _, m := range sent {
		last = resetLink(t, m)
		tok := last.Get("token")
		raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		if len(tok) != 43 || err != nil || len(raw) != 32 {
			t.Fatalf("token %q: %d characters, %d bytes (%v); want 43 base64url characters of 32 bytes", tok, len(tok), len(raw), err)
		}
		if seen[tok] {
			t.Fatalf("token %q mailed twice", tok)
		}
		seen[tok] = true
	}
	// What was measured is the token the link is checked against.
	if err := f.g.ResetPassword(f.ctx, resetTo(last, "an entirely new passphrase")); err != nil {
		t.Errorf("ResetPassword with the last link: %v", err)
	}
}

// RS-4: a reset link works until its TTL (default 30 minutes, or
// Recovery.TokenTTL) and is refused one second after it, leaving the
// password as it was.
func TestResetLinkExpires(t *testing.T) {
	const newPW = "an entirely new passphrase"
	for _, c := range []struct {
		name string
		ttl  time.Duration // Recovery.TokenTTL; 0 for the default
		wait time.Duration
		want error
	}{
		{"DefaultTTLMinusOneSecond", 0, 30*time.Minute - time.Second, nil},
		{"DefaultTTLPlusOneSecond", 0, 30*time.Minute + time.Second, guard.ErrInvalidResetToken},
		{"ConfiguredTTLMinusOneSecond", 10 * time.Minute, 10*time.Minute - time.Second, nil},
		{"ConfiguredTTLPlusOneSecond", 10 * time.Minute, 10*time.Minute + time.Second, guard.ErrInvalidResetToken},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newMFAFixture(t, func(cfg *guard.Config) { cfg.Recovery.TokenTTL = c.ttl })
			f.createUser(t, adaEmail, ownerPW)
			link := f.forgot(t, adaEmail)
			f.clock.Advance(c.wait)
			if err := f.g.ResetPassword(f.ctx, resetTo(link, newPW)); !errors.Is(err, c.want) {
				t.Fatalf("ResetPassword %v after the request = %v, want %v", c.wait, err, c.want)
			}
			works, refused := newPW, ownerPW
			if c.want != nil {
				works, refused = ownerPW, newPW
			}
			if _, err := f.login(adaEmail, works); err != nil {
				t.Errorf("login with %q: %v", works, err)
			}
			if _, err := f.login(adaEmail, refused); !errors.Is(err, guard.ErrInvalidCredentials) {
				t.Errorf("login with %q = %v, want ErrInvalidCredentials", refused, err)
			}
		})
	}
}

// RS-7: asking for reset links, even beyond the send limit, changes
// nothing about the account: its session keeps working, the old password
// still signs in, and nothing is locked.
func TestForgotPasswordChangesNothing(t *testing.T) {
	f := newMFAFixture(t, manySessions)
	ada := f.createUser(t, adaEmail, ownerPW)
	res, _ := f.signIn(t, adaEmail, ownerPW)
	for range 8 { // the default limit is 5 an hour
		if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.mailTo(adaEmail)); n != 5 {
		t.Fatalf("%d reset emails, want 5", n)
	}
	if _, err := f.g.Authenticate(f.ctx, res.Token); err != nil {
		t.Errorf("the session after ForgotPassword: %v", err)
	}
	if _, err := f.login(adaEmail, ownerPW); err != nil {
		t.Errorf("login with the old password after ForgotPassword: %v", err)
	}
	if ss, err := f.g.UserSessions(f.ctx, guard.System("test"), tenantID, ada.ID); err != nil || len(ss) != 2 {
		t.Errorf("UserSessions = %d sessions, %v; want the first session and the new one", len(ss), err)
	}
	if evs := f.events(t, audit.LoginLocked); len(evs) != 0 {
		t.Errorf("%d login.locked events, want none", len(evs))
	}
	if u, err := f.g.User(f.ctx, guard.System("test"), tenantID, ada.ID); err != nil || u.Status != ada.Status {
		t.Errorf("user status after ForgotPassword = %q (%v), want %q", u.Status, err, ada.Status)
	}
}

// PW-13: passwords are exact bytes (auth.Policy): "é" precomposed
// (U+00E9, NFC) and decomposed ("e" + U+0301, NFD) are different
// passwords, at set, change and login alike.
func TestPasswordNotNormalised(t *testing.T) {
	decompose := func(s string) string { return strings.ReplaceAll(s, "\u00e9", "e\u0301") }
	first := "un caf\u00e9 noir bien serr\u00e9"
	second := "th\u00e9 vert \u00e0 la menthe, pas sucr\u00e9"
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, first)
	if _, err := f.login(adaEmail, decompose(first)); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Errorf("login with the NFD form of an NFC password = %v, want ErrInvalidCredentials", err)
	}
	_, p := f.signIn(t, adaEmail, first)
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: decompose(first), New: second}); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Errorf("ChangePassword with the NFD form of the current password = %v, want ErrInvalidCredentials", err)
	}
	// Set the new password in NFD: only NFD signs in.
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: first, New: decompose(second)}); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if _, err := f.login(adaEmail, second); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Errorf("login with the NFC form of an NFD password = %v, want ErrInvalidCredentials", err)
	}
	if _, err := f.login(adaEmail, decompose(second)); err != nil {
		t.Errorf("login with the NFD password as set: %v", err)
	}
}

// PW-8: a new password containing a word of the product's name (here
// the MFA issuer, "Acme"), of the tenant's name or of its ID is refused,
// at creation and at a change, and nothing changes.
func TestPasswordRefusesServiceWords(t *testing.T) {
	f := newMFAFixture(t)
	sys := guard.System("test")
	if _, err := f.g.CreateTenant(f.ctx, sys, "northwind", "Northwind Traders", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	var pe *auth.PolicyError
	for _, pw := range []string{"my traders vault 2026", "vault-NORTHWIND-2026", "acme of vaults 2026"} {
		_, err := f.g.CreateUser(f.ctx, sys, guard.NewUser{Tenant: "northwind", Email: "ada@example.com", Password: pw})
		if !errors.As(err, &pe) || pe.Rule != auth.RuleContainsService {
			t.Errorf("CreateUser with password %q = %v, want RuleContainsService", pw, err)
		}
	}
	if _, err := f.g.CreateUser(f.ctx, sys, guard.NewUser{Tenant: "northwind", Email: "ada@example.com", Password: "correct horse battery"}); err != nil {
		t.Errorf("CreateUser after the refusals: %v (a refused creation left something behind?)", err)
	}
	f.createUser(t, adaEmail, "correct horse battery")
	_, p := f.signIn(t, adaEmail, "correct horse battery")
	for _, pw := range []string{"alice-acme-app-2026", "zq8#ACME#vnwk"} {
		err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: "correct horse battery", New: pw})
		if !errors.As(err, &pe) || pe.Rule != auth.RuleContainsService {
			t.Errorf("ChangePassword to %q = %v, want RuleContainsService", pw, err)
		}
	}
	if _, err := f.login(adaEmail, "correct horse battery"); err != nil {
		t.Errorf("the old password after refused changes: %v", err)
	}
}

// AU-11: only the system purges the audit log; an owner or an admin of
// the tenant is refused and nothing is deleted.
func TestPurgeAuditOnlyBySystem(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olive@example.test", rbac.Owner)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	f.clock.Advance(time.Hour)
	before := f.clock.Now()
	all := func() []audit.Event {
		p, err := f.g.QueryAudit(f.ctx, guard.System("test"), tenantID, audit.Query{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return p.Events
	}
	n := len(all())
	if n == 0 {
		t.Fatal("no audit events to purge")
	}
	for name, by := range map[string]guard.Principal{"owner": owner, "admin": admin} {
		if got, err := f.g.PurgeAudit(f.ctx, by, tenantID, before); !errors.Is(err, guard.ErrForbidden) || got != 0 {
			t.Errorf("PurgeAudit by the %s = %d, %v; want 0, ErrForbidden", name, got, err)
		}
	}
	// Nothing is purged, and each refusal is on record.
	evs := all()
	if len(evs) != n+2 {
		t.Fatalf("%d events after refused purges, want %d and two access.denied", len(evs), n)
	}
	for _, e := range evs[n:] {
		if e.Action != audit.AccessDenied || e.Reason != "system_only" {
			t.Errorf("refused purge recorded as %s (reason %q), want access.denied (system_only)", e.Action, e.Reason)
		}
	}
	f.clock.Advance(time.Second)
	got, err := f.g.PurgeAudit(f.ctx, guard.System("retention"), tenantID, f.clock.Now())
	if err != nil || got != n+2 {
		t.Fatalf("PurgeAudit by the system = %d, %v; want %d", got, err, n+2)
	}
	if evs := all(); len(evs) != 1 || evs[0].Action != audit.AuditPurged || evs[0].Actor.Kind != audit.ActorSystem {
		t.Errorf("events after the purge: %+v, want only the audit.purged event", evs)
	}
	if rep, err := f.g.VerifyAudit(f.ctx, guard.System("test"), tenantID); err != nil || !rep.OK {
		t.Errorf("VerifyAudit after the purge = %+v, %v", rep, err)
	}
}

// RB-9: a request refused by Require leaves an access.denied event naming
// the subject, tenant, section, action and reason.
func TestRequireDenialAudited(t *testing.T) {
	f := newFixture(t)
	p, tok := f.userWithRoles(t, "rita@example.test", rbac.ReportsOnly)
	if code := serve(f.g, tok, client, rbac.Contacts, rbac.Write); code != 403 {
		t.Fatalf("reports-only writing contacts: %d, want 403", code)
	}
	evs := f.events(t, audit.AccessDenied)
	if len(evs) != 1 {
		t.Fatalf("%d access.denied events, want 1", len(evs))
	}
	e := evs[0]
	if e.Tenant != tenantID || e.Outcome != audit.Failure || e.Reason != "no_permission" ||
		e.Actor != (audit.Actor{Kind: audit.ActorUser, ID: p.UserID}) || e.Target != "contacts:write" || e.IP != "203.0.113.5" {
		t.Errorf("access.denied event %+v", e)
	}
	want := map[string]string{"section": "contacts", "action": "write", "subject": "user:" + p.UserID}
	for k, v := range want {
		if e.Meta[k] != v {
			t.Errorf("Meta[%q] = %q, want %q", k, e.Meta[k], v)
		}
	}
}

// IP-19: an API key used from outside the tenant's API-key allow-list, or
// through a spoofed X-Forwarded-For, gets the generic 403, and each
// refusal is an ip.denied event naming the key, the api_keys list and the
// resolved address.
func TestAPIKeyAllowListDenialAudited(t *testing.T) {
	f := newFixture(t)
	// A provisioning job restricts the tenant's keys to one address, then
	// makes a key.
	sys := guard.System("provisioning")
	lists, err := f.g.IPAllowLists(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	change := guard.IPListChange{Scope: ipfilter.APIKeys, Entries: []string{"198.51.100.7"}, Version: lists.Version}
	if _, err := f.g.SetIPAllowList(f.ctx, sys, tenantID, change); err != nil {
		t.Fatal(err)
	}
	key, k, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "reporting", Roles: []string{rbac.ReportsOnly}})
	if err != nil {
		t.Fatal(err)
	}
	h := f.g.Middleware(f.g.Require(rbac.Reports, rbac.Read)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })))
	bearer := "Bearer " + key
	if w := serveHandler(h, "/", "", "198.51.100.7:1", "Authorization", bearer); w.Code != 204 {
		t.Fatalf("key from its allowed address: %d", w.Code)
	}
	for _, c := range []struct {
		name   string
		header []string
	}{
		{"direct", []string{"Authorization", bearer}},
		{"spoofed X-Forwarded-For", []string{"Authorization", bearer, "X-Forwarded-For", "198.51.100.7"}},
	} {
		if w := serveHandler(h, "/", "", "198.51.100.8:1", c.header...); w.Code != 403 || w.Body.String() != "Forbidden\n" {
			t.Errorf("key from 198.51.100.8 (%s): %d %q, want 403 Forbidden", c.name, w.Code, w.Body)
		}
		// A refusal of one key from one address is recorded once a
		// minute at most.
		f.clock.Advance(time.Minute)
	}
	evs := f.events(t, audit.IPDenied)
	if len(evs) != 2 {
		t.Fatalf("%d ip.denied events, want 2", len(evs))
	}
	for _, e := range evs {
		if e.Target != ipfilter.APIKeys.String() || e.IP != "198.51.100.8" || e.Outcome != audit.Failure ||
			e.Reason != "not_in_allow_list" || e.Actor != (audit.Actor{Kind: audit.ActorAPIKey, ID: k.ID}) {
			t.Errorf("ip.denied event %+v, want api_keys, 198.51.100.8 and key %s", e, k.ID)
		}
	}
}

// lossyMail is an email provider that, while down, takes each message and
// then reports a failure: the code may even have reached the user.
type lossyMail struct {
	*outbox
	down atomic.Bool
}

func (m *lossyMail) SendEmail(ctx context.Context, msg mfa.Message) error {
	if err := m.outbox.SendEmail(ctx, msg); err != nil {
		return err
	}
	if m.down.Load() {
		return errors.New("smtp: 451 timeout after DATA")
	}
	return nil
}

// RL-5: when the email provider fails, SendLoginCode reports it
// (ErrUnavailable) and the sign-in is not bypassed: the code it tried to
// send completes nothing and the user has no session.
func TestSendLoginCodeProviderDown(t *testing.T) {
	lm := &lossyMail{outbox: &outbox{}}
	f := newMFAFixture(t, func(c *guard.Config) { c.MFA.Email = lm })
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, "ada.second@example.test", "")
	if err != nil {
		t.Fatalf("BeginOOB: %v", err)
	}
	if _, err := f.g.ConfirmFactor(f.ctx, p, fa.ID, digits6.FindString(lm.lastMail(t).Text)); err != nil {
		t.Fatalf("ConfirmFactor(email): %v", err)
	}
	if err := f.g.Logout(f.ctx, p); err != nil {
		t.Fatal(err)
	}
	pend := f.pending(t, adaEmail, ownerPW)
	lm.down.Store(true)
	sent := lm.count()
	if err := f.g.SendLoginCode(f.ctx, pend.Token, fa.ID, "203.0.113.5", "test"); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("SendLoginCode with the provider down = %v, want ErrUnavailable", err)
	}
	if lm.count() != sent+1 {
		t.Fatal("the provider was not called")
	}
	code := digits6.FindString(lm.lastMail(t).Text)
	if res, err := f.complete(guard.MethodCode, pend.Token, code); err == nil || res.Token != "" {
		t.Errorf("CompleteLogin with the code of the failed send = %q, %v; want an error and no session", res.Token, err)
	}
	if ss, err := f.g.UserSessions(f.ctx, guard.System("test"), tenantID, ada.ID); err != nil || len(ss) != 0 {
		t.Errorf("UserSessions = %d sessions, %v; want none", len(ss), err)
	}
	if r := reasons(f.events(t, audit.MFAFailed)); r[guard.ReasonUnavailable] != 1 {
		t.Errorf("mfa.failed reasons %v, want one unavailable", r)
	}
}

// PW-7 (ASVS 6.2.12): a stored password that is on the blocklist (one
// imported from another system) still signs in, but the session is
// marked for a password change, and the login says so.
func TestCommonStoredPasswordMustChange(t *testing.T) {
	f := newFixture(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("password123"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.mem.Users.CreateUser(f.ctx, auth.User{ID: "imported", Tenant: tenantID, Email: "imp@example.com",
		Status: auth.StatusActive, PasswordHash: string(hash), CreatedAt: f.clock.Now(), PasswordChangedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	res, err := f.login("imp@example.com", "password123")
	if err != nil {
		t.Fatal(err)
	}
	if !res.PasswordExpired || res.Session.Flags&guard.FlagPasswordExpired == 0 {
		t.Errorf("login with a common stored password: PasswordExpired %v, flags %b; want the change asked for", res.PasswordExpired, res.Session.Flags)
	}
	ok := f.events(t, audit.LoginSucceeded)
	if len(ok) != 1 || ok[0].Meta["password_common"] != "true" || ok[0].Meta["password_expired"] != "true" {
		t.Errorf("login.succeeded events %+v", ok)
	}
	// A password that is not common asks for nothing.
	f.createUser(t, adaEmail, ownerPW)
	if res, err := f.login(adaEmail, ownerPW); err != nil || res.PasswordExpired {
		t.Errorf("login with a good password: PasswordExpired %v, %v", res.PasswordExpired, err)
	}
}

// DESIGN.md "rejected if common/breached (… optional k-anonymity range
// API)", NIST SP 800-63B §3.1.1.2: with Config.BreachCheck, a new password
// known from breaches is refused and recorded as such; when the check
// cannot be made, the change is refused (ErrUnavailable) and nothing
// changes.
func TestBreachedPasswordRefused(t *testing.T) {
	const leaked = "Summer-2019-password"
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		sum := sha1.Sum([]byte(leaked))
		h := strings.ToUpper(hex.EncodeToString(sum[:]))
		if r.URL.Path == "/range/"+h[:5] {
			fmt.Fprintf(w, "%s:4200\r\n", h[5:])
		}
		// Padding (Add-Padding: true): the service never answers a
		// prefix with nothing, and an empty answer is a broken one.
		fmt.Fprintf(w, "%035X:0\r\n", 0)
	}))
	t.Cleanup(srv.Close)
	api, err := auth.NewRangeAPI(auth.RangeAPIConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	f := newMFAFixture(t, func(c *guard.Config) { c.BreachCheck = api })
	sys := guard.System("test")
	_, err = f.g.CreateUser(f.ctx, sys, guard.NewUser{Tenant: tenantID, Email: adaEmail, Password: leaked})
	var pe *auth.PolicyError
	if !errors.As(err, &pe) || pe.Rule != auth.RuleBreached {
		t.Fatalf("CreateUser with a breached password = %v, want RuleBreached", err)
	}
	if evs := f.events(t, audit.PasswordRejected); len(evs) != 1 || evs[0].Reason != string(auth.RuleBreached) {
		t.Errorf("password.rejected events %+v", evs)
	}
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	down.Store(true)
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: "a fresh and unleaked one"}); !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("ChangePassword with the breach check down = %v, want ErrUnavailable", err)
	}
	if _, err := f.login(adaEmail, ownerPW); err != nil {
		t.Errorf("the old password after a refused change: %v", err)
	}
}

// PW-9: passwords do not expire with age (no PasswordMaxAge by default,
// as NIST SP 800-63B asks): 400 days on, the password signs in with no
// change asked for. Once an admin marks it compromised (ExpirePassword)
// the user's session ends, outstanding reset links are void, the user is
// told, and the next sign-in asks for a change; a reset clears the mark.
func TestPasswordExpiresOnlyWhenMarked(t *testing.T) {
	const newPW = "an entirely new passphrase"
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	f.clock.Advance(400 * 24 * time.Hour)
	res, err := f.login(adaEmail, ownerPW)
	if err != nil || res.PasswordExpired || res.Session.Flags&guard.FlagPasswordExpired != 0 {
		t.Fatalf("sign-in 400 days on: PasswordExpired %v, flags %b, %v; want no change asked", res.PasswordExpired, res.Session.Flags, err)
	}

	// A reset link asked for before the mark is void after it.
	early := f.forgot(t, adaEmail)
	if err := f.g.ExpirePassword(f.ctx, guard.System("security"), tenantID, ada.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.g.ResetPassword(f.ctx, resetTo(early, newPW)); !errors.Is(err, guard.ErrInvalidResetToken) {
		t.Errorf("a reset link from before ExpirePassword = %v, want ErrInvalidResetToken", err)
	}
	if evs := f.events(t, audit.PasswordExpired); len(evs) != 1 || evs[0].Meta["sessions_ended"] != "1" {
		t.Errorf("password.expired events %+v, want one with sessions_ended 1", evs)
	}
	if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("the session after ExpirePassword: %v, want ErrUnauthenticated", err)
	}
	res, err = f.login(adaEmail, ownerPW)
	if err != nil || !res.PasswordExpired || res.Session.Flags&guard.FlagPasswordExpired == 0 {
		t.Fatalf("sign-in after ExpirePassword: PasswordExpired %v, flags %b, %v; want the change asked for", res.PasswordExpired, res.Session.Flags, err)
	}
	if m := f.mailTo(adaEmail); len(m) != 2 || m[1].Subject != "Please change your password" {
		t.Errorf("mail to the user %+v, want the notice", m)
	}

	// A reset clears the mark too.
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5"}); err != nil {
		t.Fatal(err)
	}
	m := f.mailTo(adaEmail)
	if err := f.g.ResetPassword(f.ctx, resetTo(lastResetLink(t, m), newPW)); err != nil {
		t.Fatal(err)
	}
	if res, err := f.login(adaEmail, newPW); err != nil || res.PasswordExpired {
		t.Errorf("sign-in after the reset: PasswordExpired %v, %v; want no change asked", res.PasswordExpired, err)
	}
}

// SE-3, the role change: granting or revoking a user's role ends every
// session of the user, so an identifier issued with the old roles gets
// 401 on its next use. The change is on record before the sessions end
// (session.revoked, reason role_changed); a change that changes nothing
// ends nothing; a user changing their own roles signs in again.
func TestRoleChangeEndsSessions(t *testing.T) {
	f, admin, adminTok, bob, bobToks := withMember(t)
	status := func(tok string) int { return serve(f.g, tok, client, rbac.Contacts, rbac.Read) }
	for _, tok := range bobToks {
		if code := status(tok); code != 204 {
			t.Fatalf("Bob before the change: %d", code)
		}
	}
	if err := f.g.GrantRole(f.ctx, admin, tenantID, "user:"+bob.UserID, rbac.Manager); err != nil {
		t.Fatal(err)
	}
	for _, tok := range bobToks {
		if code := status(tok); code != 401 {
			t.Errorf("Bob's old session after a grant: %d, want 401", code)
		}
	}
	if code := status(adminTok); code != 204 {
		t.Errorf("the admin's own session after granting: %d, want 204", code)
	}
	granted, revoked := f.events(t, audit.RoleGranted), f.events(t, audit.SessionRevoked)
	g := granted[len(granted)-1]
	if len(revoked) != 1 || revoked[0].Target != bob.UserID || revoked[0].Actor.ID != admin.UserID ||
		revoked[0].Meta["reason"] != "role_changed" || revoked[0].Meta["sessions_ended"] != "2" || revoked[0].Seq <= g.Seq {
		t.Errorf("session.revoked %+v after role.granted %+v; want the two sessions, recorded after the grant", revoked, g)
	}

	// A revocation too; granting a role already held changes nothing.
	res, err := f.login("bob@example.test", ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.GrantRole(f.ctx, admin, tenantID, "user:"+bob.UserID, rbac.Manager); err != nil {
		t.Fatal(err)
	}
	if code := status(res.Token); code != 204 {
		t.Errorf("Bob's session after granting a role he holds: %d, want 204", code)
	}
	if err := f.g.RevokeRole(f.ctx, admin, tenantID, "user:"+bob.UserID, rbac.Member); err != nil {
		t.Fatal(err)
	}
	if code := status(res.Token); code != 401 {
		t.Errorf("Bob's old session after a revocation: %d, want 401", code)
	}

	// One's own roles: the admin's session ends too.
	if err := f.g.GrantRole(f.ctx, admin, tenantID, "user:"+admin.UserID, rbac.Manager); err != nil {
		t.Fatal(err)
	}
	if code := status(adminTok); code != 401 {
		t.Errorf("the admin's session after changing their own roles: %d, want 401", code)
	}
}

// SE-3: when the sessions cannot be ended the role change stands (it is
// on record) and the caller hears ErrUnavailable.
func TestRoleChangeSessionsUnavailable(t *testing.T) {
	index := &failingIndex{}
	f := newFixture(t, func(c *guard.Config) {
		index.UserIndex = c.Stores.SessionIndex
		c.Stores.SessionIndex = index
	})
	bob, _ := f.userWithRoles(t, "bob@example.test", rbac.Member)
	index.fail.Store(true)
	err := f.g.GrantRole(f.ctx, guard.System("test"), tenantID, "user:"+bob.UserID, rbac.Manager)
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("GrantRole with the sessions unreachable = %v, want ErrUnavailable", err)
	}
	index.fail.Store(false)
	if rs, _ := f.g.RolesOf(f.ctx, guard.System("test"), tenantID, "user:"+bob.UserID); !slices.Contains(rs, rbac.Manager) {
		t.Errorf("roles %v, want the grant kept", rs)
	}
	if evs := f.events(t, audit.RoleGranted); evs[len(evs)-1].Meta["role"] != rbac.Manager {
		t.Errorf("role.granted %+v", evs[len(evs)-1])
	}
}

// failingIndex fails DeleteByUser while fail is set.
type failingIndex struct {
	session.UserIndex
	fail atomic.Bool
}

func (x *failingIndex) DeleteByUser(ctx context.Context, tenant, userID string, except session.Hash) ([]session.Session, error) {
	if x.fail.Load() {
		return nil, errDown
	}
	return x.UserIndex.DeleteByUser(ctx, tenant, userID, except)
}

// SE-3, the step-up: Reauthenticate with the second factor gives the
// session a new identifier, and the old one gets 401 on its next use.
func TestStepUpRotatesIdentifier(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	res, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	h := f.g.Middleware(f.g.RequireMFA(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })))
	f.clock.Advance(30 * time.Second)
	tok, _, err := f.g.Reauthenticate(f.ctx, p, res.Token, guard.Proof{Password: ownerPW, TOTP: f.code(t, secret)})
	if err != nil {
		t.Fatal(err)
	}
	if tok == res.Token {
		t.Fatal("Reauthenticate kept the identifier")
	}
	if w := serveHandler(h, "/", res.Token, client); w.Code != 401 {
		t.Errorf("the identifier from before the step-up: %d, want 401", w.Code)
	}
	if w := serveHandler(h, "/", tok, client); w.Code != 204 {
		t.Errorf("the identifier after the step-up: %d, want 204", w.Code)
	}
}

// SE-7: one concurrent session per user. Log in on client A, then B: A's
// next request gets 401 with the reason "signed_in_elsewhere", under the
// default policy (newest wins). With "refuse new", B's login is refused
// instead. Either way exactly one session is valid.
func TestOneSessionSignedInElsewhere(t *testing.T) {
	protected := func(g *guard.Guard) http.Handler {
		return g.Middleware(guard.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })))
	}
	// oneSession checks that the user has exactly one valid session, tok's.
	oneSession := func(t *testing.T, f *fixture, u guard.User, tok string) {
		t.Helper()
		ss, err := f.g.UserSessions(f.ctx, guard.System("test"), tenantID, u.ID)
		p, aerr := f.g.Authenticate(f.ctx, tok)
		if err != nil || aerr != nil || len(ss) != 1 || ss[0].ID() != p.SessionID() {
			t.Errorf("sessions %v, %v; Authenticate: %v; want exactly one session, the last one", ss, err, aerr)
		}
	}
	t.Run("NewestWins", func(t *testing.T) {
		f := newFixture(t)
		u := f.createUser(t, adaEmail, ownerPW)
		a, err := f.login(adaEmail, ownerPW)
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.login(adaEmail, ownerPW)
		if err != nil {
			t.Fatal(err)
		}
		if b.Evicted != 1 {
			t.Errorf("B's login evicted %d sessions, want 1", b.Evicted)
		}
		evicted := len(f.events(t, audit.SessionEvicted))
		for range 2 { // every later request of A, not only the first
			w := serveHandler(protected(f.g), "/", a.Token, client)
			if w.Code != 401 || w.Header().Get(guard.ReasonHeader) != guard.ReasonSignedInElsewhere {
				t.Errorf("A's request: %d, %s %q; want 401 with the reason %q", w.Code, guard.ReasonHeader,
					w.Header().Get(guard.ReasonHeader), guard.ReasonSignedInElsewhere)
			}
			if c := w.Result().Cookies(); len(c) != 1 || c[0].Name != "__Host-guard" || c[0].MaxAge >= 0 {
				t.Errorf("A's request sets cookies %v, want its session cookie cleared", c)
			}
		}
		if _, err := f.g.Authenticate(f.ctx, a.Token); !errors.Is(err, guard.ErrSignedInElsewhere) || !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("Authenticate(A) = %v, want ErrSignedInElsewhere (and ErrUnauthenticated)", err)
		}
		// The eviction was recorded once, by B's login; A's refused
		// requests record nothing more.
		if evicted != 1 || len(f.events(t, audit.SessionEvicted)) != 1 {
			t.Errorf("session.evicted events: %d after B's login, %d after A's requests; want 1 and 1",
				evicted, len(f.events(t, audit.SessionEvicted)))
		}
		if w := serveHandler(protected(f.g), "/", b.Token, client); w.Code != 204 || w.Header().Get(guard.ReasonHeader) != "" {
			t.Errorf("B's request: %d, reason %q; want 204 without a reason", w.Code, w.Header().Get(guard.ReasonHeader))
		}
		oneSession(t, f, u, b.Token)
		// Signing out gives no reason: only an eviction does.
		pb, _ := f.g.Authenticate(f.ctx, b.Token)
		if err := f.g.Logout(f.ctx, pb); err != nil {
			t.Fatal(err)
		}
		if w := serveHandler(protected(f.g), "/", b.Token, client); w.Code != 401 || w.Header().Get(guard.ReasonHeader) != "" {
			t.Errorf("request after logout: %d, reason %q; want 401 without a reason", w.Code, w.Header().Get(guard.ReasonHeader))
		}
		// Once A's session would have ended anyway (its idle timeout),
		// its token is simply unknown.
		f.clock.Advance(24 * time.Hour)
		if w := serveHandler(protected(f.g), "/", a.Token, client); w.Code != 401 || w.Header().Get(guard.ReasonHeader) != "" {
			t.Errorf("A's request a day later: %d, reason %q; want 401 without a reason", w.Code, w.Header().Get(guard.ReasonHeader))
		}
	})
	// Once all the user's sessions have been ended, by a password change
	// on B or by a deactivation, A's token no longer says "signed in
	// elsewhere": it was ended like the others.
	for _, end := range []string{"PasswordChange", "Deactivation"} {
		t.Run("NoReasonAfter"+end, func(t *testing.T) {
			f := newFixture(t)
			u := f.createUser(t, adaEmail, ownerPW)
			a, err := f.login(adaEmail, ownerPW)
			if err != nil {
				t.Fatal(err)
			}
			b, err := f.login(adaEmail, ownerPW)
			if err != nil {
				t.Fatal(err)
			}
			if w := serveHandler(protected(f.g), "/", a.Token, client); w.Header().Get(guard.ReasonHeader) != guard.ReasonSignedInElsewhere {
				t.Fatalf("A's request before: reason %q, want %q", w.Header().Get(guard.ReasonHeader), guard.ReasonSignedInElsewhere)
			}
			switch end {
			case "PasswordChange":
				pb, err := f.g.Authenticate(f.ctx, b.Token)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.g.ChangePassword(f.ctx, pb, guard.PasswordChange{Current: ownerPW, New: "a brand new passphrase"}); err != nil {
					t.Fatal(err)
				}
			case "Deactivation":
				if err := f.g.DeactivateUser(f.ctx, guard.System("admin"), tenantID, u.ID); err != nil {
					t.Fatal(err)
				}
			}
			if w := serveHandler(protected(f.g), "/", a.Token, client); w.Code != 401 || w.Header().Get(guard.ReasonHeader) != "" {
				t.Errorf("A's request after the %s: %d, reason %q; want 401 without a reason", end, w.Code, w.Header().Get(guard.ReasonHeader))
			}
			if _, err := f.g.Authenticate(f.ctx, a.Token); !errors.Is(err, guard.ErrUnauthenticated) || errors.Is(err, guard.ErrSignedInElsewhere) {
				t.Errorf("Authenticate(A) after the %s = %v, want ErrUnauthenticated, not ErrSignedInElsewhere", end, err)
			}
		})
	}
	t.Run("RefuseNew", func(t *testing.T) {
		f := newFixture(t, func(c *guard.Config) { c.Defaults.OnSessionLimit = guard.RefuseNewSession })
		u := f.createUser(t, adaEmail, ownerPW)
		a, err := f.login(adaEmail, ownerPW)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.login(adaEmail, ownerPW); !errors.Is(err, guard.ErrSessionLimit) {
			t.Fatalf("B's login: %v, want ErrSessionLimit", err)
		}
		if w := serveHandler(protected(f.g), "/", a.Token, client); w.Code != 204 {
			t.Errorf("A's request after B was refused: %d, want 204", w.Code)
		}
		oneSession(t, f, u, a.Token)
	})
}
