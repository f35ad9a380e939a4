package guard_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

// ctxSender is a mail server that holds the emails to the addresses hold
// reports true for until their context ends (then it returns the
// context's error, nothing sent) or open is closed, and sends the others
// at once. It keeps every email sent and counts the sends in flight.
type ctxSender struct {
	hold      func(to string) bool
	open      chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	in        int
	mail      []mfa.Message
}

func newCtxSender(hold func(to string) bool) *ctxSender {
	return &ctxSender{hold: hold, open: make(chan struct{})}
}

func (s *ctxSender) SendEmail(ctx context.Context, m mfa.Message) error {
	if s.hold(m.To) {
		s.mu.Lock()
		s.in++
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.in--
			s.mu.Unlock()
			return ctx.Err()
		case <-s.open:
		}
		s.mu.Lock()
		s.in--
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.mail = append(s.mail, m)
	s.mu.Unlock()
	return nil
}

func (s *ctxSender) release() { s.closeOnce.Do(func() { close(s.open) }) }

func (s *ctxSender) counts() (in, sent int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.in, len(s.mail)
}

// waitInFlight waits, ten seconds at most, for n sends in flight.
func (s *ctxSender) waitInFlight(t testing.TB, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if in, _ := s.counts(); in == n {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%d sends in flight, want %d", in, n)
		}
	}
}

// shutdownWithin runs Shutdown with ctx and returns its error, failing the
// test when it has not returned within 5 s (then the sender is released,
// so that the test ends).
func shutdownWithin(t *testing.T, g *guard.Guard, ctx context.Context, s *ctxSender) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- g.Shutdown(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Errorf("Shutdown has not returned 5s after it began, its context ending after 100ms")
		s.release()
		return <-done
	}
}

// closesAtOnce checks that a Close returns within a second.
func closesAtOnce(t *testing.T, g *guard.Guard) {
	t.Helper()
	done := make(chan struct{})
	go func() { g.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Error("Close after Shutdown has not returned in 1s, want it at once")
		<-done
	}
}

// heldQueued is the number of notices heldNotices queues behind the
// sends the mail server holds.
const heldQueued = 3

// heldNotices returns an MFA fixture whose mail server holds every send
// until its context ends (or the server is released), with
// MaxNoticesPerRecipient notices to one address being sent and
// heldQueued more queued behind them, and DroppedNotices before them.
func heldNotices(t *testing.T) (*mfaFixture, *ctxSender, int64) {
	t.Helper()
	s := newCtxSender(func(string) bool { return true })
	f := newMFAFixture(t, func(c *guard.Config) { c.Recovery.Email = s })
	t.Cleanup(func() { s.release(); f.g.Close() })
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	ada := f.createUser(t, adaEmail, ownerPW)
	f.g.Close() // nothing of the set-up left in flight
	before := f.g.DroppedNotices()
	for range perRecipient + heldQueued {
		if err := f.g.ExpirePassword(f.ctx, owner, tenantID, ada.ID); err != nil {
			t.Fatal(err)
		}
	}
	s.waitInFlight(t, perRecipient)
	return f, s, before
}

// A Shutdown whose context ends while a slow mail server holds notices to
// one address (MaxNoticesPerRecipient sends, more queued behind them)
// cancels the sends, drops the queued notices and those cancelled, counts
// them in DroppedNotices, and returns the context's error once the sends
// have returned: nothing is sent after it returns, and a later Close has
// nothing left to wait for.
func TestShutdownDropsNotices(t *testing.T) {
	f, s, before := heldNotices(t)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := shutdownWithin(t, f.g, ctx, s); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if in, sent := s.counts(); in != 0 || sent != 0 {
		t.Errorf("%d sends in flight and %d sent when Shutdown returned, want none", in, sent)
	}
	if n := f.g.DroppedNotices() - before; n != perRecipient+heldQueued {
		t.Errorf("DroppedNotices grew by %d, want %d (%d cancelled sends, %d queued)", n, perRecipient+heldQueued, perRecipient, heldQueued)
	}
	time.Sleep(100 * time.Millisecond)
	if in, sent := s.counts(); in != 0 || sent != 0 {
		t.Errorf("%d sends in flight and %d sent after Shutdown returned, want none", in, sent)
	}
	closesAtOnce(t, f.g)
	if got := f.g.DroppedResetMails(); got != 0 {
		t.Errorf("DroppedResetMails = %d, want 0", got)
	}
}

// The same for ForgotPassword's emails: those being sent when Shutdown's
// context ends are cancelled and counted in DroppedResetMails.
func TestShutdownDropsResetMails(t *testing.T) {
	s := newCtxSender(func(string) bool { return true })
	f := newFixture(t, func(c *guard.Config) {
		c.Recovery = guard.RecoveryConfig{Email: s, BaseURL: "https://app.example.test",
			Limits: guard.LinkLimits{PerAccount: 1000, PerDestination: 1000, PerIP: 1000}}
	})
	t.Cleanup(func() { s.release(); f.g.Close() })
	f.createUser(t, adaEmail, ownerPW)

	const mails = 3
	for i := range mails {
		if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5"}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	s.waitInFlight(t, mails)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := shutdownWithin(t, f.g, ctx, s); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if n := f.g.DroppedResetMails(); n != mails {
		t.Errorf("DroppedResetMails = %d, want %d (the cancelled sends)", n, mails)
	}
	if n := f.g.DroppedNotices(); n != 0 {
		t.Errorf("DroppedNotices = %d, want 0", n)
	}
	time.Sleep(100 * time.Millisecond)
	if in, sent := s.counts(); in != 0 || sent != 0 {
		t.Errorf("%d sends in flight and %d sent after Shutdown returned, want none", in, sent)
	}
	closesAtOnce(t, f.g)
}

// Shutdown with a context that does not end is Close: it waits for the
// sends under way and the notices queued behind them, which all go out,
// and returns nil.
func TestShutdownWithoutDeadlineIsClose(t *testing.T) {
	f, s, before := heldNotices(t)
	done := make(chan error, 1)
	go func() { done <- f.g.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while the mail server holds sends", err)
	case <-time.After(100 * time.Millisecond):
	}
	s.release()
	if err := <-done; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if _, sent := s.counts(); sent != perRecipient+heldQueued {
		t.Errorf("%d notices sent by the time Shutdown returned, want %d", sent, perRecipient+heldQueued)
	}
	if n := f.g.DroppedNotices() - before; n != 0 {
		t.Errorf("DroppedNotices grew by %d, want 0", n)
	}
}

// Notices caused from many goroutines while a Shutdown runs, its context
// ending once they are all caused: no panic, nothing sent after Shutdown
// returns, and every notice caused is either sent or counted dropped.
// The mail server holds the notices to half the addresses, and sends the
// others at once. Under -race.
func TestShutdownHammer(t *testing.T) {
	s := newCtxSender(func(to string) bool { return to[len("u")]%2 == 0 })
	f := newMFAFixture(t, func(c *guard.Config) { c.Recovery.Email = s })
	t.Cleanup(func() { s.release(); f.g.Close() })
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	var users []guard.User
	for i := range 24 {
		users = append(users, f.createUser(t, "u"+strconv.Itoa(i%10)+"x"+strconv.Itoa(i)+"@example.test", ownerPW))
	}
	f.g.Close()
	_, sentBefore := s.counts()
	droppedBefore := f.g.DroppedNotices()

	const callers, calls = 16, 12
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shut := make(chan error, 1)
	started := make(chan struct{})
	var startOnce sync.Once
	go func() { <-started; shut <- f.g.Shutdown(ctx) }()

	var wg sync.WaitGroup
	var mu sync.Mutex
	caused := 0
	for c := range callers {
		wg.Go(func() {
			for i := range calls {
				if i == calls/3 {
					startOnce.Do(func() { close(started) })
				}
				if err := f.g.ExpirePassword(f.ctx, owner, tenantID, users[(c*calls+i)%len(users)].ID); err != nil {
					t.Errorf("ExpirePassword: %v", err)
					continue
				}
				mu.Lock()
				caused++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	select {
	case err := <-shut:
		// Possible only if nothing was held when Shutdown began.
		t.Logf("Shutdown returned %v before its context ended", err)
	default:
		cancel()
		select {
		case err := <-shut:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Shutdown = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			s.release()
			t.Fatal("Shutdown has not returned 5s after its context ended")
		}
	}
	in, sent := s.counts()
	if in != 0 {
		t.Errorf("%d sends in flight when Shutdown returned, want none", in)
	}
	dropped := int(f.g.DroppedNotices() - droppedBefore)
	if sent-sentBefore+dropped != caused {
		t.Errorf("%d notices sent and %d dropped, want %d in all (those caused)", sent-sentBefore, dropped, caused)
	}
	time.Sleep(100 * time.Millisecond)
	if _, now := s.counts(); now != sent {
		t.Errorf("%d notices sent after Shutdown returned, want none", now-sent)
	}
}
