package mfa

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Recovery codes are 120 random bits each (at least the 112 bits below
// which NIST SP 800-63B §5.1.2.2 asks for a salted, slow hash), written as
// 24 characters of Crockford's base32 in six groups of four:
// "7k3m-9q2x-…". Being that strong, they are stored as plain SHA-256
// hashes (bound to tenant and user). Input is forgiving: case, spaces and
// dashes are ignored, and o, i and l read as 0, 1 and 1.
const (
	recoveryChars = 24
	recoveryBytes = 15 // 120 bits
)

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// crockfordValue maps an input byte to its base32 value, 0xff if none.
var crockfordValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(crockford); i++ {
		c := crockford[i]
		t[c] = byte(i)
		if c >= 'a' && c <= 'z' {
			t[c-'a'+'A'] = byte(i)
		}
	}
	for _, alias := range []struct{ from, to byte }{{'o', '0'}, {'O', '0'}, {'i', '1'}, {'I', '1'}, {'l', '1'}, {'L', '1'}} {
		t[alias.from] = t[alias.to]
	}
	return t
}()

// RecoveryResult is what UseRecoveryCode reports.
type RecoveryResult struct {
	// Left is the number of codes still unused.
	Left int
	// Low reports that Left is at or below Config.RecoveryLow: tell the
	// user to generate a new set.
	Low bool
}

// GenerateRecoveryCodes makes a new set of Config.RecoveryCodes recovery
// codes for the user and returns them in clear: show them once, they are
// not kept anywhere. The set replaces the user's earlier set in one step,
// so every earlier code stops working. A Config.Rand that keeps repeating
// itself gives an error, and the earlier set is left as it was.
func (m *Manager) GenerateRecoveryCodes(ctx context.Context, tenant, userID string) ([]string, error) {
	if err := checkUser(tenant, userID); err != nil {
		return nil, err
	}
	codes, hashes, err := m.newRecoveryCodes(tenant, userID)
	if err != nil {
		return nil, err
	}
	if err := m.st.Recovery.ReplaceRecoveryCodes(ctx, tenant, userID, hashes); err != nil {
		return nil, storeErr("replace recovery codes", err)
	}
	return codes, nil
}

// RecoverySet is a user's set of recovery codes as it was when read
// (Manager.RecoverySet), for ReplaceRecoverySet.
type RecoverySet struct {
	tenant, userID string
	hashes         []Hash
}

// Left returns the number of codes the set held when it was read.
func (s RecoverySet) Left() int { return len(s.hashes) }

// RecoverySet reads the user's set of recovery codes, for a
// ReplaceRecoverySet that replaces it only if it has not changed since. A
// user without codes has an empty set.
func (m *Manager) RecoverySet(ctx context.Context, tenant, userID string) (RecoverySet, error) {
	if err := checkUser(tenant, userID); err != nil {
		return RecoverySet{}, err
	}
	hs, err := m.st.Recovery.RecoveryCodes(ctx, tenant, userID)
	if err != nil {
		return RecoverySet{}, storeErr("recovery codes", err)
	}
	return RecoverySet{tenant: tenant, userID: userID, hashes: hs}, nil
}

// ReplaceRecoverySet makes a new set of recovery codes, as
// GenerateRecoveryCodes does, and stores it in place of set, in one step,
// only if set is still the user's set, but for codes used since it was
// read: no code added, no other set stored (for an empty set: the user
// still has no codes left). Otherwise it returns ErrConflict and stores
// nothing. Of calls replacing one set at once, at most one succeeds, so
// that every set returned is the user's when it is returned. The zero
// RecoverySet names no user (an *InputError).
func (m *Manager) ReplaceRecoverySet(ctx context.Context, set RecoverySet) ([]string, error) {
	if err := checkUser(set.tenant, set.userID); err != nil {
		return nil, err
	}
	codes, hashes, err := m.newRecoveryCodes(set.tenant, set.userID)
	if err != nil {
		return nil, err
	}
	for old := set.hashes; ; {
		err := m.st.Recovery.SwapRecoveryCodes(ctx, set.tenant, set.userID, old, hashes)
		if !errors.Is(err, ErrConflict) {
			if err != nil {
				return nil, storeErr("swap recovery codes", err)
			}
			return codes, nil
		}
		// Codes of the set used since it was read leave fewer of the
		// same: swap from what is left. Any code not in the set read
		// (random, 120 bits) is of another set.
		now, err := m.st.Recovery.RecoveryCodes(ctx, set.tenant, set.userID)
		if err != nil {
			return nil, storeErr("recovery codes", err)
		}
		if len(now) >= len(old) || !subset(now, old) {
			return nil, ErrConflict
		}
		old = now
	}
}

// subset reports whether every hash of a is in b.
func subset(a, b []Hash) bool {
	in := make(map[Hash]bool, len(b))
	for _, h := range b {
		in[h] = true
	}
	for _, h := range a {
		if !in[h] {
			return false
		}
	}
	return true
}

// newRecoveryCodes draws a set of Config.RecoveryCodes codes for the
// user: the codes as shown and their hashes as stored.
func (m *Manager) newRecoveryCodes(tenant, userID string) ([]string, []Hash, error) {
	codes := make([]string, 0, m.recN)
	hashes := make([]Hash, 0, m.recN)
	seen := make(map[Hash]bool, m.recN)
	var raw [recoveryBytes]byte
	defer clear(raw[:])
	for repeats := 0; len(codes) < m.recN; {
		if _, err := io.ReadFull(m.rand, raw[:]); err != nil {
			return nil, nil, fmt.Errorf("mfa: reading random bytes: %w", err)
		}
		norm := encodeRecovery(raw)
		h := recoveryHash(tenant, userID, norm)
		if seen[h] {
			// A broken Rand; a set never holds a code twice.
			if repeats++; repeats >= maxRedraws {
				return nil, nil, errBrokenRand
			}
			continue
		}
		seen[h] = true
		hashes = append(hashes, h)
		codes = append(codes, formatRecovery(norm))
	}
	return codes, hashes, nil
}

// UseRecoveryCode checks a recovery code and uses it up: each code works
// once, also under concurrent use. Errors: an *InputError for input that
// cannot be a recovery code, ErrInvalidCode for a code not in the user's
// set (wrong, already used, or from a replaced set). The caller counts
// every failure against the account, audits every use and notifies the
// user.
func (m *Manager) UseRecoveryCode(ctx context.Context, tenant, userID, code string) (RecoveryResult, error) {
	if err := checkUser(tenant, userID); err != nil {
		return RecoveryResult{}, err
	}
	norm, err := ParseRecoveryCode(code)
	if err != nil {
		return RecoveryResult{}, err
	}
	left, err := m.st.Recovery.UseRecoveryCode(ctx, tenant, userID, recoveryHash(tenant, userID, norm))
	if err != nil {
		if err = storeErr("use recovery code", err); err == ErrNotFound {
			err = ErrInvalidCode
		}
		return RecoveryResult{}, err
	}
	return RecoveryResult{Left: left, Low: left <= m.recLow}, nil
}

// RecoveryCodesLeft returns the number of unused recovery codes of the
// user (0 if there is no set) and whether that is low.
func (m *Manager) RecoveryCodesLeft(ctx context.Context, tenant, userID string) (RecoveryResult, error) {
	if err := checkUser(tenant, userID); err != nil {
		return RecoveryResult{}, err
	}
	left, err := m.st.Recovery.RecoveryCodesLeft(ctx, tenant, userID)
	if err != nil {
		return RecoveryResult{}, storeErr("recovery codes left", err)
	}
	return RecoveryResult{Left: left, Low: left <= m.recLow}, nil
}

// ParseRecoveryCode returns the canonical form of a recovery code typed by
// a user (24 lower-case characters), ignoring case, spaces and dashes, and
// reading o, i and l as 0, 1 and 1. Anything else gives an *InputError for
// field "recovery code" that never echoes the input; input longer than
// MaxInputBytes is refused before it is scanned.
func ParseRecoveryCode(s string) (string, error) {
	if len(s) > MaxInputBytes {
		return "", &InputError{Field: "recovery code", Reason: "is too long"}
	}
	var out [recoveryChars]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || isSpace(c) {
			continue
		}
		v := crockfordValue[c]
		if v == 0xff || n == recoveryChars {
			return "", &InputError{Field: "recovery code", Reason: fmt.Sprintf("must be %d characters of base32", recoveryChars)}
		}
		out[n] = crockford[v]
		n++
	}
	if n != recoveryChars {
		return "", &InputError{Field: "recovery code", Reason: fmt.Sprintf("must be %d characters of base32", recoveryChars)}
	}
	return string(out[:]), nil
}

// encodeRecovery writes 120 bits as 24 base32 characters.
func encodeRecovery(raw [recoveryBytes]byte) string {
	var out [recoveryChars]byte
	var acc uint64
	bits, n := 0, 0
	for _, b := range raw {
		acc = acc<<8 | uint64(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out[n] = crockford[(acc>>bits)&31]
			n++
		}
	}
	return string(out[:])
}

// formatRecovery groups a canonical code by four: "7k3m-9q2x-…".
func formatRecovery(norm string) string {
	var b strings.Builder
	for i := 0; i < len(norm); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(norm[i : i+4])
	}
	return b.String()
}

// recoveryHash is the stored form of a canonical recovery code.
func recoveryHash(tenant, userID, norm string) Hash {
	return sha256.Sum256(appendFields(nil, "guard/mfa/recovery/v1", tenant, userID, norm))
}
