package session

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"strings"
)

const (
	// tokenBytes is the number of random bytes in a token (256 bits).
	tokenBytes = 32
	// tokenLen is the length of a token: tokenBytes in base64url without
	// padding.
	tokenLen = 43
)

// generateToken reads tokenBytes random bytes from r and returns the token
// and its hash.
func generateToken(r io.Reader) (string, Hash, error) {
	var raw [tokenBytes]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return "", Hash{}, err
	}
	return base64.RawURLEncoding.EncodeToString(raw[:]), sha256.Sum256(raw[:]), nil
}

// ParseToken decodes a session token and returns its Hash, the form in
// which a store keeps it. Anything that is not exactly 43 base64url
// characters in canonical form (no padding, no line breaks, unused
// trailing bits zero) returns ErrInvalidToken. ParseToken allocates
// nothing.
func ParseToken(token string) (Hash, error) {
	raw, ok := decode32(token)
	if !ok {
		return Hash{}, ErrInvalidToken
	}
	return sha256.Sum256(raw[:]), nil
}

// b64url maps a base64url character to its 6-bit value, and every other
// byte to 0xff.
var b64url = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// decode32 decodes the canonical unpadded base64url form of 32 bytes
// (43 characters). It is stricter than encoding/base64, which skips line
// breaks and accepts non-zero trailing bits, so that exactly one string
// stands for each value.
func decode32(s string) (out [32]byte, ok bool) {
	if len(s) != tokenLen {
		return out, false
	}
	var bad byte
	// 10 groups of 4 characters give 30 bytes.
	for g := 0; g < 10; g++ {
		a, b, c, d := b64url[s[4*g]], b64url[s[4*g+1]], b64url[s[4*g+2]], b64url[s[4*g+3]]
		bad |= a | b | c | d
		v := uint32(a&0x3f)<<18 | uint32(b&0x3f)<<12 | uint32(c&0x3f)<<6 | uint32(d&0x3f)
		out[3*g], out[3*g+1], out[3*g+2] = byte(v>>16), byte(v>>8), byte(v)
	}
	// The last 3 characters carry 18 bits: 2 bytes and 2 bits that must be zero.
	a, b, c := b64url[s[40]], b64url[s[41]], b64url[s[42]]
	bad |= a | b | c
	v := uint32(a&0x3f)<<12 | uint32(b&0x3f)<<6 | uint32(c&0x3f)
	out[30], out[31] = byte(v>>10), byte(v>>2)
	if bad&0xc0 != 0 || v&3 != 0 { // 0xff marks a byte outside the alphabet
		return [32]byte{}, false
	}
	return out, true
}

// CookieValue returns the value of the first cookie named name in header,
// one raw Cookie header line (an element of r.Header["Cookie"]), without
// allocating. It parses as net/http's Request.Cookie does: pairs separated
// by ';' with optional surrounding spaces, the name must be a valid token
// and match exactly, the value may be enclosed in double quotes (which are
// removed), and a pair whose value holds a byte net/http refuses is skipped.
// ok is false when no such cookie is present.
func CookieValue(header, name string) (value string, ok bool) {
	if !isToken(name) {
		return "", false
	}
	line := trimSpace(header)
	for len(line) > 0 {
		var part string
		part, line, _ = strings.Cut(line, ";")
		part = trimSpace(part)
		if part == "" {
			continue
		}
		n, v, _ := strings.Cut(part, "=")
		if trimSpace(n) != name {
			continue
		}
		if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if validCookieValue(v) {
			return v, true
		}
	}
	return "", false
}

// trimSpace trims ASCII space, tab, CR and LF, like net/textproto.TrimString.
func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// validCookieValue reports whether every byte of v is one net/http accepts
// in a cookie value.
func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if !cookieValueChar[v[i]] {
			return false
		}
	}
	return true
}

// cookieValueChar holds the bytes net/http accepts in a cookie value:
// printable ASCII but '"', ';' and '\\' (a table: three times as fast as
// the comparisons on the per-request path).
var cookieValueChar = func() (t [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		t[b] = b != '"' && b != ';' && b != '\\'
	}
	return t
}()

// isToken reports whether s is a non-empty RFC 7230 token, the rule
// net/http applies to cookie names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
