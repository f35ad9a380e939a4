package mfa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults filled in by New.
const (
	DefaultSkew           = 1
	DefaultEnrolTTL       = 15 * time.Minute
	DefaultCodeTTL        = 10 * time.Minute // also the maximum (NIST SP 800-63B §5.1.3.2)
	DefaultCodeDigits     = 6
	DefaultCodeTries      = 5
	DefaultResendCoolDown = 30 * time.Second
	DefaultRecoveryCodes  = 10
	DefaultRecoveryLow    = 3
	DefaultMaxFactors     = 10
	DefaultTransactionTTL = 5 * time.Minute
	DefaultQRSize         = 256
)

// SkewNone, as Config.Skew, accepts only the current TOTP time step.
const SkewNone = -1

// TOTP parameters: what every authenticator app reads (RFC 6238 with
// HMAC-SHA1, 6 digits, 30-second steps) and a 160-bit secret.
const (
	TOTPDigits      = 6
	TOTPPeriod      = 30 // seconds
	TOTPSecretBytes = 20
)

// Bounds on the strings of the package, in bytes.
const (
	MaxIDLen    = 128 // tenant and user IDs
	MaxLabelLen = 100 // factor labels
	maxIPLen    = 64
)

// Config configures a Manager. Zero fields take the documented defaults.
type Config struct {
	// Stores are the storage contracts. Factors, FactorUpdates,
	// Enrolments, Recovery and Transactions are required; Codes and Rates
	// are required when Email or SMS is set.
	Stores Stores
	// Keyring seals TOTP secrets (required).
	Keyring *Keyring
	// Issuer names the service in authenticator apps (required; at most
	// MaxIssuerBytes, no colon or control character).
	Issuer string
	// CodeKey is the HMAC-SHA256 key under which one-time codes are
	// stored (at least 32 bytes). By default it is derived from the
	// Keyring's current key; rotating that key then voids the codes in
	// flight, which live at most CodeTTL.
	CodeKey []byte
	// Email and SMS deliver one-time codes. Either may be nil: that
	// channel is then unavailable (ErrUnavailable).
	Email EmailSender
	SMS   SMSSender
	// Compose writes the message that carries a code (default: a short
	// English text). subject is ignored for SMS.
	Compose func(kind Kind, code string, ttl time.Duration) (subject, text string)
	// SMSOrigin, when set, binds SMS codes to the host of the site they
	// are typed into: every SMS (Compose's text or the default) ends with
	// a line "@host #code" (origin-bound one-time codes, WICG "SMS
	// one-time codes"), so that browsers and phones that read it offer
	// the code only on that host (the WebOTP API, iOS and Android
	// autofill), never on a look-alike site that relays it. An ASCII host
	// name (an IDN in its xn-- form), no scheme, port or path; case is
	// ignored. Empty (the default): no such line.
	SMSOrigin string
	// Now returns the current time (default time.Now). TOTP codes are
	// checked against it, never against a time the client sends.
	Now func() time.Time
	// Rand is the source of secrets, codes, IDs and tokens (default
	// crypto/rand.Reader). It must be a cryptographically secure
	// generator.
	Rand io.Reader
	// Skew is the number of TOTP time steps accepted on either side of
	// the current one, for clock drift and typing time: default 1 (a code
	// is accepted for 90 seconds), at most 2; SkewNone accepts only the
	// current step (30 seconds, as ASVS 5 6.5.5 asks).
	Skew int
	// EnrolTTL is how long a pending factor may be confirmed (default 15
	// minutes).
	EnrolTTL time.Duration
	// CodeTTL is the lifetime of a one-time code (default and maximum 10
	// minutes).
	CodeTTL time.Duration
	// CodeDigits is the length of a one-time code (default 6, at most 9).
	CodeDigits int
	// CodeTries is the number of wrong tries a one-time code allows
	// (default 5, at most 10); then even the right code is refused.
	CodeTries int
	// ResendCoolDown is the least time between two codes sent for one
	// transaction (default 30 seconds). A send that failed does not start
	// it (see SendCode).
	ResendCoolDown time.Duration
	// Limits bound the codes sent per destination, client IP, account and
	// tenant.
	Limits SendLimits
	// SMSPrefixes, when not empty, are the E.164 prefixes ("+44", "+1")
	// that SMS may be sent to; other numbers are suppressed
	// (ErrDestinationNotAllowed), against SMS pumping.
	SMSPrefixes []string
	// RecoveryCodes is the size of a set of recovery codes (default 10).
	RecoveryCodes int
	// RecoveryLow: a set with this many codes left or fewer is reported
	// as low (default 3).
	RecoveryLow int
	// MaxFactors bounds the confirmed factors of a user (default 10): a
	// factor is neither begun nor confirmed (ErrLimit) while the user has
	// that many. Pending factors do not count, so a user may begin
	// several, but only as many are confirmed as the bound leaves room for.
	MaxFactors int
	// TransactionTTL is the lifetime of a pending login (default 5
	// minutes).
	TransactionTTL time.Duration
	// QRSize is the width and height of the enrolment QR code, in pixels
	// (default 256).
	QRSize int
}

// SendLimits bound the one-time codes sent in each Window: to one
// destination, from one client IP, for one account and for one tenant.
// Over a limit the sender is not called. Zero fields take the defaults. A
// destination has two counts of PerDestination, across tenants: one for
// the codes of enrolments, which anyone can start for any address, and
// one for the codes to confirmed factors, so that strangers' enrolments
// never stop the codes its owner signs in with. An email address counts
// whatever its case.
//
// PerTenant bounds all the codes of one tenant, every destination and
// kind, enrolments and sign-ins alike, against SMS pumping spread over
// many accounts, numbers and IPs, each under its own limit, that would
// otherwise run up the tenant's SMS bill without end. Its count is kept
// in Config.Stores.Rates, so it holds across replicas sharing that store.
// Only a request that every other limit let through counts against it:
// one client, account or destination spends at most its own limit of the
// tenant's. Once it is reached, no code goes out for anyone in the tenant
// until the window ends: set it above the codes the tenant's users
// really need in a Window.
type SendLimits struct {
	Window         time.Duration // default one hour
	PerDestination int           // default 5
	PerIP          int           // default 20
	PerAccount     int           // default 10
	PerTenant      int           // default 1000
}

// Manager enrols, checks and removes second factors, sends one-time
// codes, keeps recovery codes and pending logins. It is safe for
// concurrent use: it keeps no state of its own beyond its configuration,
// and every invariant is one atomic store method.
type Manager struct {
	st       Stores
	keys     *Keyring
	codeKey  []byte
	issuer   string
	email    EmailSender
	sms      SMSSender
	compose  func(Kind, string, time.Duration) (string, string)
	origin   string // Config.SMSOrigin, lower-cased; "" for none
	now      func() time.Time
	rand     io.Reader
	skew     int64
	enrolTTL time.Duration
	codeTTL  time.Duration
	digits   int
	tries    int
	cool     time.Duration
	limits   SendLimits
	prefixes []string
	recN     int
	recLow   int
	maxF     int
	txnTTL   time.Duration
	qrSize   int
}

// New validates cfg, fills its defaults and returns a Manager. A bad field
// is reported as a *ConfigError.
func New(cfg Config) (*Manager, error) {
	st := cfg.Stores
	switch {
	case st.Factors == nil:
		return nil, &ConfigError{Field: "Stores.Factors", Reason: "is required"}
	case st.FactorUpdates == nil:
		return nil, &ConfigError{Field: "Stores.FactorUpdates", Reason: "is required"}
	case st.Enrolments == nil:
		return nil, &ConfigError{Field: "Stores.Enrolments", Reason: "is required"}
	case st.Recovery == nil:
		return nil, &ConfigError{Field: "Stores.Recovery", Reason: "is required"}
	case st.Transactions == nil:
		return nil, &ConfigError{Field: "Stores.Transactions", Reason: "is required"}
	case (cfg.Email != nil || cfg.SMS != nil) && st.Codes == nil:
		return nil, &ConfigError{Field: "Stores.Codes", Reason: "is required with a sender"}
	case (cfg.Email != nil || cfg.SMS != nil) && st.Rates == nil:
		return nil, &ConfigError{Field: "Stores.Rates", Reason: "is required with a sender"}
	case cfg.Keyring == nil:
		return nil, &ConfigError{Field: "Keyring", Reason: "is required"}
	case cfg.Issuer == "":
		return nil, &ConfigError{Field: "Issuer", Reason: "is required"}
	case cfg.CodeKey != nil && len(cfg.CodeKey) < 32:
		return nil, &ConfigError{Field: "CodeKey", Reason: "must be at least 32 bytes"}
	case cfg.Skew < SkewNone || cfg.Skew > 2:
		return nil, &ConfigError{Field: "Skew", Reason: "must be SkewNone, 0, 1 or 2"}
	case cfg.EnrolTTL < 0:
		return nil, &ConfigError{Field: "EnrolTTL", Reason: "must not be negative"}
	case cfg.CodeTTL < 0 || cfg.CodeTTL > DefaultCodeTTL:
		return nil, &ConfigError{Field: "CodeTTL", Reason: "must be at most 10 minutes"}
	case cfg.CodeDigits != 0 && (cfg.CodeDigits < 6 || cfg.CodeDigits > 9):
		return nil, &ConfigError{Field: "CodeDigits", Reason: "must be 6 to 9"}
	case cfg.CodeTries < 0 || cfg.CodeTries > 10:
		return nil, &ConfigError{Field: "CodeTries", Reason: "must be at most 10"}
	case cfg.ResendCoolDown < 0:
		return nil, &ConfigError{Field: "ResendCoolDown", Reason: "must not be negative"}
	case cfg.Limits.Window < 0 || cfg.Limits.PerDestination < 0 || cfg.Limits.PerIP < 0 || cfg.Limits.PerAccount < 0 || cfg.Limits.PerTenant < 0:
		return nil, &ConfigError{Field: "Limits", Reason: "must not be negative"}
	case cfg.RecoveryCodes < 0 || cfg.RecoveryCodes > 100:
		return nil, &ConfigError{Field: "RecoveryCodes", Reason: "must be at most 100"}
	case cfg.RecoveryLow < 0:
		return nil, &ConfigError{Field: "RecoveryLow", Reason: "must not be negative"}
	case cfg.MaxFactors < 0:
		return nil, &ConfigError{Field: "MaxFactors", Reason: "must not be negative"}
	case cfg.TransactionTTL < 0:
		return nil, &ConfigError{Field: "TransactionTTL", Reason: "must not be negative"}
	case cfg.QRSize < 0 || cfg.QRSize > 2048:
		return nil, &ConfigError{Field: "QRSize", Reason: "must be at most 2048"}
	}
	if r := checkName(cfg.Issuer, MaxIssuerBytes); r != "" {
		return nil, &ConfigError{Field: "Issuer", Reason: r}
	}
	for _, p := range cfg.SMSPrefixes {
		if !validPrefix(p) {
			return nil, &ConfigError{Field: "SMSPrefixes", Reason: "each must be + and 1 to 6 digits"}
		}
	}
	if cfg.SMSOrigin != "" && !validHost(cfg.SMSOrigin) {
		return nil, &ConfigError{Field: "SMSOrigin", Reason: "must be an ASCII host name: letters, digits and hyphens in dot-separated labels, no scheme, port or path"}
	}
	m := &Manager{
		st:       st,
		keys:     cfg.Keyring,
		issuer:   cfg.Issuer,
		email:    cfg.Email,
		sms:      cfg.SMS,
		compose:  cfg.Compose,
		origin:   strings.ToLower(cfg.SMSOrigin),
		now:      cfg.Now,
		rand:     cfg.Rand,
		skew:     DefaultSkew,
		enrolTTL: or(cfg.EnrolTTL, DefaultEnrolTTL),
		codeTTL:  or(cfg.CodeTTL, DefaultCodeTTL),
		digits:   or(cfg.CodeDigits, DefaultCodeDigits),
		tries:    or(cfg.CodeTries, DefaultCodeTries),
		cool:     or(cfg.ResendCoolDown, DefaultResendCoolDown),
		limits: SendLimits{
			Window:         or(cfg.Limits.Window, time.Hour),
			PerDestination: or(cfg.Limits.PerDestination, 5),
			PerIP:          or(cfg.Limits.PerIP, 20),
			PerAccount:     or(cfg.Limits.PerAccount, 10),
			PerTenant:      or(cfg.Limits.PerTenant, 1000),
		},
		prefixes: append([]string(nil), cfg.SMSPrefixes...),
		recN:     or(cfg.RecoveryCodes, DefaultRecoveryCodes),
		recLow:   or(cfg.RecoveryLow, DefaultRecoveryLow),
		maxF:     or(cfg.MaxFactors, DefaultMaxFactors),
		txnTTL:   or(cfg.TransactionTTL, DefaultTransactionTTL),
		qrSize:   or(cfg.QRSize, DefaultQRSize),
	}
	switch cfg.Skew {
	case SkewNone:
		m.skew = 0
	case 0:
	default:
		m.skew = int64(cfg.Skew)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	if m.compose == nil {
		m.compose = defaultCompose
	}
	if cfg.CodeKey != nil {
		m.codeKey = append([]byte(nil), cfg.CodeKey...)
	} else {
		m.codeKey = cfg.Keyring.derive("guard/mfa/code-key/v1")
	}
	return m, nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// validPrefix reports whether p is "+" and 1 to 6 digits.
func validPrefix(p string) bool {
	if len(p) < 2 || len(p) > 7 || p[0] != '+' {
		return false
	}
	for i := 1; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// validHost reports whether h is a host name as an origin-bound code's
// line names it: at most 253 bytes of dot-separated labels, each 1 to 63
// ASCII letters, digits and hyphens, neither starting nor ending with a
// hyphen (an IDN in its xn-- form; an IPv4 address passes as digits).
func validHost(h string) bool {
	if len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// composeText returns the subject and text of the message carrying code
// to a factor of kind: Compose's (or the default), and for SMS under
// Config.SMSOrigin the origin-bound line "@host #code" as its last line.
func (m *Manager) composeText(kind Kind, code string) (subject, text string) {
	subject, text = m.compose(kind, code, m.codeTTL)
	if kind == KindSMS && m.origin != "" {
		text = strings.TrimRight(text, "\n") + "\n\n@" + m.origin + " #" + code
	}
	return subject, text
}

func defaultCompose(kind Kind, code string, ttl time.Duration) (subject, text string) {
	mins := int(ttl / time.Minute)
	if kind == KindSMS {
		return "", fmt.Sprintf("Your verification code is %s. It expires in %d minutes. Do not share it.", code, mins)
	}
	return "Your verification code",
		fmt.Sprintf("Your verification code is %s.\n\nIt expires in %d minutes. Do not share it. If you did not "+
			"ask for it, ignore this message, and consider changing your password: someone may know it.\n", code, mins)
}

// timestamp is the current time as stored: UTC, to the microsecond.
func (m *Manager) timestamp() time.Time { return m.now().UTC().Truncate(time.Microsecond) }

// randomID returns 16 random bytes in base64url (22 characters).
func (m *Manager) randomID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(m.rand, b[:]); err != nil {
		return "", fmt.Errorf("mfa: reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// checkUser returns an *InputError if tenant or userID is not acceptable.
func checkUser(tenant, userID string) error {
	if r := checkID(tenant); r != "" {
		return &InputError{Field: "tenant", Reason: r}
	}
	if r := checkID(userID); r != "" {
		return &InputError{Field: "user ID", Reason: r}
	}
	return nil
}

func checkID(s string) string {
	switch {
	case s == "":
		return "is required"
	case len(s) > MaxIDLen:
		return fmt.Sprintf("is longer than %d bytes", MaxIDLen)
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return "contains a control character"
		}
	}
	return ""
}

// checkFactorID refuses what cannot be a factor ID before any store call.
func checkFactorID(id string) error {
	if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return &InputError{Field: "factor ID", Reason: "is malformed"}
	}
	return nil
}

// checkLabel returns the label to store, or an *InputError. An empty
// label is def, which passes the same checks: a default made from outside
// input (an email address) is shown as a label given is.
func checkLabel(label, def string) (string, error) {
	label = strings.TrimSpace(label)
	if label == "" {
		label = def
	}
	if len(label) > MaxLabelLen {
		return "", &InputError{Field: "label", Reason: fmt.Sprintf("is longer than %d bytes", MaxLabelLen)}
	}
	if r := checkID(label); r != "" {
		return "", &InputError{Field: "label", Reason: r}
	}
	// A label is shown: no line or paragraph separator, no bidirectional
	// embedding, override or isolate either.
	if strings.ContainsFunc(label, func(r rune) bool {
		return unicode.In(r, unicode.Zl, unicode.Zp) || '\u202a' <= r && r <= '\u202e' || '\u2066' <= r && r <= '\u2069'
	}) {
		return "", &InputError{Field: "label", Reason: "contains a control character"}
	}
	return label, nil
}

// derive returns a 32-byte key for label, derived from the current key.
func (k *Keyring) derive(label string) []byte {
	mac := hmac.New(sha256.New, k.deriveKey)
	mac.Write([]byte(label))
	return mac.Sum(nil)
}
