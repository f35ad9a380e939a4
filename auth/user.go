package auth

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/guardhq/guard/internal/emailfold"
	"github.com/guardhq/guard/internal/textrule"
)

// Status is the lifecycle state of a user.
type Status string

const (
	StatusActive      Status = "active"
	StatusDeactivated Status = "deactivated"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s == StatusActive || s == StatusDeactivated }

// User is a person's account in one tenant, as stored.
type User struct {
	ID     string
	Tenant string
	// Email is canonical (see CanonicalEmail) and unique within the tenant.
	Email string
	// EmailUnverified reports that the user set Email themselves without
	// proving they receive mail there (UserUpdater.SetEmail with
	// unverified): it may be someone else's address. The zero value is a
	// verified address: one an administrator gave, an identity provider
	// asserted, or the user proved (UserUpdater.VerifyEmail). Single
	// sign-on never matches a user by an unverified address.
	EmailUnverified bool
	Name            string
	Status          Status
	// PasswordHash is a PHC string ("" for a user without a password, e.g.
	// one who signs in only through SSO).
	PasswordHash string
	// PasswordHistory holds earlier password hashes, newest first.
	PasswordHistory   []string
	PasswordChangedAt time.Time
	// PasswordExpired reports that the password must be changed at the
	// next sign-in: an administrator marked it compromised (see
	// UserUpdater.ExpirePassword). Setting a password clears it.
	PasswordExpired bool
	CreatedAt       time.Time
	LastLoginAt     time.Time // zero if never
	// LastSSOAt is the user's last sign-in through single sign-on (zero if
	// never): set with LastLoginAt by UserUpdater.RecordSSOLogin, never by
	// RecordLogin.
	LastSSOAt time.Time
	// ReactivatedAt is when an administrator last reactivated the user
	// (zero if never), set by UserUpdater.SetReactivatedAt: it counts as
	// activity for the dormancy rule (UserUpdater.DeactivateIdle), so that
	// a user reactivated after a dormant deactivation has the time to sign
	// in again.
	ReactivatedAt time.Time
}

// UserSummary is a user without the password hash and history: what a
// pass over a whole tenant needs (an access review, the MFA adoption
// counts), and less for a store to read (see UserStore.ListUserSummaries).
type UserSummary struct {
	ID    string
	Email string
	// EmailUnverified is User.EmailUnverified.
	EmailUnverified bool
	Name            string
	Status          Status
	// HasPassword reports whether the user's PasswordHash is not "".
	HasPassword       bool
	PasswordChangedAt time.Time
	// PasswordExpired is User.PasswordExpired: the password must be
	// changed at the next sign-in (an administrator marked it
	// compromised).
	PasswordExpired bool
	CreatedAt       time.Time
	LastLoginAt     time.Time // zero if never
	LastSSOAt       time.Time // zero if never (see User.LastSSOAt)
	ReactivatedAt   time.Time // zero if never (see User.ReactivatedAt)
}

// Summary returns the summary of u.
func (u User) Summary() UserSummary {
	return UserSummary{ID: u.ID, Email: u.Email, EmailUnverified: u.EmailUnverified, Name: u.Name, Status: u.Status, HasPassword: u.PasswordHash != "",
		PasswordChangedAt: u.PasswordChangedAt, PasswordExpired: u.PasswordExpired, CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt,
		LastSSOAt: u.LastSSOAt, ReactivatedAt: u.ReactivatedAt}
}

// Errors returned by stores and by this package. Compare with errors.Is.
var (
	ErrNotFound       = errors.New("auth: not found")
	ErrDuplicateEmail = errors.New("auth: email already in use in this tenant")
	ErrDuplicateID    = errors.New("auth: duplicate user id")
	ErrConflict       = errors.New("auth: changed concurrently")
)

// Field size limits, checked before anything is stored or hashed.
const (
	MaxEmailBytes = emailfold.MaxBytes // RFC 5321 path limit
	MaxNameBytes  = 200
	MaxIDBytes    = 128
)

// InputError reports a malformed or oversized field. It names the field and
// the rule, never the value.
type InputError struct {
	Field  string
	Reason string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("auth: invalid %s: %s", e.Field, e.Reason)
}

// CanonicalEmail returns the canonical form of an email address: trimmed of
// surrounding white space, case-folded and in Unicode Normalization Form C
// (RFC 6532, 3.1), so that an address sent decomposed ("e" and a
// combining acute accent, as some directories keep it) and the same
// address composed ("é") are one key. (An address an earlier version
// stored decomposed is not found by its canonical form until it is
// rewritten in NFC in the store.) It returns an *InputError if the
// input is not valid UTF-8, or the result is not a plain addr-spec (no
// display name, no angle brackets, no comments), is longer than
// MaxEmailBytes, or contains white space, control or invisible formatting
// characters (such as U+200B, U+2028 or U+202E), or a character outside
// ASCII that folds to one inside it ("İ", U+0130, lowers to "i"; the Kelvin
// sign normalises to "K"): another mailbox or domain than the plain
// letter's, which must not reach the plain address's account.
func CanonicalEmail(email string) (string, error) {
	e, reason := emailfold.Canonical(email)
	if reason != "" {
		return "", &InputError{Field: "email", Reason: reason}
	}
	return e, nil
}

// CheckName validates a display name: at most MaxNameBytes of valid UTF-8
// without control characters (C0, DEL and C1), line or paragraph
// separators (U+2028, U+2029) or bidirectional overrides and isolates
// (U+202A..U+202E, U+2066..U+2069), which could forge lines or reorder
// text where the name is shown or logged.
func CheckName(name string) error {
	if len(name) > MaxNameBytes {
		return &InputError{Field: "name", Reason: "too long"}
	}
	if !utf8.ValidString(name) {
		return &InputError{Field: "name", Reason: "not valid UTF-8"}
	}
	if !Printable(name) {
		return &InputError{Field: "name", Reason: "contains control characters"}
	}
	return nil
}

// Printable reports whether s holds no character that changes how text
// around it is shown: no control character (C0, DEL or C1, such as NEL
// and CSI), no line or paragraph separator, no bidirectional embedding,
// override or isolate. Names and other short texts kept and shown by
// Guard (in pages, logs and audit exports) must be (see CheckName). The
// rule lives in internal/textrule, which rbac keeps for approval targets.
func Printable(s string) bool { return textrule.Printable(s) }
