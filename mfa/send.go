package mfa

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Message is an email: a plain-text body to one address.
type Message struct {
	To      string // a bare address, user@example.com
	Subject string
	Text    string
}

// EmailSender delivers email. SMTPSender is one; the host may provide its
// own (an email API, a log in development).
type EmailSender interface {
	// SendEmail delivers m, or returns why it could not.
	SendEmail(ctx context.Context, m Message) error
}

// SMSSender delivers text messages. WebhookSMSSender is one.
type SMSSender interface {
	// SendSMS delivers text to the E.164 number to, or returns why it
	// could not.
	SendSMS(ctx context.Context, to, text string) error
}

// SendRequest asks for a one-time code for a login transaction.
type SendRequest struct {
	Tenant, UserID string
	// FactorID is the user's email or SMS factor to send to. For a pending
	// factor (an enrolment begun with BeginOOB) the code is bound to the
	// enrolment and Txn is ignored.
	FactorID string
	// Txn is the transaction the code is for: Transaction.ID() of the
	// pending login. The code works only for it and this user: the same
	// Txn given with another user's ID names another transaction. A Txn
	// beginning "enrol:", the namespace of enrolment codes, is an
	// *InputError.
	Txn string
	// IP is the client's IP address, for the per-IP limit ("" skips that
	// limit): any text that names the client, counted as given (the facade
	// gives an IPv6 client's /64, so that it counts as one client).
	IP string
}

// SendResult says what SendCode did. When Sent is false, Suppressed says
// why: the facade records it and answers exactly as for a real send, so a
// caller cannot tell a suppressed send from a real one.
type SendResult struct {
	Sent bool
	// Suppressed is ErrCoolDown, a *RateLimitError (errors.Is
	// ErrRateLimited) or ErrDestinationNotAllowed; nil when Sent.
	Suppressed error
	// Factor is the factor the code went to (without secret).
	Factor Factor
	// ExpiresAt is the end of the code's life (zero when not sent).
	ExpiresAt time.Time
}

// OOBRequest asks to enrol an email address or a phone number as a
// factor.
type OOBRequest struct {
	Tenant, UserID string
	Kind           Kind   // KindEmail or KindSMS
	Destination    string // an email address, or an E.164 number (+447700900123)
	Label          string // default: the destination, partly masked (see MaskDestination)
	IP             string // the client's IP address, for the send limits (as SendRequest.IP)
}

// enrolTxn is the transaction of the codes that confirm a pending factor.
func enrolTxn(factorID string) string { return "enrol:" + factorID }

// codeTxn is the name under which the code of userID's transaction txn
// is stored (and its resend cool-down counted): codes are kept per user,
// so that a transaction ID given with another user's ID, by mistake or
// because a host's IDs can be guessed, reaches none of them: it neither
// uses up the code's tries nor replaces the code or holds its resend back.
func codeTxn(userID, txn string) string {
	sum := sha256.Sum256(appendFields(nil, "guard/mfa/code-txn/v1", userID, txn))
	return "u:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// BeginOOB starts enrolling an email address or phone number: it sends
// the destination a code, which ConfirmOOB checks, and then stores a
// pending factor, voiding any earlier pending factor of the same kind; the
// factor becomes active only when confirmed, so only a destination the
// user controls is ever used. The send obeys the limits of SendCode: one
// a limit holds back (SendResult.Suppressed set) stores the factor all
// the same, without a code (SendCode can send one later). A number outside
// Config.SMSPrefixes creates nothing and returns a result with Suppressed
// set to ErrDestinationNotAllowed (the user is signed in: the facade may
// say so).
//
// A begin that fails leaves the user's factors as they were: an earlier
// pending factor of the kind stays, and the code sent for it still
// confirms it (the send still counts against Config.Limits, as in
// SendCode). If the sender fails (a *SendError: the new code is deleted)
// or a store fails, before or after the code went out, no factor is
// stored, and the one that would have been is returned, to name the
// attempt; a code sent for it is deleted (best effort: it would expire
// after CodeTTL). So is one sent to a user who confirmed a factor
// meanwhile, leaving no room (ErrLimit, with the zero Factor, as when
// there was no room to begin with).
//
// Errors: an *InputError for a malformed argument, ErrUnavailable if no
// sender is configured for the kind, ErrLimit if the user already has
// Config.MaxFactors confirmed factors (checked before anything is sent,
// and again, atomically, when the factor is stored), a *SendError, or a
// store failure.
func (m *Manager) BeginOOB(ctx context.Context, req OOBRequest) (Factor, SendResult, error) {
	if err := checkUser(req.Tenant, req.UserID); err != nil {
		return Factor{}, SendResult{}, err
	}
	if !req.Kind.outOfBand() {
		return Factor{}, SendResult{}, &InputError{Field: "kind", Reason: "must be email or sms"}
	}
	if !m.hasSender(req.Kind) {
		return Factor{}, SendResult{}, ErrUnavailable
	}
	dest, err := checkDestination(req.Kind, req.Destination)
	if err != nil {
		return Factor{}, SendResult{}, err
	}
	label, err := checkLabel(req.Label, defaultLabel(req.Kind, dest))
	if err != nil {
		return Factor{}, SendResult{}, err
	}
	if req.Kind == KindSMS && !m.smsAllowed(dest) {
		return Factor{}, SendResult{Suppressed: ErrDestinationNotAllowed}, nil
	}
	id, err := m.randomID()
	if err != nil {
		return Factor{}, SendResult{}, err
	}
	f := Factor{
		ID:          id,
		Tenant:      req.Tenant,
		UserID:      req.UserID,
		Kind:        req.Kind,
		Label:       label,
		Destination: dest,
		CreatedAt:   m.timestamp(),
	}
	// The code goes out before the factor is stored: storing it voids the
	// user's earlier pending factor of the kind, which stays, with the
	// code sent for it, if this begin fails. The bound is read first, so
	// that no code goes to a user without room; CreateFactor applies it
	// again, atomically.
	if err := m.checkRoom(ctx, req.Tenant, req.UserID); errors.Is(err, ErrLimit) {
		return Factor{}, SendResult{}, err
	} else if err != nil {
		return f, SendResult{}, err
	}
	res, err := m.send(ctx, f, enrolTxn(f.ID), clipIP(req.IP))
	if err != nil {
		return f, SendResult{}, err
	}
	if err := m.st.Factors.CreateFactor(ctx, f, m.maxF); err != nil {
		if res.Sent {
			_ = m.st.Codes.DeleteCode(context.WithoutCancel(ctx), f.Tenant, codeTxn(f.UserID, enrolTxn(f.ID)))
		}
		if errors.Is(err, ErrLimit) {
			return Factor{}, SendResult{}, ErrLimit
		}
		return f, SendResult{}, storeErr("create factor", err)
	}
	return f, res, nil
}

// checkRoom returns ErrLimit if the user has Config.MaxFactors confirmed
// factors or more.
func (m *Manager) checkRoom(ctx context.Context, tenant, userID string) error {
	fs, err := m.st.Factors.Factors(ctx, tenant, userID)
	if err != nil {
		return storeErr("factors", err)
	}
	n := 0
	for _, f := range fs {
		if f.Confirmed() {
			n++
		}
	}
	if n >= m.maxF {
		return ErrLimit
	}
	return nil
}

// ConfirmOOB activates the pending email or SMS factor factorID with the
// code BeginOOB (or SendCode) sent to it; a code the factor did not send
// is ErrInvalidCode. Errors: those of VerifyCode, and ErrConflict if the
// factor is already confirmed, ErrExpired if it was begun more than
// EnrolTTL ago (it stays pending, as for ConfirmTOTP, and its code is
// left to expire), ErrLimit if the user has meanwhile
// confirmed Config.MaxFactors factors (it stays pending; the code is used
// up).
func (m *Manager) ConfirmOOB(ctx context.Context, tenant, userID, factorID, code string) (Factor, error) {
	if err := checkUser(tenant, userID); err != nil {
		return Factor{}, err
	}
	if err := checkFactorID(factorID); err != nil {
		return Factor{}, err
	}
	code, err := ParseCode(code, m.digits)
	if err != nil {
		return Factor{}, err
	}
	f, err := m.st.Factors.Factor(ctx, tenant, userID, factorID)
	if err != nil {
		return Factor{}, storeErr("factor", err)
	}
	if !f.Kind.outOfBand() {
		return Factor{}, ErrNotFound
	}
	if f.Confirmed() {
		return Factor{}, ErrConflict
	}
	now := m.now()
	if !now.Before(f.CreatedAt.Add(m.enrolTTL)) {
		return Factor{}, ErrExpired
	}
	c, err := m.checkCode(ctx, tenant, userID, enrolTxn(factorID), code, now)
	if err != nil {
		return Factor{}, err
	}
	if c.FactorID != factorID || c.Kind != f.Kind {
		return Factor{}, ErrInvalidCode // a code another factor sent proves nothing of this one
	}
	at := now.UTC().Truncate(time.Microsecond)
	if err := m.st.FactorUpdates.ConfirmFactor(ctx, tenant, userID, factorID, at, 0, m.maxF); err != nil {
		return Factor{}, storeErr("confirm factor", err)
	}
	f.ConfirmedAt = at
	return f, nil
}

// SendCode sends a one-time code to the user's email or SMS factor for a
// login transaction. The code is Config.CodeDigits random digits, stored
// only as an HMAC bound to the transaction, valid for CodeTTL and
// CodeTries wrong tries; it replaces any code sent before for the same
// transaction.
//
// Before anything is sent, the limits apply, in this order: the resend
// cool-down of the transaction, then the per-IP, per-account,
// per-destination and per-tenant counts of Config.Limits (a request over
// one limit is not counted against the next: the tenant's count, last, is
// spent only by requests every other limit let through, so that one
// client, account or destination cannot use up the whole tenant's). Over
// a limit the sender is not called, the earlier code stays valid, and
// SendCode returns a SendResult with Sent false and Suppressed set (a
// *RateLimitError says which count, Scope "tenant" for the tenant's), and
// a nil error: the facade answers as for a real send.
//
// A send that fails (a *SendError, or a store failure once the cool-down
// let it through) gives the cool-down back: no code went out, so a retry
// is not held back. It still counts against Config.Limits. After a
// *SendError the code the transaction had before is gone too (the new
// code had replaced it, and is deleted): a provider that failed only in
// appearance, say by timing out, may have delivered a code that does not
// work, and the retry's code does.
//
// Errors: an *InputError for a malformed argument, ErrNotFound if the
// user has no such email or SMS factor, ErrUnavailable if no sender is
// configured for it, a *SendError if the sender failed (the new code is
// then deleted), or a store failure.
func (m *Manager) SendCode(ctx context.Context, req SendRequest) (SendResult, error) {
	if err := checkUser(req.Tenant, req.UserID); err != nil {
		return SendResult{}, err
	}
	if err := checkFactorID(req.FactorID); err != nil {
		return SendResult{}, err
	}
	f, err := m.st.Factors.Factor(ctx, req.Tenant, req.UserID, req.FactorID)
	if err != nil {
		return SendResult{}, storeErr("factor", err)
	}
	if !f.Kind.outOfBand() {
		return SendResult{}, ErrNotFound
	}
	txn := req.Txn
	if !f.Confirmed() {
		txn = enrolTxn(f.ID)
	} else if err := checkTxn(txn); err != nil {
		return SendResult{}, err
	}
	if !m.hasSender(f.Kind) {
		return SendResult{}, ErrUnavailable
	}
	return m.send(ctx, f, txn, clipIP(req.IP))
}

// send applies the limits and sends a new code for txn to f.
func (m *Manager) send(ctx context.Context, f Factor, txn, ip string) (SendResult, error) {
	f.Secret = nil
	txn = codeTxn(f.UserID, txn)
	res := SendResult{Factor: f}
	if f.Kind == KindSMS && !m.smsAllowed(f.Destination) {
		res.Suppressed = ErrDestinationNotAllowed
		return res, nil
	}
	now := m.now()
	cool := RateKey("cool", f.Tenant, txn)
	if over, err := m.hit(ctx, cool, now, m.cool, 1); err != nil || over {
		if over {
			res.Suppressed = ErrCoolDown
		}
		return res, err
	}
	// This call opened the cool-down's window (its limit is one): a
	// failure from here on, nothing sent, ends it again (best effort), so
	// that a retry is not held back. A code to delete goes first: the
	// retry's, stored once the window is gone, must stay.
	fail := func(err error) (SendResult, error) {
		_ = m.st.Rates.Forget(context.WithoutCancel(ctx), cool, now, m.cool)
		return SendResult{}, err
	}
	// The destination counts across tenants, kept apart for confirmed
	// factors: anyone can start an enrolment to any address and so spend
	// its unconfirmed count, but only who receives there can confirm a
	// factor, so codes that sign its owner in never wait on a stranger's
	// enrolments.
	destScope := "destination"
	if f.Confirmed() {
		destScope = "destination-confirmed"
	}
	for _, l := range []struct {
		scope, key string
		max        int
	}{
		{"ip", RateKey("ip", ip), m.limits.PerIP},
		{"account", RateKey("account", f.Tenant, f.UserID), m.limits.PerAccount},
		{"destination", RateKey(destScope, string(f.Kind), destKey(f)), m.limits.PerDestination},
		{"tenant", RateKey("tenant", f.Tenant), m.limits.PerTenant},
	} {
		if l.scope == "ip" && ip == "" {
			continue
		}
		over, err := m.hit(ctx, l.key, now, m.limits.Window, l.max)
		if err != nil {
			return fail(err)
		}
		if over {
			res.Suppressed = &RateLimitError{Scope: l.scope}
			return res, nil
		}
	}
	code, err := m.newCode()
	if err != nil {
		return fail(err)
	}
	created := now.UTC().Truncate(time.Microsecond)
	c := Code{
		Tenant:    f.Tenant,
		Txn:       txn,
		UserID:    f.UserID,
		FactorID:  f.ID,
		Kind:      f.Kind,
		Hash:      m.codeHash(f.Tenant, txn, code),
		CreatedAt: created,
		ExpiresAt: created.Add(m.codeTTL),
		TriesLeft: m.tries,
	}
	if err := m.st.Codes.PutCode(ctx, c); err != nil {
		return fail(storeErr("put code", err))
	}
	subject, text := m.composeText(f.Kind, code)
	if f.Kind == KindEmail {
		err = m.email.SendEmail(ctx, Message{To: f.Destination, Subject: subject, Text: text})
	} else {
		err = m.sms.SendSMS(ctx, f.Destination, text)
	}
	if err != nil {
		var se *SendError
		if !errors.As(err, &se) {
			err = &SendError{Channel: string(f.Kind), Err: err}
		}
		_ = m.st.Codes.DeleteCode(context.WithoutCancel(ctx), f.Tenant, txn)
		return fail(err)
	}
	res.Sent, res.ExpiresAt = true, c.ExpiresAt
	return res, nil
}

// hit counts one event for key and reports whether it is over max.
func (m *Manager) hit(ctx context.Context, key string, now time.Time, window time.Duration, max int) (bool, error) {
	n, err := m.st.Rates.Hit(ctx, key, now, window)
	if err != nil {
		return false, storeErr("rate hit", err)
	}
	return n > max, nil
}

// VerifyCode checks a one-time code typed by the user against the code
// sent for transaction txn, and returns the confirmed factor it was sent
// to (its Kind tells email from SMS). The right code works once; a code of
// another transaction, or one replaced by a newer code, fails. Codes are
// kept per user: txn given with another user's ID finds no code
// (ErrNotFound) and uses up none of the owner's tries.
//
// Errors: an *InputError for a malformed code or txn (a txn beginning
// "enrol:" among them: enrolment codes are ConfirmOOB's), ErrInvalidCode
// for a wrong code (one of CodeTries used up), ErrTooManyTries once they
// are all used (even for the right code), ErrExpired after CodeTTL,
// ErrNotFound if no code is pending for the transaction or the factor has
// gone meanwhile. Every refusal of a code found for the user (all but a
// malformed code, no code, and a store failure checking it) is a
// *CodeError that carries the kind of factor that sent the code, around
// the error. VerifyCode does not throttle beyond CodeTries: the caller
// counts every failure against the account, as for a wrong password.
func (m *Manager) VerifyCode(ctx context.Context, tenant, userID, txn, code string) (Factor, error) {
	if err := checkUser(tenant, userID); err != nil {
		return Factor{}, err
	}
	if err := checkTxn(txn); err != nil {
		return Factor{}, err
	}
	code, err := ParseCode(code, m.digits)
	if err != nil {
		return Factor{}, err
	}
	c, err := m.checkCode(ctx, tenant, userID, txn, code, m.now())
	if err != nil {
		if c.Kind != "" {
			return Factor{}, &CodeError{Kind: c.Kind, Err: err}
		}
		return Factor{}, err
	}
	f, err := m.st.Factors.Factor(ctx, tenant, userID, c.FactorID)
	if err != nil {
		return Factor{}, &CodeError{Kind: c.Kind, Err: storeErr("factor", err)}
	}
	if !f.Confirmed() || f.Kind != c.Kind {
		return Factor{}, &CodeError{Kind: c.Kind, Err: ErrNotFound}
	}
	f.Secret = nil
	return f, nil
}

// checkCode runs one CheckCode attempt with code (as ParseCode returned
// it). A code of userID that is refused (ErrInvalidCode, ErrTooManyTries,
// ErrExpired) is returned with the refusal, as the store gave it; any
// other error comes with the zero Code.
func (m *Manager) checkCode(ctx context.Context, tenant, userID, txn, code string, now time.Time) (Code, error) {
	if m.st.Codes == nil {
		return Code{}, ErrNotFound
	}
	txn = codeTxn(userID, txn)
	c, err := m.st.Codes.CheckCode(ctx, tenant, txn, m.codeHash(tenant, txn, code), now)
	switch {
	case err != nil:
		err = storeErr("check code", err)
		if c.UserID != userID || !errors.Is(err, ErrInvalidCode) && !errors.Is(err, ErrTooManyTries) && !errors.Is(err, ErrExpired) {
			c = Code{}
		}
		return c, err
	case c.UserID != userID:
		return Code{}, ErrNotFound
	}
	return c, nil
}

// codeHash is the HMAC under which a one-time code is stored, bound to
// its tenant and transaction.
func (m *Manager) codeHash(tenant, txn, code string) Hash {
	mac := hmac.New(sha256.New, m.codeKey)
	mac.Write(appendFields(nil, "guard/mfa/code/v1", tenant, txn, code))
	var h Hash
	mac.Sum(h[:0])
	return h
}

// newCode returns Config.CodeDigits uniformly random decimal digits, or
// errBrokenRand after maxRedraws draws in a row beyond the last multiple
// of 10^digits.
func (m *Manager) newCode() (string, error) {
	n := uint32(1)
	for range m.digits {
		n *= 10
	}
	limit := (1 << 32) / uint64(n) * uint64(n) // largest multiple of n that fits: no modulo bias
	var b [4]byte
	for range maxRedraws {
		if _, err := io.ReadFull(m.rand, b[:]); err != nil {
			return "", fmt.Errorf("mfa: reading random bytes: %w", err)
		}
		if v := binary.BigEndian.Uint32(b[:]); uint64(v) < limit {
			return fmt.Sprintf("%0*d", m.digits, v%n), nil
		}
	}
	return "", errBrokenRand
}

func (m *Manager) hasSender(k Kind) bool {
	return (k == KindEmail && m.email != nil) || (k == KindSMS && m.sms != nil)
}

// smsAllowed reports whether number is under one of Config.SMSPrefixes
// (always, when there are none).
func (m *Manager) smsAllowed(number string) bool {
	if len(m.prefixes) == 0 {
		return true
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(number, p) {
			return true
		}
	}
	return false
}

// RateKey names a RateStore counter: the scope and a hash of the fields,
// so that counters neither hold addresses nor grow with the input. The
// facade names its own counters (link send limits) with it too.
func RateKey(scope string, fields ...string) string {
	sum := sha256.Sum256(appendFields(nil, fields...))
	return "mfa:" + scope + ":" + base64.RawURLEncoding.EncodeToString(sum[:18])
}

func clipIP(ip string) string {
	if len(ip) > maxIPLen {
		ip = ip[:maxIPLen]
	}
	return ip
}

// destKey is f's destination as its send limit counts it: an email
// address case-folded, so that no capitalisation of a mailbox has a count
// of its own; a phone number as it is.
func destKey(f Factor) string {
	if f.Kind == KindEmail {
		return strings.ToLower(f.Destination)
	}
	return f.Destination
}

// checkTxn refuses what cannot name a caller's transaction, including a
// name in the namespace of enrolment codes (enrolTxn): only BeginOOB,
// SendCode and ConfirmOOB reach those, each for its own pending factor.
func checkTxn(txn string) error {
	if txn == "" || len(txn) > 128 || strings.ContainsFunc(txn, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return &InputError{Field: "transaction", Reason: "is malformed"}
	}
	if strings.HasPrefix(txn, enrolTxn("")) {
		return &InputError{Field: "transaction", Reason: "is reserved for enrolment codes"}
	}
	return nil
}

// checkDestination returns the destination to store for kind: a bare
// email address (the facade passes it canonical) without white space,
// control or format characters (Cc, Cf, Zl, Zp: bidirectional overrides
// and isolates among them), as auth.CanonicalEmail requires, or an E.164
// number.
func checkDestination(kind Kind, d string) (string, error) {
	if kind == KindSMS {
		if len(d) < 8 || len(d) > 16 || d[0] != '+' || d[1] == '0' {
			return "", &InputError{Field: "destination", Reason: "must be an E.164 number: + and 7 to 15 digits"}
		}
		for i := 1; i < len(d); i++ {
			if d[i] < '0' || d[i] > '9' {
				return "", &InputError{Field: "destination", Reason: "must be an E.164 number: + and 7 to 15 digits"}
			}
		}
		return d, nil
	}
	if len(d) > 254 || !utf8.ValidString(d) {
		return "", &InputError{Field: "destination", Reason: "is not an email address"}
	}
	// What auth.CanonicalEmail refuses (mfa may not import auth): net/mail
	// takes any non-ASCII rune in an atom, but an address is shown, in the
	// factor and its default label, and must not reorder or break the
	// text around it.
	if strings.ContainsFunc(d, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp)
	}) {
		return "", &InputError{Field: "destination", Reason: "contains space or control characters"}
	}
	a, err := mail.ParseAddress(d)
	if err != nil || a.Name != "" || a.Address != d {
		return "", &InputError{Field: "destination", Reason: "is not a bare email address"}
	}
	return d, nil
}

// defaultLabel names an email or SMS factor without showing all of the
// destination (MaskDestination): "Phone ending 0123", "Email a…@example.com",
// or "Email" for an address too long for a label.
func defaultLabel(kind Kind, d string) string {
	if kind == KindSMS {
		return "Phone ending " + d[len(d)-4:]
	}
	if l := "Email " + MaskDestination(kind, d); len(l) <= MaxLabelLen {
		return l
	}
	return "Email"
}

// MaskDestination returns the destination d of an email or SMS factor
// (Factor.Destination) with most of it hidden, to name the factor to
// someone who has not proved it (a sign-in that has passed only the
// password): a phone number as "…" and its last four digits ("…0123"),
// an email address as the first character of its local part, "…", "@"
// and its domain ("a…@example.com"). Any other kind, or an empty d, gives
// "".
func MaskDestination(kind Kind, d string) string {
	switch {
	case d == "":
		return ""
	case kind == KindSMS:
		return "…" + d[max(len(d)-4, 0):]
	case kind == KindEmail:
		at := strings.LastIndexByte(d, '@') // a quoted local part may hold one too
		_, n := utf8.DecodeRuneInString(d)
		if at < n {
			return d[:n] + "…"
		}
		return d[:n] + "…" + d[at:]
	}
	return ""
}
