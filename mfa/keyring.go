package mfa

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"slices"
)

// KeySize is the size of a Keyring key: AES-256.
const KeySize = 32

// MaxKeyIDLen bounds a key id, in bytes.
const MaxKeyIDLen = 64

// KeyringConfig configures a Keyring.
type KeyringConfig struct {
	// Keys maps a key id to a KeySize-byte AES-256 key (required, at least
	// one). Ids are 1 to MaxKeyIDLen bytes of printable ASCII; they are
	// stored beside each sealed secret. The keys are copied.
	Keys map[string][]byte
	// Current is the id of the key that seals (required; must be in Keys).
	// The other keys only open what they sealed before a rotation.
	Current string
	// Rand is the source of nonces (default crypto/rand.Reader).
	Rand io.Reader
}

// Keyring encrypts TOTP secrets at rest with AES-256-GCM under keys the
// host provides, chosen by id. Rotation: add a new key, make it Current,
// keep the old ones until every secret is resealed (Manager.Reseal), then
// drop them. A Keyring is safe for concurrent use.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
	rand    io.Reader
	// deriveKey is HMAC-SHA256(current key, "guard/mfa/derive/v1"), the
	// root of the keys derived by derive; the raw key is not kept.
	deriveKey []byte
}

// NewKeyring validates cfg and returns a Keyring. A bad field gives a
// *ConfigError, which never echoes a key.
func NewKeyring(cfg KeyringConfig) (*Keyring, error) {
	if len(cfg.Keys) == 0 {
		return nil, &ConfigError{Field: "Keys", Reason: "is required"}
	}
	if _, ok := cfg.Keys[cfg.Current]; !ok {
		return nil, &ConfigError{Field: "Current", Reason: "must name a key in Keys"}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	k := &Keyring{current: cfg.Current, aeads: make(map[string]cipher.AEAD, len(cfg.Keys)), rand: cfg.Rand}
	for _, id := range slices.Sorted(maps.Keys(cfg.Keys)) {
		if r := checkKeyID(id); r != "" {
			return nil, &ConfigError{Field: "Keys", Reason: "key id " + r}
		}
		key := cfg.Keys[id]
		if len(key) != KeySize {
			return nil, &ConfigError{Field: "Keys", Reason: fmt.Sprintf("key %q must be %d bytes", id, KeySize)}
		}
		block, err := aes.NewCipher(slices.Clone(key))
		if err != nil {
			return nil, fmt.Errorf("mfa: key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("mfa: key %q: %w", id, err)
		}
		k.aeads[id] = aead
	}
	mac := hmac.New(sha256.New, cfg.Keys[cfg.Current])
	mac.Write([]byte("guard/mfa/derive/v1"))
	k.deriveKey = mac.Sum(nil)
	return k, nil
}

func checkKeyID(id string) string {
	if id == "" || len(id) > MaxKeyIDLen {
		return fmt.Sprintf("must be 1 to %d bytes", MaxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return "must be printable ASCII without spaces"
		}
	}
	return ""
}

// Current returns the id of the key that seals.
func (k *Keyring) Current() string { return k.current }

// Has reports whether the Keyring holds a key with the given id.
func (k *Keyring) Has(id string) bool { _, ok := k.aeads[id]; return ok }

// Seal encrypts plaintext under the current key, authenticating aad and
// the key id with it, and returns the key id and the sealed bytes (nonce,
// ciphertext and tag). Opening needs the same aad.
func (k *Keyring) Seal(plaintext, aad []byte) (keyID string, sealed []byte, err error) {
	aead := k.aeads[k.current]
	ns := aead.NonceSize()
	sealed = make([]byte, ns, ns+len(plaintext)+aead.Overhead())
	if _, err := io.ReadFull(k.rand, sealed); err != nil {
		return "", nil, fmt.Errorf("mfa: reading random bytes: %w", err)
	}
	full := bindKeyID(k.current, aad)
	return k.current, aead.Seal(sealed, sealed[:ns], plaintext, full), nil
}

// Open decrypts what Seal returned. A key id the Keyring does not hold
// gives ErrUnknownKey; sealed bytes that were altered, or aad that differs
// from the one given to Seal, give ErrUnseal.
func (k *Keyring) Open(keyID string, sealed, aad []byte) ([]byte, error) {
	aead, ok := k.aeads[keyID]
	if !ok {
		return nil, ErrUnknownKey
	}
	ns := aead.NonceSize()
	if len(sealed) < ns+aead.Overhead() {
		return nil, ErrUnseal
	}
	out, err := aead.Open(nil, sealed[:ns], sealed[ns:], bindKeyID(keyID, aad))
	if err != nil {
		return nil, ErrUnseal
	}
	return out, nil
}

// bindKeyID returns the additional data actually authenticated: the key
// id, length-prefixed, then aad.
func bindKeyID(keyID string, aad []byte) []byte {
	b := make([]byte, 0, 1+len(keyID)+len(aad))
	b = append(b, byte(len(keyID)))
	b = append(b, keyID...)
	return append(b, aad...)
}

// secretAAD binds a sealed TOTP secret to its tenant, user and factor, so
// a ciphertext copied to another factor cannot be opened there.
func secretAAD(tenant, userID, factorID string) []byte {
	return appendFields(make([]byte, 0, 24+len(tenant)+len(userID)+len(factorID)),
		"guard/mfa/totp-secret/v1", tenant, userID, factorID)
}

// appendFields appends each field as a uvarint length and its bytes, an
// unambiguous encoding of a tuple of strings.
func appendFields(b []byte, fields ...string) []byte {
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}
