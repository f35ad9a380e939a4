package mfa_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/guardhq/guard/mfa"
)

func TestKeyringSealOpen(t *testing.T) {
	k := newKeyring(t, "k2", "k1", "k2")
	if k.Current() != "k2" || !k.Has("k1") || k.Has("k3") {
		t.Errorf("Current %q, Has(k1) %v, Has(k3) %v", k.Current(), k.Has("k1"), k.Has("k3"))
	}
	plain := []byte("twenty byte secret!!")
	aad := []byte("tenant/user/factor")
	id, sealed, err := k.Seal(plain, aad)
	if err != nil || id != "k2" {
		t.Fatalf("Seal = %q, %v", id, err)
	}
	if bytes.Contains(sealed, plain) {
		t.Error("sealed bytes contain the plaintext")
	}
	_, again, _ := k.Seal(plain, aad)
	if bytes.Equal(sealed, again) {
		t.Error("two seals of the same secret are equal: nonce reused")
	}
	got, err := k.Open(id, sealed, aad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Errorf("Open = %q, %v", got, err)
	}
	for name, tc := range map[string]struct {
		id     string
		sealed []byte
		aad    []byte
		want   error
	}{
		"WrongAAD":      {id, sealed, []byte("tenant/other/factor"), mfa.ErrUnseal},
		"NoAAD":         {id, sealed, nil, mfa.ErrUnseal},
		"OtherKeyID":    {"k1", sealed, aad, mfa.ErrUnseal},
		"UnknownKeyID":  {"k3", sealed, aad, mfa.ErrUnknownKey},
		"Truncated":     {id, sealed[:len(sealed)-1], aad, mfa.ErrUnseal},
		"NonceOnly":     {id, sealed[:12], aad, mfa.ErrUnseal},
		"Empty":         {id, nil, aad, mfa.ErrUnseal},
		"Appended":      {id, append(bytes.Clone(sealed), 0), aad, mfa.ErrUnseal},
		"NonceFlipped":  {id, flip(sealed, 0), aad, mfa.ErrUnseal},
		"CipherFlipped": {id, flip(sealed, 12), aad, mfa.ErrUnseal},
		"TagFlipped":    {id, flip(sealed, len(sealed)-1), aad, mfa.ErrUnseal},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := k.Open(tc.id, tc.sealed, tc.aad)
			if !errors.Is(err, tc.want) || got != nil {
				t.Errorf("Open = %q, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x80
	return b
}

func TestKeyringRotation(t *testing.T) {
	old := newKeyring(t, "k1", "k1")
	aad := []byte("aad")
	id1, s1, _ := old.Seal([]byte("secret"), aad)
	rotated := newKeyring(t, "k2", "k1", "k2")
	if got, err := rotated.Open(id1, s1, aad); err != nil || string(got) != "secret" {
		t.Errorf("the old key no longer opens: %q, %v", got, err)
	}
	id2, s2, _ := rotated.Seal([]byte("secret"), aad)
	if id2 != "k2" {
		t.Errorf("reseal used %q, want k2", id2)
	}
	if _, err := old.Open(id2, s2, aad); !errors.Is(err, mfa.ErrUnknownKey) {
		t.Errorf("a keyring without k2 opening a k2 secret = %v, want ErrUnknownKey", err)
	}
}

func TestKeyringConfig(t *testing.T) {
	good := key("x")
	for name, cfg := range map[string]mfa.KeyringConfig{
		"NoKeys":       {Current: "a"},
		"NoCurrent":    {Keys: map[string][]byte{"a": good}},
		"CurrentAbsnt": {Keys: map[string][]byte{"a": good}, Current: "b"},
		"ShortKey":     {Keys: map[string][]byte{"a": good[:16]}, Current: "a"},
		"LongKey":      {Keys: map[string][]byte{"a": append(good, 0)}, Current: "a"},
		"OldShortKey":  {Keys: map[string][]byte{"a": good, "b": good[:31]}, Current: "a"},
		"EmptyID":      {Keys: map[string][]byte{"": good}, Current: ""},
		"SpaceInID":    {Keys: map[string][]byte{"a b": good}, Current: "a b"},
		"LongID":       {Keys: map[string][]byte{strings.Repeat("a", 65): good}, Current: strings.Repeat("a", 65)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := mfa.NewKeyring(cfg)
			var ce *mfa.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("NewKeyring = %v, want a *ConfigError", err)
			}
			if strings.Contains(err.Error(), string(good[:8])) {
				t.Error("the error echoes key material")
			}
		})
	}
	// The keyring copies the keys.
	keys := map[string][]byte{"a": bytes.Clone(good)}
	k, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: keys, Current: "a"})
	if err != nil {
		t.Fatal(err)
	}
	id, sealed, _ := k.Seal([]byte("s"), nil)
	clear(keys["a"])
	if _, err := k.Open(id, sealed, nil); err != nil {
		t.Errorf("changing the caller's key slice broke the keyring: %v", err)
	}
}

func TestKeyringRandFailure(t *testing.T) {
	k, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"a": key("a")}, Current: "a", Rand: bytes.NewReader(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.Seal([]byte("s"), nil); err == nil {
		t.Error("Seal with a failing Rand succeeded")
	}
}
