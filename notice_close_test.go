package guard_test

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// Close while callers wait for a notice slot (every one taken by a send
// the slow mail server holds), and while more callers arrive: the callers
// give up at once, their notices (and those queued behind them to the
// same address) dropped and counted, and once Close returns no notice
// goes out, not even when the slots come free. Many goroutines, under
// -race.
func TestCloseEndsNoticeWaits(t *testing.T) {
	f, gate, owner := newGatedFixture(t)
	f.fillNoticePool(t, gate, owner)
	var users []guard.User
	for i := range 8 {
		users = append(users, f.createUser(t, "waiter"+strconv.Itoa(i)+"@example.test", ownerPW))
	}
	expired := len(f.events(t, audit.PasswordExpired))

	// Waiting before Close: perRecipient a user wait for a slot, the rest
	// queue behind them.
	const waiting, arriving = 48, 16
	var wg sync.WaitGroup
	for i := range waiting {
		wg.Go(func() {
			if err := f.g.ExpirePassword(f.ctx, owner, tenantID, users[i%len(users)].ID); err != nil {
				t.Errorf("ExpirePassword: %v", err)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); len(f.events(t, audit.PasswordExpired)) < expired+waiting; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the waiting callers never expired the passwords")
		}
	}
	time.Sleep(50 * time.Millisecond) // into the wait for a slot

	// Arriving as Close begins.
	start := make(chan struct{})
	for i := range arriving {
		wg.Go(func() {
			<-start
			if err := f.g.ExpirePassword(f.ctx, owner, tenantID, users[i%len(users)].ID); err != nil {
				t.Errorf("ExpirePassword: %v", err)
			}
		})
	}
	closed := make(chan struct{})
	go func() {
		close(start)
		f.g.Close()
		close(closed)
	}()

	returned := make(chan struct{})
	go func() { wg.Wait(); close(returned) }()
	select {
	case <-returned:
	case <-time.After(slotWait / 2):
		t.Errorf("callers waiting for a notice slot still wait %v after Close began, want them to give up at once", slotWait/2)
		<-returned
	}
	select {
	case <-closed:
		t.Fatal("Close returned while the mail server holds sends")
	default:
	}

	gate.release()
	<-closed
	sentAtClose := gate.sent()
	if sentAtClose != guard.MaxBackgroundNotices {
		t.Errorf("%d notices sent by the time Close returned, want %d (those sending when it began)", sentAtClose, guard.MaxBackgroundNotices)
	}
	if n := f.g.DroppedNotices(); n != waiting+arriving {
		t.Errorf("DroppedNotices = %d, want %d (every notice that had not started when Close began)", n, waiting+arriving)
	}
	time.Sleep(100 * time.Millisecond)
	if n := gate.sent(); n != sentAtClose {
		t.Errorf("%d notices sent after Close returned, want none", n-sentAtClose)
	}
	for _, u := range users {
		if got := gate.sentTo(u.Email); len(got) != 0 {
			t.Errorf("%s got %q after waiting through Close, want nothing", u.Email, got)
		}
	}
}

// Close while ForgotPassword requests wait for a look-up slot (every one
// taken by a look-up the slow store holds): they give up at once with
// ErrUnavailable, nothing done, and once Close returns nothing is looked
// up or mailed for them, not even when the slots come free.
func TestCloseEndsForgotPasswordWaits(t *testing.T) {
	var gate *gateUsers
	out := &outbox{}
	f := newFixture(t, func(c *guard.Config) {
		gate = &gateUsers{UserStore: c.Stores.Users, gateSender: &gateSender{open: make(chan struct{})}}
		c.Stores.Users = gate
		c.Recovery = guard.RecoveryConfig{Email: out, BaseURL: "https://app.example.test",
			Limits: guard.LinkLimits{PerAccount: 1000, PerDestination: 1000, PerIP: 1000}}
	})
	t.Cleanup(func() { gate.release(); f.g.Close() })
	f.createUser(t, adaEmail, ownerPW)
	gate.on.Store(true)
	forgot := func() error {
		return f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5"})
	}
	for i := range guard.MaxBackgroundResets {
		if err := forgot(); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	gate.waitInFlight(t, guard.MaxBackgroundResets)

	const waiting = 16
	errs := make(chan error, waiting)
	for range waiting {
		go func() { errs <- forgot() }()
	}
	time.Sleep(50 * time.Millisecond) // into the wait for a slot
	closed := make(chan struct{})
	go func() { f.g.Close(); close(closed) }()
	for range waiting {
		select {
		case err := <-errs:
			if !errors.Is(err, guard.ErrUnavailable) {
				t.Errorf("ForgotPassword waiting for a slot when Close began = %v, want ErrUnavailable", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("ForgotPassword still waits for a slot 5s after Close began, want it to give up at once")
		}
	}
	gate.release()
	<-closed
	lookups, mails := gate.sent(), out.count()
	if lookups != guard.MaxBackgroundResets || mails != guard.MaxBackgroundResets {
		t.Errorf("%d look-ups and %d mails by the time Close returned, want %d each (the requests let in before it)", lookups, mails, guard.MaxBackgroundResets)
	}
	time.Sleep(100 * time.Millisecond)
	if n, m := gate.sent(), out.count(); n != lookups || m != mails {
		t.Errorf("%d look-ups and %d mails after Close returned, want none", n-lookups, m-mails)
	}
}
