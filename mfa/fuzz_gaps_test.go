package mfa_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/guardhq/guard/mfa"
)

// FuzzKeyringOpen: a sealed TOTP secret and its key id are read back from
// a store row anyone with access to the database could change. Open gives
// the plaintext back only for the key id, bytes and aad Seal gave; any
// other key id is ErrUnknownKey (not held) or ErrUnseal, any changed byte
// or other aad is ErrUnseal, and arbitrary bytes never panic. No error
// text holds a key.
func FuzzKeyringOpen(f *testing.F) {
	f.Add([]byte("JBSWY3DPEHPK3PXP"), []byte("acme/u1/f1"), uint(0), byte(1), "k2", []byte("acme/u1/f2"), []byte{})
	f.Add([]byte{}, []byte{}, uint(40), byte(0x80), "", []byte(nil), bytes.Repeat([]byte{0}, 28))
	f.Add([]byte("x"), []byte("a"), uint(1<<20), byte(0), "k1", []byte("a"), []byte("short"))
	f.Add(bytes.Repeat([]byte("s"), 64), []byte("\x00"), uint(12), byte(0xff), "k3 ", []byte("\x00\x00"), bytes.Repeat([]byte{0xff}, 100))
	k1, k2 := bytes.Repeat([]byte{1}, mfa.KeySize), bytes.Repeat([]byte{2}, mfa.KeySize)
	kr, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"k1": k1, "k2": k2}, Current: "k1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, plain, aad []byte, at uint, flip byte, otherID string, otherAAD, raw []byte) {
		id, sealed, err := kr.Seal(plain, aad)
		if err != nil || id != "k1" {
			t.Fatalf("Seal = %q, %v", id, err)
		}
		if bytes.Contains(sealed, plain) && len(plain) > 8 {
			t.Fatalf("sealed bytes hold the plaintext")
		}
		got, err := kr.Open(id, sealed, aad)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("Open(Seal(%q)) = %q, %v", plain, got, err)
		}
		noKey := func(err error) {
			t.Helper()
			for _, k := range [][]byte{k1, k2} {
				if strings.Contains(err.Error(), string(k)) {
					t.Fatalf("error %q holds a key", err)
				}
			}
		}
		// One flipped bit anywhere.
		if flip != 0 && len(sealed) > 0 {
			c := bytes.Clone(sealed)
			c[at%uint(len(c))] ^= flip
			if got, err := kr.Open(id, c, aad); !errors.Is(err, mfa.ErrUnseal) || got != nil {
				t.Fatalf("Open of altered bytes = %q, %v; want ErrUnseal", got, err)
			}
		}
		// Cut short or lengthened.
		if got, err := kr.Open(id, sealed[:int(at%uint(len(sealed)+1))%len(sealed)], aad); !errors.Is(err, mfa.ErrUnseal) || got != nil {
			t.Fatalf("Open of cut bytes = %q, %v; want ErrUnseal", got, err)
		}
		if got, err := kr.Open(id, append(bytes.Clone(sealed), flip), aad); !errors.Is(err, mfa.ErrUnseal) || got != nil {
			t.Fatalf("Open of lengthened bytes = %q, %v; want ErrUnseal", got, err)
		}
		// Another aad.
		if !bytes.Equal(otherAAD, aad) {
			if got, err := kr.Open(id, sealed, otherAAD); !errors.Is(err, mfa.ErrUnseal) || got != nil {
				t.Fatalf("Open with aad %q for %q = %q, %v; want ErrUnseal", otherAAD, aad, got, err)
			}
		}
		// Another key id.
		if otherID != id {
			got, err := kr.Open(otherID, sealed, aad)
			switch {
			case got != nil:
				t.Fatalf("Open under key id %q opened what k1 sealed", otherID)
			case kr.Has(otherID) && !errors.Is(err, mfa.ErrUnseal), !kr.Has(otherID) && !errors.Is(err, mfa.ErrUnknownKey):
				t.Fatalf("Open under key id %q = %v", otherID, err)
			}
			noKey(err)
		}
		// Arbitrary bytes under each id.
		for _, kid := range []string{"k1", "k2", otherID} {
			got, err := kr.Open(kid, raw, aad)
			if err == nil {
				t.Fatalf("Open(%q, %x) opened arbitrary bytes to %q", kid, raw, got)
			}
			if !errors.Is(err, mfa.ErrUnseal) && !errors.Is(err, mfa.ErrUnknownKey) {
				t.Fatalf("Open(%q, %x) = %v", kid, raw, err)
			}
			noKey(err)
		}
	})
}

// FuzzNewKeyring: the key ids and keys of KeyringConfig come from the
// host's configuration, and a key id is read back from each stored secret.
// NewKeyring accepts a configuration only when Current names a key, every
// id is 1 to MaxKeyIDLen bytes of printable ASCII without spaces and every
// key is KeySize bytes; otherwise a *ConfigError that never holds a key.
// An accepted Keyring holds every id, seals under Current, and opens what
// it sealed only under the same id.
func FuzzNewKeyring(f *testing.F) {
	key := string(bytes.Repeat([]byte{7}, mfa.KeySize))
	f.Add("k1", "k2", key, uint8(0))
	f.Add("", "k2", key, uint8(1))
	f.Add("k 1", "k2", key, uint8(0))
	f.Add("k1", "k2", "short-key-material", uint8(0))
	f.Add(strings.Repeat("k", mfa.MaxKeyIDLen+1), "k2", key, uint8(1))
	f.Add("k\u00e9", "k~", key, uint8(2))
	f.Fuzz(func(t *testing.T, id1, id2, key1 string, current uint8) {
		key2 := bytes.Repeat([]byte{9}, mfa.KeySize)
		cur := [...]string{id1, id2, "other"}[current%3]
		kr, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{id1: []byte(key1), id2: key2}, Current: cur})
		okID := func(id string) bool {
			return id != "" && len(id) <= mfa.MaxKeyIDLen && !strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r > '~' })
		}
		keys := map[string]string{id2: string(key2)}
		if id1 != id2 {
			keys[id1] = key1
		}
		want := cur != "other" || id1 == "other" || id2 == "other"
		for id, k := range keys {
			want = want && okID(id) && len(k) == mfa.KeySize
		}
		if (err == nil) != want {
			t.Fatalf("NewKeyring(%q: %d bytes, %q, current %q) = %v", id1, len(key1), id2, cur, err)
		}
		if err != nil {
			var ce *mfa.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("NewKeyring = %v, not a *ConfigError", err)
			}
			for _, k := range keys {
				if len(k) >= 8 && !strings.Contains(id1+id2, k) && strings.Contains(err.Error(), k) {
					t.Fatalf("error %q holds a key", err)
				}
			}
			return
		}
		if !kr.Has(id1) || !kr.Has(id2) || kr.Current() != cur {
			t.Fatalf("Keyring of %q and %q: current %q", id1, id2, kr.Current())
		}
		got, sealed, err := kr.Seal([]byte("secret"), []byte("aad"))
		if err != nil || got != cur {
			t.Fatalf("Seal = %q, %v; want key id %q", got, err, cur)
		}
		for id := range keys {
			plain, err := kr.Open(id, sealed, []byte("aad"))
			if id == cur && (err != nil || string(plain) != "secret") || id != cur && !errors.Is(err, mfa.ErrUnseal) {
				t.Fatalf("Open under %q of what %q sealed = %q, %v", id, cur, plain, err)
			}
		}
	})
}
