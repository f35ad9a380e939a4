package guard_test

// TestFaultSweep is a systematic fault-injection sweep. Every store of
// guard.Stores is wrapped (faults_helpers_test.go) around memstore with
// one shared call counter. Each flow is run once without a fault to
// count its store calls N, then N times on a fresh fixture with the k-th
// call failing (k = 1..N). The k-th call is failed by its name and its
// place among the calls of that name (the 2nd Policies.Version), not by k:
// a flow may make calls on several goroutines at once (ApplyReview reads
// the users and the role grants side by side), whose order is the
// scheduler's, different from one run to the next; each goroutine's
// calls of a name come in order (no two of them call the same method at
// once). After each run, with the counter disarmed,
// the sweep checks:
//
//   - no panic, and an error, if any, is ErrUnavailable (fail closed, and
//     said so: not a credentials or not-found answer for a store failure);
//   - the audit chain still verifies;
//   - every live session has its creation on record (login.succeeded,
//     session.rotated or session.reauthenticated naming it);
//   - the flow's own invariants (see each flow): a failed sign-in leaves
//     no session, a state change an administrator or user made is on
//     record, a deactivated or deleted user has no way in, a single-use
//     code or link is not both refused and spent, and so on.
//
// Where a call's documentation says what a failure leaves behind, the
// flow asserts exactly that, quoting it: a revocation that cannot be
// recorded stands (in force and off the record only when the failed call
// was the record's Audit.Append, and the call returned ErrUnavailable); a
// deactivation stopped midway leaves the user deactivated, and one
// Maintain run ends the sessions and keys left; a deletion stopped before
// the user record is gone is finished by calling DeleteUser again; a
// spent recovery code is never given back. Anything else a failed call
// changed must be undone, or on record.
//
// Subtests are named flow/kk_Store.Method, the call that failed, kk its
// place in the run without a fault: calls made side by side may be
// numbered in another order from one run of the sweep to the next.

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
)

// ffix is a fixture whose stores are behind a faultCounter.
type ffix struct {
	*mfaFixture
	fc   *faultCounter
	uids []string // users the flow created, for the session check
	// index reads the sessions unwrapped: memstore's unless the flow's
	// session store is another (newLookupTouchFix).
	index session.UserIndex
}

func newFaultFix(t testing.TB, withMFA bool, mutate ...func(*guard.Config)) *ffix {
	t.Helper()
	fc := &faultCounter{}
	// A seeded Rand makes IDs, and so the order of calls that follow
	// them (users listed by ID), the same in every run of a flow.
	rnd := &lockedReader{r: rand.NewChaCha8([32]byte{7})}
	ms := append(slices.Clone(mutate), func(c *guard.Config) {
		c.Stores = wrapStores(c.Stores, fc)
		c.Rand = rnd
	})
	fx := &ffix{fc: fc}
	if withMFA {
		fx.mfaFixture = newMFAFixture(t, ms...)
	} else {
		fx.mfaFixture = &mfaFixture{fixture: newFixture(t, ms...)}
	}
	fx.index = fx.mem.Sessions
	return fx
}

// lockedReader makes a random source safe for concurrent use.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

func sessionLimit(n int) func(*guard.Config) {
	return func(c *guard.Config) { c.Defaults = guard.Policy{SessionLimit: n} }
}

// user creates a user with roles (by the system) and signs them in: the
// principal and the token.
func (fx *ffix) user(t testing.TB, email string, roles ...string) (guard.Principal, string) {
	t.Helper()
	p, tok := fx.userWithRoles(t, email, roles...)
	fx.uids = append(fx.uids, p.UserID)
	return p, tok
}

// login2 signs an existing user in once more (no second factor).
func (fx *ffix) login2(t testing.TB, email string) string {
	t.Helper()
	res, err := fx.login(email, ownerPW)
	if err != nil || res.Token == "" {
		t.Fatalf("login: %+v, %v", res, err)
	}
	return res.Token
}

func (fx *ffix) memUser(t testing.TB, id string) (auth.User, bool) {
	t.Helper()
	u, err := fx.mem.Users.User(fx.ctx, tenantID, id)
	if errors.Is(err, auth.ErrNotFound) {
		return auth.User{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return u, true
}

// live returns the user's live sessions, read from the session store
// directly.
func (fx *ffix) live(t testing.TB, uid string) []session.Session {
	t.Helper()
	ss, err := fx.index.ListByUser(fx.ctx, tenantID, uid)
	if err != nil {
		t.Fatal(err)
	}
	now := fx.clock.Now()
	return slices.DeleteFunc(ss, func(s session.Session) bool { return !s.LiveAt(now) })
}

func (fx *ffix) tokenWorks(token string) bool {
	_, err := fx.g.Authenticate(fx.ctx, token)
	return err == nil
}

// recorded reports whether the tenant's log holds a successful event of
// action naming target (and, if role is set, with Meta role).
func (fx *ffix) recorded(t testing.TB, action audit.Action, target string, meta ...string) bool {
	t.Helper()
	for _, e := range fx.events(t, action) {
		if e.Outcome != audit.Success || e.Target != target {
			continue
		}
		ok := true
		for i := 0; i+1 < len(meta); i += 2 {
			ok = ok && e.Meta[meta[i]] == meta[i+1]
		}
		if ok {
			return true
		}
	}
	return false
}

// recordedAny reports whether the tenant's log holds an event of action
// naming target, whatever its outcome.
func (fx *ffix) recordedAny(t testing.TB, action audit.Action, target string) bool {
	t.Helper()
	return slices.ContainsFunc(fx.events(t, action), func(e audit.Event) bool { return e.Target == target })
}

// standsUnrecorded reports whether a revocation found in force without
// its event is what the call documents ("a revocation stands even when it
// cannot be recorded ... returns ErrUnavailable"): the failed call was the
// record's Audit.Append, and the call returned ErrUnavailable.
func standsUnrecorded(fired string, err error) bool {
	return fired == "Audit.Append" && errors.Is(err, guard.ErrUnavailable)
}

// maintain runs Maintain once, as a host's job would, and returns its
// report.
func (fx *ffix) maintain(t testing.TB) guard.MaintenanceReport {
	t.Helper()
	rep, err := fx.g.Maintain(fx.ctx, guard.System("cron"), guard.MaintainOptions{})
	if err != nil {
		t.Fatalf("Maintain: %v", err)
	}
	return rep
}

// called reports whether the last run made a store call named name.
func (fx *ffix) called(name string) bool {
	fx.fc.mu.Lock()
	defer fx.fc.mu.Unlock()
	return slices.Contains(fx.fc.calls, name)
}

func (fx *ffix) holds(t testing.TB, subject, role string) bool {
	t.Helper()
	rules, _, err := fx.mem.Policies.Policy(fx.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(rules, func(r rbac.Rule) bool {
		return r.Type == rbac.RuleGrant && r.Subject == subject && r.Role == role
	})
}

// keysUsable returns the unrevoked API keys created by uid.
func (fx *ffix) keysUsable(t testing.TB, uid string) []auth.APIKey {
	t.Helper()
	ks, err := fx.mem.APIKeys.ListAPIKeys(fx.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(ks, func(k auth.APIKey) bool { return !k.UsableAt(fx.clock.Now()) || k.CreatedBy != uid })
}

func (fx *ffix) confirmedFactors(t testing.TB, uid string) []mfa.Factor {
	t.Helper()
	fs, err := fx.mem.MFA.Factors(fx.ctx, tenantID, uid)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(fs, func(f mfa.Factor) bool { return !f.Confirmed() })
}

func (fx *ffix) recoveryLeft(t testing.TB, uid string) int {
	t.Helper()
	n, err := fx.mem.MFA.RecoveryCodesLeft(fx.ctx, tenantID, uid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// statusErr is an HTTP answer other than 204, as an error; 503 is
// ErrUnavailable.
type statusErr int

func (s statusErr) Error() string { return fmt.Sprintf("HTTP %d", int(s)) }
func (s statusErr) Is(target error) bool {
	return target == guard.ErrUnavailable && int(s) == http.StatusServiceUnavailable
}

func httpErr(code int) error {
	if code == http.StatusNoContent {
		return nil
	}
	return statusErr(code)
}

// errSilent is returned by a flow whose failure the library hides on
// purpose (ForgotPassword's same answer: no link goes out).
var errSilent = errors.New("no mail went out")

// faultFlow is one flow of the sweep. start builds a fresh fixture with
// the flow's setup done and returns the flow's action and its own check,
// run after the action with the counter disarmed (err is the action's).
type faultFlow struct {
	name  string
	start func(t *testing.T) (fx *ffix, act func() error, check func(t *testing.T, fired string, err error))
}

func TestFaultSweep(t *testing.T) { sweep(t, faultFlows()) }

// sweep runs each flow without a fault, then once for each store call it
// made, with that call failing (sweepStep).
func sweep(t *testing.T, flows []faultFlow) {
	for _, fl := range flows {
		t.Run(fl.name, func(t *testing.T) {
			fx, act, check := fl.start(t)
			fx.fc.arm(0)
			err := act()
			calls, _ := fx.fc.disarm()
			if err != nil {
				t.Fatalf("without a fault: %v", err)
			}
			fx.common(t, "", nil)
			check(t, "", nil)
			t.Logf("%d store calls: %s", len(calls), strings.Join(calls, " "))
			for k := 1; k <= len(calls); k++ {
				t.Run(fmt.Sprintf("%02d_%s", k, calls[k-1]), func(t *testing.T) {
					sweepStep(t, fl, calls, k, holdCall{})
				})
			}
		})
	}
}

// sweepStep is one step of the sweep: fl run on a fresh fixture with the
// k-th of calls, the store calls of a run without a fault, failing (by
// its name and place among the calls of that name), a call held as hold
// says, then the checks.
func sweepStep(t *testing.T, fl faultFlow, calls []string, k int, hold holdCall) {
	name := calls[k-1]
	nth := 0
	for _, c := range calls[:k] {
		if c == name {
			nth++
		}
	}
	fx, act, check := fl.start(t)
	fx.fc.setHold(hold)
	fx.fc.armNth(name, nth)
	err := runCaught(act)
	_, fired := fx.fc.disarm()
	if fx.fc.heldTooLong() {
		t.Fatalf("held call %+v let go after %v: the order was not forced", hold, holdLimit)
	}
	if fired != name {
		t.Fatalf("call %d, %s #%d, was not made as without a fault: the flow is not deterministic", k, name, nth)
	}
	var pe panicErr
	if errors.As(err, &pe) {
		t.Fatalf("panic: %v", pe.v)
	}
	if err != nil && !errors.Is(err, guard.ErrUnavailable) && !errors.Is(err, errSilent) {
		t.Errorf("failed %s: error %v, want ErrUnavailable", fired, err)
	}
	fx.common(t, fired, err)
	check(t, fired, err)
}

// TestFaultSweepSideBySide runs the steps of the ApplyReview sweep that
// fail a call of its side-by-side read of the tenant (readTenant: the
// users on one goroutine, Users.ListUserSummaries; the role grants on
// another, the flow's last two Policies.Version calls), with the run
// without a fault in one order and each step in the other, as the
// scheduler may order them in TestFaultSweep: the step must fail the
// same call all the same.
func TestFaultSweepSideBySide(t *testing.T) {
	const users, roles = "Users.ListUserSummaries", "Policies.Version"
	i := slices.IndexFunc(faultFlows(), func(fl faultFlow) bool { return fl.name == "ApplyReview" })
	fl := faultFlows()[i]
	reference := func(t *testing.T, hold holdCall) []string {
		t.Helper()
		fx, act, _ := fl.start(t)
		fx.fc.setHold(hold)
		fx.fc.arm(0)
		err := act()
		calls, _ := fx.fc.disarm()
		if err != nil || fx.fc.heldTooLong() {
			t.Fatalf("without a fault: %v (held too long: %v)", err, fx.fc.heldTooLong())
		}
		return calls
	}
	n := 0 // the flow's Policies.Version calls, the last two the reader's
	for _, c := range reference(t, holdCall{}) {
		if c == roles {
			n++
		}
	}
	usersLast := holdCall{name: users, nth: 1, until: roles, untilN: n}
	usersFirst := holdCall{name: roles, nth: n - 1, until: users, untilN: 1}
	for _, tc := range []struct {
		name       string
		ref, steps holdCall
	}{
		{"reference_users_last", usersLast, usersFirst},
		{"reference_users_first", usersFirst, usersLast},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := reference(t, tc.ref)
			seen := 0
			for k, c := range calls {
				if c == roles {
					seen++
				}
				if c != users && (c != roles || seen < n-1) {
					continue
				}
				t.Run(fmt.Sprintf("%02d_%s", k+1, c), func(t *testing.T) {
					sweepStep(t, fl, calls, k+1, tc.steps)
				})
			}
		})
	}
}

type panicErr struct{ v any }

func (p panicErr) Error() string { return fmt.Sprint("panic: ", p.v) }

func runCaught(act func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicErr{v}
		}
	}()
	return act()
}

// common checks what holds after every flow: the audit chain verifies,
// and every live session of a known user has its creation on record.
func (fx *ffix) common(t *testing.T, fired string, err error) {
	t.Helper()
	rep, verr := fx.g.VerifyAudit(fx.ctx, guard.System("test"), tenantID)
	if verr != nil || !rep.OK {
		t.Errorf("audit chain after failed %s: %+v, %v", fired, rep, verr)
	}
	us, lerr := fx.mem.Users.ListUsers(fx.ctx, tenantID, "", 1000)
	if lerr != nil {
		t.Fatal(lerr)
	}
	ids := slices.Clone(fx.uids)
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	created := map[string]bool{}
	for _, a := range []audit.Action{audit.LoginSucceeded, audit.SessionRotated, audit.Reauthenticated} {
		for _, e := range fx.events(t, a) {
			if e.Outcome == audit.Success {
				created[e.Target] = true
			}
		}
	}
	for _, id := range ids {
		for _, s := range fx.live(t, id) {
			if !created[s.ID()] {
				t.Errorf("VIOLATION: failed %s (err %v): live session %s of user %s has no login.succeeded/session.rotated/session.reauthenticated event", fired, err, s.ID(), id)
			}
		}
	}
}

func faultFlows() []faultFlow {
	var flows []faultFlow
	add := func(name string, start func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error))) {
		flows = append(flows, faultFlow{name: name, start: start})
	}

	// A sign-in: a failure leaves no session, a success a working token
	// whose creation is on record.
	signInCheck := func(fx *ffix, uid string, res *guard.LoginResult) func(*testing.T, string, error) {
		return func(t *testing.T, fired string, err error) {
			if err != nil {
				if res.Token != "" {
					t.Errorf("VIOLATION: failed %s: sign-in failed (%v) but returned a token", fired, err)
				}
				if n := len(fx.live(t, uid)); n != 0 {
					t.Errorf("VIOLATION: failed %s: sign-in failed (%v) but left %d live sessions", fired, err, n)
				}
				return
			}
			if !fx.tokenWorks(res.Token) {
				t.Errorf("failed %s: sign-in succeeded but its token does not authenticate", fired)
			}
			if !fx.recorded(t, audit.LoginSucceeded, res.Session.ID()) {
				t.Errorf("VIOLATION: failed %s: session %s without login.succeeded", fired, res.Session.ID())
			}
		}
	}

	for _, withMFA := range []bool{false, true} {
		name := "Login/password"
		if withMFA {
			name = "Login/password_MFA_on_no_factor"
		}
		add(name, func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
			fx := newFaultFix(t, withMFA)
			u := fx.createUser(t, adaEmail, ownerPW)
			var res guard.LoginResult
			return fx, func() (err error) {
					res, err = fx.login(adaEmail, ownerPW)
					if err == nil && res.Token == "" {
						return fmt.Errorf("no session: %+v", res)
					}
					return err
				},
				signInCheck(fx, u.ID, &res)
		})
	}

	// mfaUser: a user with an authenticator app and recovery codes, signed
	// out, the clock a minute on (so the TOTP code is fresh).
	mfaUser := func(t *testing.T, fx *ffix) (uid, code string, recovery []string) {
		u := fx.createUser(t, adaEmail, ownerPW)
		_, p := fx.signIn(t, adaEmail, ownerPW)
		secret, recovery := fx.enrolTOTP(t, p)
		if err := fx.g.Logout(fx.ctx, p); err != nil {
			t.Fatal(err)
		}
		fx.clock.Advance(time.Minute)
		return u.ID, fx.code(t, secret), recovery
	}
	secondStep := func(fx *ffix, method string, code func() (string, error), res *guard.LoginResult) func() error {
		return func() error {
			r, err := fx.login(adaEmail, ownerPW)
			if err != nil {
				return err
			}
			if r.Pending == nil {
				return fmt.Errorf("no pending sign-in: %+v", r)
			}
			c, err := code()
			if err != nil {
				return err
			}
			*res, err = fx.complete(method, r.Pending.Token, c)
			return err
		}
	}

	// A TOTP code checked (AdvanceStep) before a later failure cannot be
	// used again: accepted by design (the next code comes within 30 s, and
	// the replay protection must not be undone), not asserted.
	add("Login/password+TOTP", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, true)
		uid, code, _ := mfaUser(t, fx)
		var res guard.LoginResult
		return fx, secondStep(fx, guard.MethodTOTP, func() (string, error) { return code, nil }, &res), signInCheck(fx, uid, &res)
	})

	add("Login/password+recovery_code", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, true)
		uid, _, recovery := mfaUser(t, fx)
		before := fx.recoveryLeft(t, uid)
		var res guard.LoginResult
		in := signInCheck(fx, uid, &res)
		return fx, secondStep(fx, guard.MethodRecovery, func() (string, error) { return recovery[0], nil }, &res),
			func(t *testing.T, fired string, err error) {
				in(t, fired, err)
				left := fx.recoveryLeft(t, uid)
				spent := left == before-1
				// CompleteLogin: "A recovery code is used up when it is
				// checked, and never given back, whatever ends the sign-in
				// after ... Its use is recorded as mfa.recovery_used ...
				// If that record cannot be written, the code stays spent,
				// off the record, and ErrUnavailable is returned."
				checked := fx.called("MFA.Recovery.UseRecoveryCode") && fired != "MFA.Recovery.UseRecoveryCode"
				if spent != checked || (!spent && left != before) {
					t.Errorf("VIOLATION: failed %s (err %v): code checked: %v, %d -> %d recovery codes left", fired, err, checked, before, left)
				}
				if !spent {
					return
				}
				if !fx.recordedAny(t, audit.RecoveryUsed, uid) {
					succeeded := slices.ContainsFunc(fx.events(t, audit.MFASucceeded), func(e audit.Event) bool { return e.Meta["kind"] == "recovery" })
					if !standsUnrecorded(fired, err) || succeeded {
						t.Errorf("VIOLATION: failed %s (err %v): a recovery code was spent without mfa.recovery_used", fired, err)
					}
				}
				if err != nil {
					// Spent means spent: the same code on a new sign-in is refused.
					if _, rerr := fx.complete(guard.MethodRecovery, fx.pending(t, adaEmail, ownerPW).Token, recovery[0]); !errors.Is(rerr, guard.ErrInvalidCode) {
						t.Errorf("failed %s: the spent recovery code used again: %v, want ErrInvalidCode", fired, rerr)
					}
				}
			}
	})

	add("Login/password+email_code", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, true)
		u := fx.createUser(t, adaEmail, ownerPW)
		_, p := fx.signIn(t, adaEmail, ownerPW)
		const addr = "ada.codes@example.test"
		fa := fx.enrolEmail(t, p, addr)
		if err := fx.g.Logout(fx.ctx, p); err != nil {
			t.Fatal(err)
		}
		fx.clock.Advance(2 * time.Minute)
		var res guard.LoginResult
		act := func() error {
			r, err := fx.login(adaEmail, ownerPW)
			if err != nil {
				return err
			}
			if r.Pending == nil {
				return fmt.Errorf("no pending sign-in: %+v", r)
			}
			sent := len(fx.mailTo(addr))
			if err := fx.g.SendLoginCode(fx.ctx, r.Pending.Token, fa.ID, "203.0.113.5", "test"); err != nil {
				return err
			}
			ms := fx.mailTo(addr)
			if len(ms) == sent {
				return errSilent // held back (a limit, or a failure it hides)
			}
			res, err = fx.complete(guard.MethodCode, r.Pending.Token, digits6.FindString(ms[len(ms)-1].Text))
			return err
		}
		in := signInCheck(fx, u.ID, &res)
		return fx, act, func(t *testing.T, fired string, err error) {
			if errors.Is(err, errSilent) && fired != "Audit.Append" {
				// SendLoginCode answers the same whether a code went out
				// or not; what the failure was must be on record.
				if len(fx.events(t, audit.MFACodeSuppressed)) == 0 &&
					!slices.ContainsFunc(fx.events(t, audit.MFAFailed), func(e audit.Event) bool { return e.Reason == guard.ReasonUnavailable }) {
					t.Errorf("failed %s: no code went out and nothing on record says why", fired)
				}
			}
			in(t, fired, err)
		}
	})

	// A request through Middleware and Require: a store failure is a 503,
	// never the handler (a failed last-seen write included: the session
	// check denies it, session.Manager).
	add("Request/session_cookie", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, false)
		_, tok := fx.user(t, "ada@example.test", rbac.Owner)
		fx.clock.Advance(2 * time.Minute) // past TouchInterval: the request writes last-seen
		return fx, func() error { return httpErr(serve(fx.g, tok, client, rbac.Contacts, rbac.Read)) },
			func(t *testing.T, fired string, err error) {
				if fired != "" && err == nil {
					t.Errorf("VIOLATION: failed %s: the request reached the handler", fired)
				}
				if !fx.tokenWorks(tok) {
					t.Errorf("failed %s: a store failure during a request ended the session", fired)
				}
			}
	})

	add("Logout", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, false)
		p, tok := fx.user(t, "ada@example.test", rbac.Member)
		return fx, func() error { return fx.g.Logout(fx.ctx, p) },
			func(t *testing.T, fired string, err error) {
				works := fx.tokenWorks(tok)
				if err == nil && works {
					t.Errorf("failed %s: logout succeeded but the token works", fired)
				}
				// Logout: "A revocation stands even when it cannot be
				// recorded in the audit log: a failure to record leaves
				// the session ended and returns ErrUnavailable."
				if !works && !fx.recorded(t, audit.Logout, p.SessionID()) && !standsUnrecorded(fired, err) {
					t.Errorf("VIOLATION: failed %s (err %v): session ended without logout event", fired, err)
				}
			}
	})

	add("RevokeSession", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, false, sessionLimit(3))
		admin, _ := fx.user(t, "adam@example.test", rbac.Admin)
		bob, tok := fx.user(t, "bob@example.test", rbac.Member)
		return fx, func() error { return fx.g.RevokeSession(fx.ctx, admin, tenantID, bob.UserID, bob.SessionID()) },
			func(t *testing.T, fired string, err error) {
				works := fx.tokenWorks(tok)
				if err == nil && works {
					t.Errorf("failed %s: RevokeSession succeeded but the session works", fired)
				}
				// RevokeSession: "A revocation stands even when it cannot
				// be recorded in the audit log: a failure to record leaves
				// the session ended and returns ErrUnavailable."
				if !works && !fx.recorded(t, audit.SessionRevoked, bob.SessionID()) && !standsUnrecorded(fired, err) {
					t.Errorf("VIOLATION: failed %s (err %v): session ended by an admin without session.revoked", fired, err)
				}
			}
	})

	add("CreateUser", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, false)
		admin, _ := fx.user(t, "adam@example.test", rbac.Admin)
		const email = "new@example.test"
		return fx, func() error {
				_, err := fx.g.CreateUser(fx.ctx, admin, guard.NewUser{Tenant: tenantID, Email: email, Name: "New", Password: ownerPW, Roles: []string{rbac.Member}})
				return err
			},
			func(t *testing.T, fired string, err error) {
				u, uerr := fx.mem.Users.UserByEmail(fx.ctx, tenantID, email)
				exists := uerr == nil
				if exists {
					fx.uids = append(fx.uids, u.ID)
				}
				switch {
				case err != nil && exists:
					t.Errorf("VIOLATION: failed %s: CreateUser failed (%v) but the user exists (status %v)", fired, err, u.Status)
				case err == nil && !exists:
					t.Errorf("failed %s: CreateUser succeeded but no user", fired)
				}
				if exists && !fx.recorded(t, audit.UserCreated, u.ID) {
					t.Errorf("VIOLATION: failed %s: user exists without user.created", fired)
				}
				if exists && fx.holds(t, "user:"+u.ID, rbac.Member) != fx.recorded(t, audit.RoleGranted, "user:"+u.ID, "role", rbac.Member) {
					t.Errorf("VIOLATION: failed %s: the role grant and role.granted disagree", fired)
				}
				if err == nil && !fx.holds(t, "user:"+u.ID, rbac.Member) {
					t.Errorf("failed %s: CreateUser succeeded without the role", fired)
				}
				// No grant left for a user that is not there.
				rules, _, _ := fx.mem.Policies.Policy(fx.ctx, tenantID)
				for _, r := range rules {
					if id, ok := strings.CutPrefix(r.Subject, "user:"); ok && r.Type == rbac.RuleGrant {
						if _, ok := fx.memUser(t, id); !ok {
							t.Errorf("VIOLATION: failed %s: role %s granted to user %s, who does not exist", fired, r.Role, id)
						}
					}
				}
			}
	})

	// bobWithKey: an admin, and bob (admin too) signed in, with an API
	// key he created.
	bobWithKey := func(t *testing.T, fx *ffix) (admin, bob guard.Principal, bobTok string) {
		admin, _ = fx.user(t, "adam@example.test", rbac.Owner)
		bob, bobTok = fx.user(t, "bob@example.test", rbac.Admin)
		if _, _, err := fx.g.CreateAPIKey(fx.ctx, bob, guard.NewAPIKey{Tenant: tenantID, Name: "bob's", Roles: []string{rbac.ReportsOnly}}); err != nil {
			t.Fatal(err)
		}
		return admin, bob, bobTok
	}
	// noWayIn: a deactivated or deleted bob has no session, no key, and
	// cannot sign in.
	noWayIn := func(t *testing.T, fx *ffix, fired string, err error, bobTok string, uid string) {
		if n := len(fx.live(t, uid)); n != 0 || fx.tokenWorks(bobTok) {
			t.Errorf("VIOLATION: failed %s (err %v): user cannot sign in any more, but %d sessions live on (token works: %v)", fired, err, n, fx.tokenWorks(bobTok))
		}
		if ks := fx.keysUsable(t, uid); len(ks) != 0 {
			t.Errorf("VIOLATION: failed %s (err %v): user cannot sign in any more, but %d API keys they created still work", fired, err, len(ks))
		}
		if _, lerr := fx.login("bob@example.test", ownerPW); !errors.Is(lerr, guard.ErrInvalidCredentials) {
			t.Errorf("VIOLATION: failed %s: sign-in afterwards: %v, want ErrInvalidCredentials", fired, lerr)
		}
	}

	// stoppedMidway checks a deactivation that returned an error with the
	// user deactivated, as DeactivateUser documents it: "A store failure
	// gives ErrUnavailable, and what was done stays done: the user stays
	// deactivated (so cannot sign in), with the sessions ended and the
	// keys revoked so far. Calling DeactivateUser again finishes the job;
	// so does Maintain, at its next run, for sessions and keys alike."
	// (and "A deactivation ... stands even when it cannot be recorded").
	// After one Maintain run no session or key of the user works, and
	// what that run ended is on record.
	stoppedMidway := func(t *testing.T, fx *ffix, fired string, err error, bobTok string, uid string) {
		if !errors.Is(err, guard.ErrUnavailable) {
			t.Errorf("failed %s: deactivation stopped midway with %v, want ErrUnavailable", fired, err)
		}
		if _, lerr := fx.login("bob@example.test", ownerPW); !errors.Is(lerr, guard.ErrInvalidCredentials) {
			t.Errorf("VIOLATION: failed %s: sign-in of the deactivated user: %v, want ErrInvalidCredentials", fired, lerr)
		}
		rep := fx.maintain(t)
		noWayIn(t, fx, fired, err, bobTok, uid)
		if rep.SessionsOfDeactivated[tenantID] > 0 && !fx.recorded(t, audit.SessionRevoked, uid, "reason", guard.ReasonDeactivated) {
			t.Errorf("VIOLATION: failed %s: Maintain ended %d sessions without session.revoked", fired, rep.SessionsOfDeactivated[tenantID])
		}
		if rep.KeysRevoked[tenantID] > 0 && !slices.ContainsFunc(fx.events(t, audit.APIKeyRevoked), func(e audit.Event) bool {
			return e.Outcome == audit.Success && e.Meta["created_by"] == uid && e.Meta["reason"] == "creator_deactivated"
		}) {
			t.Errorf("VIOLATION: failed %s: Maintain revoked %d keys without apikey.revoked", fired, rep.KeysRevoked[tenantID])
		}
	}

	add("DeactivateUser", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, false, sessionLimit(3))
		admin, bob, bobTok := bobWithKey(t, fx)
		return fx, func() error { return fx.g.DeactivateUser(fx.ctx, admin, tenantID, bob.UserID) },
			func(t *testing.T, fired string, err error) {
				u, _ := fx.memUser(t, bob.UserID)
				switch {
				case u.Status == auth.StatusActive:
					if err == nil {
						t.Errorf("failed %s: DeactivateUser succeeded but the user is active", fired)
					}
				case err != nil:
					stoppedMidway(t, fx, fired, err, bobTok, bob.UserID)
				default:
					noWayIn(t, fx, fired, err, bobTok, bob.UserID)
					if !fx.recorded(t, audit.UserDeactivated, bob.UserID) {
						t.Errorf("VIOLATION: failed %s: user deactivated without user.deactivated", fired)
					}
				}
			}
	})

	add("DeleteUser", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, false, sessionLimit(3))
		admin, bob, bobTok := bobWithKey(t, fx)
		return fx, func() error { return fx.g.DeleteUser(fx.ctx, admin, tenantID, bob.UserID) },
			func(t *testing.T, fired string, err error) {
				u, exists := fx.memUser(t, bob.UserID)
				if exists && u.Status == auth.StatusActive {
					if err == nil {
						t.Errorf("failed %s: DeleteUser succeeded but the user is active", fired)
					}
					return
				}
				mayBeUnrecorded := !exists && standsUnrecorded(fired, err)
				if exists {
					// DeleteUser: "A store failure gives ErrUnavailable and
					// leaves the user deactivated, with what was done so
					// far ...: calling DeleteUser again finishes the job."
					if err == nil {
						t.Errorf("failed %s: DeleteUser succeeded but the user is still there", fired)
					}
					if _, lerr := fx.login("bob@example.test", ownerPW); !errors.Is(lerr, guard.ErrInvalidCredentials) {
						t.Errorf("VIOLATION: failed %s: sign-in of the half-deleted user: %v, want ErrInvalidCredentials", fired, lerr)
					}
					if derr := fx.g.DeleteUser(fx.ctx, admin, tenantID, bob.UserID); derr != nil {
						t.Fatalf("failed %s: DeleteUser again: %v", fired, derr)
					}
					if _, still := fx.memUser(t, bob.UserID); still {
						t.Fatalf("failed %s: DeleteUser again succeeded, the user is still there", fired)
					}
				}
				noWayIn(t, fx, fired, err, bobTok, bob.UserID)
				// "Once the user's record is removed, the deletion is
				// recorded before the rest is cleared"; "A deletion
				// revokes, so it stands even when it cannot be recorded".
				if !fx.recorded(t, audit.UserDeleted, bob.UserID) && !mayBeUnrecorded {
					t.Errorf("VIOLATION: failed %s (err %v): user deleted without user.deleted", fired, err)
				}
				if fx.holds(t, "user:"+bob.UserID, rbac.Admin) {
					t.Errorf("VIOLATION: failed %s (err %v): user deleted, its admin grant stays", fired, err)
				}
			}
	})

	add("ChangePassword", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, false, sessionLimit(3))
		p, _ := fx.user(t, "ada@example.test", rbac.Member)
		other := fx.login2(t, "ada@example.test")
		before, _ := fx.memUser(t, p.UserID)
		return fx, func() error {
				return fx.g.ChangePassword(fx.ctx, p, guard.PasswordChange{Current: ownerPW, New: "an entirely new passphrase"})
			},
			func(t *testing.T, fired string, err error) {
				u, _ := fx.memUser(t, p.UserID)
				changed := u.PasswordHash != before.PasswordHash
				if err == nil && !changed {
					t.Errorf("failed %s: ChangePassword succeeded, password unchanged", fired)
				}
				if !changed {
					return
				}
				if !fx.recorded(t, audit.PasswordChanged, p.UserID) {
					t.Errorf("VIOLATION: failed %s (err %v): password changed without password.changed", fired, err)
				}
				if fx.tokenWorks(other) {
					t.Errorf("VIOLATION: failed %s (err %v): password changed, the user's other session lives on", fired, err)
				}
			}
	})

	add("PasswordReset", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, true)
		u := fx.createUser(t, adaEmail, ownerPW)
		fx.uids = append(fx.uids, u.ID)
		res, _ := fx.signIn(t, adaEmail, ownerPW)
		before, _ := fx.memUser(t, u.ID)
		var link url.Values
		const newPW = "an entirely new passphrase"
		rr := func() guard.ResetRequest {
			return guard.ResetRequest{Tenant: link.Get("tenant"), UserID: link.Get("user"), Token: link.Get("token"), NewPassword: newPW}
		}
		return fx, func() error {
				sent := len(fx.mailTo(adaEmail))
				if err := fx.g.ForgotPassword(fx.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5", UserAgent: "test"}); err != nil {
					return err
				}
				fx.g.Close() // the link is mailed in the background
				ms := fx.mailTo(adaEmail)
				if len(ms) == sent || !strings.Contains(ms[len(ms)-1].Text, resetPrefix) {
					return errSilent
				}
				link = resetLink(t, ms[len(ms)-1])
				return fx.g.ResetPassword(fx.ctx, rr())
			},
			func(t *testing.T, fired string, err error) {
				cur, _ := fx.memUser(t, u.ID)
				changed := cur.PasswordHash != before.PasswordHash
				if errors.Is(err, errSilent) && fired != "Audit.Append" {
					// ForgotPassword answers the same whether a link went
					// out or not; the failure must be on record.
					if !slices.ContainsFunc(fx.events(t, audit.PasswordResetRequested), func(e audit.Event) bool { return e.Outcome == audit.Failure }) {
						t.Errorf("failed %s: no link went out and no failed password.reset_requested says why", fired)
					}
				}
				if err == nil && !changed {
					t.Errorf("failed %s: ResetPassword succeeded, password unchanged", fired)
				}
				if changed {
					if !fx.recorded(t, audit.PasswordReset, u.ID) {
						t.Errorf("VIOLATION: failed %s (err %v): password reset without password.reset", fired, err)
					}
					if n := len(fx.live(t, u.ID)); n != 0 || fx.tokenWorks(res.Token) {
						t.Errorf("VIOLATION: failed %s (err %v): password reset, %d sessions live on", fired, err, n)
					}
				}
				if err != nil && !changed && link != nil {
					// The link was not used up by the failed attempt.
					if rerr := fx.g.ResetPassword(fx.ctx, rr()); rerr != nil {
						t.Errorf("VIOLATION: failed %s: reset failed (%v) and the link is spent: retry gives %v", fired, err, rerr)
					}
				}
			}
	})

	add("APIKey/create", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, false)
		admin, _ := fx.user(t, "adam@example.test", rbac.Owner)
		var key string
		return fx, func() (err error) {
				key, _, err = fx.g.CreateAPIKey(fx.ctx, admin, guard.NewAPIKey{Tenant: tenantID, Name: "reporting", Roles: []string{rbac.ReportsOnly}})
				return err
			},
			func(t *testing.T, fired string, err error) {
				ks := fx.keysUsable(t, admin.UserID)
				for _, k := range ks {
					if !fx.recorded(t, audit.APIKeyCreated, k.ID) {
						t.Errorf("VIOLATION: failed %s (err %v): usable key %s without apikey.created", fired, err, k.ID)
					}
					if fx.holds(t, "key:"+k.ID, rbac.ReportsOnly) != fx.recorded(t, audit.RoleGranted, "key:"+k.ID, "role", rbac.ReportsOnly) {
						t.Errorf("VIOLATION: failed %s: the key's role grant and role.granted disagree", fired)
					}
				}
				switch {
				case err != nil && len(ks) != 0:
					t.Errorf("VIOLATION: failed %s: CreateAPIKey failed (%v) but left %d usable keys", fired, err, len(ks))
				case err == nil && len(ks) != 1:
					t.Errorf("failed %s: CreateAPIKey succeeded, %d usable keys", fired, len(ks))
				case err == nil:
					if code := serve(fx.g, "", client, rbac.Reports, rbac.Read, "Authorization", "Bearer "+key); code != http.StatusNoContent {
						t.Errorf("failed %s: the new key reading reports: %d", fired, code)
					}
				}
			}
	})

	add("APIKey/authenticate", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, false)
		admin, _ := fx.user(t, "adam@example.test", rbac.Owner)
		key, _, err := fx.g.CreateAPIKey(fx.ctx, admin, guard.NewAPIKey{Tenant: tenantID, Name: "reporting", Roles: []string{rbac.ReportsOnly}})
		if err != nil {
			t.Fatal(err)
		}
		fx.clock.Advance(2 * time.Minute) // the request writes last-used
		return fx, func() error {
				return httpErr(serve(fx.g, "", client, rbac.Reports, rbac.Read, "Authorization", "Bearer "+key))
			},
			func(t *testing.T, fired string, err error) {
				if fired != "" && err == nil {
					t.Errorf("VIOLATION: failed %s: the request reached the handler", fired)
				}
			}
	})

	// Four-eyes approvals: rob and ann are managers; campaigns:send needs
	// approval.
	approvals := func(t *testing.T, steps int) (fx *ffix, rob, ann guard.Principal, id string) {
		fx = newFaultFix(t, false)
		rob, _ = fx.user(t, "rob@example.test", rbac.Manager)
		ann, _ = fx.user(t, "ann@example.test", rbac.Manager)
		if err := fx.g.SetApprovalRequired(fx.ctx, guard.System("t"), tenantID, "campaigns:send", true); err != nil {
			t.Fatal(err)
		}
		if steps > 0 {
			ap, err := fx.g.RequestApproval(fx.ctx, rob, "campaigns:send", "c1", []byte("p"), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			id = ap.ID
		}
		if steps > 1 {
			if _, err := fx.g.ApproveRequest(fx.ctx, ann, id); err != nil {
				t.Fatal(err)
			}
		}
		return fx, rob, ann, id
	}
	add("Approval/request", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx, rob, ann, _ := approvals(t, 0)
		return fx, func() error {
				_, err := fx.g.RequestApproval(fx.ctx, rob, "campaigns:send", "c1", []byte("p"), time.Hour)
				return err
			},
			func(t *testing.T, fired string, err error) {
				aps, lerr := fx.mem.Approvals.ListApprovals(fx.ctx, tenantID, rbac.ApprovalQuery{})
				if lerr != nil {
					t.Fatal(lerr)
				}
				if err == nil && len(aps) != 1 {
					t.Errorf("failed %s: RequestApproval succeeded, %d approvals stored", fired, len(aps))
				}
				for _, a := range aps {
					if fx.recorded(t, audit.ApprovalRequested, a.ID) {
						continue
					}
					// RequestApproval: "A request that cannot be recorded
					// in the audit log does not stand: it is rejected at
					// once ..., so that no one can approve it, and
					// ErrUnavailable is returned." So is one whose
					// requester cannot be read again once it is stored
					// ("ErrUnavailable if the user cannot be read").
					recheck := fired == "Users.User" && errors.Is(err, guard.ErrUnavailable)
					if a.Status != rbac.StatusRejected || !standsUnrecorded(fired, err) && !recheck {
						t.Errorf("VIOLATION: failed %s (err %v): approval request %s stored (%s) without approval.requested", fired, err, a.ID, a.Status)
					}
					if _, aerr := fx.g.ApproveRequest(fx.ctx, ann, a.ID); aerr == nil {
						t.Errorf("VIOLATION: failed %s: the unrecorded request %s was approved", fired, a.ID)
					}
				}
			}
	})
	add("Approval/approve", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx, rob, ann, id := approvals(t, 1)
		return fx, func() error {
				_, err := fx.g.ApproveRequest(fx.ctx, ann, id)
				return err
			},
			func(t *testing.T, fired string, err error) {
				a, gerr := fx.mem.Approvals.Approval(fx.ctx, tenantID, id)
				if gerr != nil {
					t.Fatal(gerr)
				}
				approved := a.Status == rbac.StatusApproved
				if err == nil && !approved {
					t.Errorf("failed %s: ApproveRequest succeeded, status %v", fired, a.Status)
				}
				if approved && !fx.recorded(t, audit.ApprovalApproved, id) {
					_, cerr := fx.g.ConsumeApproval(fx.ctx, rob, id, "campaigns:send", "c1", []byte("p"))
					t.Errorf("VIOLATION: failed %s (err %v): request approved without approval.approved (and the requester can consume it: %v)", fired, err, cerr)
				}
			}
	})
	add("Approval/consume", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx, rob, _, id := approvals(t, 2)
		return fx, func() error {
				_, err := fx.g.ConsumeApproval(fx.ctx, rob, id, "campaigns:send", "c1", []byte("p"))
				return err
			},
			func(t *testing.T, fired string, err error) {
				a, gerr := fx.mem.Approvals.Approval(fx.ctx, tenantID, id)
				if gerr != nil {
					t.Fatal(gerr)
				}
				consumed := !a.ConsumedAt.IsZero()
				if err == nil && !consumed {
					t.Errorf("failed %s: ConsumeApproval succeeded, not consumed", fired)
				}
				// ConsumeApproval: "A consumption that cannot be recorded
				// in the audit log stands (the approval is used up ...): it
				// returns ErrUnavailable, and the host must not carry out
				// the action." Spent and refused only so.
				if consumed && !fx.recorded(t, audit.ApprovalConsumed, id) && !standsUnrecorded(fired, err) {
					t.Errorf("VIOLATION: failed %s (err %v): approval consumed without approval.consumed", fired, err)
				}
				if consumed && err != nil && !standsUnrecorded(fired, err) {
					t.Errorf("VIOLATION: failed %s: ConsumeApproval failed (%v) but the approval is spent", fired, err)
				}
			}
	})

	add("SetPolicy", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, false, sessionLimit(3))
		admin, _ := fx.user(t, "adam@example.test", rbac.Owner)
		bob, _ := fx.user(t, "bob@example.test", rbac.Member)
		fx.login2(t, "bob@example.test")
		fx.login2(t, "bob@example.test")
		ten, err := fx.g.Tenant(fx.ctx, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		var liveBefore []session.Session
		for _, id := range []string{admin.UserID, bob.UserID} {
			liveBefore = append(liveBefore, fx.live(t, id)...)
		}
		return fx, func() error {
				_, err := fx.g.SetPolicy(fx.ctx, admin, tenantID, guard.Policy{SessionLimit: 1}, ten.Version)
				return err
			},
			func(t *testing.T, fired string, err error) {
				cur, terr := fx.mem.Tenants.Tenant(fx.ctx, tenantID)
				if terr != nil {
					t.Fatal(terr)
				}
				// By content: an undone change is a new version too
				// ("the previous policy is put back (a new version ...)").
				set := !reflect.DeepEqual(cur.Policy, ten.Policy)
				if err == nil && !set {
					t.Errorf("failed %s: SetPolicy succeeded, policy unchanged", fired)
				}
				if set && cur.Policy.SessionLimit != 1 {
					t.Errorf("failed %s: policy neither the old nor the new one: %+v", fired, cur.Policy)
				}
				if set && !fx.recorded(t, audit.TenantPolicySet, tenantID) {
					t.Errorf("VIOLATION: failed %s (err %v): policy changed without tenant.policy_changed", fired, err)
				}
				if err == nil && len(fx.live(t, bob.UserID)) != 1 {
					t.Errorf("failed %s: SetPolicy succeeded, bob has %d sessions, want 1", fired, len(fx.live(t, bob.UserID)))
				}
				// SetPolicy: "the sessions ended so far stay ended (and
				// recorded, but for those whose record failed: a
				// revocation stands unrecorded)".
				for _, s := range liveBefore {
					ss, _ := fx.mem.Sessions.ListByUser(fx.ctx, tenantID, s.UserID)
					if !slices.ContainsFunc(ss, func(x session.Session) bool { return x.Hash == s.Hash }) &&
						!fx.recorded(t, audit.SessionRevoked, s.ID()) && !(set && standsUnrecorded(fired, err)) {
						t.Errorf("VIOLATION: failed %s (err %v): session %s ended without session.revoked", fired, err, s.ID())
					}
				}
				if set && err != nil {
					// "... and Maintain ends the rest at its next run."
					fx.maintain(t)
					if n := len(fx.live(t, bob.UserID)); n != 1 {
						t.Errorf("VIOLATION: failed %s: policy lowered the limit to 1, after Maintain bob has %d sessions", fired, n)
					}
				}
			}
	})

	// Role changes: admin changes bob's roles; bob is signed in.
	for _, grant := range []bool{true, false} {
		name, role, action := "GrantRole", rbac.Manager, audit.RoleGranted
		if !grant {
			name, role, action = "RevokeRole", rbac.Member, audit.RoleRevoked
		}
		add(name, func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
			fx := newFaultFix(t, false)
			admin, _ := fx.user(t, "adam@example.test", rbac.Owner)
			bob, tok := fx.user(t, "bob@example.test", rbac.Member)
			sub := "user:" + bob.UserID
			return fx, func() error {
					if grant {
						return fx.g.GrantRole(fx.ctx, admin, tenantID, sub, role)
					}
					return fx.g.RevokeRole(fx.ctx, admin, tenantID, sub, role)
				},
				func(t *testing.T, fired string, err error) {
					changed := fx.holds(t, sub, role) == grant
					if err == nil && !changed {
						t.Errorf("failed %s: %s succeeded, no change", fired, name)
					}
					if changed && !fx.recorded(t, action, sub, "role", role) {
						t.Errorf("VIOLATION: failed %s (err %v): role changed without %s", fired, err, action)
					}
					// On an error the change may stand with the sessions
					// not ended: documented (GrantRole: "the role change
					// stands (it is on record; end the sessions with
					// RevokeUserSessions)"), not asserted.
					if err == nil && fx.tokenWorks(tok) {
						t.Errorf("failed %s: roles changed, the old session lives on", fired)
					}
				}
		})
	}

	add("EnrolTOTP+confirm", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, true, sessionLimit(3))
		u := fx.createUser(t, adaEmail, ownerPW)
		fx.uids = append(fx.uids, u.ID)
		_, p := fx.signIn(t, adaEmail, ownerPW)
		other := fx.login2(t, adaEmail)
		var codes []string
		return fx, func() error {
				en, err := fx.g.BeginTOTP(fx.ctx, p, "Phone")
				if err != nil {
					return err
				}
				c, err := totp.GenerateCode(en.Secret, fx.clock.Now())
				if err != nil {
					return err
				}
				codes, err = fx.g.ConfirmFactor(fx.ctx, p, en.Factor.ID, c)
				return err
			},
			func(t *testing.T, fired string, err error) {
				confirmed := len(fx.confirmedFactors(t, u.ID)) > 0
				if err == nil && (!confirmed || len(codes) == 0) {
					t.Errorf("failed %s: enrolment succeeded: confirmed %v, %d recovery codes shown", fired, confirmed, len(codes))
				}
				if !confirmed {
					return
				}
				if !fx.recorded(t, audit.MFAEnrolled, fx.confirmedFactors(t, u.ID)[0].ID) {
					t.Errorf("VIOLATION: failed %s (err %v): factor confirmed without mfa.enrolled", fired, err)
				}
				if fx.tokenWorks(other) {
					t.Errorf("VIOLATION: failed %s (err %v): factor confirmed, the user's other session lives on", fired, err)
				}
				if err != nil {
					t.Errorf("VIOLATION: failed %s: enrolment failed (%v) but the factor is active (%d recovery codes stored, %d returned with the error)", fired, err, fx.recoveryLeft(t, u.ID), len(codes))
				}
			}
	})

	// A second email factor begun while one is pending (the address mistyped, say). A begin that
	// fails leaves the first pending with its mailed code working (BeginOOB: "the user's factors stay
	// as they were"), but for one that cannot be recorded once the new factor is stored: that one
	// stands pending, the first voided, and ErrUnavailable returned.
	add("BeginOOB/again", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, true)
		u := fx.createUser(t, adaEmail, ownerPW)
		fx.uids = append(fx.uids, u.ID)
		_, p := fx.signIn(t, adaEmail, ownerPW)
		const first, second = "ada.first@example.test", "ada.second@example.test"
		fa, err := fx.g.BeginOOB(fx.ctx, p, mfa.KindEmail, first, "")
		if err != nil {
			t.Fatal(err)
		}
		code := fx.out.lastCodeTo(t, first)
		var fb mfa.Factor
		return fx, func() error {
				fb, err = fx.g.BeginOOB(fx.ctx, p, mfa.KindEmail, second, "")
				return err
			},
			func(t *testing.T, fired string, err error) {
				fs, lerr := fx.mem.MFA.Factors(fx.ctx, tenantID, u.ID)
				if lerr != nil {
					t.Fatal(lerr)
				}
				ids := make([]string, len(fs))
				for i, f := range fs {
					ids[i] = f.ID
				}
				switch {
				case err == nil:
					if len(fs) != 1 || fs[0].ID != fb.ID || !fx.recorded(t, audit.MFAEnrolStarted, fb.ID) {
						t.Errorf("failed %s: begun, but factors %v, want only the new %s, on record", fired, ids, fb.ID)
					}
				case standsUnrecorded(fired, err) && len(fs) == 1 && fs[0].ID != fa.ID && !fs[0].Confirmed():
					// The new factor stands pending, unrecorded: documented above.
				case len(fs) != 1 || fs[0].ID != fa.ID:
					t.Errorf("VIOLATION: failed %s: BeginOOB failed (%v), factors %v, want only the first, %s", fired, err, ids, fa.ID)
				default:
					if fired != "Users.User" && fired != "Audit.Append" &&
						!slices.ContainsFunc(fx.events(t, audit.MFAEnrolStarted), func(e audit.Event) bool {
							return e.Outcome == audit.Failure && e.Reason == guard.ReasonUnavailable
						}) {
						t.Errorf("failed %s: BeginOOB failed (%v), and no failed mfa.enrol_started says why", fired, err)
					}
					if _, cerr := fx.g.ConfirmFactor(fx.ctx, p, fa.ID, code); cerr != nil {
						t.Errorf("VIOLATION: failed %s: BeginOOB failed (%v), and the first factor's code no longer confirms it: %v", fired, err, cerr)
					}
				}
			}
	})

	add("RemoveFactor", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, true, sessionLimit(3))
		u := fx.createUser(t, adaEmail, ownerPW)
		fx.uids = append(fx.uids, u.ID)
		_, p := fx.signIn(t, adaEmail, ownerPW)
		secret, _ := fx.enrolTOTP(t, p)
		fx.clock.Advance(time.Minute)
		res, err := fx.complete(guard.MethodTOTP, fx.pending(t, adaEmail, ownerPW).Token, fx.code(t, secret))
		if err != nil {
			t.Fatal(err)
		}
		fid := fx.confirmedFactors(t, u.ID)[0].ID
		return fx, func() error { return fx.g.RemoveFactor(fx.ctx, p, tenantID, u.ID, fid) },
			func(t *testing.T, fired string, err error) {
				removed := len(fx.confirmedFactors(t, u.ID)) == 0
				if err == nil && !removed {
					t.Errorf("failed %s: RemoveFactor succeeded, factor still there", fired)
				}
				if !removed {
					return
				}
				if !fx.recorded(t, audit.MFARemoved, u.ID) {
					t.Errorf("VIOLATION: failed %s (err %v): factor removed without mfa.removed", fired, err)
				}
				if fx.tokenWorks(res.Token) {
					t.Errorf("VIOLATION: failed %s (err %v): factor removed, the user's other session lives on", fired, err)
				}
				if n := fx.recoveryLeft(t, u.ID); n != 0 {
					t.Errorf("VIOLATION: failed %s (err %v): last factor removed, %d recovery codes still valid", fired, err, n)
				}
			}
	})

	// An access review: bob (admin, signed in, with a key) is deactivated
	// and carol (manager, signed in) downgraded to member.
	add("ApplyReview", func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
		fx := newFaultFix(t, false, sessionLimit(3))
		admin, bob, bobTok := bobWithKey(t, fx)
		carol, carolTok := fx.user(t, "carol@example.test", rbac.Manager)
		ds := []guard.Decision{{UserID: bob.UserID, Deactivate: true}, {UserID: carol.UserID, DowngradeTo: rbac.Member}}
		var res guard.ReviewResult
		return fx, func() (err error) {
				res, err = fx.g.ApplyReview(fx.ctx, admin, tenantID, ds)
				return err
			},
			func(t *testing.T, fired string, err error) {
				if u, _ := fx.memUser(t, bob.UserID); u.Status != auth.StatusActive {
					if res.Deactivated == 0 {
						// ApplyReview: "a deactivation stopped part way is
						// left as DeactivateUser leaves one".
						stoppedMidway(t, fx, fired, err, bobTok, bob.UserID)
					} else {
						noWayIn(t, fx, fired, err, bobTok, bob.UserID)
						if !fx.recorded(t, audit.UserDeactivated, bob.UserID) {
							t.Errorf("VIOLATION: failed %s (err %v): user deactivated without user.deactivated", fired, err)
						}
					}
				} else if err == nil {
					t.Errorf("failed %s: ApplyReview succeeded, bob active", fired)
				}
				sub := "user:" + carol.UserID
				if !fx.holds(t, sub, rbac.Manager) {
					if !fx.recorded(t, audit.RoleRevoked, sub, "role", rbac.Manager) {
						t.Errorf("VIOLATION: failed %s (err %v): manager role taken without role.revoked", fired, err)
					}
					// On an error the sessions may outlive the downgrade:
					// documented ("the decisions applied so far stay
					// applied"), and roles are checked on every request, so
					// the session has only the member's rights. Not asserted.
					if err == nil && fx.tokenWorks(carolTok) {
						t.Errorf("failed %s: carol downgraded, her session (issued as manager) lives on", fired)
					}
				} else if err == nil {
					t.Errorf("failed %s: ApplyReview succeeded, carol still manager", fired)
				}
				if fx.holds(t, sub, rbac.Member) && !fx.recorded(t, audit.RoleGranted, sub, "role", rbac.Member) {
					t.Errorf("VIOLATION: failed %s (err %v): member role granted without role.granted", fired, err)
				}
				done := len(fx.events(t, audit.ReviewCompleted)) > 0
				if err == nil && !done {
					t.Errorf("failed %s: ApplyReview succeeded without access_review.completed", fired)
				}
				if err != nil && done {
					t.Errorf("failed %s: ApplyReview failed (%v) but the review is recorded as done", fired, err)
				}
			}
	})

	return flows
}
