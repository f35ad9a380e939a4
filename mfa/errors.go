package mfa

import (
	"errors"
	"fmt"
)

// Errors returned by the Manager and by stores. Compare with errors.Is.
var (
	// ErrNotFound: no such factor, code, transaction or recovery code.
	ErrNotFound = errors.New("mfa: not found")
	// ErrInvalidCode: a well-formed code that is wrong.
	ErrInvalidCode = errors.New("mfa: wrong code")
	// ErrReplay: a correct TOTP code for a time step at or before the last
	// one accepted for the factor (a reused code, or an older one).
	ErrReplay = errors.New("mfa: code already used")
	// ErrExpired: a one-time code, a pending factor or a transaction that
	// has outlived its lifetime.
	ErrExpired = errors.New("mfa: expired")
	// ErrTooManyTries: the one-time code has had its quota of wrong tries;
	// even the right code is refused. A new code must be sent.
	ErrTooManyTries = errors.New("mfa: too many wrong codes")
	// ErrConflict: the record changed concurrently (a factor confirmed
	// twice, a secret resealed by someone else, a set of recovery codes
	// stored over the one read: ReplaceRecoverySet, SwapRecoveryCodes).
	ErrConflict = errors.New("mfa: changed concurrently")
	// ErrDuplicate: a store already holds a record with that identity
	// (a broken Rand).
	ErrDuplicate = errors.New("mfa: duplicate id")
	// ErrLimit: the user already has Config.MaxFactors confirmed factors.
	ErrLimit = errors.New("mfa: too many factors")
	// ErrLastFactor: removing the factor would leave the user fewer
	// confirmed factors than the caller asked to keep (see
	// FactorStore.DeleteFactorKeeping); nothing was removed.
	ErrLastFactor = errors.New("mfa: the user must keep a confirmed factor")
	// ErrUnseal: a sealed TOTP secret cannot be opened: it was tampered
	// with, or copied to another tenant, user or factor.
	ErrUnseal = errors.New("mfa: sealed secret cannot be opened")
	// ErrUnknownKey: a sealed secret names a key id the Keyring does not
	// hold.
	ErrUnknownKey = errors.New("mfa: unknown key id")
	// ErrUnavailable: no sender is configured for the channel.
	ErrUnavailable = errors.New("mfa: channel not configured")
	// ErrFull: a store has reached its memory bound and cannot take a new
	// key. Callers deny (fail closed).
	ErrFull = errors.New("mfa: store full")
)

// errBrokenRand: Config.Rand gave maxRedraws values in a row that could
// not be used (a recovery code already in the set, a draw outside the
// range of one-time codes): with a working source that does not happen.
var errBrokenRand = errors.New("mfa: Config.Rand repeats itself or gives unusable values: is it broken?")

// maxRedraws bounds the draws from Config.Rand that a broken source can
// make a loop throw away before it gives up with errBrokenRand. With a
// working source ten in a row happen with odds below 1e-11 (a one-time
// code of 9 digits rejects under 7% of draws; a repeated 80-bit recovery
// code is far rarer).
const maxRedraws = 10

// Reasons why SendCode did not call the sender. The facade logs them and
// never shows them: the user sees the same answer as for a real send.
var (
	// ErrCoolDown: a code was sent (or is being sent) for the same
	// transaction less than Config.ResendCoolDown ago.
	ErrCoolDown = errors.New("mfa: resend cool-down")
	// ErrRateLimited: the destination, the client IP, the account or the
	// tenant has reached its send limit for the window.
	ErrRateLimited = errors.New("mfa: send limit reached")
	// ErrDestinationNotAllowed: an SMS number outside Config.SMSPrefixes.
	ErrDestinationNotAllowed = errors.New("mfa: destination not allowed")
)

// ConfigError reports an unacceptable Config field.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string { return "mfa: invalid Config." + e.Field + ": " + e.Reason }

// InputError reports an unacceptable argument: a malformed code, tenant,
// user ID, destination or label. It names the field and the rule and
// never echoes the value.
type InputError struct {
	Field, Reason string
}

func (e *InputError) Error() string { return "mfa: invalid " + e.Field + ": " + e.Reason }

// URIError reports an otpauth URI that ParseURI refuses. It never echoes
// the URI, which holds a secret.
type URIError struct {
	Reason string
}

func (e *URIError) Error() string { return "mfa: invalid otpauth URI: " + e.Reason }

// RateLimitError is the ErrRateLimited of SendCode: it says which limit
// was reached (Scope is "destination", "ip", "account" or "tenant").
type RateLimitError struct {
	Scope string
}

func (e *RateLimitError) Error() string { return "mfa: send limit reached for this " + e.Scope }

// Is makes errors.Is(err, ErrRateLimited) hold.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// SendError is a sender failure: the provider refused or could not be
// reached. Status is the HTTP or SMTP status when there was one. It does
// not carry the message, which holds a code.
type SendError struct {
	Channel string // "email" or "sms"
	Status  int
	Err     error
}

func (e *SendError) Error() string {
	msg := "mfa: sending " + e.Channel + " failed"
	if e.Status != 0 {
		msg += fmt.Sprintf(" (status %d)", e.Status)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *SendError) Unwrap() error { return e.Err }

// CodeError is VerifyCode's error for a one-time code it found for the
// user and refused. Err is the refusal: ErrInvalidCode, ErrTooManyTries
// or ErrExpired; ErrNotFound when the factor that sent the code is no
// longer a confirmed factor of its kind; or a store failure reading that
// factor. Kind is the kind of the factor that sent the code (KindEmail or
// KindSMS), as the stored code records it, so that the caller can log
// which factor a refused code was for. Err is seen through it by
// errors.Is and errors.As, and its message is Err's. A code VerifyCode
// did not find (ErrNotFound), a malformed one (*InputError) or a store
// failure checking it comes without a CodeError: its kind is not known.
type CodeError struct {
	Kind Kind
	Err  error
}

func (e *CodeError) Error() string { return e.Err.Error() }

func (e *CodeError) Unwrap() error { return e.Err }

// storeErr passes this package's sentinel errors through and wraps any
// other store error, so that a failure is never mistaken for a clean
// answer such as ErrNotFound.
func storeErr(op string, err error) error {
	for _, e := range [...]error{ErrNotFound, ErrInvalidCode, ErrReplay, ErrExpired, ErrTooManyTries,
		ErrConflict, ErrDuplicate, ErrLimit, ErrLastFactor, ErrFull} {
		if errors.Is(err, e) {
			return e
		}
	}
	return fmt.Errorf("mfa: store %s: %w", op, err)
}
