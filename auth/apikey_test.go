package auth_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

// SECURITY-CHECKLIST AK-4.
func TestGenerateAPIKey(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		key, h, prefix, err := auth.GenerateAPIKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if seen[key] {
			t.Fatal("duplicate key")
		}
		seen[key] = true
		if !strings.HasPrefix(key, "gk_") || len(key) != 46 {
			t.Fatalf("key %q: wrong format", key)
		}
		if prefix != key[:11] {
			t.Fatalf("prefix %q is not the key's first 11 characters", prefix)
		}
		got, err := auth.ParseAPIKey(key)
		if err != nil || got != h || h != sha256.Sum256([]byte(key)) {
			t.Fatalf("ParseAPIKey(generated) = %x, %v; want %x", got, err, h)
		}
	}
	if _, _, _, err := auth.GenerateAPIKey(bytes.NewReader(make([]byte, 10))); err == nil {
		t.Error("GenerateAPIKey with a short random source succeeded")
	}
}

func TestParseAPIKeyRefusesMalformed(t *testing.T) {
	good, _, _, _ := auth.GenerateAPIKey(rand.Reader)
	last := good[len(good)-1:]
	alt := "A"
	if last == "A" {
		alt = "B"
	}
	for name, s := range map[string]string{
		"Empty":            "",
		"NoPrefix":         good[3:],
		"OtherPrefix":      "sk_" + good[3:],
		"UpperPrefix":      "GK_" + good[3:],
		"Short":            good[:45],
		"Long":             good + "A",
		"Padded":           good[:45] + "=",
		"StdAlphabet":      good[:20] + "+" + good[21:],
		"Space":            good[:20] + " " + good[21:],
		"NewLine":          good[:20] + "\n" + good[21:],
		"TrailingBitsSet":  good[:45] + nonCanonical(last),
		"BearerWord":       "Bearer " + good,
		"Huge":             strings.Repeat("gk_", 4000),
		"NonASCII":         good[:45] + "é",
		"DifferentLastChr": good[:45] + alt + "x",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := auth.ParseAPIKey(s)
			var ie *auth.InputError
			if !errors.As(err, &ie) || !errors.Is(err, auth.ErrMalformedAPIKey) {
				t.Fatalf("ParseAPIKey = %v, want ErrMalformedAPIKey", err)
			}
			if s != "" && strings.Contains(err.Error(), s) {
				t.Error("the error echoes the key")
			}
		})
	}
}

// nonCanonical returns a base64url character that differs from c only in
// the two low bits, which a canonical 32-byte encoding leaves zero.
func nonCanonical(c string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.Index(alphabet, c)
	return string(alphabet[i|1])
}

func TestAPIKeyUsableAt(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		k    auth.APIKey
		want bool
	}{
		{"Plain", auth.APIKey{}, true},
		{"NotYetExpired", auth.APIKey{ExpiresAt: now.Add(time.Second)}, true},
		{"ExpiresNow", auth.APIKey{ExpiresAt: now}, false},
		{"Expired", auth.APIKey{ExpiresAt: now.Add(-time.Hour)}, false},
		{"Revoked", auth.APIKey{RevokedAt: now.Add(-time.Hour)}, false},
		{"RevokedLater", auth.APIKey{RevokedAt: now.Add(time.Hour)}, false},
	} {
		if got := tc.k.UsableAt(now); got != tc.want {
			t.Errorf("%s: UsableAt = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func FuzzParseAPIKey(f *testing.F) {
	good, _, _, _ := auth.GenerateAPIKey(rand.Reader)
	for _, s := range []string{good, "", "gk_", good[:45] + "B", good + "=", "gk_" + strings.Repeat("_", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := auth.ParseAPIKey(s)
		if err != nil {
			if h != ([32]byte{}) {
				t.Fatal("a hash returned with an error")
			}
			if !errors.Is(err, auth.ErrMalformedAPIKey) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if h != sha256.Sum256([]byte(s)) || len(s) != 46 || !strings.HasPrefix(s, "gk_") {
			t.Fatalf("accepted %q", s)
		}
	})
}
