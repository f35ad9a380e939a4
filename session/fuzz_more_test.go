package session_test

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/guardhq/guard/session"
)

// FuzzParseID: a session ID (as shown to users and admins, and sent back in
// requests that end one session) parses only in its canonical form: a
// refusal is ErrInvalidToken with the zero Hash; an accepted ID round-trips
// through Hash.String, agrees with strict base64url, and ParseToken accepts
// exactly the same strings.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		"", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
		"_________________________________________-A", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"+/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := session.ParseID(s)
		_, terr := session.ParseToken(s)
		if (err == nil) != (terr == nil) {
			t.Fatalf("ParseID(%q) err=%v but ParseToken err=%v", s, err, terr)
		}
		raw, berr := base64.RawURLEncoding.Strict().DecodeString(s)
		strictOK := berr == nil && len(raw) == 32 && base64.RawURLEncoding.EncodeToString(raw) == s
		if err != nil {
			if !errors.Is(err, session.ErrInvalidToken) || !h.IsZero() {
				t.Fatalf("ParseID(%q) = %v, %v: want ErrInvalidToken and zero hash", s, h, err)
			}
			if !errors.Is(terr, session.ErrInvalidToken) {
				t.Fatalf("ParseToken(%q) = %v: want ErrInvalidToken", s, terr)
			}
			if strictOK {
				t.Fatalf("ParseID refused canonical %q", s)
			}
			return
		}
		if h.String() != s {
			t.Fatalf("ParseID(%q).String() = %q: not canonical", s, h.String())
		}
		if !strictOK || string(raw) != string(h[:]) {
			t.Fatalf("ParseID(%q) accepted what strict base64url does not decode to the same bytes", s)
		}
	})
}
