package mfa

import (
	"encoding/base32"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bounds of ParseURI.
const (
	MaxURIBytes     = 2048 // longer input is refused before it is parsed
	MinSecretBytes  = 14   // 112 bits, the NIST SP 800-63B floor for OTP keys
	MaxSecretBytes  = 64
	MaxIssuerBytes  = 128
	MaxAccountBytes = 256
)

// URI is a TOTP key as carried by an otpauth:// URI (the Key Uri Format of
// Google Authenticator, which Authy and 1Password also read).
type URI struct {
	Issuer    string
	Account   string
	Secret    []byte
	Algorithm string // "SHA1", "SHA256" or "SHA512"
	Digits    int    // 6 or 8
	Period    int    // seconds, 1 to 300
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// ParseURI parses and checks an otpauth URI, for importing or inspecting a
// key. It is strict, and every refusal is a *URIError that never echoes
// the URI (it holds a secret):
//
//   - at most MaxURIBytes, after trimming surrounding ASCII white space;
//   - scheme otpauth, type totp (hotp is refused), no user, port, opaque
//     part or fragment;
//   - a label "issuer:account" or "account" (spaces after the colon are
//     allowed); issuer and account are valid UTF-8 without control
//     characters or colons, and do not start or end with a space;
//   - each parameter at most once; secret required, base32 (any case,
//     padding optional) of MinSecretBytes to MaxSecretBytes bytes; an
//     issuer parameter must equal the label's issuer when both are given;
//     algorithm SHA1 (default), SHA256 or SHA512; digits 6 (default) or 8;
//     period 1 to 300 (default 30). Other parameters are ignored.
//
// URI.String gives back an equivalent URI in canonical form.
func ParseURI(s string) (URI, error) {
	if len(s) > MaxURIBytes+64 {
		return URI{}, &URIError{Reason: "too long"}
	}
	s = trimSpace(s)
	if len(s) > MaxURIBytes {
		return URI{}, &URIError{Reason: "too long"}
	}
	u, err := url.Parse(s)
	if err != nil {
		return URI{}, &URIError{Reason: "not a URI"}
	}
	switch {
	case u.Scheme != "otpauth":
		return URI{}, &URIError{Reason: "scheme is not otpauth"}
	case u.Opaque != "" || u.User != nil || u.Port() != "" || u.Fragment != "" || u.RawFragment != "":
		return URI{}, &URIError{Reason: "unexpected part"}
	case strings.EqualFold(u.Host, "hotp"):
		return URI{}, &URIError{Reason: "type hotp is not supported"}
	case !strings.EqualFold(u.Host, "totp"):
		return URI{}, &URIError{Reason: "type is not totp"}
	case !strings.HasPrefix(u.Path, "/"):
		return URI{}, &URIError{Reason: "missing label"}
	}
	var k URI
	label := u.Path[1:]
	labelIssuer, account, hasIssuer := strings.Cut(label, ":")
	if !hasIssuer {
		labelIssuer, account = "", label
	} else {
		account = strings.TrimLeft(account, " ")
		if r := checkName(labelIssuer, MaxIssuerBytes); r != "" {
			return URI{}, &URIError{Reason: "issuer " + r}
		}
	}
	if account == "" {
		return URI{}, &URIError{Reason: "missing account"}
	}
	if r := checkName(account, MaxAccountBytes); r != "" {
		return URI{}, &URIError{Reason: "account " + r}
	}
	k.Account = account
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return URI{}, &URIError{Reason: "malformed query"}
	}
	for name, vs := range q {
		if len(vs) > 1 {
			return URI{}, &URIError{Reason: "parameter " + strconv.Quote(clipName(name)) + " repeated"}
		}
	}
	k.Issuer = labelIssuer
	if vs, ok := q["issuer"]; ok {
		if r := checkName(vs[0], MaxIssuerBytes); r != "" {
			return URI{}, &URIError{Reason: "issuer " + r}
		}
		if hasIssuer && vs[0] != labelIssuer {
			return URI{}, &URIError{Reason: "issuer parameter differs from the label"}
		}
		k.Issuer = vs[0]
	}
	if k.Secret, err = parseSecret(q.Get("secret")); err != nil {
		return URI{}, err
	}
	k.Algorithm = "SHA1"
	if vs, ok := q["algorithm"]; ok {
		switch a := strings.ToUpper(vs[0]); a {
		case "SHA1", "SHA256", "SHA512":
			k.Algorithm = a
		default:
			return URI{}, &URIError{Reason: "algorithm must be SHA1, SHA256 or SHA512"}
		}
	}
	k.Digits = 6
	if vs, ok := q["digits"]; ok {
		switch vs[0] {
		case "6":
		case "8":
			k.Digits = 8
		default:
			return URI{}, &URIError{Reason: "digits must be 6 or 8"}
		}
	}
	k.Period = 30
	if vs, ok := q["period"]; ok {
		p, ok := parseSmallDecimal(vs[0])
		if !ok || p < 1 || p > 300 {
			return URI{}, &URIError{Reason: "period must be 1 to 300 seconds"}
		}
		k.Period = p
	}
	return k, nil
}

// parseSecret decodes a base32 secret: any case, padding optional.
func parseSecret(s string) ([]byte, error) {
	if s == "" {
		return nil, &URIError{Reason: "missing secret"}
	}
	if len(s) > 2*MaxSecretBytes+8 {
		return nil, &URIError{Reason: "secret too long"}
	}
	s = strings.ToUpper(strings.TrimRight(s, "="))
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return nil, &URIError{Reason: "secret is not base32"}
		}
	}
	secret, err := b32.DecodeString(s)
	if err != nil {
		return nil, &URIError{Reason: "secret is not base32"}
	}
	if len(secret) < MinSecretBytes {
		return nil, &URIError{Reason: "secret shorter than 112 bits"}
	}
	if len(secret) > MaxSecretBytes {
		return nil, &URIError{Reason: "secret too long"}
	}
	return secret, nil
}

// parseSmallDecimal parses 1 to 4 ASCII digits without a leading zero.
func parseSmallDecimal(s string) (int, bool) {
	if s == "" || len(s) > 4 || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// checkName returns why an issuer or account is unacceptable, or "".
func checkName(s string, max int) string {
	switch {
	case len(s) > max:
		return "too long"
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case strings.HasPrefix(s, " ") || strings.HasSuffix(s, " "):
		return "starts or ends with a space"
	case strings.ContainsRune(s, ':'):
		return "contains a colon"
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return "contains a control character"
		}
	}
	return ""
}

// clipName keeps a parameter name short enough to quote in an error
// (parameter names are not secret, values are).
func clipName(s string) string {
	if len(s) > 16 {
		s = s[:16]
	}
	return strings.ToValidUTF8(s, "?")
}

// String returns k as a canonical otpauth URI: label "issuer:account"
// (or "account"), then secret (base32, upper case, no padding), issuer,
// algorithm, digits and period.
func (k URI) String() string {
	label := k.Account
	if k.Issuer != "" {
		label = k.Issuer + ":" + k.Account
	}
	var q strings.Builder
	q.WriteString("secret=")
	q.WriteString(b32.EncodeToString(k.Secret))
	if k.Issuer != "" {
		q.WriteString("&issuer=")
		q.WriteString(strings.ReplaceAll(url.QueryEscape(k.Issuer), "+", "%20"))
	}
	q.WriteString("&algorithm=" + k.Algorithm)
	q.WriteString("&digits=" + strconv.Itoa(k.Digits))
	q.WriteString("&period=" + strconv.Itoa(k.Period))
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + label, RawQuery: q.String()}
	return u.String()
}
