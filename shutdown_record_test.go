package guard_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// lookupAfterEnd is a user store whose UserByEmail, once armed, waits
// until its context ends and then answers all the same, as a store that
// does not watch its context would: a ForgotPassword's look-up that hands
// its email on after a Shutdown cut it short.
type lookupAfterEnd struct {
	auth.UserStore
	armed   atomic.Bool
	started chan struct{}
}

func (s *lookupAfterEnd) UserByEmail(ctx context.Context, tenant, email string) (auth.User, error) {
	if s.armed.Load() {
		s.started <- struct{}{}
		<-ctx.Done()
		ctx = context.Background()
	}
	return s.UserStore.UserByEmail(ctx, tenant, email)
}

// A reset request whose look-up hands its email on after a Shutdown's
// context ended is on record: password.reset_requested, failed, reason
// send_failed, Meta dropped, as one whose email found no slot. The
// look-up's context has ended by then, and the audit log refuses a record
// under an ended context: it used to go unrecorded.
func TestShutdownRecordsTheDroppedResetMail(t *testing.T) {
	s := newCtxSender(func(string) bool { return true })
	var users *lookupAfterEnd
	f := newFixture(t, func(c *guard.Config) {
		users = &lookupAfterEnd{UserStore: c.Stores.Users, started: make(chan struct{}, 1)}
		c.Stores.Users = users
		c.Recovery = guard.RecoveryConfig{Email: s, BaseURL: "https://app.example.test",
			Limits: guard.LinkLimits{PerAccount: 1000, PerDestination: 1000, PerIP: 1000}}
	})
	t.Cleanup(func() { s.release(); f.g.Close() })
	f.createUser(t, adaEmail, ownerPW)
	users.armed.Store(true)
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5"}); err != nil {
		t.Fatal(err)
	}
	<-users.started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := shutdownWithin(t, f.g, ctx, s); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if n := f.g.DroppedResetMails(); n != 1 {
		t.Errorf("DroppedResetMails = %d, want 1", n)
	}
	var got []audit.Event
	for _, e := range f.events(t, audit.PasswordResetRequested) {
		if e.Outcome == audit.Failure && e.Reason == "send_failed" && e.Meta["dropped"] == "true" {
			got = append(got, e)
		}
	}
	if len(got) != 1 {
		t.Errorf("%d password.reset_requested send_failed/dropped events, want 1", len(got))
	}
}
