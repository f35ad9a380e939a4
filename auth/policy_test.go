package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name  string
		p     Policy
		field string // "" means valid
	}{
		{"Zero", Policy{}, ""},
		{"Minimums", Policy{MinLength: 8, MaxLength: 64}, ""},
		{"MinEqualsMax", Policy{MinLength: 64, MaxLength: 64}, ""},
		{"MinAboveDefaultMaxWithMax", Policy{MinLength: 200, MaxLength: 256}, ""},
		{"AllowCommon", Policy{AllowCommon: true}, ""},
		{"MinLength7", Policy{MinLength: 7}, "MinLength"},
		{"MinLength1", Policy{MinLength: 1}, "MinLength"},
		{"MinLengthNegative", Policy{MinLength: -8}, "MinLength"},
		{"MaxLength63", Policy{MaxLength: 63}, "MaxLength"},
		{"MaxLengthNegative", Policy{MaxLength: -1}, "MaxLength"},
		{"MaxBelowMin", Policy{MinLength: 100, MaxLength: 99}, "MaxLength"},
		{"MinAboveDefaultMax", Policy{MinLength: 129}, "MaxLength"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var pe *PolicyConfigError
			if !errors.As(err, &pe) {
				t.Fatalf("Validate = %v, want *PolicyConfigError", err)
			}
			if pe.Field != tc.field {
				t.Errorf("Field = %q, want %q", pe.Field, tc.field)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "auth: ") || !strings.Contains(msg, tc.field) {
				t.Errorf("Error() = %q, want the auth: prefix and the field", msg)
			}
		})
	}
}

// SECURITY-CHECKLIST PW-2, PW-3, PW-6.
func TestPolicyCheck(t *testing.T) {
	ada := Context{Email: "Ada.Lovelace@Example.test", Name: "Ada King-Lovelace"}
	tests := []struct {
		name     string
		p        Policy
		password string
		c        Context
		want     Rule // "" means accepted
	}{
		// Length, in code points.
		{"Min8Ascii", Policy{}, "zq8#vnwk", Context{}, ""},
		{"Seven", Policy{}, "zq8#vnw", Context{}, RuleTooShort},
		{"Empty", Policy{}, "", Context{}, RuleTooShort},
		{"EightEmoji", Policy{}, "🦊🐙🦉🐢🦔🐝🦋🐌", Context{}, ""},
		{"SevenEmoji28Bytes", Policy{}, "🦊🐙🦉🐢🦔🐝🦋", Context{}, RuleTooShort},
		{"EightAccented", Policy{}, "éàüöçñøå", Context{}, ""},
		{"Max128", Policy{}, strings.Repeat("éa", 64), Context{}, ""},
		{"129Accented", Policy{}, strings.Repeat("é", 129), Context{}, RuleTooLong},
		{"129Mixed", Policy{}, strings.Repeat("éa", 64) + "x", Context{}, RuleTooLong},
		{"Huge", Policy{}, strings.Repeat("xy", 1<<20), Context{}, RuleTooLong},
		{"CustomMin12", Policy{MinLength: 12}, "zq8#vnwkplm", Context{}, RuleTooShort},
		{"CustomMin12Met", Policy{MinLength: 12}, "zq8#vnwkplmr", Context{}, ""},
		{"CustomMax64", Policy{MaxLength: 64}, strings.Repeat("qz", 32), Context{}, ""},
		{"CustomMax64Over", Policy{MaxLength: 64}, strings.Repeat("qz", 32) + "q", Context{}, RuleTooLong},
		{"UnvalidatedMinRaisedTo8", Policy{MinLength: 3}, "zq8#vnw", Context{}, RuleTooShort},

		// UTF-8.
		{"InvalidUTF8", Policy{}, "zq8#vnwk\xff", Context{}, RuleInvalidUTF8},
		{"InvalidUTF8Short", Policy{}, "\xc3", Context{}, RuleInvalidUTF8},
		{"SurrogateHalf", Policy{}, "zq8#vnwk\xed\xa0\x80", Context{}, RuleInvalidUTF8},

		// Blocklist.
		{"Password", Policy{}, "password", Context{}, RuleCommon},
		{"Password1234", Policy{}, "Password1234", Context{}, RuleCommon},
		{"Dragon2026", Policy{}, "dragon2026!", Context{}, RuleCommon},
		{"Repeated", Policy{}, "aaaaaaaaaaaa", Context{}, RuleCommon},
		{"RepeatedEmoji", Policy{}, strings.Repeat("🦊", 8), Context{}, RuleCommon},
		{"Qwerty123Upper", Policy{}, "QWERTY123456", Context{}, RuleCommon},
		{"AllowCommonPassword", Policy{AllowCommon: true}, "password", Context{}, ""},
		{"AllowCommonRepeated", Policy{AllowCommon: true}, "aaaaaaaaaaaa", Context{}, ""},

		// Context: email local part.
		{"Email", Policy{}, "my ada.lovelace key", ada, RuleContainsEmail},
		{"EmailUpper", Policy{}, "xxADA.LOVELACExx", ada, RuleContainsEmail},
		{"EmailDomainOnlyIsFine", Policy{}, "example.test is mine", Context{Email: "zed@example.test"}, ""},
		{"EmailLocal3", Policy{}, "bobsled-horizon", Context{Email: "bob@x.test"}, RuleContainsEmail},
		{"EmailLocal2Ignored", Policy{}, "ab-is-my-story", Context{Email: "ab@x.test"}, ""},
		{"EmailLocal1Ignored", Policy{}, "a-quiet-evening", Context{Email: "a@x.test"}, ""},
		{"EmailLocal2RunesNonASCIIIgnored", Policy{}, "tüa-quiet-evening", Context{Email: "üa@x.test"}, ""},
		{"EmailNoAt", Policy{}, "ada.lovelace rocks", Context{Email: "ada.lovelace"}, ""},
		{"EmailLocalNonASCII", Policy{}, "wer-ist-jörg-hier", Context{Email: "JÖRG@x.test"}, RuleContainsEmail},
		{"EmailBeforeName", Policy{}, "ada.lovelace-king", ada, RuleContainsEmail},
		{"AllowCommonStillChecksEmail", Policy{AllowCommon: true}, "ada.lovelace", ada, RuleContainsEmail},

		// Context: name words.
		{"NameWord", Policy{}, "lovelace-forever-7", ada, RuleContainsName},
		{"NameWordUpper", Policy{}, "LOVELACE forever 7", ada, RuleContainsName},
		{"NameWordHyphenSplit", Policy{}, "my-king-of-hearts", ada, RuleContainsName},
		{"NameWord3", Policy{}, "zq8#ada#vnwk", ada, RuleContainsName},
		{"NameShortWordsIgnored", Policy{}, "al-bo-ed-zq8#vnwk", Context{Name: "Al Bo Ed"}, ""},
		{"NameShortNonASCIIWordIgnored", Policy{}, "glück-lü-zq8#vnwk", Context{Name: "Lü Bo"}, ""},
		{"NameThreeRuneNonASCIIWord", Policy{}, "glück-lüa-zq8#vnwk", Context{Name: "Lüa Bo"}, RuleContainsName},
		{"NameNonASCIICase", Policy{}, "ÉLODIE-zq8#vnwk", Context{Name: "élodie Ñúñez"}, RuleContainsName},
		{"NamePunctuationSplit", Policy{}, "quiet-luc-river", Context{Name: "Jean-Luc (Picard)"}, RuleContainsName},
		{"NameAbsent", Policy{}, "zq8#vnwk-quiet", ada, ""},

		// Context: the service (product, tenant name and ID).
		{"ServiceProduct", Policy{}, "alice-example-app-2026", Context{Service: []string{"Example App"}}, RuleContainsService},
		{"ServiceTenantID", Policy{}, "zq8#ACME#vnwk", Context{Service: []string{"Example App", "acme"}}, RuleContainsService},
		{"ServiceShortWordsIgnored", Policy{}, "zq8#go#vnwk", Context{Service: []string{"Go Co"}}, ""},
		{"ServiceAbsent", Policy{}, "zq8#vnwk-quiet", Context{Service: []string{"Example App", "acme"}}, ""},
		{"NameBeforeService", Policy{}, "lovelace-acme-7", Context{Name: "Ada Lovelace", Service: []string{"acme"}}, RuleContainsName},

		// No composition rules.
		{"LowerCasePassphrase", Policy{}, "correct horse battery staple", Context{}, ""},
		{"DigitsOnlyUncommon", Policy{}, "80417236950318", Context{}, ""},
		{"NoDigitsNoSymbols", Policy{}, "quietlyembroideredwalrus", ada, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Check(tc.password, tc.c)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("Check = %v, want *PolicyError", err)
			}
			if pe.Rule != tc.want {
				t.Errorf("Rule = %q, want %q", pe.Rule, tc.want)
			}
			// The message is the fixed text of the rule, whatever the password.
			if msg, want := err.Error(), "auth: password rejected: "+ruleText[tc.want]; msg != want {
				t.Errorf("Error() = %q, want %q", msg, want)
			}
		})
	}
}

func TestPolicyErrorText(t *testing.T) {
	tests := []struct {
		rule Rule
		want string
	}{
		{RuleTooShort, "auth: password rejected: too short"},
		{RuleTooLong, "auth: password rejected: too long"},
		{RuleInvalidUTF8, "auth: password rejected: not valid UTF-8"},
		{RuleCommon, "auth: password rejected: too common"},
		{RuleContainsEmail, "auth: password rejected: contains the email address"},
		{RuleContainsName, "auth: password rejected: contains the user's name"},
		{RuleReused, "auth: password rejected: used before"},
		{Rule("custom_rule"), "auth: password rejected: custom_rule"},
	}
	for _, tc := range tests {
		t.Run(string(tc.rule), func(t *testing.T) {
			if got := (&PolicyError{Rule: tc.rule}).Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPolicyErrorNeverEchoes checks every refusal of many passwords: the
// message is one of the fixed texts, so it cannot contain the password.
func TestPolicyErrorNeverEchoes(t *testing.T) {
	fixed := map[string]bool{}
	for r := range ruleText {
		fixed[(&PolicyError{Rule: r}).Error()] = true
	}
	c := Context{Email: "secretive@x.test", Name: "Hidden Person"}
	for _, pw := range []string{
		"", "short", "password", "Password1234", "SECRETIVE-and-long", "hidden-forever-99",
		"\xffsecret-bytes", strings.Repeat("Z", 500), "too sh", "common",
	} {
		err := Policy{}.Check(pw, c)
		if err == nil {
			t.Errorf("Check(%q) = nil, want a refusal", pw)
			continue
		}
		if !fixed[err.Error()] {
			t.Errorf("Check(%q) error %q is not one of the fixed rule texts", pw, err)
		}
	}
}
