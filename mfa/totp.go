package mfa

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"image/png"
	"io"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTPEnrolment is what BeginTOTP returns: show it once, then forget it.
type TOTPEnrolment struct {
	// Factor is the pending factor (without its sealed secret). It becomes
	// active when ConfirmTOTP accepts a first code, within EnrolTTL.
	Factor Factor
	// URI is the otpauth:// URI of the key, which the QR code encodes.
	URI string
	// QRPNG is a QR code of URI, as a PNG image, for the authenticator app.
	QRPNG []byte
	// Secret is the key in base32, for typing into an app by hand.
	Secret string
}

// BeginTOTP starts enrolling an authenticator app for the user: it draws a
// 160-bit secret from Config.Rand, stores a pending TOTP factor with the
// secret sealed by the Keyring (voiding any earlier pending TOTP factor of
// the user), and returns the otpauth URI and its QR code. account is the
// name the app shows under the Issuer (usually the user's email); label
// is the factor's name for the user (default "Authenticator app").
// ErrLimit if the user already has Config.MaxFactors confirmed factors.
func (m *Manager) BeginTOTP(ctx context.Context, tenant, userID, account, label string) (TOTPEnrolment, error) {
	if err := checkUser(tenant, userID); err != nil {
		return TOTPEnrolment{}, err
	}
	if account == "" {
		return TOTPEnrolment{}, &InputError{Field: "account", Reason: "is required"}
	}
	if r := checkName(account, MaxAccountBytes); r != "" {
		return TOTPEnrolment{}, &InputError{Field: "account", Reason: r}
	}
	label, err := checkLabel(label, "Authenticator app")
	if err != nil {
		return TOTPEnrolment{}, err
	}
	id, err := m.randomID()
	if err != nil {
		return TOTPEnrolment{}, err
	}
	secret := make([]byte, TOTPSecretBytes)
	if _, err := io.ReadFull(m.rand, secret); err != nil {
		return TOTPEnrolment{}, fmt.Errorf("mfa: reading random bytes: %w", err)
	}
	defer clear(secret)
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      m.issuer,
		AccountName: account,
		Period:      TOTPPeriod,
		Secret:      secret,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("mfa: generating key: %w", err)
	}
	img, err := key.Image(m.qrSize, m.qrSize)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("mfa: drawing QR code: %w", err)
	}
	var qr bytes.Buffer
	if err := png.Encode(&qr, img); err != nil {
		return TOTPEnrolment{}, fmt.Errorf("mfa: encoding QR code: %w", err)
	}
	keyID, sealed, err := m.keys.Seal(secret, secretAAD(tenant, userID, id))
	if err != nil {
		return TOTPEnrolment{}, err
	}
	f := Factor{
		ID:        id,
		Tenant:    tenant,
		UserID:    userID,
		Kind:      KindTOTP,
		Label:     label,
		KeyID:     keyID,
		Secret:    sealed,
		CreatedAt: m.timestamp(),
	}
	if err := m.st.Factors.CreateFactor(ctx, f, m.maxF); err != nil {
		return TOTPEnrolment{}, storeErr("create factor", err)
	}
	f.Secret = nil
	return TOTPEnrolment{Factor: f, URI: key.URL(), QRPNG: qr.Bytes(), Secret: key.Secret()}, nil
}

// ConfirmTOTP activates the pending TOTP factor factorID with a first code
// from the app, proving the app holds the secret. The code's time step is
// recorded, so the same code cannot then be used to sign in. Errors: an
// *InputError for a malformed code, ErrInvalidCode for a wrong one,
// ErrNotFound if there is no such pending TOTP factor, ErrConflict if it is
// already confirmed, ErrExpired if it was begun more than EnrolTTL ago
// (it stays pending, never to be confirmed, until a new enrolment of the
// kind voids it or RemoveFactor removes it: deleting it here could delete
// a confirmation of the same factor landing meanwhile), ErrLimit if the
// user has meanwhile confirmed Config.MaxFactors factors (it stays
// pending).
func (m *Manager) ConfirmTOTP(ctx context.Context, tenant, userID, factorID, code string) (Factor, error) {
	c, err := m.checkTOTPInput(tenant, userID, factorID, code)
	if err != nil {
		return Factor{}, err
	}
	f, err := m.st.Factors.Factor(ctx, tenant, userID, factorID)
	if err != nil {
		return Factor{}, storeErr("factor", err)
	}
	if f.Kind != KindTOTP {
		return Factor{}, ErrNotFound
	}
	if f.Confirmed() {
		return Factor{}, ErrConflict
	}
	now := m.now()
	if !now.Before(f.CreatedAt.Add(m.enrolTTL)) {
		return Factor{}, ErrExpired
	}
	step, ok, err := m.matchFactor(f, c, now)
	if err != nil {
		return Factor{}, err
	}
	if !ok {
		return Factor{}, ErrInvalidCode
	}
	at := now.UTC().Truncate(time.Microsecond)
	if err := m.st.FactorUpdates.ConfirmFactor(ctx, tenant, userID, factorID, at, step, m.maxF); err != nil {
		return Factor{}, storeErr("confirm factor", err)
	}
	f.ConfirmedAt, f.LastStep, f.Secret = at, step, nil
	return f, nil
}

// VerifyTOTP checks a code from the user's authenticator app at sign-in or
// step-up and returns the factor it matched. factorID names one confirmed
// TOTP factor; "" tries each of the user's confirmed TOTP factors.
//
// The code is compared, in constant time, with the codes of the time
// steps within Config.Skew of the server's clock; the matching step must
// be later than the last step accepted for the factor, and becomes the
// last one in one atomic store step, so a code is accepted at most once,
// even by concurrent requests, and no earlier code is accepted after it.
//
// Errors: an *InputError for a malformed code, ErrInvalidCode for a wrong
// one, ErrReplay for a correct code already used (or older than the last
// one used: audit it as a reuse attempt), ErrNotFound if the user has no
// such confirmed TOTP factor, ErrUnseal or ErrUnknownKey if the secret
// cannot be opened. VerifyTOTP does not throttle: the caller counts every
// failure against the account, as for a wrong password.
func (m *Manager) VerifyTOTP(ctx context.Context, tenant, userID, factorID, code string) (Factor, error) {
	var c uint32
	var err error
	if factorID == "" {
		if err := checkUser(tenant, userID); err != nil {
			return Factor{}, err
		}
		if c, err = parseCodeValue(code, TOTPDigits); err != nil {
			return Factor{}, err
		}
	} else if c, err = m.checkTOTPInput(tenant, userID, factorID, code); err != nil {
		return Factor{}, err
	}
	var candidates []Factor
	if factorID != "" {
		f, err := m.st.Factors.Factor(ctx, tenant, userID, factorID)
		if err != nil {
			return Factor{}, storeErr("factor", err)
		}
		var one [1]Factor
		one[0] = f
		candidates = one[:]
	} else {
		all, err := m.st.Factors.Factors(ctx, tenant, userID)
		if err != nil {
			return Factor{}, storeErr("factors", err)
		}
		candidates = all
	}
	now := m.now()
	found := false
	for _, f := range candidates {
		if f.Kind != KindTOTP || !f.Confirmed() {
			continue
		}
		found = true
		step, ok, err := m.matchFactor(f, c, now)
		if err != nil {
			return Factor{}, err
		}
		if !ok {
			continue
		}
		if err := m.st.FactorUpdates.AdvanceStep(ctx, tenant, userID, f.ID, step); err != nil {
			return Factor{}, storeErr("advance step", err)
		}
		f.LastStep, f.Secret = step, nil
		return f, nil
	}
	if !found {
		return Factor{}, ErrNotFound
	}
	return Factor{}, ErrInvalidCode
}

func (m *Manager) checkTOTPInput(tenant, userID, factorID, code string) (uint32, error) {
	if err := checkUser(tenant, userID); err != nil {
		return 0, err
	}
	if err := checkFactorID(factorID); err != nil {
		return 0, err
	}
	return parseCodeValue(code, TOTPDigits)
}

// matchFactor opens f's secret and reports the latest time step within
// the skew of now whose code is c.
func (m *Manager) matchFactor(f Factor, c uint32, now time.Time) (step int64, ok bool, err error) {
	secret, err := m.keys.Open(f.KeyID, f.Secret, secretAAD(f.Tenant, f.UserID, f.ID))
	if err != nil {
		return 0, false, err
	}
	defer clear(secret)
	step, ok = matchStep(secret, c, now, m.skew)
	return step, ok, nil
}

// matchStep compares c with the TOTP codes of every step from T-skew to
// T+skew (T the step of now), all of them, in constant time, and returns
// the latest step that matches.
func matchStep(secret []byte, c uint32, now time.Time, skew int64) (step int64, ok bool) {
	t := timeStep(now)
	k := newHMACKey(secret)
	var best, found int
	for s := max(t-skew, 1); s <= t+skew; s++ {
		eq := subtle.ConstantTimeEq(int32(k.hotp(s)), int32(c))
		best = subtle.ConstantTimeSelect(eq, int(s), best)
		found |= eq
	}
	clear(k.ipad[:])
	clear(k.opad[:])
	return int64(best), found == 1
}

// timeStep is the RFC 6238 time step of t.
func timeStep(t time.Time) int64 {
	u := t.Unix()
	s := u / TOTPPeriod
	if u < 0 && u%TOTPPeriod != 0 {
		s--
	}
	return s
}

// hmacKey holds the padded keys of HMAC-SHA1 (RFC 2104) for one secret.
// crypto/hmac would allocate some five objects per verification; this
// keeps the whole check on the stack. TestHOTPMatchesPquerna checks it
// against pquerna/otp (which uses crypto/hmac) and RFC 6238's vectors.
type hmacKey struct {
	ipad, opad [sha1.BlockSize]byte
}

func newHMACKey(secret []byte) *hmacKey {
	var k hmacKey
	if len(secret) > sha1.BlockSize {
		sum := sha1.Sum(secret)
		secret = sum[:]
	}
	copy(k.ipad[:], secret)
	copy(k.opad[:], secret)
	for i := range k.ipad {
		k.ipad[i] ^= 0x36
		k.opad[i] ^= 0x5c
	}
	return &k
}

// hotp is the RFC 4226 value of counter reduced to TOTPDigits digits.
func (k *hmacKey) hotp(counter int64) uint32 {
	var in [sha1.BlockSize + 8]byte
	copy(in[:], k.ipad[:])
	binary.BigEndian.PutUint64(in[sha1.BlockSize:], uint64(counter))
	inner := sha1.Sum(in[:])
	var out [sha1.BlockSize + sha1.Size]byte
	copy(out[:], k.opad[:])
	copy(out[sha1.BlockSize:], inner[:])
	sum := sha1.Sum(out[:])
	clear(in[:])
	clear(out[:])
	off := sum[len(sum)-1] & 0xf
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return v % 1_000_000
}
