package session_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/guardhq/guard/session"
)

// raw32 is a fixed 32-byte token value.
var raw32 = func() (b [32]byte) {
	for i := range b {
		b[i] = byte(i*37 + 11)
	}
	return b
}()

var token32 = base64.RawURLEncoding.EncodeToString(raw32[:])

func TestParseToken(t *testing.T) {
	zero := strings.Repeat("A", 43)
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"Valid", token32, true},
		{"ZeroBytes", zero, true},
		{"AllOnes", strings.Repeat("_", 42) + "w", true},
		{"Empty", "", false},
		{"Short", token32[:42], false},
		{"Long", token32 + "A", false},
		{"Padded", token32 + "=", false},
		{"PaddingInside", token32[:42] + "=", false},
		{"StdAlphabetPlus", "+" + token32[1:], false},
		{"StdAlphabetSlash", token32[:10] + "/" + token32[11:], false},
		{"NonCanonicalTrailingBits", zero[:42] + "B", false},
		{"NonCanonicalTrailingBits2", zero[:42] + "D", false},
		{"Newline", token32[:20] + "\n" + token32[21:], false},
		{"CarriageReturn", token32[:42] + "\r", false},
		{"Space", " " + token32[1:], false},
		{"NUL", token32[:42] + "\x00", false},
		{"NonASCII", "é" + token32[2:], false},
		{"HighByte", "\xff" + token32[1:], false},
		{"Dot", token32[:30] + "." + token32[31:], false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := session.ParseToken(tc.token)
			if !tc.ok {
				if !errors.Is(err, session.ErrInvalidToken) || !h.IsZero() {
					t.Errorf("ParseToken = %v, %v; want zero Hash, ErrInvalidToken", h, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseToken: %v", err)
			}
			raw, _ := base64.RawURLEncoding.DecodeString(tc.token)
			if want := session.Hash(sha256.Sum256(raw)); h != want {
				t.Errorf("ParseToken = %v, want SHA-256 of the decoded bytes %v", h, want)
			}
		})
	}
}

func TestParseID(t *testing.T) {
	h := session.Hash(sha256.Sum256([]byte("x")))
	got, err := session.ParseID(h.String())
	if err != nil || got != h {
		t.Fatalf("ParseID(h.String()) = %v, %v; want %v", got, err, h)
	}
	zero := strings.Repeat("A", 43)
	for _, id := range []string{"", zero[:42], zero + "A", zero[:42] + "B", zero[:42] + "\n", "+" + zero[1:]} {
		if _, err := session.ParseID(id); !errors.Is(err, session.ErrInvalidToken) {
			t.Errorf("ParseID(%q) = %v, want ErrInvalidToken", id, err)
		}
	}
}

func TestParseTokenAllocs(t *testing.T) {
	token := token32
	if n := testing.AllocsPerRun(100, func() { _, _ = session.ParseToken(token) }); n != 0 {
		t.Errorf("ParseToken allocates %v times, want 0", n)
	}
	bad := token32[:42] + "!"
	if n := testing.AllocsPerRun(100, func() { _, _ = session.ParseToken(bad) }); n != 0 {
		t.Errorf("ParseToken of a bad token allocates %v times, want 0", n)
	}
}

func FuzzParseToken(f *testing.F) {
	for _, s := range []string{token32, strings.Repeat("A", 43), strings.Repeat("A", 42) + "B", token32[:42],
		token32 + "=", token32[:20] + "\n" + token32[21:], "+" + token32[1:], ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		h, err := session.ParseToken(token)
		// The canonical decoding that ParseToken must agree with.
		raw, derr := base64.RawURLEncoding.Strict().DecodeString(token)
		canonical := derr == nil && len(raw) == 32 && base64.RawURLEncoding.EncodeToString(raw) == token
		if err != nil {
			if !errors.Is(err, session.ErrInvalidToken) {
				t.Fatalf("ParseToken(%q): %v, want ErrInvalidToken", token, err)
			}
			if canonical {
				t.Fatalf("ParseToken(%q) refused a canonical token", token)
			}
			return
		}
		if !canonical {
			t.Fatalf("ParseToken(%q) accepted a token that does not re-encode to itself", token)
		}
		if want := session.Hash(sha256.Sum256(raw)); h != want {
			t.Fatalf("ParseToken(%q) = %v, want %v", token, h, want)
		}
	})
}

// httpCookie returns what net/http finds for name in one Cookie header line.
func httpCookie(header, name string) (string, bool) {
	r := &http.Request{Header: http.Header{"Cookie": {header}}}
	c, err := r.Cookie(name)
	if err != nil {
		return "", false
	}
	return c.Value, true
}

func TestCookieValue(t *testing.T) {
	tests := []struct {
		name, header, cookie string
		want                 string
		ok                   bool
	}{
		{"Only", "sid=abc", "sid", "abc", true},
		{"Among", "a=1; sid=abc; b=2", "sid", "abc", true},
		{"NoSpaces", "a=1;sid=abc;b=2", "sid", "abc", true},
		{"ManySpaces", "  a=1 ;   sid = abc  ;b=2  ", "sid", " abc", true},
		{"Tabs", "a=1;\tsid=abc\t", "sid", "abc", true},
		{"Quoted", `sid="abc"`, "sid", "abc", true},
		{"QuotedEmpty", `sid=""`, "sid", "", true},
		{"LoneQuote", `sid="`, "sid", "", false},
		{"HalfQuoted", `sid="abc`, "sid", "", false},
		{"FirstWins", "sid=one; sid=two", "sid", "one", true},
		{"InvalidValueSkipped", `sid=a\b; sid=two`, "sid", "two", true},
		{"InvalidValueOnly", `sid=a"b`, "sid", "", false},
		{"ValueWithSpace", "sid=a b", "sid", "a b", true},
		{"ValueWithEquals", "sid=a=b", "sid", "a=b", true},
		{"Empty", "sid=", "sid", "", true},
		{"NoEquals", "sid", "sid", "", true},
		{"Absent", "a=1; b=2", "sid", "", false},
		{"PrefixName", "sidx=1; xsid=2", "sid", "", false},
		{"CaseMatters", "SID=1", "sid", "", false},
		{"EmptyHeader", "", "sid", "", false},
		{"OnlySemicolons", ";;; ;", "sid", "", false},
		{"EmptyName", "=abc", "", "", false},
		{"InvalidName", "s d=abc", "s d", "", false},
		{"InvalidNameSkipped", "s d=1; sid=2", "sid", "2", true},
		{"HostPrefix", "__Host-guard=tok", "__Host-guard", "tok", true},
		{"ControlByte", "sid=a\x01b", "sid", "", false},
		{"NonASCIIValue", "sid=é", "sid", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := session.CookieValue(tc.header, tc.cookie)
			if got != tc.want || ok != tc.ok {
				t.Errorf("CookieValue(%q, %q) = %q, %v; want %q, %v", tc.header, tc.cookie, got, ok, tc.want, tc.ok)
			}
			if tc.cookie != "" {
				if hv, hok := httpCookie(tc.header, tc.cookie); hv != got || hok != ok {
					t.Errorf("net/http finds %q, %v; CookieValue %q, %v", hv, hok, got, ok)
				}
			}
		})
	}
}

func TestCookieValueAllocs(t *testing.T) {
	header := `a=1; theme="dark"; __Host-guard=` + token32 + "; z=9"
	if n := testing.AllocsPerRun(100, func() { _, _ = session.CookieValue(header, "__Host-guard") }); n != 0 {
		t.Errorf("CookieValue allocates %v times, want 0", n)
	}
}

func FuzzCookieValue(f *testing.F) {
	for _, s := range [][2]string{
		{"sid=abc", "sid"}, {"a=1; sid=abc; b=2", "sid"}, {`sid="abc"`, "sid"}, {`sid=a\b; sid=ok`, "sid"},
		{"  sid = x ;", "sid"}, {"sid", "sid"}, {`sid="`, "sid"}, {"=x", ""}, {"a b=1", "a b"},
		{"sid=\x7f", "sid"}, {"__Host-guard=" + token32, "__Host-guard"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, header, name string) {
		got, ok := session.CookieValue(header, name)
		if ok && !strings.Contains(header, got) {
			t.Fatalf("CookieValue(%q, %q) = %q, not part of the header", header, name, got)
		}
		if name == "" {
			// net/http's Cookie("") returns any cookie; CookieValue
			// matches nothing.
			if ok {
				t.Fatalf("CookieValue(%q, \"\") found %q", header, got)
			}
			return
		}
		hv, hok := httpCookie(header, name)
		if hok && (!ok || got != hv) {
			t.Fatalf("CookieValue(%q, %q) = %q, %v; net/http finds %q", header, name, got, ok, hv)
		}
		// net/http gives up on headers of more than 3000 cookies.
		if ok && strings.Count(header, ";") < 2999 && (!hok || hv != got) {
			t.Fatalf("CookieValue(%q, %q) = %q; net/http finds %q, %v", header, name, got, hv, hok)
		}
	})
}

func ExampleCookieValue() {
	// r.Header["Cookie"] holds lines like this one.
	line := `theme="dark"; __Host-guard=Gk3v; lang=en`
	v, ok := session.CookieValue(line, "__Host-guard")
	fmt.Println(v, ok)
	_, ok = session.CookieValue(line, "missing")
	fmt.Println(ok)
	// Output:
	// Gk3v true
	// false
}
