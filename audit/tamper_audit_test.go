package audit_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// The truncation check of Verify ("missing events": the chain ends before
// the head this Log appended) rests on the cached head, which any failed
// Append drops (headKnown = false). After one transient store error the
// Log no longer remembers the five events it appended, and a chain cut
// back to three verifies.
func TestAuditTamper_StoreErrorForgetsAppendedHead(t *testing.T) {
	s := &hookStore{Store: memstore.NewAudit()}
	l := newLog(t, s)
	recordN(t, l, "acme", 5)
	s.onAppend = func(context.Context, int64, []audit.Event) error { return errBoom }
	if _, err := l.Record(context.Background(), loginEvent("acme")); !errors.Is(err, errBoom) {
		t.Fatalf("Record with a failing store = %v, want errBoom", err)
	}
	s.onAppend = nil
	// Whoever can write to the store deletes Seq 4 and 5.
	s.onQuery = func(_ audit.Query, got []audit.Event) ([]audit.Event, error) {
		return slices.DeleteFunc(got, func(e audit.Event) bool { return e.Seq > 3 }), nil
	}
	rep, err := l.Verify(context.Background(), "acme")
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.OK || rep.FirstBad != 4 || rep.Reason != "missing events" {
		t.Errorf("Verify of a chain cut back to 3 by a Log that appended 5 = %+v, want FirstBad 4, missing events", rep)
	}
}
