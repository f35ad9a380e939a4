package pgstore_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
)

// A page cursor PostgreSQL cannot hold (a NUL byte) is bad input: the
// facade answers it with a typed input error, not ErrUnavailable (a
// store outage, 503 in a console).
func TestFacadeListUserAccessMalformedCursorIsInputError(t *testing.T) {
	g := newFacade(t, newStore(t).Stores(), nil)
	_, err := g.ListUserAccess(t.Context(), guard.System("test"), facadeTenant, "user\x00id", 10)
	var ie *guard.InputError
	if !errors.As(err, &ie) || errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("ListUserAccess with a cursor holding a NUL = %v, want a *guard.InputError", err)
	}
}
