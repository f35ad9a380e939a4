package auth

import (
	"crypto/rand"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCommonList(t *testing.T) {
	set := commonSet()
	if len(set) < 10000 {
		t.Fatalf("common list has %d distinct entries, want at least 10,000", len(set))
	}
	lines := 0
	for line := range strings.SplitSeq(commonList, "\n") {
		if line == "" {
			continue
		}
		lines++
		if _, ok := set[line]; !ok {
			t.Errorf("line %q is not in the set", line)
		}
	}
	if lines != len(set) {
		t.Errorf("%d non-empty lines but %d distinct entries: the list has duplicates", lines, len(set))
	}
	for e := range set {
		switch {
		case e != strings.ToLower(e):
			t.Errorf("entry %q is not lower-case", e)
		case e != strings.TrimSpace(e) || strings.ContainsAny(e, "\r\n"):
			t.Errorf("entry %q has surrounding white space or a line break", e)
		case !utf8.ValidString(e):
			t.Errorf("entry %q is not valid UTF-8", e)
		case !IsCommon(e) || !IsCommon(strings.ToUpper(e)):
			t.Errorf("entry %q (or its upper case) is not common", e)
		}
	}
	t.Logf("%d entries", len(set))
}

func TestIsCommon(t *testing.T) {
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"Empty", "", true},
		{"MostCommon", "123456", true},
		{"Password", "password", true},
		{"Qwerty", "qwerty", true},
		{"Letmein", "letmein", true},
		{"Dragon", "dragon", true},
		{"Baseball", "baseball", true},
		{"Iloveyou", "iloveyou", true},
		{"UpperCase", "PASSWORD", true},
		{"MixedCase", "QwErTy", true},
		{"Password1234", "Password1234", true},
		{"StemDigits", "password1234567", true},
		{"StemDigitsAndBang", "dragon2026!", true},
		{"StemPunctuationOnly", "Monkey!!", true},
		{"StemUnderscore", "baseball_99", true},
		{"StemOf4", "pass123!", true},
		{"StemIsItselfAnEntryEndingInALetter", "1q2w3e4r!", true},
		{"StemOf3NotEnough", "xxx2026!", false},
		{"NonASCIIPunctuationSuffix", "dragon§§", false},
		{"SpaceSuffix", "dragon 2026", false},
		{"LetterSuffix", "dragonzqx", false},
		{"PrefixNotSuffix", "2026!dragon", false},
		{"RepeatedLetter", "aaaaaaaaaaaa", true},
		{"RepeatedOnce", "z", true},
		{"RepeatedNonASCII", "éééééééé", true},
		{"RepeatedEmoji", "🦊🦊🦊🦊🦊🦊🦊🦊", true},
		{"AlmostRepeated", "aaaaaaaaaaab", false},
		{"Passphrase", "correct horse battery staple", false},
		{"Uncommon", "zq8#vnwk-quiet", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsCommon(tc.password); got != tc.want {
				t.Errorf("IsCommon(%q) = %v, want %v", tc.password, got, tc.want)
			}
		})
	}
}

func TestIsCommonRandom(t *testing.T) {
	for range 50 {
		s := rand.Text()[:20] // 20 characters of base32
		if IsCommon(s) {
			t.Errorf("IsCommon(%q) = true for a random string", s)
		}
	}
}

func TestIsCommonEntryEndingInDigits(t *testing.T) {
	for _, pw := range []string{"12345678!", "123456789!", "123456!!", "11111111!", "abc123!!", "blink182!", "1234567890!"} {
		if !IsCommon(pw) {
			t.Errorf("IsCommon(%q) = false; a list entry followed by digits/punctuation is common", pw)
		}
		if err := (Policy{}).Check(pw, Context{}); err == nil {
			t.Errorf("Policy{}.Check(%q) = nil, want RuleCommon", pw)
		}
	}
}
