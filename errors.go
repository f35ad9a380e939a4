package guard

import (
	"errors"
	"fmt"
)

// Errors returned by the facade. Compare with errors.Is.
//
// Security failures have one public face: every failed login, whatever the
// cause (unknown user, wrong password, deactivated, locked, throttled), is
// ErrInvalidCredentials; the real cause is in the audit event's Reason.
var (
	ErrInvalidCredentials = errors.New("guard: invalid email or password")
	ErrUnauthenticated    = errors.New("guard: not signed in")
	ErrForbidden          = errors.New("guard: not allowed")
	ErrUnavailable        = errors.New("guard: service unavailable")
	ErrSessionLimit       = errors.New("guard: session limit reached")
	ErrTenantNotFound     = errors.New("guard: tenant not found")
	ErrTenantExists       = errors.New("guard: tenant already exists")
	ErrUserNotFound       = errors.New("guard: user not found")
	ErrEmailTaken         = errors.New("guard: email already in use")
	ErrConflict           = errors.New("guard: changed concurrently, reload and retry")
)

// unavailable wraps a store failure: callers see ErrUnavailable (and can
// still reach the cause with errors.Is/As); requests are denied.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// InputError reports a malformed request field. It names the field and the
// rule, never the value.
type InputError struct {
	Field, Reason string
}

func (e *InputError) Error() string { return "guard: invalid " + e.Field + ": " + e.Reason }
