package sqlitestore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// Bad input gives a typed error and changes nothing.

func TestReserveInvalidLimit(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	for _, lim := range []auth.Limit{
		{},
		{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Second},
		{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour, PermanentAfter: -1},
	} {
		_, err := s.Throttle.Reserve(ctx, "k", t0, lim)
		var ie *auth.InvalidLimitError
		if !errors.As(err, &ie) {
			t.Errorf("Reserve with %+v: %v, want *auth.InvalidLimitError", lim, err)
		}
	}
	n, err := s.Throttle.Len(ctx)
	mustLen(t, "Len after refused Reserves", n, err, 0)
}

func TestAppendOtherTenantsEvent(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	e := audit.Event{ID: "e1", Tenant: "globex", Seq: 1, Time: t0, Action: audit.LoginFailed, Outcome: audit.Failure, MAC: []byte{1}}
	err := s.Audit.Append(ctx, "acme", []audit.Event{e})
	var ie *audit.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("Append of a globex event to acme: %v, want *audit.InputError", err)
	}
	for _, tenant := range []string{"acme", "globex"} {
		if h, err := s.Audit.Head(ctx, tenant); err != nil || h.Seq != 0 {
			t.Errorf("Head(%s) after a refused Append = %+v, %v", tenant, h, err)
		}
	}
}
