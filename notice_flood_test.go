package guard_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

const (
	perRecipient = guard.MaxNoticesPerRecipient
	queuedPer    = guard.MaxQueuedNotices
	slotWait     = guard.NoticeSlotWait
)

// mailGate is a slow mail server: once on, it holds every email until
// open is closed. It counts the sends in flight per address and the most
// ever in flight at once per address, and keeps every email sent.
type mailGate struct {
	on        atomic.Bool
	open      chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	in, peak  map[string]int
	inAll     int // in flight to all addresses
	peakOfAll int // the most inAll ever was
	mail      []mfa.Message
}

func newMailGate() *mailGate {
	return &mailGate{open: make(chan struct{}), in: map[string]int{}, peak: map[string]int{}}
}

func (s *mailGate) SendEmail(_ context.Context, m mfa.Message) error {
	s.mu.Lock()
	s.in[m.To]++
	s.inAll++
	s.peakOfAll = max(s.peakOfAll, s.inAll)
	s.peak[m.To] = max(s.peak[m.To], s.in[m.To])
	s.mu.Unlock()
	if s.on.Load() {
		<-s.open
	}
	s.mu.Lock()
	s.in[m.To]--
	s.inAll--
	s.mail = append(s.mail, m)
	s.mu.Unlock()
	return nil
}

func (s *mailGate) release() { s.closeOnce.Do(func() { close(s.open) }) }

// inFlight returns the sends in flight to addr ("" for all).
func (s *mailGate) inFlight(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if addr == "" {
		return s.inAll
	}
	return s.in[addr]
}

func (s *mailGate) peakTo(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak[addr]
}

// peakAll returns the most sends ever in flight at once, to any address.
func (s *mailGate) peakAll() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakOfAll
}

// sent returns the number of emails sent.
func (s *mailGate) sent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mail)
}

// sentTo returns the subjects of the emails sent to addr.
func (s *mailGate) sentTo(addr string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.mail {
		if m.To == addr {
			out = append(out, m.Subject)
		}
	}
	return out
}

// waitInFlight waits, ten seconds at most, for n sends in flight to addr
// ("" for all).
func (s *mailGate) waitInFlight(t testing.TB, addr string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if in := s.inFlight(addr); in == n {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%d sends in flight to %q, want %d", in, addr, n)
		}
	}
}

// newGatedFixture returns an MFA fixture whose security notices go to a
// mailGate (on: holding them), with an owner signed in, and a cleanup
// that opens the gate and closes the Guard.
func newGatedFixture(t *testing.T) (*mfaFixture, *mailGate, guard.Principal) {
	t.Helper()
	gate := newMailGate()
	f := newMFAFixture(t, manySessions, func(c *guard.Config) { c.Recovery.Email = gate })
	t.Cleanup(func() { gate.release(); f.g.Close() })
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	f.g.Close() // the owner's sign-in mails nothing, but be sure
	gate.on.Store(true)
	return f, gate, owner
}

// fillNoticePool takes every background notice slot with a send the gate
// holds: MaxBackgroundNotices / perRecipient users, each expired (and so
// mailed) perRecipient times.
func (f *mfaFixture) fillNoticePool(t *testing.T, gate *mailGate, owner guard.Principal) {
	t.Helper()
	for i := range guard.MaxBackgroundNotices / perRecipient {
		u := f.createUser(t, "filler"+strconv.Itoa(i)+"@example.test", ownerPW)
		for range perRecipient {
			if err := f.g.ExpirePassword(f.ctx, owner, tenantID, u.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	gate.waitInFlight(t, "", guard.MaxBackgroundNotices)
}

// changeEmailCancelled changes ada's address (p) with a context cancelled
// once the change is on record, while its notice may be waiting for a
// slot, and returns a channel with the call's error.
func (f *mfaFixture) changeEmailCancelled(t *testing.T, p guard.Principal) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- f.g.ChangeEmail(ctx, p, "mallory.inbox@evil.test") }()
	for deadline := time.Now().Add(10 * time.Second); len(f.events(t, audit.UserEmailChanged)) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("ChangeEmail never recorded the change")
		}
	}
	cancel() // the client drops the connection
	return done
}

// REVIEW-D-1: one account floods notices (a loop of
// RegenerateRecoveryCodes on its own account, each call's context short,
// while the mail server is slow); then, with a stolen session, the
// attacker changes the victim's address and drops the connection. The
// notice to the victim's old address must go out all the same: the flood
// holds no more than its share of the slots, and the caller's cancellation
// does not drop a notice. The flood's own notices beyond its share wait in
// a queue (the newest kept), and those pushed out are counted.
func TestNoticeOfAnotherSurvivesAFloodAndACancel(t *testing.T) {
	f, gate, _ := newGatedFixture(t)
	const mallory = "mallory@example.test"
	f.createUser(t, mallory, ownerPW)
	_, mp := f.signIn(t, mallory, ownerPW)
	gate.on.Store(false)
	f.enrolTOTP(t, mp)
	f.g.Close()
	enrolNotices := len(gate.sentTo(mallory))
	gate.on.Store(true)

	const flood = guard.MaxBackgroundNotices + 8
	for i := range flood {
		// A short deadline, ended as the call returns: long enough for
		// the call itself on a loaded machine (20 ms was not, under -race
		// beside other builds), and its notices outlive it all the same.
		ctx, cancel := context.WithTimeout(f.ctx, 2*time.Second)
		if _, err := f.g.RegenerateRecoveryCodes(ctx, mp); err != nil {
			t.Fatalf("RegenerateRecoveryCodes %d: %v", i, err)
		}
		cancel()
	}

	f.createUser(t, adaEmail, ownerPW)
	_, ap := f.signIn(t, adaEmail, ownerPW) // the stolen session
	done := f.changeEmailCancelled(t, ap)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ChangeEmail: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ChangeEmail still waiting for a notice slot")
	}
	gate.waitInFlight(t, adaEmail, 1)
	if in := gate.inFlight(mallory); in != perRecipient {
		t.Errorf("%d of the flood's notices in flight, want %d (its share)", in, perRecipient)
	}

	gate.release()
	f.g.Close()
	if got := gate.sentTo(adaEmail); len(got) != 1 || got[0] != "The email address of your account was changed" {
		t.Errorf("the old address got %q, want the notice of the change", got)
	}
	if n := len(gate.sentTo(mallory)) - enrolNotices; n != perRecipient+queuedPer {
		t.Errorf("%d of the flood's notices sent, want %d (%d in flight and %d queued)", n, perRecipient+queuedPer, perRecipient, queuedPer)
	}
	if n, want := f.g.DroppedNotices(), int64(flood-perRecipient-queuedPer); n != want {
		t.Errorf("DroppedNotices = %d, want %d (the flood's beyond its share and its queue)", n, want)
	}
}

// Many goroutines cause notices to one user at once: no more than
// perRecipient of them are sent at once, the callers do not wait (the
// rest queue, the newest queuedPer kept, the others dropped and counted),
// and a notice to another user gets a slot at once. Close waits for the
// queued notices too.
func TestNoticesPerRecipientCap(t *testing.T) {
	f, gate, owner := newGatedFixture(t)
	bob := f.createUser(t, "bob@example.test", ownerPW)
	ann := f.createUser(t, "ann@example.test", ownerPW)

	const callers = 100
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			if err := f.g.ExpirePassword(f.ctx, owner, tenantID, bob.ID); err != nil {
				t.Errorf("ExpirePassword: %v", err)
			}
		})
	}
	returned := make(chan struct{})
	go func() { wg.Wait(); close(returned) }()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Error("callers flooding one user's notices wait for slots, want them queued (or dropped) at once")
		gate.release()
		<-returned
	}
	gate.waitInFlight(t, bob.Email, perRecipient)

	if err := f.g.ExpirePassword(f.ctx, owner, tenantID, ann.ID); err != nil {
		t.Fatal(err)
	}
	gate.waitInFlight(t, ann.Email, 1)

	gate.release()
	f.g.Close()
	if p := gate.peakTo(bob.Email); p > perRecipient {
		t.Errorf("%d notices to one address sent at once, want at most %d", p, perRecipient)
	}
	if n := len(gate.sentTo(bob.Email)); n != perRecipient+queuedPer {
		t.Errorf("%d notices sent to the flooded address by Close, want %d", n, perRecipient+queuedPer)
	}
	if n := len(gate.sentTo(ann.Email)); n != 1 {
		t.Errorf("%d notices sent to the other address, want 1", n)
	}
	if n, want := f.g.DroppedNotices(), int64(callers-perRecipient-queuedPer); n != want {
		t.Errorf("DroppedNotices = %d, want %d", n, want)
	}
}

// With every slot taken, the call that causes a notice waits for one for
// slotWait, however soon its context is cancelled (the client controls
// that; see TestNoticeWaitEndsAtDeadline for a deadline): a caller whose
// context is cancelled at once still waits, and a notice whose
// caller cancels while it waits goes out when a slot comes free in time.
// Only a notice that found none in slotWait is dropped, and counted; the
// notices queued behind an address's last such notice are dropped with
// it (their calls returned at once).
func TestNoticeWaitOutlivesTheCaller(t *testing.T) {
	f, gate, owner := newGatedFixture(t)
	f.fillNoticePool(t, gate, owner)
	bob := f.createUser(t, "bob@example.test", ownerPW)

	const calls = perRecipient + 2
	took := make([]time.Duration, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			// Cancelled (the client hangs up), without a deadline.
			ctx, cancel := context.WithCancel(f.ctx)
			defer cancel()
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			if err := f.g.ExpirePassword(ctx, owner, tenantID, bob.ID); err != nil {
				t.Errorf("ExpirePassword whose notice found no slot = %v, want nil (the password is expired)", err)
			}
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	waited := 0
	for _, d := range took {
		switch {
		case d > slotWait+2*time.Second:
			t.Errorf("ExpirePassword with every slot taken returned after %v, want %v at most", d, slotWait)
		case d >= slotWait:
			waited++
		}
	}
	if waited != perRecipient {
		t.Errorf("%d of %d calls to one address waited %v for a slot (durations %v), want %d (the rest queued behind them)", waited, calls, slotWait, took, perRecipient)
	}
	if n := f.g.DroppedNotices(); n != calls {
		t.Errorf("DroppedNotices = %d after %d notices found no slot in %v (or were queued behind those), want %d", n, calls, slotWait, calls)
	}

	f.createUser(t, adaEmail, ownerPW)
	_, ap := f.signIn(t, adaEmail, ownerPW)
	// Cancelled, it still waits, and its notice gets the first slot free.
	waitsUntil(t, "ChangeEmail whose caller went away", f.changeEmailCancelled(t, ap), gate.release)
	f.g.Close()
	if got := gate.sentTo(adaEmail); len(got) != 1 {
		t.Errorf("the old address got %q, want the notice of the change", got)
	}
	if got := gate.sentTo(bob.Email); len(got) != 0 {
		t.Errorf("the dropped notices' address got %q, want none", got)
	}
	if n := f.g.DroppedNotices(); n != calls {
		t.Errorf("DroppedNotices = %d at the end, want %d", n, calls)
	}
}

// A lock notice waits for no slot (the wait would be a real account's
// alone), but a flood of other notices cannot drop it: with every slot
// taken it has slots of its own.
func TestLockNoticeHasItsOwnSlots(t *testing.T) {
	f, gate, owner := newGatedFixture(t)
	f.fillNoticePool(t, gate, owner)
	ann := f.createUser(t, "ann@example.test", ownerPW)

	start := time.Now()
	for i := range guard.DefaultAccountLimit.Max {
		_, _ = f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: ann.Email, Password: "wrong guess",
			IP: "198.51.100." + strconv.Itoa(i+1), UserAgent: "probe"})
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the sign-ins that lock an account took %v with every slot taken, want them not to wait for one", d)
	}
	gate.waitInFlight(t, ann.Email, 1)
	gate.release()
	f.g.Close()
	if got := gate.sentTo(ann.Email); len(got) != 1 || got[0] != "Your account was locked" {
		t.Errorf("the locked account got %q, want the lock notice", got)
	}
	if n := f.g.DroppedNotices(); n != 0 {
		t.Errorf("DroppedNotices = %d, want 0", n)
	}
}
