package mfa

import "strconv"

// MaxInputBytes bounds every code a user types (TOTP, one-time and
// recovery codes): a longer input is refused before it is scanned, so a
// 10 KB or 1 MB input costs nothing.
const MaxInputBytes = 64

// ParseCode checks a code typed by a user and returns its digits. The code
// must be exactly digits ASCII digits ('0' to '9'); surrounding ASCII
// white space (space, tab, CR, LF) is trimmed, nothing inside it is.
// Unicode digits (Arabic-Indic, full-width), signs, separators and codes
// of another length are refused with an *InputError for field "code",
// which never echoes the input. digits must be between 6 and 9.
func ParseCode(s string, digits int) (string, error) {
	if digits < 6 || digits > 9 {
		return "", &InputError{Field: "code", Reason: "length must be between 6 and 9 digits"}
	}
	if len(s) > MaxInputBytes {
		return "", &InputError{Field: "code", Reason: "is too long"}
	}
	s = trimSpace(s)
	if len(s) != digits {
		return "", &InputError{Field: "code", Reason: "must be " + strconv.Itoa(digits) + " digits"}
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", &InputError{Field: "code", Reason: "must be " + strconv.Itoa(digits) + " digits"}
		}
	}
	return s, nil
}

// parseCodeValue is ParseCode returning the code as a number.
func parseCodeValue(s string, digits int) (uint32, error) {
	s, err := ParseCode(s, digits)
	if err != nil {
		return 0, err
	}
	var v uint32
	for i := 0; i < len(s); i++ {
		v = v*10 + uint32(s[i]-'0')
	}
	return v, nil
}

// trimSpace trims ASCII space, tab, CR and LF at both ends.
func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
