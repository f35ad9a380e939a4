package auth_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/guardhq/guard/auth"
)

// FuzzPolicyCheck: a new password from a sign-up, reset or change form,
// checked against the user's email and name and the service's names. A
// refusal is a *PolicyError naming one of Check's rules, whose text is
// the fixed text of the rule (never the password); an accepted password
// is valid UTF-8, MinLength to MaxLength code points, not common, and
// holds neither the email's local part (3+ characters) nor a word of the
// name or a service name (3+ letters or digits), ignoring case. Less
// context, or AllowCommon, never refuses what Check accepted.
func FuzzPolicyCheck(f *testing.F) {
	f.Add("correct horse battery staple", "ada@example.com", "Ada Lovelace", "Acme", 0, 0, false)
	f.Add("password", "ada@example.com", "", "", 0, 0, false)
	f.Add("xxADAxxxxxxxx", "ada@example.com", "", "", 0, 0, false)
	f.Add("Lovelace-rules-42", "x@y", "Ada Lovelace", "", 12, 64, false)
	f.Add("\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", "", "", "", 0, 0, true)
	f.Add("ééééééééé", "éé@x", "ÉÉÉ", "guard", 8, 64, false)
	f.Add(strings.Repeat("ab", 70), "", "", "", 8, 128, true)
	f.Add("İstanbul-2026!", "i̇stanbul@example.com", "", "", 0, 0, false)
	f.Fuzz(func(t *testing.T, pw, email, name, service string, minLen, maxLen int, allowCommon bool) {
		p := auth.Policy{MinLength: minLen, MaxLength: maxLen, AllowCommon: allowCommon}
		if p.Validate() != nil {
			return
		}
		c := auth.Context{Email: email, Name: name, Service: []string{service}}
		err := p.Check(pw, c)
		if err != nil {
			var pe *auth.PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("Check(%q) = %#v, not a *PolicyError", pw, err)
			}
			switch pe.Rule {
			case auth.RuleInvalidUTF8, auth.RuleTooShort, auth.RuleTooLong, auth.RuleCommon,
				auth.RuleContainsEmail, auth.RuleContainsName, auth.RuleContainsService:
			default:
				t.Fatalf("Check(%q) broke rule %q, not one of Check's", pw, pe.Rule)
			}
			if err.Error() != (&auth.PolicyError{Rule: pe.Rule}).Error() || (len(pw) >= 4 && strings.Contains(err.Error(), pw) && !strings.Contains("auth: password rejected: too short too long not valid UTF-8 too common contains the email address contains the user's name contains the name of the product or the account", pw)) {
				t.Fatalf("Check error %q echoes the password %q", err, pw)
			}
			return
		}
		minL, maxL := max(minLen, auth.MinMinLength), maxLen
		if maxL == 0 {
			maxL = auth.DefaultMaxLength
		}
		n := utf8.RuneCountInString(pw)
		if !utf8.ValidString(pw) || n < minL || n > maxL {
			t.Fatalf("Check accepted %q (%d code points) for %d..%d", pw, n, minL, maxL)
		}
		if !allowCommon && auth.IsCommon(pw) {
			t.Fatalf("Check accepted the common password %q", pw)
		}
		lower := strings.ToLower(pw)
		if i := strings.LastIndexByte(email, '@'); i >= 0 && utf8.RuneCountInString(email[:i]) >= 3 && strings.Contains(lower, strings.ToLower(email[:i])) {
			t.Fatalf("Check accepted %q holding the local part of %q", pw, email)
		}
		for _, w := range strings.FieldsFunc(name+" "+service, func(r rune) bool { return !isWordRune(r) }) {
			if utf8.RuneCountInString(w) >= 3 && strings.Contains(lower, strings.ToLower(w)) {
				t.Fatalf("Check accepted %q holding the word %q of %q / %q", pw, w, name, service)
			}
		}
		if err := p.Check(pw, auth.Context{}); err != nil {
			t.Fatalf("Check(%q) accepted with context, refused without: %v", pw, err)
		}
		p.AllowCommon = true
		if err := p.Check(pw, c); err != nil {
			t.Fatalf("Check(%q) accepted, refused with AllowCommon: %v", pw, err)
		}
	})
}

// isWordRune: a name's words are separated by "anything that is not a
// letter or a digit".
func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// FuzzVerifyBcrypt: a bcrypt hash imported with a user (the only outside
// hashes Guard reads besides its own PHC strings) is checked for its shape
// before bcrypt reads it. A hash of the wrong shape is a *PHCError of
// part "bcrypt" that does not echo the hash; a hash of the right shape is
// one bcrypt can read (never "unusable"), matches exactly the passwords
// bcrypt matches, no longer than 72 bytes, and always asks for a rehash.
func FuzzVerifyBcrypt(f *testing.F) {
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		b, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(prefix+string(b[4:]), "pw")
		f.Add(prefix+string(b[4:59])+"!", "pw")
	}
	f.Add("$2a$03$"+strings.Repeat("a", 53), "x")
	f.Add("$2a$05$"+strings.Repeat("/", 53), "x")
	f.Add("$2a$4$"+strings.Repeat(".", 54), "x")
	f.Add("$2x$04$"+strings.Repeat("a", 53), strings.Repeat("p", 73))
	h, err := auth.NewHasher(auth.HasherConfig{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, hash, password string) {
		if !strings.HasPrefix(hash, "$2") {
			hash = "$2a$" + hash
		}
		// A well-formed hash above cost 6 takes too long to check here
		// (the cost bounds have a test of their own).
		if len(hash) > 6 {
			if cost, err := strconv.Atoi(hash[4:6]); err == nil && cost > 6 {
				return
			}
		}
		if len(password) > 1024 {
			return
		}
		ok, rehash, err := h.Verify(ctx, password, hash)
		if err != nil {
			var pe *auth.PHCError
			if !errors.As(err, &pe) || ok || rehash {
				t.Fatalf("Verify(%q) = %v, %v, %v; want a *PHCError", hash, ok, rehash, err)
			}
			if strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$") {
				if pe.Part != "bcrypt" || pe.Reason == "unusable hash" {
					t.Fatalf("Verify(%q) = %v: the shape check let through a hash bcrypt cannot read", hash, err)
				}
			}
			if len(hash) >= 20 && strings.Contains(err.Error(), hash[7:]) {
				t.Fatalf("Verify(%q): error %q echoes the hash", hash, err)
			}
			return
		}
		want := len(password) <= 72 && bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
		if ok != want || !rehash {
			t.Fatalf("Verify(%q, %q) = %v, %v; bcrypt says %v", hash, password, ok, rehash, want)
		}
	})
}
