package sessiontest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
)

// runParityAudit runs the cases the store-parity audit added: points on
// which the backends were found to behave differently. They drive a
// session.Manager over the store, because the difference is in how the
// Manager uses the optional session.LookupToucher (pgstore, sqlitestore
// and redisstore have it; memstore does not).
func runParityAudit(t *testing.T, newStore func(t *testing.T) Store) {
	t.Helper()
	t.Run("AuditParity", func(t *testing.T) {
		t.Run("TightenedIdleExpiryNotUndoneByAFailedDelete", func(t *testing.T) {
			auditTightenedIdle(t, newStore(t), failedDelete)
		})
		t.Run("TightenedIdleExpiryNotUndoneByAConcurrentRequest", func(t *testing.T) {
			auditTightenedIdle(t, newStore(t), concurrentRequest)
		})
		t.Run("TightenedIdleExpiryNotUndoneByAFailedPolicyRead", func(t *testing.T) {
			auditTightenedIdle(t, newStore(t), failedLimits)
		})
		for _, every := range []time.Duration{45 * time.Second, 4 * time.Minute} {
			t.Run("RefusedRequestsDoNotKeepSessionAlive/every "+every.String(), func(t *testing.T) {
				auditRefusedTouch(t, newStore(t), every)
			})
		}
		t.Run("RefusalSparesALaterTouch", func(t *testing.T) {
			auditRefusalSparesLaterTouch(t, newStore(t))
		})
	})
}

// How the first request of auditTightenedIdle goes wrong.
type idleMishap int

const (
	failedDelete      idleMishap = iota // the Delete of the expired session fails
	concurrentRequest                   // another request runs just before that Delete
	failedLimits                        // the Limits cannot be read (the facade's policy read fails)
)

// hookStore calls onDelete (once) before each Delete it forwards, and
// returns its error instead when it is not nil.
type hookStore struct {
	Store
	onDelete func() error
}

func (h *hookStore) Delete(ctx context.Context, x session.Hash) (session.Session, error) {
	if f := h.onDelete; f != nil {
		h.onDelete = nil
		if err := f(); err != nil {
			return session.Session{}, err
		}
	}
	return h.Store.Delete(ctx, x)
}

// hookToucher is a hookStore whose store has LookupTouch, which it
// forwards, so that the Manager uses it as it would the store itself.
type hookToucher struct {
	*hookStore
	lt session.LookupToucher
}

func (h hookToucher) Untouch(ctx context.Context, x session.Hash, touched, prev time.Time) error {
	return h.lt.Untouch(ctx, x, touched, prev)
}

func (h hookToucher) LookupTouch(ctx context.Context, x session.Hash, now time.Time, interval, maxGap time.Duration) (session.Session, error) {
	return h.lt.LookupTouch(ctx, x, now, interval, maxGap)
}

// auditTightenedIdle: a session with a day's idle timeout has been idle
// for 30 minutes when the tenant's policy (the Limits the facade passes)
// says 10. AuthenticateHashWithin must expire it; so must every later
// request, since no request was served in between. The audit found that
// with a LookupToucher the Manager touched the session (LastSeen = now)
// before it applied the Limits, and relied on the Delete that followed:
// if that Delete failed (a store error, which Manager.expired ignored),
// or if another request of the session ran between the touch and the
// Delete (a page's parallel requests), the refreshed LastSeen made the
// session live again under the tightened idle timeout. So did a first
// request refused because the Limits could not be read (the facade's
// limits read the tenant's policy): it was refused, yet it touched the
// session. (LookupTouch now leaves a session idle for Config.MaxTouchGap
// or more alone, and the Manager touches it only once the Limits pass.)
func auditTightenedIdle(t *testing.T, st Store, mishap idleMishap) {
	ctx := t.Context()
	s := mk("idle", "t", "u", base)
	if _, err := st.Create(ctx, s, unlimited); err != nil {
		t.Fatal(err)
	}
	now := base.Add(30 * time.Minute)
	hs := &hookStore{Store: st}
	var managed session.Store = hs
	if lt, ok := st.(session.LookupToucher); ok {
		managed = hookToucher{hs, lt}
	}
	m, err := session.New(session.Config{Store: managed, Index: st, Now: func() time.Time { return now },
		Unlimited: true, TouchInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	policy := func(session.Session) (session.Limits, error) {
		return session.Limits{IdleTimeout: 10 * time.Minute}, nil
	}
	first, want := policy, session.ErrExpired
	var other error
	switch mishap {
	case concurrentRequest:
		// Another request of the session arrives while the first is
		// about to delete it.
		hs.onDelete = func() error {
			_, other = m.AuthenticateHashWithin(ctx, s.Hash, policy)
			return nil
		}
	case failedDelete:
		// The Manager reports a failed Delete as the store error it is
		// (the request is denied as on any store failure), not as
		// ErrExpired.
		errDelete := errors.New("store unavailable")
		hs.onDelete = func() error { return errDelete }
		want = errDelete
	case failedLimits:
		errPolicy := errors.New("policy unavailable")
		first, want = func(session.Session) (session.Limits, error) { return session.Limits{}, errPolicy }, errPolicy
	}
	if _, err := m.AuthenticateHashWithin(ctx, s.Hash, first); !errors.Is(err, want) {
		t.Fatalf("first request after 30 idle minutes under a 10-minute policy: %v, want %v", err, want)
	}
	if mishap == concurrentRequest {
		if other == nil {
			t.Errorf("a request made while the expired session was being deleted was authenticated")
		}
		return
	}
	now = now.Add(time.Second)
	if got, err := m.AuthenticateHashWithin(ctx, s.Hash, policy); err == nil {
		t.Errorf("the request after the first (refused) one was authenticated: the expired session lives on (LastSeen %v)", got.LastSeen)
	}
}

// auditRefusedTouch: requests of a session (a stolen cookie's, say) that
// admit refuses once the session is found (the facade: a client outside
// its tenant's allow-list), one every `every`, must not keep it alive:
// past the 10-minute idle timeout of its limits it is expired. The audit
// found that the check touched the session before the refusal: on a
// LookupToucher in its one call (under MaxTouchGap) or by a second one
// (over it), and on other stores by Touch. (Manager.AuthenticateHashAdmit
// now calls admit before Touch, and takes back with Untouch the touch a
// LookupTouch made.)
func auditRefusedTouch(t *testing.T, st Store, every time.Duration) {
	ctx := t.Context()
	s := mk("refused", "t", "u", base)
	if _, err := st.Create(ctx, s, unlimited); err != nil {
		t.Fatal(err)
	}
	now := base
	m, err := session.New(session.Config{Store: st, Index: st, Now: func() time.Time { return now }, Unlimited: true})
	if err != nil {
		t.Fatal(err)
	}
	policy := func(session.Session) (session.Limits, error) {
		return session.Limits{IdleTimeout: 10 * time.Minute}, nil
	}
	refused := errors.New("client not allowed")
	admit := func(session.Session) error { return refused }
	for now.Add(every).Before(base.Add(10 * time.Minute)) {
		now = now.Add(every)
		if _, err := m.AuthenticateHashAdmit(ctx, s.Hash, policy, admit); !errors.Is(err, refused) {
			t.Fatalf("refused request at +%v: %v, want the refusal", now.Sub(base), err)
		}
	}
	now = base.Add(10*time.Minute + time.Second)
	if got, err := m.AuthenticateHashWithin(ctx, s.Hash, policy); !errors.Is(err, session.ErrExpired) {
		t.Errorf("request past the idle timeout, with only refused requests since the last use: %v (LastSeen %v), want ErrExpired",
			err, got.LastSeen)
	}
}

// auditRefusalSparesLaterTouch: a touch made while a refused request runs
// (a concurrent request let through, a second later) is not undone when
// the refused request takes its own back.
func auditRefusalSparesLaterTouch(t *testing.T, st Store) {
	ctx := t.Context()
	s := mk("spared", "t", "u", base)
	if _, err := st.Create(ctx, s, unlimited); err != nil {
		t.Fatal(err)
	}
	now := base.Add(45 * time.Second)
	m, err := session.New(session.Config{Store: st, Index: st, Now: func() time.Time { return now }, Unlimited: true})
	if err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Second)
	admit := func(session.Session) error {
		if err := st.Touch(ctx, s.Hash, later); err != nil {
			t.Fatal(err)
		}
		return errors.New("client not allowed")
	}
	if _, err := m.AuthenticateHashAdmit(ctx, s.Hash, nil, admit); err == nil {
		t.Fatal("refused request let through")
	}
	got, err := st.Lookup(ctx, s.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastSeen.Equal(later) {
		t.Errorf("LastSeen %v after the refusal, want the later touch, %v", got.LastSeen, later)
	}
}
