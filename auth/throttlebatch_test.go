package auth_test

import (
	"testing"

	"github.com/guardhq/guard/auth"
)

// batchStore is a BatchThrottleStore that does nothing.
type batchStore struct{ auth.BatchThrottleStore }

// plainStore is a ThrottleStore without the multi-key calls.
type plainStore struct{ auth.ThrottleStore }

func TestBatchThrottle(t *testing.T) {
	if got := auth.BatchThrottle(nil); got != nil {
		t.Errorf("BatchThrottle(nil) = %v, want nil", got)
	}
	b := batchStore{}
	if got := auth.BatchThrottle(b); got != auth.BatchThrottleStore(b) {
		t.Errorf("BatchThrottle of a BatchThrottleStore = %#v, want the store itself", got)
	}
	// A plain store is wrapped; what the wrapper does is checked by the
	// conformance suite, on a memstore with its multi-key calls hidden
	// (store/memstore).
	if got := auth.BatchThrottle(plainStore{}); got == nil {
		t.Fatal("BatchThrottle of a plain ThrottleStore = nil")
	}
}
