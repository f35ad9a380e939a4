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
