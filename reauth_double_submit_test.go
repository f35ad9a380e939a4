package guard_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/memstore"
)

// reauthFixture is Ada, signed in with her password (token, p) and with
// an authenticator app (secret), the clock moved to a step of the app
// that no code has used yet.
type reauthFixture struct {
	*mfaFixture
	user   guard.User
	p      guard.Principal
	token  string
	secret string
}

func newReauthFixture(t *testing.T, mutate ...func(*guard.Config)) *reauthFixture {
	t.Helper()
	f := newMFAFixture(t, append([]func(*guard.Config){manySessions}, mutate...)...)
	u := f.createUser(t, adaEmail, ownerPW)
	res, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	f.clock.Advance(30 * time.Second)
	return &reauthFixture{mfaFixture: f, user: u, p: p, token: res.Token, secret: secret}
}

// reuseNotices counts the "code used again" notices Ada was sent.
func (f *reauthFixture) reuseNotices() (n int) {
	for _, m := range f.mailTo(adaEmail) {
		if strings.Contains(m.Subject, "used again") {
			n++
		}
	}
	return n
}

// stepUpFailures returns the reasons of the failed session.reauthenticated
// events recorded after the first skip events of that action.
func (f *reauthFixture) stepUpFailures(t *testing.T, skip int) []string {
	t.Helper()
	var got []string
	for _, e := range f.events(t, audit.Reauthenticated)[skip:] {
		if e.Outcome != audit.Success {
			got = append(got, e.Reason)
		}
	}
	return got
}

// wantReuse checks that the step-up that returned err, the first after
// before session.reauthenticated events, was refused as a reuse:
// ErrInvalidCredentials, recorded with reason reuse, counted (the account's
// one failure) and noticed (Ada's one reuse notice).
func (f *reauthFixture) wantReuse(t *testing.T, what string, err error, before int) {
	t.Helper()
	if !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Errorf("%s: %v, want ErrInvalidCredentials", what, err)
	}
	if got := f.stepUpFailures(t, before); len(got) != 1 || got[0] != guard.ReasonCodeReuse {
		t.Errorf("%s: session.reauthenticated failures %q, want one %q", what, got, guard.ReasonCodeReuse)
	}
	if n := f.reuseNotices(); n != 1 {
		t.Errorf("%s: %d reuse notices, want 1", what, n)
	}
	if n := f.failures(t, f.user.ID); n != 1 {
		t.Errorf("%s: %d failures, want 1", what, n)
	}
}

// A step-up form submitted twice (a double click: the same session token,
// password and TOTP code) is one step-up. The request checked second
// finds the code used by the first, which has renewed the session since
// (a new token, the old one rotated away): it lost a race with a request
// of its own session, not a code someone else used. It ends as it would
// have a moment later, when the old token renewed nothing:
// ErrUnauthenticated, recorded as session.reauthenticated failed with
// reason login_expired, the attempt given back (the account's failures
// stay below the lock) and no "someone who had your password tried a code
// that had already been used" notice. It used to be refused as a reuse
// (ErrInvalidCredentials), counted (the last failure before the lock
// locked the account) and noticed.
func TestStepUpDoubleSubmitIsNoReuse(t *testing.T) {
	f := newReauthFixture(t)
	proof := guard.Proof{Password: ownerPW, TOTP: f.code(t, f.secret)}
	nt, _, err := f.g.Reauthenticate(f.ctx, f.p, f.token, proof)
	if err != nil {
		t.Fatalf("the first step-up: %v", err)
	}
	// Failures up to one below the lock, so that a counted attempt locks.
	for range guard.DefaultAccountLimit.Max - 1 {
		if _, err := f.login(adaEmail, "wrong password"); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	before := len(f.events(t, audit.Reauthenticated))
	if _, _, err := f.g.Reauthenticate(f.ctx, f.p, f.token, proof); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("the same step-up submitted again: %v, want ErrUnauthenticated", err)
	}
	if got := f.stepUpFailures(t, before); len(got) != 1 || got[0] != guard.ReasonLoginExpired {
		t.Errorf("the same step-up submitted again: session.reauthenticated failures %q, want one %q", got, guard.ReasonLoginExpired)
	}
	if n := f.reuseNotices(); n != 0 {
		t.Errorf("the same step-up submitted again: %d reuse notices, want none", n)
	}
	if n := f.failures(t, f.user.ID); n != guard.DefaultAccountLimit.Max-1 {
		t.Errorf("the same step-up submitted again: %d failures, want %d (the attempt given back)", n, guard.DefaultAccountLimit.Max-1)
	}
	if n := len(f.events(t, audit.LoginLocked)); n != 0 {
		t.Errorf("the same step-up submitted again: %d login.locked events, want none", n)
	}
	if _, err := f.g.Authenticate(f.ctx, nt); err != nil {
		t.Errorf("the session the first step-up renewed: %v", err)
	}
}

// The code a sign-in just used, tried at a step-up of a session that is
// still as it was (not renewed since): someone else's use of the code, a
// reuse. Refused (ErrInvalidCredentials), recorded with reason reuse,
// counted, and the user is told (SECURITY-CHECKLIST MF-5).
func TestStepUpReuseByLiveSessionNoticed(t *testing.T) {
	f := newReauthFixture(t)
	code := f.code(t, f.secret)
	if _, err := f.complete(guard.MethodTOTP, f.pending(t, adaEmail, ownerPW).Token, code); err != nil {
		t.Fatalf("the sign-in with the code: %v", err)
	}
	before := len(f.events(t, audit.Reauthenticated))
	_, _, err := f.g.Reauthenticate(f.ctx, f.p, f.token, guard.Proof{Password: ownerPW, TOTP: code})
	f.wantReuse(t, "a step-up with the code a sign-in used", err, before)
	if _, err := f.g.Authenticate(f.ctx, f.token); err != nil {
		t.Errorf("the session after the refused step-up: %v", err)
	}
}

// When the session store cannot say whether the session was renewed
// meanwhile, a step-up whose code was used is taken for a reuse, the safe
// side: refused (ErrInvalidCredentials, as it is refused anyway), counted,
// recorded with reason reuse and noticed. A false alarm about the user's
// own double click is better than a missed one about someone else.
func TestStepUpReuseCheckStoreDownNoticed(t *testing.T) {
	var fs *failingSessions
	f := newReauthFixture(t, func(c *guard.Config) {
		fs = &failingSessions{Sessions: f0sessions(c)}
		c.Stores.Sessions = fs
	})
	proof := guard.Proof{Password: ownerPW, TOTP: f.code(t, f.secret)}
	if _, _, err := f.g.Reauthenticate(f.ctx, f.p, f.token, proof); err != nil {
		t.Fatalf("the first step-up: %v", err)
	}
	before := len(f.events(t, audit.Reauthenticated))
	fs.set(true)
	_, _, err := f.g.Reauthenticate(f.ctx, f.p, f.token, proof)
	fs.set(false)
	f.wantReuse(t, "the step-up submitted again, the session store down", err, before)
}

// rotationSignal closes rotated once session watch has been rotated.
type rotationSignal struct {
	*memstore.Sessions
	watch   session.Hash
	once    sync.Once
	rotated chan struct{}
}

func (s *rotationSignal) Rotate(ctx context.Context, old session.Hash, ns session.Session) error {
	err := s.Sessions.Rotate(ctx, old, ns)
	if err == nil && old == s.watch {
		s.once.Do(func() { close(s.rotated) })
	}
	return err
}

// replayWaits holds back a request whose TOTP code was found used
// (mfa.ErrReplay) until rotated is closed, if it is set.
type replayWaits struct {
	mfa.FactorUpdater
	rotated chan struct{}
}

func (s *replayWaits) AdvanceStep(ctx context.Context, tenant, userID, id string, step int64) error {
	err := s.FactorUpdater.AdvanceStep(ctx, tenant, userID, id, step)
	if errors.Is(err, mfa.ErrReplay) && s.rotated != nil {
		select {
		case <-s.rotated:
		case <-time.After(10 * time.Second):
		}
	}
	return err
}

// The step-up form submitted several times at once: exactly one renews the
// session. Every other finds the code used; each checks that after the
// winner renewed the session (the test holds it back until then), so
// each lost the race to its own session and none sends a reuse notice or
// counts as a failure. (One that checks before the renewal waits for it:
// TestStepUpDoubleSubmitWinnerHeld.)
func TestStepUpConcurrentDoubleSubmit(t *testing.T) {
	sessions, steps := &rotationSignal{rotated: make(chan struct{})}, &replayWaits{}
	f := newReauthFixture(t, func(c *guard.Config) {
		sessions.Sessions = f0sessions(c)
		c.Stores.Sessions = sessions
		steps.FactorUpdater = c.Stores.MFA.FactorUpdates
		c.Stores.MFA.FactorUpdates = steps
	})
	sessions.watch, steps.rotated = f.p.Session, sessions.rotated
	proof := guard.Proof{Password: ownerPW, TOTP: f.code(t, f.secret)}
	before := len(f.events(t, audit.Reauthenticated))
	const n = 4 // below the account's lock, so that no one is refused for it
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, _, errs[i] = f.g.Reauthenticate(f.ctx, f.p, f.token, proof)
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, guard.ErrUnauthenticated):
			t.Errorf("step-up %d: %v, want ErrUnauthenticated (or success)", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d step-ups at once succeeded, want 1", won, n)
	}
	got := f.stepUpFailures(t, before)
	if len(got) != n-1 {
		t.Errorf("session.reauthenticated failures %q, want %d", got, n-1)
	}
	for _, r := range got {
		if r != guard.ReasonLoginExpired {
			t.Errorf("session.reauthenticated failures %q, want every one %q", got, guard.ReasonLoginExpired)
			break
		}
	}
	if c := f.reuseNotices(); c != 0 {
		t.Errorf("%d reuse notices, want none", c)
	}
	if c := f.failures(t, f.user.ID); c != 0 {
		t.Errorf("%d failures after the step-ups at once, want none", c)
	}
}
