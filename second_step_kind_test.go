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
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/memstore"
)

// lockingThrottle refuses every account while lock is set (as a locked
// account is refused), and fails as toggledThrottle does.
type lockingThrottle struct {
	toggledThrottle
	lock atomic.Bool
}

func (s *lockingThrottle) ReserveAll(ctx context.Context, now time.Time, keys []auth.ThrottleKey) ([]auth.Reservation, error) {
	if !s.lock.Load() {
		return s.toggledThrottle.ReserveAll(ctx, now, keys)
	}
	res := make([]auth.Reservation, len(keys))
	for i := range res[:len(res)-1] {
		res[i].Allowed = true // the IP, before the account
	}
	return res, nil
}

// A second step refused before its code is looked at (the account or IP
// locked, the throttle store down) is recorded as mfa.failed with the
// kind of factor it was for, as the other refusals of a code are: known
// from the method (an authenticator app's code, a recovery code) or the
// factor being confirmed. CompleteLogin used to record these without a
// kind.
func TestSecondStepRefusedBeforeTheCodeRecordsItsKind(t *testing.T) {
	th := &lockingThrottle{}
	f := newMFAFixture(t, func(c *guard.Config) {
		th.Throttle = c.Stores.Throttle.(*memstore.Throttle)
		c.Stores.Throttle = th
	})
	f.createUser(t, "ann@acme.test", ownerPW)
	_, p := f.signIn(t, "ann@acme.test", ownerPW)
	secret, codes := f.enrolTOTP(t, p)
	fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, "ann.backup@acme.test", "")
	if err != nil {
		t.Fatal(err)
	}
	refused := func(name string, kind mfa.Kind, call func() error) {
		t.Helper()
		for _, c := range []struct {
			how    string
			flag   *atomic.Bool
			reason string
			err    error
		}{
			{"locked", &th.lock, guard.ReasonLocked, guard.ErrInvalidCode},
			{"with the throttle store down", &th.reserve, guard.ReasonUnavailable, guard.ErrUnavailable},
		} {
			before := len(f.events(t, audit.MFAFailed))
			c.flag.Store(true)
			err := call()
			c.flag.Store(false)
			if !errors.Is(err, c.err) {
				t.Errorf("%s %s: %v, want %v", name, c.how, err, c.err)
			}
			var got []string
			for _, e := range f.events(t, audit.MFAFailed)[before:] {
				got = append(got, e.Reason+"/"+e.Meta["kind"])
			}
			if want := c.reason + "/" + string(kind); len(got) != 1 || got[0] != want {
				t.Errorf("%s %s: new mfa.failed events (reason/kind) %q, want one %q", name, c.how, got, want)
			}
		}
	}
	refused("ConfirmFactor", mfa.KindEmail, func() error {
		_, err := f.g.ConfirmFactor(f.ctx, p, fa.ID, f.out.lastCodeTo(t, "ann.backup@acme.test"))
		return err
	})
	f.clock.Advance(31 * time.Second)
	pend := f.pending(t, "ann@acme.test", ownerPW)
	refused("CompleteLogin with an authenticator app's code", mfa.KindTOTP, func() error {
		_, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret))
		return err
	})
	refused("CompleteLogin with a recovery code", "recovery", func() error {
		_, err := f.complete(guard.MethodRecovery, pend.Token, codes[0])
		return err
	})

	refused("CompletePendingEnrolment", mfa.KindTOTP, f.bobSentToEnrol(t))
}
