// Package emailfold holds the canonical form of an email address that
// auth.CanonicalEmail gives, for the packages that must agree with it but
// do not import auth (sso, which matches an IdP's email attribute to the
// user the facade finds by that key) and for the facade's folding of an
// address a store answered, which must not fail.
package emailfold

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxBytes is the longest canonical address (RFC 5321 path limit).
const MaxBytes = 254

// Fold returns email trimmed of surrounding white space, case-folded and
// in NFC. NFC is applied before case folding too, so that canonically
// equivalent inputs fold alike ("İ" composed lowers to "i", decomposed to
// "i" and U+0307), and after it, which may leave a composable sequence.
// Invalid UTF-8 is not checked (Canonical checks it first: folding would
// turn each invalid byte into U+FFFD and make distinct inputs collide).
func Fold(email string) string {
	return norm.NFC.String(strings.ToLower(norm.NFC.String(strings.TrimSpace(email))))
}

// Canonical returns Fold(email) and "" if email is valid UTF-8 and its
// folded form is a plain addr-spec (no display name, no angle brackets, no
// comments) of at most MaxBytes without white space, control or invisible
// formatting characters (such as U+200B, U+2028 or U+202E). Otherwise it
// returns "" and the reason, worded for an input error on an email field.
//
// An address in which a character outside ASCII folds to one inside it is
// refused too: "İ" (U+0130, or "I" and U+0307) lowers to "i", and the
// Kelvin sign (U+212A) normalises to "K". To a mail system, and to an IdP,
// "İan@corp.example" and "ian@corp.example" are different mailboxes, and
// "eve@İnfo.example" is at another (internationalised) domain than
// "info.example"; folded alike they would reach the same account, or pass
// a check of allowed domains.
func Canonical(email string) (canonical, reason string) {
	if !utf8.ValidString(email) {
		return "", "not valid UTF-8"
	}
	e := Fold(email)
	switch {
	case e == "":
		return "", "empty"
	case len(e) > MaxBytes:
		return "", "too long"
	}
	// After the length check: it normalises each character outside ASCII
	// on its own, which an input of any length must not cost.
	if foldsIntoASCII(strings.TrimSpace(email)) {
		return "", "contains a character that folds to a different, plain one"
	}
	for _, r := range e {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) ||
			unicode.In(r, unicode.Zl, unicode.Zp) {
			return "", "contains space or control characters"
		}
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Name != "" || a.Address != e {
		return "", "not an email address"
	}
	return e, ""
}

// foldsIntoASCII reports whether a character of s outside ASCII becomes
// one inside it in Fold: by normalisation (the Kelvin sign to "K", the
// Greek question mark to ";") or by lowering the normalised form (U+0130
// to "i"). s is valid UTF-8.
func foldsIntoASCII(s string) bool {
	for _, r := range s {
		if r >= utf8.RuneSelf && hasASCII(norm.NFC.String(string(r))) {
			return true
		}
	}
	for _, r := range norm.NFC.String(s) {
		if r >= utf8.RuneSelf && unicode.ToLower(r) < utf8.RuneSelf {
			return true
		}
	}
	return false
}

func hasASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < utf8.RuneSelf {
			return true
		}
	}
	return false
}
