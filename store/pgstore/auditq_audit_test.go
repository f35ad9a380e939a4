package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// Auditor tests of reading the audit log (axis "auditq").

// Severity: low. PostgreSQL's timestamptz holds 4713 BC to 294276 AD:
// Query with From in the year -5000 or To in the year 295000 fails with
// "timestamp out of range" (SQLSTATE 22008), a store error that the
// facade reports as ErrUnavailable, and From in the year -300000 wraps
// around in the driver's microsecond encoding and returns no event;
// memstore (the reference) returns every event for all three, and sqlite
// answers yet another way (TestAuditQ_FarTimeBoundsDependOnTheBackend in
// package guard). audit.go Query passes the bounds to the statement
// unchecked (ceilMicro only rounds them).
// Expected: the same answer as memstore for the same Query — every event
// for a bound beyond every event — or, if such bounds are refused, an
// *audit.InputError from every backend (Log.Query's checkQuery is the
// place to bound them).
func TestAuditQ_TimeBoundsOutsideTimestamptz(t *testing.T) {
	ctx := context.Background()
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	logs := map[string]*audit.Log{}
	for name, st := range map[string]audit.Store{"memstore": memstore.NewAudit(), "postgres": newStore(t).Audit} {
		l, err := audit.New(audit.Config{Store: st, Key: key, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := l.Record(ctx, audit.Event{Tenant: "acme", Actor: audit.Actor{Kind: audit.ActorUser, ID: "u1"},
				Action: audit.LoginFailed, Outcome: audit.Failure}); err != nil {
				t.Fatal(err)
			}
		}
		logs[name] = l
	}
	answer := func(name string, q audit.Query) string {
		p, err := logs[name].Query(ctx, "acme", q)
		var ie *audit.InputError
		if errors.As(err, &ie) {
			return "*audit.InputError on " + ie.Field
		}
		return fmt.Sprintf("%d events (err %v)", len(p.Events), err)
	}
	for name, q := range map[string]audit.Query{
		"From in the year -5000":   {From: time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"To in the year 295000":    {To: time.Date(295000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"From in the year -300000": {From: time.Date(-300000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if want, got := answer("memstore", q), answer("postgres", q); got != want {
			t.Errorf("%s: postgres gives %s, memstore %s", name, got, want)
		}
	}
}
