package guard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/memstore"
)

// Black-box tests of SECURITY-CHECKLIST items that no test covered
// fully: LG-5, LG-8, LG-12, LG-17, RB-1, RB-8, RB-10, AK-3, SE-13, PW-3, PW-5,
// PW-10, PW-11 and IP-18.

// failures returns the account's failure count in the login throttle.
func (f *fixture) failures(t testing.TB, userID string) int {
	t.Helper()
	st, err := f.g.LockState(f.ctx, guard.System("test"), tenantID, userID)
	if err != nil {
		t.Fatal(err)
	}
	return st.Failures
}

// LG-5: with the default limits, the right password is refused once
// DefaultAccountLimit.Max wrong ones were made, and an attacker guessing
// as fast as the lock allows (from a new address each time, so only the
// account limit applies) gets no more than 100 passwords evaluated in any
// hour.
func TestDefaultLockoutBoundsGuessesPerHour(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	try := func(i int, pw string) error {
		_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: adaEmail, Password: pw,
			IP: fmt.Sprintf("198.51.%d.%d", i/250, i%250+1), UserAgent: "test"})
		return err
	}
	for i := range guard.DefaultAccountLimit.Max {
		try(i, "wrong guess "+fmt.Sprint(i))
	}
	if err := try(guard.DefaultAccountLimit.Max, ownerPW); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Fatalf("the right password after %d wrong ones = %v, want ErrInvalidCredentials", guard.DefaultAccountLimit.Max, err)
	}
	// Three hours of one guess every 5 seconds; the guesses that were
	// evaluated (bad_password) are counted per sliding hour.
	const guesses = 3 * 720
	for i := range guesses {
		f.clock.Advance(5 * time.Second)
		try(i+100, "wrong guess "+fmt.Sprint(i))
	}
	evs := f.events(t, audit.LoginFailed)
	if len(evs) != guard.DefaultAccountLimit.Max+1+guesses {
		t.Fatalf("%d login.failed events, want one per attempt", len(evs))
	}
	var evaluated []time.Time
	for _, e := range evs {
		if e.Reason == guard.ReasonBadPassword {
			evaluated = append(evaluated, e.Time)
		}
	}
	if len(evaluated) == 0 {
		t.Fatal("no guess was evaluated")
	}
	for i, at := range evaluated {
		n := 0
		for _, e := range evaluated[i:] {
			if e.Sub(at) < time.Hour {
				n++
			}
		}
		if n > 100 {
			t.Fatalf("%d passwords evaluated in the hour from %v, want at most 100", n, at)
		}
	}
}

// LG-8: a missing password, a wrong authenticator code, a missing code and
// a wrong recovery code each count once in the same account counter.
func TestEveryFailedFactorCounts(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	f.enrolTOTP(t, p)
	f.clock.Advance(time.Minute)
	steps := []struct {
		name string
		try  func() error
	}{
		{"missing password", func() error { _, err := f.login(adaEmail, ""); return err }},
		{"wrong TOTP", func() error {
			_, err := f.complete(guard.MethodTOTP, f.pending(t, adaEmail, ownerPW).Token, "000000")
			return err
		}},
		{"missing TOTP", func() error {
			_, err := f.complete(guard.MethodTOTP, f.pending(t, adaEmail, ownerPW).Token, "")
			return err
		}},
		{"wrong recovery code", func() error {
			_, err := f.complete(guard.MethodRecovery, f.pending(t, adaEmail, ownerPW).Token, "0123-4567-89ab-cdef-ghjk-mnpq")
			return err
		}},
	}
	for _, s := range steps {
		before := f.failures(t, ada.ID)
		if err := s.try(); err == nil {
			t.Fatalf("%s: accepted", s.name)
		}
		if got := f.failures(t, ada.ID); got != before+1 {
			t.Errorf("%s: failures %d -> %d, want one more", s.name, before, got)
		}
	}
}

// LG-17: a new Guard has no users of its own; "admin"/"admin" and the like
// get the generic failure.
func TestNoBuiltInUsers(t *testing.T) {
	f := newFixture(t)
	us, err := f.g.ListUsers(f.ctx, guard.System("test"), tenantID, "", 1000)
	if err != nil || len(us) != 0 {
		t.Fatalf("ListUsers of a new tenant = %d users, %v; want none", len(us), err)
	}
	for _, email := range []string{"admin@example.com", "admin@localhost.localdomain", "root@example.com"} {
		for _, pw := range []string{"admin", "password", "changeme12345"} {
			if _, err := f.login(email, pw); !errors.Is(err, guard.ErrInvalidCredentials) || err.Error() != guard.ErrInvalidCredentials.Error() {
				t.Errorf("login %s / %s = %v, want exactly ErrInvalidCredentials", email, pw, err)
			}
		}
	}
}

// RB-1: a user with no roles gets 403 on every section and action, and an
// unknown section or action is refused too, even for the owner.
func TestNoRoleDeniedEverywhere(t *testing.T) {
	f := newFixture(t)
	_, tok := f.userWithRoles(t, "nora@example.test")
	for _, s := range rbac.BuiltInSections() {
		for _, a := range rbac.Actions() {
			if code := serve(f.g, tok, client, s, a); code != 403 {
				t.Errorf("no roles, %s:%s = %d, want 403", s, a, code)
			}
		}
	}
	// An unknown section or action is refused when the route is wired
	// (Require panics), and by Authorize, even for the owner.
	owner, _ := f.userWithRoles(t, "olive@example.test", rbac.Owner)
	for _, c := range []struct {
		s rbac.Section
		a rbac.Action
	}{{"nosuch", rbac.Read}, {rbac.Reports, "nosuch"}, {"", ""}, {"Reports", rbac.Read}} {
		if d, err := f.g.Authorize(f.ctx, owner, c.s, c.a); err == nil || d.Allowed {
			t.Errorf("Authorize(owner, %q, %q) = %+v, %v; want an error", c.s, c.a, d, err)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Require(%q, %q) did not panic", c.s, c.a)
				}
			}()
			f.g.Require(c.s, c.a)
		}()
	}
}

// RB-8: with the policy store failing, Require answers 503 (or 403), never
// lets the request through, for a user who holds the permission.
func TestRequireFailsClosed(t *testing.T) {
	mem := memstore.New()
	pol := &switchPolicies{Policies: mem.Policies}
	f := newFixture(t, func(c *guard.Config) {
		c.Stores = mem.Stores()
		c.Stores.Policies = pol
	})
	_, tok := f.userWithRoles(t, "olive@example.test", rbac.Owner)
	if code := serve(f.g, tok, client, rbac.Reports, rbac.Read); code != 204 {
		t.Fatalf("owner reading reports: %d", code)
	}
	pol.down = true
	if code := serve(f.g, tok, client, rbac.Reports, rbac.Read); code != http.StatusServiceUnavailable && code != 403 {
		t.Errorf("owner reading reports with the policy store down: %d, want 503 or 403", code)
	}
}

// switchPolicies fails Version while down is set.
type switchPolicies struct {
	*memstore.Policies
	down bool
}

func (p *switchPolicies) Version(ctx context.Context, tenant string) (uint64, error) {
	if p.down {
		return 0, errDown
	}
	return p.Policies.Version(ctx, tenant)
}

// RB-10: a member of the tenant cannot list or end another user's
// sessions, whether by naming that user or by naming themselves with the
// other's session ID.
func TestSessionsOfOthersOutOfReach(t *testing.T) {
	f := newMFAFixture(t)
	mia, _ := f.userWithRoles(t, "mia@example.test", rbac.Member)
	bob := f.createUser(t, "bob@example.test", ownerPW)
	res, _ := f.signIn(t, "bob@example.test", ownerPW)
	sid := res.Session.ID()
	if _, err := f.g.UserSessions(f.ctx, mia, tenantID, bob.ID); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("UserSessions of another user = %v, want ErrForbidden", err)
	}
	if err := f.g.RevokeSession(f.ctx, mia, tenantID, bob.ID, sid); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("RevokeSession of another user's session = %v, want ErrForbidden", err)
	}
	if err := f.g.RevokeSession(f.ctx, mia, tenantID, mia.UserID, sid); err == nil {
		t.Error("RevokeSession naming oneself with another user's session ID succeeded")
	}
	if _, err := f.g.RevokeUserSessions(f.ctx, mia, tenantID, bob.ID); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("RevokeUserSessions of another user = %v, want ErrForbidden", err)
	}
	if _, err := f.g.Authenticate(f.ctx, res.Token); err != nil {
		t.Errorf("bob's session after the refused attempts: %v", err)
	}
}

// AK-3: the key is shown once, at creation; the store holds its SHA-256
// and a short prefix, never the key, and listing shows the prefix only.
func TestAPIKeyStoredAsHash(t *testing.T) {
	f := newFixture(t)
	key, k, err := f.g.CreateAPIKey(f.ctx, guard.System("test"), guard.NewAPIKey{Tenant: tenantID, Name: "reporting", Roles: []string{rbac.ReportsOnly}})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := f.mem.APIKeys.ListAPIKeys(f.ctx, tenantID)
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored keys = %d, %v", len(stored), err)
	}
	if s := fmt.Sprintf("%+v", stored[0]); strings.Contains(s, key) || strings.Contains(s, key[len(k.Prefix):]) {
		t.Errorf("the store holds the key: %s", s)
	}
	if stored[0].Hash == ([32]byte{}) || stored[0].Prefix != k.Prefix || len(k.Prefix) >= len(key)/2 {
		t.Errorf("stored record %+v, want the hash and a short prefix", stored[0])
	}
	listed, err := f.g.ListAPIKeys(f.ctx, guard.System("test"), tenantID)
	if err != nil || len(listed) != 1 {
		t.Fatalf("ListAPIKeys = %d, %v", len(listed), err)
	}
	if s := fmt.Sprintf("%+v", listed[0]); strings.Contains(s, key[len(k.Prefix):]) || listed[0].Hash != ([32]byte{}) {
		t.Errorf("ListAPIKeys shows more than the prefix: %s", s)
	}
}

// SE-13: no audit entry holds a session token, through a sign-in, a
// rotation and a sign-out. (Entries name a session by its public ID, the
// SHA-256 of the token, as ASVS 16.2.5 allows.)
func TestSessionTokenNotInAudit(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	res, err := f.login(adaEmail, ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	rotated, _, err := f.g.RotateSession(f.ctx, res.Token, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.g.Authenticate(f.ctx, rotated)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.Logout(f.ctx, p); err != nil {
		t.Fatal(err)
	}
	p2, err := f.g.QueryAudit(f.ctx, guard.System("test"), tenantID, audit.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	all := fmt.Sprintf("%+v", p2.Events)
	for _, tok := range []string{res.Token, rotated} {
		if strings.Contains(all, tok) {
			t.Errorf("the audit log holds the session token %.8s…", tok)
		}
		if h, err := session.ParseToken(tok); err != nil || !strings.Contains(all, h.String()) {
			t.Errorf("the audit log does not name the session by its ID (%v): is the test looking at the right events?", err)
		}
	}
}

// LG-12: failed sign-ins against an email that has no account do not stop
// an account being made for it later and used at once.
func TestFailuresBeforeAccountExists(t *testing.T) {
	f := newFixture(t)
	for i := range guard.DefaultAccountLimit.Max - 1 {
		if _, err := f.login(adaEmail, fmt.Sprint("guess ", i)); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("login to a missing account = %v", err)
		}
	}
	f.createUser(t, adaEmail, ownerPW)
	if _, err := f.login(adaEmail, ownerPW); err != nil {
		t.Errorf("login to the account made after failures for its email: %v", err)
	}
}

// PW-3: a password of 64 four-byte characters, and one of 128 ASCII
// characters, can be set and used to sign in; one over the maximum (128
// code points) is refused explicitly, and its first 128 characters do
// not sign in as it.
func TestLongPasswordsWhole(t *testing.T) {
	var emoji []rune
	for r := rune(0x1F600); len(emoji) < 64; r++ { // 64 different emoji, 4 bytes each
		emoji = append(emoji, r)
	}
	ascii := strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789-", 4)[:128]
	f := newMFAFixture(t)
	for i, pw := range []string{string(emoji), ascii} {
		email := fmt.Sprintf("long%d@example.test", i)
		f.createUser(t, email, pw)
		if _, err := f.login(email, pw); err != nil {
			t.Errorf("login with a %d-byte password: %v", len(pw), err)
		}
	}
	var pe *auth.PolicyError
	_, err := f.g.CreateUser(f.ctx, guard.System("test"), guard.NewUser{Tenant: tenantID, Email: "over@example.test", Password: ascii + "x"})
	if !errors.As(err, &pe) || pe.Rule != auth.RuleTooLong {
		t.Errorf("CreateUser with 129 characters = %v, want RuleTooLong", err)
	}
	_, p := f.signIn(t, "long1@example.test", ascii)
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ascii, New: "x" + ascii}); !errors.As(err, &pe) || pe.Rule != auth.RuleTooLong {
		t.Errorf("ChangePassword to 129 characters = %v, want RuleTooLong", err)
	}
	if _, err := f.login("long1@example.test", ascii+"x"); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Errorf("login with the password and one more character = %v, want ErrInvalidCredentials", err)
	}
}

// PW-5: a password is verified as typed: another case, or a space added
// before or after it, fails.
func TestPasswordExactAtLogin(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { // the failures below would lock the account
		c.AccountLimit = guard.DefaultAccountLimit
		c.AccountLimit.Max = 100
	})
	const pw = "Secret-passphrase-1"
	f.createUser(t, adaEmail, pw)
	for _, typed := range []string{"secret-passphrase-1", "SECRET-PASSPHRASE-1", pw + " ", " " + pw, pw + "\n"} {
		if _, err := f.login(adaEmail, typed); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Errorf("login with %q = %v, want ErrInvalidCredentials", typed, err)
		}
	}
	if _, err := f.login(adaEmail, pw); err != nil {
		t.Errorf("login with the password as set: %v", err)
	}
}

// PW-10: a change with a wrong current password is refused, counts as a
// failed sign-in and sends no notice; with the right one it is made, and
// the notice goes out.
func TestChangePasswordNeedsCurrent(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	const next = "a different long passphrase"
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: "not the password", New: next}); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Fatalf("ChangePassword with a wrong current password = %v, want ErrInvalidCredentials", err)
	}
	f.g.Close() // waits for notices
	if n := f.failures(t, ada.ID); n != 1 {
		t.Errorf("failures after a wrong current password: %d, want 1", n)
	}
	if n := f.out.count(); n != 0 {
		t.Errorf("%d messages after a refused change, want none", n)
	}
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: next}); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	f.g.Close()
	if m := f.out.lastMail(t); m.To != adaEmail || !strings.Contains(m.Subject+m.Text, "password was changed") {
		t.Errorf("notice after the change: %+v", m)
	}
	if _, err := f.login(adaEmail, next); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
}

// PW-11: two users with one password have different stored verifiers,
// neither holding the password, each naming its algorithm and parameters.
func TestSamePasswordDifferentVerifiers(t *testing.T) {
	f := newFixture(t)
	a := f.createUser(t, adaEmail, ownerPW)
	b := f.createUser(t, "bob@example.test", ownerPW)
	var hashes []string
	for _, id := range []string{a.ID, b.ID} {
		u, err := f.mem.Users.User(f.ctx, tenantID, id)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, u.PasswordHash)
	}
	if hashes[0] == hashes[1] {
		t.Error("two users with one password have the same verifier")
	}
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]{22,}\$[A-Za-z0-9+/]{43,}$`)
	for _, h := range hashes {
		if !phc.MatchString(h) || strings.Contains(h, ownerPW) {
			t.Errorf("verifier %q: want argon2id with its parameters, salt and hash", h)
		}
	}
}

// IP-18: a request from an untrusted peer with a forged X-Forwarded-For
// is recorded under the peer's address, not the forged one.
func TestAuditRecordsResolvedIP(t *testing.T) {
	f := newFixture(t)
	_, tok := f.userWithRoles(t, "rita@example.test", rbac.ReportsOnly)
	if code := serve(f.g, tok, "192.0.2.9:5555", rbac.Contacts, rbac.Read, "X-Forwarded-For", "203.0.113.77"); code != 403 {
		t.Fatalf("reports-only reading contacts: %d, want 403", code)
	}
	evs := f.events(t, audit.AccessDenied)
	if len(evs) != 1 || evs[0].IP != "192.0.2.9" {
		t.Fatalf("access.denied events %+v, want one from 192.0.2.9", evs)
	}
	if s := fmt.Sprintf("%+v", evs[0]); strings.Contains(s, "203.0.113.77") {
		t.Errorf("the event holds the forged address as if trusted: %s", s)
	}
}
