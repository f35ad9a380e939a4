package guard_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/memstore"
)

// heldWinner holds, once armed, the first request whose TOTP code is
// accepted (the winner) right after the store has marked the code used,
// until a request that then finds the code used (the loser) has looked
// once at what it could have lost to (lookedUp: the session a step-up
// renews, the pending sign-in a sign-in consumes). The winner sits between
// "code used" and "completed" while the loser looks: the window of a form
// submitted twice.
type heldWinner struct {
	mfa.FactorUpdater
	armed                             atomic.Bool
	used, replayed, release           chan struct{}
	usedOnce, replayOnce, releaseOnce sync.Once
}

func newHeldWinner() *heldWinner {
	return &heldWinner{used: make(chan struct{}), replayed: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldWinner) AdvanceStep(ctx context.Context, tenant, userID, id string, step int64) error {
	err := h.FactorUpdater.AdvanceStep(ctx, tenant, userID, id, step)
	if !h.armed.Load() {
		return err
	}
	switch {
	case err == nil:
		first := false
		h.usedOnce.Do(func() { first = true; close(h.used) })
		if first {
			select {
			case <-h.release:
			case <-time.After(10 * time.Second):
			}
		}
	case errors.Is(err, mfa.ErrReplay):
		h.replayOnce.Do(func() { close(h.replayed) })
	}
	return err
}

// lookedUp lets the winner go on once a request has found the code used.
func (h *heldWinner) lookedUp() {
	select {
	case <-h.replayed:
		h.releaseOnce.Do(func() { close(h.release) })
	default:
	}
}

// waitUsed waits until the winner holds.
func (h *heldWinner) waitUsed(t *testing.T) {
	t.Helper()
	select {
	case <-h.used:
	case <-time.After(10 * time.Second):
		t.Fatal("no request had its code accepted")
	}
}

// lookupHooked runs after, when set, after every Lookup.
type lookupHooked struct {
	*memstore.Sessions
	after func()
}

func (s *lookupHooked) Lookup(ctx context.Context, h session.Hash) (session.Session, error) {
	ss, err := s.Sessions.Lookup(ctx, h)
	if s.after != nil {
		s.after()
	}
	return ss, err
}

// txnHooked runs after, when set, after every read of a pending sign-in.
type txnHooked struct {
	mfa.TransactionStore
	after func()
}

func (s *txnHooked) Transaction(ctx context.Context, h mfa.Hash) (mfa.Transaction, error) {
	t, err := s.TransactionStore.Transaction(ctx, h)
	if s.after != nil {
		s.after()
	}
	return t, err
}

// newHeldReauthFixture is newReauthFixture with a heldWinner (not armed
// yet) and the session store's Lookup hooked to it.
func newHeldReauthFixture(t *testing.T, mutate ...func(*guard.Config)) (*reauthFixture, *heldWinner, *lookupHooked) {
	t.Helper()
	hw, ss := newHeldWinner(), &lookupHooked{}
	ss.after = hw.lookedUp
	f := newReauthFixture(t, append([]func(*guard.Config){func(c *guard.Config) {
		ss.Sessions = f0sessions(c)
		c.Stores.Sessions = ss
		hw.FactorUpdater = c.Stores.MFA.FactorUpdates
		c.Stores.MFA.FactorUpdates = hw
	}}, mutate...)...)
	return f, hw, ss
}

// A step-up submitted twice, the second request finding the code used
// while the first has used it but not yet renewed the session (held there
// until the second has looked at the session once): the second waits for
// the renewal and ends as a lost race (ErrUnauthenticated, recorded with
// reason login_expired, not counted, no notice); the first succeeds. It
// used to look once, find the session as it was, and be taken for a
// reuse: a false "your code was used again" notice and a counted failure.
func TestStepUpDoubleSubmitWinnerHeld(t *testing.T) {
	f, hw, _ := newHeldReauthFixture(t)
	hw.armed.Store(true)
	proof := guard.Proof{Password: ownerPW, TOTP: f.code(t, f.secret)}
	before := len(f.events(t, audit.Reauthenticated))
	var (
		nt   string
		werr error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		nt, _, werr = f.g.Reauthenticate(f.ctx, f.p, f.token, proof)
	}()
	hw.waitUsed(t)
	_, _, err := f.g.Reauthenticate(f.ctx, f.p, f.token, proof)
	<-done
	if werr != nil {
		t.Fatalf("the first request: %v", werr)
	}
	if !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("the second request: %v, want ErrUnauthenticated", err)
	}
	if got := f.stepUpFailures(t, before); len(got) != 1 || got[0] != guard.ReasonLoginExpired {
		t.Errorf("session.reauthenticated failures %q, want one %q", got, guard.ReasonLoginExpired)
	}
	if n := f.failures(t, f.user.ID); n != 0 {
		t.Errorf("%d failures, want none (the attempt given back)", n)
	}
	if n := f.reuseNotices(); n != 0 {
		t.Errorf("%d reuse notices, want none", n)
	}
	if _, err := f.g.Authenticate(f.ctx, nt); err != nil {
		t.Errorf("the session the first request renewed: %v", err)
	}
}

// The same at sign-in: one pending sign-in's form submitted twice, the
// second request finding the code used while the first has used it but
// not yet consumed the pending sign-in (held there until the second has
// looked at it once). The second waits, and ends as a lost race
// (ErrLoginExpired, mfa.failed reason login_expired, not counted, no
// notice); the first gets the session.
func TestTOTPDoubleSubmitWinnerHeld(t *testing.T) {
	hw, txns := newHeldWinner(), &txnHooked{}
	txns.after = hw.lookedUp
	f := newMFAFixture(t, manySessions, func(c *guard.Config) {
		hw.FactorUpdater = c.Stores.MFA.FactorUpdates
		c.Stores.MFA.FactorUpdates = hw
		txns.TransactionStore = c.Stores.MFA.Transactions
		c.Stores.MFA.Transactions = txns
	})
	u := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	f.clock.Advance(31 * time.Second)
	pend := f.pending(t, adaEmail, ownerPW)
	code := f.code(t, secret)
	hw.armed.Store(true)
	before := len(f.events(t, audit.MFAFailed))
	var (
		res  guard.LoginResult
		werr error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, werr = f.complete(guard.MethodTOTP, pend.Token, code)
	}()
	hw.waitUsed(t)
	_, err := f.complete(guard.MethodTOTP, pend.Token, code)
	<-done
	if werr != nil || res.Token == "" {
		t.Fatalf("the first request: %+v, %v; want a session", res, werr)
	}
	if !errors.Is(err, guard.ErrLoginExpired) {
		t.Errorf("the second request: %v, want ErrLoginExpired", err)
	}
	var got []string
	for _, e := range f.events(t, audit.MFAFailed)[before:] {
		got = append(got, e.Reason+"/"+e.Meta["kind"])
	}
	if want := guard.ReasonLoginExpired + "/totp"; len(got) != 1 || got[0] != want {
		t.Errorf("mfa.failed (reason/kind) %q, want one %q", got, want)
	}
	if n := f.failures(t, u.ID); n != 0 {
		t.Errorf("%d failures, want none (the attempt given back)", n)
	}
	if n := (&reauthFixture{mfaFixture: f}).reuseNotices(); n != 0 {
		t.Errorf("%d reuse notices, want none", n)
	}
}

// usedBySignIn returns the code of the current step, used by a sign-in.
func (f *reauthFixture) usedBySignIn(t *testing.T) string {
	t.Helper()
	code := f.code(t, f.secret)
	if _, err := f.complete(guard.MethodTOTP, f.pending(t, adaEmail, ownerPW).Token, code); err != nil {
		t.Fatalf("the sign-in with the code: %v", err)
	}
	return code
}

// reuseSlack is how much longer than guard.ReuseSettleWait a real reuse
// may take to be answered (a slow, shared machine under -race).
const reuseSlack = 2 * time.Second

// A real reuse — the code a sign-in used, tried at a step-up of a session
// nothing renews, or at another pending sign-in that nothing completes —
// still gets the notice and reason reuse, counted, after at most the
// wait's bound.
func TestRealReuseNoticedWithinBound(t *testing.T) {
	t.Run("step-up", func(t *testing.T) {
		f := newReauthFixture(t)
		code := f.usedBySignIn(t)
		before := len(f.events(t, audit.Reauthenticated))
		start := time.Now()
		_, _, err := f.g.Reauthenticate(f.ctx, f.p, f.token, guard.Proof{Password: ownerPW, TOTP: code})
		if d := time.Since(start); d > guard.ReuseSettleWait+reuseSlack {
			t.Errorf("the reuse was answered after %v, want at most %v", d, guard.ReuseSettleWait+reuseSlack)
		}
		f.wantReuse(t, "a step-up with the code a sign-in used", err, before)
	})
	t.Run("sign-in", func(t *testing.T) {
		f := newReauthFixture(t)
		code := f.code(t, f.secret)
		one, two := f.pending(t, adaEmail, ownerPW), f.pending(t, adaEmail, ownerPW)
		if _, err := f.complete(guard.MethodTOTP, one.Token, code); err != nil {
			t.Fatalf("the first sign-in with the code: %v", err)
		}
		before := len(f.events(t, audit.MFAFailed))
		start := time.Now()
		_, err := f.complete(guard.MethodTOTP, two.Token, code)
		if d := time.Since(start); d > guard.ReuseSettleWait+reuseSlack {
			t.Errorf("the reuse was answered after %v, want at most %v", d, guard.ReuseSettleWait+reuseSlack)
		}
		if !errors.Is(err, guard.ErrInvalidCode) {
			t.Errorf("another sign-in with the code: %v, want ErrInvalidCode", err)
		}
		if got := reasons(f.events(t, audit.MFAFailed)[before:]); len(got) != 1 || got[guard.ReasonCodeReuse] != 1 {
			t.Errorf("mfa.failed reasons %v, want one %q", got, guard.ReasonCodeReuse)
		}
		if n := f.failures(t, f.user.ID); n != 1 {
			t.Errorf("%d failures, want 1", n)
		}
		if n := f.reuseNotices(); n != 1 {
			t.Errorf("%d reuse notices, want 1", n)
		}
	})
}

// A step-up whose session was ended (signed out), not renewed, cannot
// lose a race to a request of its own: a used code is a reuse at once,
// with no wait for a renewal that will not come.
func TestStepUpReuseSessionEndedNoWait(t *testing.T) {
	f := newReauthFixture(t)
	code := f.usedBySignIn(t)
	if err := f.g.Logout(f.ctx, f.p); err != nil {
		t.Fatal(err)
	}
	before := len(f.events(t, audit.Reauthenticated))
	start := time.Now()
	_, _, err := f.g.Reauthenticate(f.ctx, f.p, f.token, guard.Proof{Password: ownerPW, TOTP: code})
	if d := time.Since(start); d > guard.ReuseSettleWait/2 {
		t.Errorf("answered after %v, want well within %v (nothing to wait for)", d, guard.ReuseSettleWait)
	}
	f.wantReuse(t, "a step-up of an ended session with a used code", err, before)
}

// A request waiting for a request of its own to complete stops waiting
// when its context is cancelled, and is refused at once.
func TestReuseWaitCancelled(t *testing.T) {
	f, hw, ss := newHeldReauthFixture(t)
	code := f.usedBySignIn(t)
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	var cancelled atomic.Int64 // when the wait's first look was made, in ns since start
	start := time.Now()
	ss.after = func() {
		select {
		case <-hw.replayed:
			if cancelled.CompareAndSwap(0, int64(time.Since(start))) {
				cancel()
			}
		default:
		}
	}
	hw.armed.Store(true)
	_, _, err := f.g.Reauthenticate(ctx, f.p, f.token, guard.Proof{Password: ownerPW, TOTP: code})
	d := time.Since(start)
	if cancelled.Load() == 0 {
		t.Fatal("the step-up never looked at its session after finding the code used")
	}
	if err == nil || errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("the cancelled step-up: %v, want a refusal", err)
	}
	if waited := d - time.Duration(cancelled.Load()); waited > guard.ReuseSettleWait/2 {
		t.Errorf("answered %v after its context was cancelled, want at once", waited)
	}
}

// A hammer: 20 requests of one step-up (one session token, one right
// code) at once, a few rounds: each round exactly one renews the session,
// every other ends as a lost race (login_expired), and no one is told of
// a reuse or counted a failure.
func TestStepUpDoubleSubmitHammer(t *testing.T) {
	f := newReauthFixture(t, func(c *guard.Config) {
		// Room for 20 reservations at once: in-flight attempts count.
		c.AccountLimit = guard.DefaultAccountLimit
		c.AccountLimit.Max = 100
	})
	p, token := f.p, f.token
	before := len(f.events(t, audit.Reauthenticated))
	const n, rounds = 20, 3
	for round := range rounds {
		proof := guard.Proof{Password: ownerPW, TOTP: f.code(t, f.secret)}
		tokens, errs := make([]string, n), make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				tokens[i], _, errs[i] = f.g.Reauthenticate(f.ctx, p, token, proof)
			})
		}
		close(start)
		wg.Wait()
		won := ""
		for i, err := range errs {
			switch {
			case err == nil:
				if won != "" {
					t.Errorf("round %d: more than one step-up succeeded", round)
				}
				won = tokens[i]
			case !errors.Is(err, guard.ErrUnauthenticated):
				t.Errorf("round %d, step-up %d: %v, want ErrUnauthenticated (or success)", round, i, err)
			}
		}
		if won == "" {
			t.Fatalf("round %d: no step-up succeeded", round)
		}
		np, err := f.g.Authenticate(f.ctx, won)
		if err != nil {
			t.Fatalf("round %d: the renewed session: %v", round, err)
		}
		np.IP, np.UserAgent = p.IP, p.UserAgent
		p, token = np, won
		f.clock.Advance(30 * time.Second)
	}
	got := f.stepUpFailures(t, before)
	if len(got) != rounds*(n-1) {
		t.Errorf("%d session.reauthenticated failures, want %d", len(got), rounds*(n-1))
	}
	for _, r := range got {
		if r != guard.ReasonLoginExpired {
			t.Errorf("session.reauthenticated failures %q, want every one %q", got, guard.ReasonLoginExpired)
			break
		}
	}
	if c := f.failures(t, f.user.ID); c != 0 {
		t.Errorf("%d failures, want none", c)
	}
	if c := f.reuseNotices(); c != 0 {
		t.Errorf("%d reuse notices, want none", c)
	}
}
