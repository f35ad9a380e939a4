package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
)

// stallingUntouch is an ltStore whose Untouch stalls (a store that does
// not answer: a lock wait, a network partition) until its context ends,
// or for stall at most.
type stallingUntouch struct {
	*ltStore
	stall time.Duration
}

func (s *stallingUntouch) Untouch(ctx context.Context, h session.Hash, touched, prev time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.stall):
	}
	return s.ltStore.Untouch(ctx, h, touched, prev)
}

// The Untouch that takes back the touch of a request admit refused is
// bounded as the LookupTouch that made it is (detached): without the
// request's cancellation, but ended at its deadline (or 5 s without
// one), so that a store that stalls does not hold a refused request
// (a stolen cookie replayed from outside the tenant's allow-list, say)
// past the deadline the host gave it.
func TestUntouchKeepsTheRequestDeadline(t *testing.T) {
	spy := newSpy()
	st := &stallingUntouch{ltStore: &ltStore{spyStore: spy}, stall: 3 * time.Second}
	c := newClock()
	m, err := session.New(session.Config{Store: st, Index: st, Now: c.Now, Unlimited: true})
	if err != nil {
		t.Fatal(err)
	}
	_, s, _, err := m.Create(t.Context(), session.Options{Tenant: "t", UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(45 * time.Second) // a touch is due, and LookupTouch makes it
	refused := errors.New("client not allowed")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = m.AuthenticateHashAdmit(ctx, s.Hash, nil, func(session.Session) error { return refused })
	took := time.Since(start)
	if took > time.Second {
		t.Errorf("a refused request with a 200ms deadline took %v (err %v): Untouch ran without the request's deadline", took, err)
	}
}
