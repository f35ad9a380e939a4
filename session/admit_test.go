package session_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/session/sessiontest"
)

// admitFixture is a Manager (TouchInterval 30 s, MaxTouchGap 1 min, the
// defaults) over a spy store, with or without LookupToucher, holding one
// session created at the clock's start.
type admitFixture struct {
	m   *session.Manager
	spy *spyStore
	st  sessiontest.Store
	c   *clock
	s   session.Session
}

func newAdmitFixture(t *testing.T, lt bool) *admitFixture {
	t.Helper()
	f := &admitFixture{spy: newSpy(), c: newClock()}
	f.st = f.spy
	if lt {
		f.st = &ltStore{spyStore: f.spy}
	}
	m, err := session.New(session.Config{Store: f.st, Index: f.st, Now: f.c.Now, Unlimited: true})
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	if _, f.s, _, err = m.Create(t.Context(), session.Options{Tenant: "t", UserID: "u"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// lastSeen returns the session's LastSeen as stored.
func (f *admitFixture) lastSeen(t *testing.T) time.Time {
	t.Helper()
	s, err := f.spy.Store.Lookup(t.Context(), f.s.Hash)
	if err != nil {
		t.Fatal(err)
	}
	return s.LastSeen
}

// calls returns the store calls of one request: LookupTouch, Lookup,
// Touch, Untouch.
func (f *admitFixture) calls(request func()) [4]int {
	names := [4]string{"LookupTouch", "Lookup", "Touch", "Untouch"}
	var before, d [4]int
	for i, n := range names {
		before[i] = f.spy.count(n)
	}
	request()
	for i, n := range names {
		d[i] = f.spy.count(n) - before[i]
	}
	return d
}

var policy10 = func(session.Session) (session.Limits, error) {
	return session.Limits{IdleTimeout: 10 * time.Minute}, nil
}

// A request that admit refuses (the facade's: a client outside the
// tenant's allow-list) does not keep its session alive, on either store
// path, under and over MaxTouchGap: on a LookupToucher the touch that its
// one call made is taken back (Untouch, a second call made only then);
// without, no touch is made. admit is called once, after limits, with the
// session as stored before the touch, and its error is returned as it is.
// A request admit lets through costs what it costs under
// AuthenticateHashWithin.
func TestAdmitRefusalDoesNotTouch(t *testing.T) {
	for _, lt := range []bool{false, true} {
		for _, pause := range []time.Duration{45 * time.Second, 2 * time.Minute} {
			t.Run(fmt.Sprintf("LookupToucher=%v/pause %v", lt, pause), func(t *testing.T) {
				f := newAdmitFixture(t, lt)
				refused := errors.New("client not allowed")
				var order []string
				var seen []session.Session
				limits := func(s session.Session) (session.Limits, error) {
					order = append(order, "limits")
					return policy10(s)
				}
				admit := func(s session.Session) error {
					order = append(order, "admit")
					seen = append(seen, s)
					return refused
				}
				f.c.Advance(pause)
				var err error
				d := f.calls(func() { _, err = f.m.AuthenticateHashAdmit(t.Context(), f.s.Hash, limits, admit) })
				if err != refused { // returned as it is, not wrapped
					t.Fatalf("refused request: %v, want admit's error as it is", err)
				}
				if fmt.Sprint(order) != "[limits admit]" || !seen[0].LastSeen.Equal(f.s.LastSeen) {
					t.Errorf("calls %v, admit saw LastSeen %v; want limits then admit, once, with %v", order, seen[0].LastSeen, f.s.LastSeen)
				}
				if got := f.lastSeen(t); !got.Equal(f.s.LastSeen) {
					t.Errorf("a refused request moved LastSeen from %v to %v", f.s.LastSeen, got)
				}
				want := [4]int{0, 1, 0, 0} // Lookup, no Touch
				if lt {
					want = [4]int{1, 0, 0, 0}
					if pause < session.DefaultMaxTouchGap {
						want[3] = 1 // LookupTouch touched: taken back
					}
				}
				if d != want {
					t.Errorf("refused request: %v LookupTouch, Lookup, Touch, Untouch calls; want %v", d, want)
				}

				// Let through, the same request touches, at the cost it
				// has without admit.
				allow := func(session.Session) error { return nil }
				var s session.Session
				d = f.calls(func() { s, err = f.m.AuthenticateHashAdmit(t.Context(), f.s.Hash, policy10, allow) })
				if err != nil || !s.LastSeen.Equal(f.c.Now()) || !f.lastSeen(t).Equal(f.c.Now()) {
					t.Fatalf("allowed request: %v, LastSeen %v; want touched now", err, s.LastSeen)
				}
				want = [4]int{0, 1, 1, 0}
				if lt {
					want = [4]int{1, 0, 0, 0}
					if pause >= session.DefaultMaxTouchGap {
						want[2] = 1
					}
				}
				if d != want {
					t.Errorf("allowed request: %v LookupTouch, Lookup, Touch, Untouch calls; want %v", d, want)
				}
			})
		}
	}
}

// Untouch sets LastSeen back only if it is still the refused request's
// touch: a later touch made meanwhile (a concurrent request's) stays. A
// request let through while the refused one's touch stood does not touch
// (LastSeen was just written) and loses its activity: the documented
// effect.
func TestAdmitUntouchSparesLaterTouch(t *testing.T) {
	t.Run("later touch", func(t *testing.T) {
		f := newAdmitFixture(t, true)
		f.c.Advance(45 * time.Second)
		later := f.c.Now().Add(time.Second)
		refuse := func(session.Session) error {
			if err := f.st.Touch(t.Context(), f.s.Hash, later); err != nil {
				t.Fatal(err)
			}
			return errors.New("refused")
		}
		if _, err := f.m.AuthenticateHashAdmit(t.Context(), f.s.Hash, policy10, refuse); err == nil {
			t.Fatal("refused request let through")
		}
		if got := f.lastSeen(t); !got.Equal(later) {
			t.Errorf("LastSeen %v after the refusal, want the later touch %v kept", got, later)
		}
	})
	t.Run("request let through meanwhile", func(t *testing.T) {
		f := newAdmitFixture(t, true)
		f.c.Advance(45 * time.Second)
		refuse := func(session.Session) error {
			s, err := f.m.AuthenticateHashWithin(t.Context(), f.s.Hash, policy10)
			if err != nil || !s.LastSeen.Equal(f.c.Now()) {
				t.Errorf("request let through during the refused one: %v, LastSeen %v", err, s.LastSeen)
			}
			return errors.New("refused")
		}
		d := f.calls(func() {
			if _, err := f.m.AuthenticateHashAdmit(t.Context(), f.s.Hash, policy10, refuse); err == nil {
				t.Fatal("refused request let through")
			}
		})
		if d != [4]int{2, 0, 0, 1} {
			t.Errorf("%v LookupTouch, Lookup, Touch, Untouch calls; want 2 LookupTouch (one touching) and 1 Untouch", d)
		}
		if got := f.lastSeen(t); !got.Equal(f.s.LastSeen) {
			t.Errorf("LastSeen %v, want %v: as if the request let through had not come", got, f.s.LastSeen)
		}
	})
}

// Every refusal after a touch takes it back: an error from limits, Limits
// refused as an *InputError, an error from admit, also when the request's
// context is cancelled meanwhile (the client hung up). An expired session
// is deleted, not untouched. A failed Untouch is reported as the store
// error it is (the request is refused either way). admit is not called
// for a session that limits refuse or end.
func TestAdmitRefusalsTakeTouchBack(t *testing.T) {
	boom := errors.New("policy store down")
	called := false
	noAdmit := func(session.Session) error { called = true; return nil }
	for _, tc := range []struct {
		name   string
		limits func(session.Session) (session.Limits, error)
		admit  func(ctx context.Context, cancel func()) func(session.Session) error
		check  func(error) bool
	}{
		{"limits error", func(session.Session) (session.Limits, error) { return session.Limits{}, boom }, nil,
			func(err error) bool { return errors.Is(err, boom) }},
		{"limits refused", func(session.Session) (session.Limits, error) { return session.Limits{IdleTimeout: time.Second}, nil }, nil,
			func(err error) bool { ie := new(session.InputError); return errors.As(err, &ie) }},
		{"client hung up", policy10, func(_ context.Context, cancel func()) func(session.Session) error {
			return func(session.Session) error { cancel(); return context.Canceled }
		}, func(err error) bool { return errors.Is(err, context.Canceled) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAdmitFixture(t, true)
			f.c.Advance(45 * time.Second)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			admit := noAdmit
			if tc.admit != nil {
				admit = tc.admit(ctx, cancel)
			}
			called = false
			var err error
			d := f.calls(func() { _, err = f.m.AuthenticateHashAdmit(ctx, f.s.Hash, tc.limits, admit) })
			if !tc.check(err) {
				t.Errorf("AuthenticateHashAdmit: %v", err)
			}
			if tc.admit == nil && called {
				t.Error("admit called for a session that limits refused")
			}
			if d != [4]int{1, 0, 0, 1} {
				t.Errorf("%v LookupTouch, Lookup, Touch, Untouch calls; want one LookupTouch, one Untouch", d)
			}
			if got := f.lastSeen(t); !got.Equal(f.s.LastSeen) {
				t.Errorf("LastSeen %v after the refusal, want %v", got, f.s.LastSeen)
			}
		})
	}
	t.Run("untouch failing", func(t *testing.T) {
		f := newAdmitFixture(t, true)
		f.c.Advance(45 * time.Second)
		down := errors.New("connection refused")
		f.spy.setFail("Untouch", down)
		refused := errors.New("client not allowed")
		_, err := f.m.AuthenticateHashAdmit(t.Context(), f.s.Hash, policy10, func(session.Session) error { return refused })
		if !errors.Is(err, down) || errors.Is(err, refused) || errors.Is(err, session.ErrNotFound) {
			t.Errorf("AuthenticateHashAdmit with Untouch failing: %v, want the wrapped store error", err)
		}
	})
	t.Run("expired by the limits' lifetime", func(t *testing.T) {
		f := newAdmitFixture(t, true)
		f.c.Advance(45 * time.Second)
		life := func(session.Session) (session.Limits, error) { return session.Limits{Lifetime: 40 * time.Second}, nil }
		called = false
		var err error
		d := f.calls(func() { _, err = f.m.AuthenticateHashAdmit(t.Context(), f.s.Hash, life, noAdmit) })
		if ee := new(session.ExpiredError); !errors.As(err, &ee) {
			t.Errorf("session past the limits' lifetime: %v, want an *ExpiredError", err)
		}
		if called {
			t.Error("admit called for an expired session")
		}
		if d[3] != 0 {
			t.Errorf("%d Untouch calls for a session expired (deleted)", d[3])
		}
		if _, err := f.spy.Store.Lookup(t.Context(), f.s.Hash); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("the expired session: %v, want deleted", err)
		}
	})
}

// hangUpStore is an ltStore whose client hangs up while LookupTouch is in
// flight, after the store wrote LastSeen and before it answered: the call
// then reports the cancellation, as pgx does for a query whose UPDATE
// committed.
type hangUpStore struct {
	*ltStore
	hangUp func()
}

func (s *hangUpStore) LookupTouch(ctx context.Context, h session.Hash, now time.Time, interval, maxGap time.Duration) (session.Session, error) {
	got, err := s.ltStore.LookupTouch(ctx, h, now, interval, maxGap)
	s.hangUp()
	if cerr := ctx.Err(); cerr != nil {
		return session.Session{}, cerr
	}
	return got, err
}

// A client that hangs up while LookupTouch is in flight cannot keep the
// touch it made: the call runs without the request's cancellation, so
// that its answer comes back, admit refuses the request, and Untouch
// takes the touch back. (Otherwise someone refused by the allow-list
// could keep the session alive by dropping each request at the right
// moment.)
func TestAdmitClientHangsUpDuringLookupTouch(t *testing.T) {
	spy, c := newSpy(), newClock()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	st := &hangUpStore{ltStore: &ltStore{spyStore: spy}, hangUp: func() {}}
	m, err := session.New(session.Config{Store: st, Index: st, Now: c.Now, Unlimited: true})
	if err != nil {
		t.Fatal(err)
	}
	_, s, _, err := m.Create(t.Context(), session.Options{Tenant: "t", UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(45 * time.Second)
	st.hangUp = cancel
	refused := errors.New("client not allowed")
	_, err = m.AuthenticateHashAdmit(ctx, s.Hash, policy10, func(session.Session) error { return refused })
	if !errors.Is(err, refused) {
		t.Errorf("AuthenticateHashAdmit, the client gone mid-call: %v, want the refusal", err)
	}
	got, err := spy.Store.Lookup(t.Context(), s.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastSeen.Equal(s.LastSeen) {
		t.Errorf("LastSeen %v after a refused request whose client hung up, want %v (the touch kept)", got.LastSeen, s.LastSeen)
	}
}
