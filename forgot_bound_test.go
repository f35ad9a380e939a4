package guard_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
)

// gateSender holds every email until open is closed, and counts the sends
// in flight, the most ever in flight at once and the sends done.
type gateSender struct {
	open          chan struct{}
	closeOnce     sync.Once
	mu            sync.Mutex
	in, peak, out int
}

func (s *gateSender) SendEmail(_ context.Context, _ mfa.Message) error {
	s.mu.Lock()
	s.in++
	s.peak = max(s.peak, s.in)
	s.mu.Unlock()
	<-s.open
	s.mu.Lock()
	s.in--
	s.out++
	s.mu.Unlock()
	return nil
}

func (s *gateSender) release() { s.closeOnce.Do(func() { close(s.open) }) }

func (s *gateSender) counts() (in, peak int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.in, s.peak
}

// sent returns the number of sends done.
func (s *gateSender) sent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out
}

// waitsForSlot calls call, the call name, with every background slot
// taken by a send the gate holds: it must wait, then return nil once the
// gate opens (waitsForSlot opens it) and the slots come free.
func (s *gateSender) waitsForSlot(t testing.TB, name string, call func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	waitsUntil(t, name, done, s.release)
}

// waitsUntil checks that a call, name, whose error done will carry, is
// still waiting 50 ms on, then calls release and checks that the call
// returns nil soon after.
func waitsUntil(t testing.TB, name string, done <-chan error, release func()) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v) with every slot taken, want it to wait", name, err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s once slots were free: %v", name, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still waiting once slots were free", name)
	}
}

// waitInFlight waits, ten seconds at most, for n sends in flight.
func (s *gateSender) waitInFlight(t testing.TB, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if in, _ := s.counts(); in == n {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%d sends in flight, want %d", in, n)
		}
	}
}

// gateUsers holds every look-up of a user by email, once on is set, until
// open is closed, and counts the look-ups in flight and the most ever in
// flight at once.
type gateUsers struct {
	auth.UserStore
	*gateSender
	on atomic.Bool
}

func (u *gateUsers) UserByEmail(ctx context.Context, tenant, email string) (auth.User, error) {
	if u.on.Load() {
		_ = u.SendEmail(ctx, mfa.Message{})
	}
	return u.UserStore.UserByEmail(ctx, tenant, email)
}

// A flood of ForgotPassword requests holds at most MaxBackgroundResets
// background look-ups at once: with that many stuck on a slow store, the
// next request waits for a slot, and gives up with ErrUnavailable (its
// context's error) when its context ends, the same answer for an address
// with an account and one without.
func TestForgotPasswordBackgroundBounded(t *testing.T) {
	const maxResets = guard.MaxBackgroundResets
	var gate *gateUsers
	f := newFixture(t, func(c *guard.Config) {
		gate = &gateUsers{UserStore: c.Stores.Users, gateSender: &gateSender{open: make(chan struct{})}}
		c.Stores.Users = gate
		c.Recovery = guard.RecoveryConfig{Email: &outbox{}, BaseURL: "https://app.example.test",
			Limits: guard.LinkLimits{PerAccount: 1000, PerDestination: 1000, PerIP: 1000}}
	})
	t.Cleanup(func() { gate.release(); f.g.Close() })
	f.createUser(t, "ada@example.test", ownerPW)
	gate.on.Store(true)
	forgot := func(ctx context.Context, email string) error {
		return f.g.ForgotPassword(ctx, guard.ForgotRequest{Tenant: tenantID, Email: email, IP: "203.0.113.5"})
	}

	for i := range maxResets {
		if err := forgot(f.ctx, "ada@example.test"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	gate.waitInFlight(t, maxResets)

	// Every slot is taken: the next requests wait, until their context ends.
	var answers []string
	for _, email := range []string{"ada@example.test", "nobody@example.test"} {
		ctx, cancel := context.WithTimeout(f.ctx, 50*time.Millisecond)
		err := forgot(ctx, email)
		cancel()
		if !errors.Is(err, guard.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ForgotPassword(%s) with every slot taken = %v, want ErrUnavailable and DeadlineExceeded", email, err)
		}
		answers = append(answers, errString(err))
	}
	if answers[0] != answers[1] {
		t.Errorf("answers differ for an address with an account and one without: %q, %q", answers[0], answers[1])
	}
	if in, _ := gate.counts(); in != maxResets {
		t.Errorf("%d look-ups in flight after the refused requests, want %d", in, maxResets)
	}

	// One that may wait gets a slot once the look-ups end.
	gate.waitsForSlot(t, "ForgotPassword", func() error { return forgot(f.ctx, "ada@example.test") })
	f.g.Close()
	if _, peak := gate.counts(); peak > maxResets {
		t.Errorf("%d look-ups at once, want at most %d", peak, maxResets)
	}
}

// The background slots tell nothing about the addresses earlier requests
// named: mails stuck on a slow mail server (sent only for an address
// with an account) do not hold them, so a request after a burst for an
// address with an account gets a slot as one after a burst for an
// address without does. Were the slot held while the mail is sent, the
// next request would wait only after the burst for the account: an
// account enumeration oracle.
func TestForgotPasswordSlotsTellNothing(t *testing.T) {
	for _, burst := range []string{"ada@example.test", "nobody@example.test"} {
		gate := &gateSender{open: make(chan struct{})}
		f := newFixture(t, func(c *guard.Config) {
			c.Recovery = guard.RecoveryConfig{Email: gate, BaseURL: "https://app.example.test",
				Limits: guard.LinkLimits{PerAccount: 1000, PerDestination: 1000, PerIP: 1000}}
		})
		f.createUser(t, "ada@example.test", ownerPW)
		forgot := func(ctx context.Context, email string) error {
			return f.g.ForgotPassword(ctx, guard.ForgotRequest{Tenant: tenantID, Email: email, IP: "203.0.113.5"})
		}
		for i := range guard.MaxBackgroundResets {
			if err := forgot(f.ctx, burst); err != nil {
				t.Fatalf("request %d for %s: %v", i, burst, err)
			}
		}
		if burst == "ada@example.test" {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				if in, _ := gate.counts(); in == guard.MaxBackgroundResets {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("%d sends in flight, want %d", in, guard.MaxBackgroundResets)
				}
			}
		}
		ctx, cancel := context.WithTimeout(f.ctx, 2*time.Second)
		err := forgot(ctx, "probe@example.test")
		cancel()
		if err != nil {
			t.Errorf("after %d requests for %s (mails stuck), the next request: %v, want nil", guard.MaxBackgroundResets, burst, err)
		}
		gate.release()
		f.g.Close()
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
