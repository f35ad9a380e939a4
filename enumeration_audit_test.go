package guard_test

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// Audit of account enumeration and account recovery: each test fails on
// the code as it stands because of the defect it names.

// ResetPassword must not tell whoever holds a user ID (it is in every
// reset link, and in the console's URLs) whether that user exists and is
// active in a tenant: for an unknown (or deactivated) user and any
// 43-character token it answers ErrInvalidResetToken, but for an active
// user the same request with an over-long new password answers
// auth.ErrPasswordTooLong, before any token is checked. The link is
// checked "first" per the doc comment; the length refusal leaks the
// account.
func TestAuditEnum_ResetPasswordOverlongRevealsUser(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	bob := f.createUser(t, "bob@example.test", ownerPW)
	if err := f.g.DeactivateUser(f.ctx, guard.System("admin"), tenantID, bob.ID); err != nil {
		t.Fatal(err)
	}
	token := strings.Repeat("A", 43) // the shape of a token, not a mailed one
	over := strings.Repeat("x", guard.MaxPasswordBytes+1)
	answer := func(userID string) error {
		return f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: tenantID, UserID: userID, Token: token,
			NewPassword: over, IP: "198.51.100.9", UserAgent: "probe"})
	}
	unknown := answer("0123456789abcdef0123456789abcdef")
	for name, id := range map[string]string{"active": ada.ID, "deactivated": bob.ID} {
		got := answer(id)
		if (errors.Is(got, guard.ErrInvalidResetToken) != errors.Is(unknown, guard.ErrInvalidResetToken)) ||
			(errors.Is(got, auth.ErrPasswordTooLong) != errors.Is(unknown, auth.ErrPasswordTooLong)) {
			t.Errorf("made-up link of an %s user, over-long password: %v; of an unknown user: %v (want the same answer)", name, got, unknown)
		}
	}
}

// Login hides whether a tenant exists (an unknown tenant gets
// ErrInvalidCredentials after the dummy hash, and ForgotPassword answers
// the same for any tenant), and documents that malformed input is an
// *InputError or auth.ErrPasswordTooLong. Both hold only for tenants
// that exist: a malformed email or an over-long password is reported as
// such in a real tenant and as ErrInvalidCredentials in a made-up one,
// so one request tells which tenant IDs exist (the console answers 400
// with the input problem versus 401 "Incorrect email or password").
func TestAuditEnum_LoginBadInputRevealsTenant(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ name, email, password string }{
		{"MalformedEmail", "not an address", "whatever password"},
		{"OverlongPassword", "nobody@example.test", strings.Repeat("x", guard.MaxPasswordBytes+1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			try := func(tenant string) error {
				_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenant, Email: c.email, Password: c.password, IP: "198.51.100.9", UserAgent: "probe"})
				return err
			}
			existing, madeUp := try(tenantID), try("no-such-tenant")
			if errors.Is(existing, guard.ErrInvalidCredentials) != errors.Is(madeUp, guard.ErrInvalidCredentials) {
				t.Errorf("Login in an existing tenant = %v, in a made-up tenant = %v: the answer tells which tenant exists", existing, madeUp)
			}
		})
	}
}

// hookedUpdates runs a function once, just before the next SetPassword,
// ResetPassword (the write of a password reset) or ChangePassword (the
// write of a password change).
type hookedUpdates struct {
	auth.UserUpdater
	mu     sync.Mutex
	before func()
}

func (h *hookedUpdates) SetPassword(ctx context.Context, tenant, id, hash string, at time.Time, keep int) error {
	h.run()
	return h.UserUpdater.SetPassword(ctx, tenant, id, hash, at, keep)
}

func (h *hookedUpdates) ResetPassword(ctx context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	h.run()
	return h.UserUpdater.ResetPassword(ctx, tenant, id, was, hash, at, keep)
}

func (h *hookedUpdates) ChangePassword(ctx context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	h.run()
	return h.UserUpdater.ChangePassword(ctx, tenant, id, was, hash, at, keep)
}

// run runs the hook, once.
func (h *hookedUpdates) run() {
	h.mu.Lock()
	fn := h.before
	h.before = nil
	h.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// A password change voids the reset links mailed for the account (RS-5,
// and ChangePassword's doc: "so do the reset and email-change links"),
// but it voids them before the new password is set, and a reset link
// stored in between (a ForgotPassword that lands during the change)
// survives the change and then replaces the password the user just
// chose. Email changes close the same window by binding the link to the
// address (putResetCode keeps it); nothing binds a link to the password
// it was asked for under.
func TestAuditEnum_ResetLinkMailedDuringPasswordChangeSurvives(t *testing.T) {
	var hu *hookedUpdates
	f := newMFAFixture(t, func(c *guard.Config) {
		hu = &hookedUpdates{UserUpdater: c.Stores.UserUpdates}
		c.Stores.UserUpdates = hu
	})
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	hu.mu.Lock()
	hu.before = func() {
		// Someone asks for a reset link while the change is under way.
		if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "198.51.100.9"}); err != nil {
			t.Error(err)
		}
		f.g.Close() // the link is stored and mailed
	}
	hu.mu.Unlock()
	const chosen = "violet kettle morning drizzle"
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: chosen}); err != nil {
		t.Fatal(err)
	}
	sent := f.mailTo(adaEmail)
	var link url.Values
	for _, m := range sent {
		if strings.Contains(m.Text, "/reset?") {
			link = resetLink(t, m)
		}
	}
	if link == nil {
		t.Fatal("no reset link was mailed during the change")
	}
	if err := f.g.ResetPassword(f.ctx, resetTo(link, "a passphrase from the old link")); !errors.Is(err, guard.ErrInvalidResetToken) {
		t.Errorf("ResetPassword with a link asked for before the password change was done = %v, want ErrInvalidResetToken", err)
	}
	if _, err := f.login(adaEmail, chosen); err != nil {
		t.Errorf("the password the user chose no longer signs in: %v", err)
	}
}

// Guard gates the question "has this address an account here?" behind
// users:read (UserByEmail answers ErrForbidden to a member), but
// RequestEmailChange answers it to any signed-in user: ErrEmailTaken for
// a colleague's address, nil for a free one, with no send limit counted
// (the check comes before Recovery.Limits). The verified flow does not
// need to tell: the link could go out either way, or the taken address
// be told by mail (SECURITY-CHECKLIST LG-4, ASVS 6.3.8).
func TestAuditEnum_RequestEmailChangeRevealsAccounts(t *testing.T) {
	f := newMFAFixture(t)
	if _, err := f.g.CreateUser(f.ctx, guard.System("test"), guard.NewUser{Tenant: tenantID, Email: adaEmail, Name: "Ada",
		Password: ownerPW, Roles: []string{rbac.Member}}); err != nil {
		t.Fatal(err)
	}
	f.createUser(t, "bob@example.test", ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	if _, err := f.g.UserByEmail(f.ctx, p, tenantID, "bob@example.test"); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("UserByEmail by a member = %v, want ErrForbidden (members may not look users up)", err)
	}
	taken := f.g.RequestEmailChange(f.ctx, p, "bob@example.test")
	free := f.g.RequestEmailChange(f.ctx, p, "nobody@example.test")
	if errors.Is(taken, guard.ErrEmailTaken) != errors.Is(free, guard.ErrEmailTaken) || (taken == nil) != (free == nil) {
		t.Errorf("RequestEmailChange to a colleague's address = %v, to a free one = %v: a member learns who has an account", taken, free)
	}
}

// A lock notice goes out each time an account is locked (LG-16), and
// anyone who knows the address can lock it again and again: with the
// default limits (locks of 1, 2, 4, 8, 15 minutes, then forgotten) a
// stranger rotating client IPs gets ten "Your account was locked" mails
// an hour into the victim's inbox, forever, with no CAPTCHA configured.
// Recovery.Limits bound reset links to 5 an hour per account "so that
// nobody can flood an inbox through the site"; the notices have no bound.
func TestAuditEnum_LockNoticesFloodInbox(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	ip := 0
	for minute := 0; minute < 60; minute++ {
		for range 5 {
			ip++
			_, _ = f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: adaEmail, Password: "wrong guess",
				IP: "198.51." + strconv.Itoa(ip/250) + "." + strconv.Itoa(ip%250+1), UserAgent: "probe"})
		}
		f.clock.Advance(time.Minute)
	}
	n := 0
	for _, m := range f.mailTo(adaEmail) {
		if m.Subject == "Your account was locked" {
			n++
		}
	}
	if n > 5 {
		t.Errorf("%d lock notices mailed in one hour by a stranger's failed sign-ins, want at most 5 (the hour's limit on mailed links)", n)
	}
}

// The link send limits leak across tenants which tenant an address has an
// account in. ForgotPassword answers the same for any address, but counts
// a hit on the address's per-destination limit (a key without the
// tenant) only when the address has an active account in the tenant
// asked; RequestEmailChange, in any other tenant, answers
// ErrTooManyAttempts once that limit is over. So anyone with an account
// anywhere on the service asks for PerDestination reset links for the
// address in tenant X, then asks to move their own address to it: "too
// many attempts" means the address has an account in X, a link sent
// means it has not.
func TestAuditEnum_SendLimitsRevealTenantOfAddress(t *testing.T) {
	f := newMFAFixture(t, withLimits(guard.LinkLimits{PerAccount: 5, PerDestination: 5, PerIP: 100}))
	f.createUser(t, adaEmail, ownerPW) // in acme
	if _, err := f.g.CreateTenant(f.ctx, guard.System("test"), "other", "Other", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	const malloryEmail = "mallory@example.test"
	if _, err := f.g.CreateUser(f.ctx, guard.System("test"), guard.NewUser{Tenant: "other", Email: malloryEmail, Name: "Mallory", Password: ownerPW}); err != nil {
		t.Fatal(err)
	}
	res, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: "other", Email: malloryEmail, Password: ownerPW, IP: "203.0.113.7", UserAgent: "test"})
	if err != nil || res.Token == "" {
		t.Fatalf("Mallory's sign-in: %v", err)
	}
	p, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	p.IP, p.UserAgent = "203.0.113.7", "test"
	probe := func(addr string) error {
		for range 5 {
			if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: addr, IP: "198.51.100.9"}); err != nil {
				t.Fatal(err)
			}
		}
		f.g.Close()
		return f.g.RequestEmailChange(f.ctx, p, addr)
	}
	hasAccount, hasNone := probe(adaEmail), probe("nobody@example.test")
	if errors.Is(hasAccount, guard.ErrTooManyAttempts) != errors.Is(hasNone, guard.ErrTooManyAttempts) {
		t.Errorf("after 5 reset requests in %q, RequestEmailChange from tenant \"other\" to an address with an account there = %v, to one without = %v",
			tenantID, hasAccount, hasNone)
	}
}
