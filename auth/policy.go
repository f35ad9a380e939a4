package auth

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Policy limits for Policy.MinLength and Policy.MaxLength, in code points.
const (
	DefaultMinLength = 8
	DefaultMaxLength = 128
	// MinMinLength is the smallest MinLength Validate accepts (NIST SP
	// 800-63B §5.1.1.2, ASVS 5 6.2.1).
	MinMinLength = 8
	// MinMaxLength is the smallest MaxLength Validate accepts (ASVS 5
	// 6.2.9: at least 64 characters must be allowed).
	MinMaxLength = 64
	// minContextWord is the shortest email local part or name word that
	// Check looks for inside a password.
	minContextWord = 3
)

// Policy is a password policy after NIST SP 800-63B: a length range and a
// blocklist, and no composition rules (no required digits, capitals or
// symbols; ASVS 5 6.2.5).
//
// Passwords are taken as exact bytes: no Unicode normalisation, no
// trimming and no case folding, at set, change and login alike (ASVS 5
// 6.2.8, checklist PW-13). So "é" typed as U+00E9 and as "e"+U+0301 are
// different passwords. NIST suggests NFKC normalisation, but the exact
// rule is the one that never surprises a user whose two devices compose
// characters differently only at set time, and it keeps verification
// independent of the Unicode tables of the Go release. Length is counted
// in code points: eight emoji meet a minimum of eight.
type Policy struct {
	// MinLength is the minimum length in code points; 0 means 8. Validate
	// refuses a value below 8.
	MinLength int
	// MaxLength is the maximum length in code points; 0 means 128.
	// Validate refuses a value below 64 or below MinLength.
	MaxLength int
	// AllowCommon turns off the blocklist (see IsCommon). By default a
	// common password is refused.
	AllowCommon bool
}

// PolicyConfigError reports an unusable Policy field.
type PolicyConfigError struct {
	Field, Reason string
}

func (e *PolicyConfigError) Error() string {
	return fmt.Sprintf("auth: invalid password policy: %s %s", e.Field, e.Reason)
}

// Validate reports whether p is usable, as a *PolicyConfigError.
func (p Policy) Validate() error {
	minLen, maxLen := p.limits()
	switch {
	case p.MinLength != 0 && p.MinLength < MinMinLength:
		return &PolicyConfigError{Field: "MinLength", Reason: fmt.Sprintf("must be at least %d", MinMinLength)}
	case p.MaxLength != 0 && p.MaxLength < MinMaxLength:
		return &PolicyConfigError{Field: "MaxLength", Reason: fmt.Sprintf("must be at least %d", MinMaxLength)}
	case maxLen < minLen:
		return &PolicyConfigError{Field: "MaxLength", Reason: "must be at least MinLength"}
	}
	return nil
}

// limits returns the effective length range. A MinLength below the floor
// is raised to it, so even an unvalidated Policy never allows less than 8.
func (p Policy) limits() (minLen, maxLen int) {
	minLen, maxLen = max(p.MinLength, MinMinLength), p.MaxLength
	if maxLen == 0 {
		maxLen = DefaultMaxLength
	}
	return minLen, maxLen
}

// Context is what Check knows about the password's owner, for refusing
// context-specific words.
type Context struct {
	Email string // the user's email
	Name  string // the user's display name
	// Service names the service the password is for: the product's name,
	// the tenant's name and ID (ASVS 6.2.11).
	Service []string
}

// Rule names the rule a password broke.
type Rule string

// Rules of Policy.Check. RuleReused and RuleBreached are not checked by
// Check: they are for callers that compare a new password with the user's
// history, or ask a BreachChecker.
const (
	RuleTooShort        Rule = "too_short"
	RuleTooLong         Rule = "too_long"
	RuleInvalidUTF8     Rule = "invalid_utf8"
	RuleCommon          Rule = "common"
	RuleContainsEmail   Rule = "contains_email"
	RuleContainsName    Rule = "contains_name"
	RuleContainsService Rule = "contains_service"
	RuleReused          Rule = "reused"
	RuleBreached        Rule = "breached"
)

// ruleText is the human text of each rule; it never contains the password.
var ruleText = map[Rule]string{
	RuleTooShort:        "too short",
	RuleTooLong:         "too long",
	RuleInvalidUTF8:     "not valid UTF-8",
	RuleCommon:          "too common",
	RuleContainsEmail:   "contains the email address",
	RuleContainsName:    "contains the user's name",
	RuleContainsService: "contains the name of the product or the account",
	RuleReused:          "used before",
	RuleBreached:        "found in a data breach",
}

// PolicyError reports a password refused by a policy. It names the rule,
// never the password.
type PolicyError struct {
	Rule Rule
}

func (e *PolicyError) Error() string {
	t, ok := ruleText[e.Rule]
	if !ok {
		t = string(e.Rule)
	}
	return "auth: password rejected: " + t
}

// Check applies p to a new password of the user described by c and
// returns nil or a *PolicyError. The rules, in order:
//
//   - the password is valid UTF-8 (RuleInvalidUTF8);
//   - its length in code points is within MinLength..MaxLength
//     (RuleTooShort, RuleTooLong);
//   - unless AllowCommon, it is not common (RuleCommon, see IsCommon);
//   - it does not contain the local part of c.Email when that is at least
//     3 characters long, ignoring case (RuleContainsEmail);
//   - it does not contain any word of c.Name of at least 3 characters,
//     ignoring case; words are separated by anything that is not a letter
//     or a digit (RuleContainsName);
//   - it does not contain any such word of c.Service (RuleContainsService).
//
// The password is used exactly as given: no trimming, normalisation or
// case folding (see Policy).
func (p Policy) Check(password string, c Context) error {
	if !utf8.ValidString(password) {
		return &PolicyError{Rule: RuleInvalidUTF8}
	}
	minLen, maxLen := p.limits()
	// Count no further than needed: the length of a huge input is not
	// interesting beyond maxLen.
	n := 0
	for range password {
		n++
		if n > maxLen {
			return &PolicyError{Rule: RuleTooLong}
		}
	}
	if n < minLen {
		return &PolicyError{Rule: RuleTooShort}
	}
	if !p.AllowCommon && IsCommon(password) {
		return &PolicyError{Rule: RuleCommon}
	}
	lower := strings.ToLower(password)
	if i := strings.LastIndexByte(c.Email, '@'); i >= 0 && utf8.RuneCountInString(c.Email[:i]) >= minContextWord {
		local := c.Email[:i]
		if strings.Contains(lower, strings.ToLower(local)) {
			return &PolicyError{Rule: RuleContainsEmail}
		}
	}
	if containsWord(lower, c.Name) {
		return &PolicyError{Rule: RuleContainsName}
	}
	for _, s := range c.Service {
		if containsWord(lower, s) {
			return &PolicyError{Rule: RuleContainsService}
		}
	}
	return nil
}

// containsWord reports whether lower (a lower-cased password) contains a
// word of text of at least minContextWord characters, ignoring case.
func containsWord(lower, text string) bool {
	for _, w := range strings.FieldsFunc(text, notWordRune) {
		if utf8.RuneCountInString(w) >= minContextWord && strings.Contains(lower, strings.ToLower(w)) {
			return true
		}
	}
	return false
}

func notWordRune(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }
