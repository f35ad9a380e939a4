package mfa

import (
	"crypto/subtle"
	"encoding/base64"
	"time"
)

// Kind is the kind of a second factor.
type Kind string

// The kinds of factor.
const (
	// KindTOTP is an authenticator app (RFC 6238 time-based codes).
	KindTOTP Kind = "totp"
	// KindEmail is a one-time code sent by email. It is of lower assurance
	// (NIST SP 800-63B §5.1.3.1 does not accept email as an out-of-band
	// authenticator): see Kind.Strong.
	KindEmail Kind = "email"
	// KindSMS is a one-time code sent by SMS (NIST "restricted"; only to a
	// number the user has verified, which enrolment does).
	KindSMS Kind = "sms"
)

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool { return k == KindTOTP || k == KindEmail || k == KindSMS }

// Strong reports whether k satisfies a "require MFA" policy on its own:
// TOTP and SMS do, email does not unless the tenant allows it (see
// Satisfies).
func (k Kind) Strong() bool { return k == KindTOTP || k == KindSMS }

// outOfBand reports whether k is delivered by a sender.
func (k Kind) outOfBand() bool { return k == KindEmail || k == KindSMS }

// Hash is a SHA-256 or HMAC-SHA256 value: the only form in which codes and
// tokens are stored.
type Hash [32]byte

// IsZero reports whether h is the zero hash.
func (h Hash) IsZero() bool { return h == Hash{} }

// Equal reports whether h and o are equal, in constant time.
func (h Hash) Equal(o Hash) bool { return subtle.ConstantTimeCompare(h[:], o[:]) == 1 }

// String returns h in base64url without padding (43 characters).
func (h Hash) String() string { return base64.RawURLEncoding.EncodeToString(h[:]) }

// Factor is one second factor of a user, as stored.
type Factor struct {
	// ID is the factor's public identifier: 22 base64url characters
	// (128 random bits), unique per user.
	ID     string
	Tenant string
	UserID string
	Kind   Kind
	// Label is the name shown to the user ("Authenticator app",
	// "Phone ending 1234").
	Label string
	// Destination is the email address or E.164 phone number of an email
	// or SMS factor, empty for TOTP. MaskDestination hides most of it, to
	// name the factor to someone who has not proved it.
	Destination string
	// KeyID names the Keyring key that sealed Secret (TOTP only).
	KeyID string
	// Secret is the TOTP secret sealed by the Keyring (AES-256-GCM, bound
	// to tenant, user and factor ID); nil for other kinds. The Manager
	// never returns it from Factors.
	Secret    []byte
	CreatedAt time.Time
	// ConfirmedAt is when the factor became active; zero while it is
	// pending (enrolled but not yet proven with a first code).
	ConfirmedAt time.Time
	// LastStep is the last TOTP time step accepted (0 for none): no step
	// at or before it is ever accepted again.
	LastStep int64
}

// Confirmed reports whether f is active.
func (f Factor) Confirmed() bool { return !f.ConfirmedAt.IsZero() }

// Enrolment is one user's confirmed factor kinds, as listed by
// EnrolmentIndex.
type Enrolment struct {
	UserID string
	Kinds  []Kind // distinct, ascending
}

// Satisfies reports whether e meets a "require MFA" policy: it has a
// strong kind (TOTP or SMS), or an email factor and allowEmail is set.
func (e Enrolment) Satisfies(allowEmail bool) bool {
	return Satisfies(e.Kinds, allowEmail)
}

// Satisfies reports whether a user with confirmed factors of the given
// kinds meets a "require MFA" policy (see Enrolment.Satisfies).
func Satisfies(kinds []Kind, allowEmail bool) bool {
	for _, k := range kinds {
		if k.Strong() || (k == KindEmail && allowEmail) {
			return true
		}
	}
	return false
}

// Code is a one-time code sent by email or SMS, as stored: only its HMAC
// (see Manager.SendCode) is kept. It belongs to one transaction, named by
// Tenant and Txn.
type Code struct {
	Tenant   string
	Txn      string // the transaction: Transaction.ID() or "enrol:"+factor ID
	UserID   string
	FactorID string // the factor the code was sent by, if any; opaque to a store
	Kind     Kind
	Hash     Hash // HMAC-SHA256 of the code, bound to Tenant and Txn
	// CreatedAt is when the code was issued; ExpiresAt ends it.
	CreatedAt time.Time
	ExpiresAt time.Time
	// TriesLeft is the number of wrong tries still allowed.
	TriesLeft int
}

// Attempt is the rule of CodeStore.CheckCode as a pure function, for
// backends that keep codes as data: it returns the code to store after an
// attempt with hash h at now (keep false: remove it) and the result of the
// attempt.
func (c Code) Attempt(h Hash, now time.Time) (next Code, keep bool, err error) {
	switch {
	case !now.Before(c.ExpiresAt):
		return c, false, ErrExpired
	case c.TriesLeft <= 0:
		return c, true, ErrTooManyTries
	case !c.Hash.Equal(h):
		c.TriesLeft--
		return c, true, ErrInvalidCode
	}
	return c, false, nil
}

// Transaction is a pending login: the user has passed the first factor
// (a password, later SSO) and must now present a second one, or enrol one.
// Its token is not a session and opens nothing; only its Hash is stored.
type Transaction struct {
	// Hash is the SHA-256 of the token, domain-separated from every other
	// token hash in Guard.
	Hash   Hash
	Tenant string
	UserID string
	// Binding is the SHA-256 of the client binding given when the
	// transaction started (zero when none was given); the token only works
	// with the same binding.
	Binding Hash
	// Purpose and Flags are the facade's: stored as they are (for example
	// "login" or "enrol", and the first-factor method).
	Purpose   string
	Flags     uint32
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ID is the transaction's public identifier (Hash.String), safe to log;
// one-time codes sent during the transaction are bound to it.
func (t Transaction) ID() string { return t.Hash.String() }

// LiveAt reports whether t has not expired at now.
func (t Transaction) LiveAt(now time.Time) bool { return now.Before(t.ExpiresAt) }
