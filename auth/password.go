package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// ErrPasswordTooLong is returned by Hash and Verify, before any hashing,
// for a password longer than HasherConfig.MaxPasswordBytes.
var ErrPasswordTooLong = errors.New("auth: password too long")

// Defaults of HasherConfig: argon2id with the OWASP minimum of 19 MiB,
// two passes and one lane.
const (
	DefaultMemory           = 19 * 1024
	DefaultTime             = 2
	DefaultThreads          = 1
	DefaultSaltLen          = 16
	DefaultKeyLen           = 32
	DefaultMaxPasswordBytes = 1024
)

// bcrypt limits: a bcrypt hash uses at most 72 bytes of the password (a
// longer one never matches, see Verify), and a stored cost above
// maxBcryptCost is refused so that a hostile hash cannot take minutes.
const (
	bcryptMaxPassword = 72
	maxBcryptCost     = 16
	bcryptHashLen     = 60
)

// HasherConfig configures a Hasher. Zero fields take the documented
// defaults.
type HasherConfig struct {
	Memory  uint32 // KiB; default 19*1024; at least 8 per thread, at most 1 GiB
	Time    uint32 // passes; default 2; 1..16
	Threads uint8  // lanes; default 1; at most 16
	SaltLen uint32 // bytes; default 16; 16..64
	KeyLen  uint32 // bytes; default 32; 16..128
	// MaxConcurrent is the number of hashes and verifications that may run
	// at once; further calls wait. Default max(1, runtime.GOMAXPROCS(0)).
	// It bounds the memory a login flood can take to about
	// MaxConcurrent·Memory (a stored hash with larger parameters, at most
	// 1 GiB by ParsePHC's bounds, takes what it names while verified).
	MaxConcurrent int
	// MaxPasswordBytes is the longest password accepted, checked before any
	// hashing; default 1024.
	MaxPasswordBytes int
	// Rand is the source of salts; default crypto/rand.Reader. It must be
	// safe for concurrent use.
	Rand io.Reader
}

// ConfigError reports an unusable HasherConfig field.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("auth: invalid configuration: %s %s", e.Field, e.Reason)
}

// Hasher hashes and verifies passwords. It is safe for concurrent use;
// at most MaxConcurrent hashes run at once.
type Hasher struct {
	cfg HasherConfig
	sem chan struct{}
	// dummy is a random argon2id hash with the current parameters, the
	// target of VerifyDummy.
	dummy PHC
}

// NewHasher validates cfg, fills its defaults and returns a Hasher. An
// invalid field gives a *ConfigError.
func NewHasher(cfg HasherConfig) (*Hasher, error) {
	if cfg.Memory == 0 {
		cfg.Memory = DefaultMemory
	}
	if cfg.Time == 0 {
		cfg.Time = DefaultTime
	}
	if cfg.Threads == 0 {
		cfg.Threads = DefaultThreads
	}
	if cfg.SaltLen == 0 {
		cfg.SaltLen = DefaultSaltLen
	}
	if cfg.KeyLen == 0 {
		cfg.KeyLen = DefaultKeyLen
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = max(1, runtime.GOMAXPROCS(0))
	}
	if cfg.MaxPasswordBytes == 0 {
		cfg.MaxPasswordBytes = DefaultMaxPasswordBytes
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	switch {
	case cfg.Threads > phcMaxThreads:
		return nil, &ConfigError{"Threads", "must be at most " + strconv.Itoa(phcMaxThreads)}
	case cfg.Memory < 8*uint32(cfg.Threads):
		return nil, &ConfigError{"Memory", "must be at least 8 KiB per thread"}
	case cfg.Memory > phcMaxMemory:
		return nil, &ConfigError{"Memory", "must be at most 1 GiB"}
	case cfg.Time > phcMaxTime:
		return nil, &ConfigError{"Time", "must be at most " + strconv.Itoa(phcMaxTime)}
	case cfg.SaltLen < 16 || cfg.SaltLen > phcMaxSalt:
		return nil, &ConfigError{"SaltLen", "must be between 16 and 64"}
	case cfg.KeyLen < phcMinHash || cfg.KeyLen > phcMaxHash:
		return nil, &ConfigError{"KeyLen", "must be between 16 and 128"}
	case cfg.MaxConcurrent < 0:
		return nil, &ConfigError{"MaxConcurrent", "must not be negative"}
	case cfg.MaxPasswordBytes < 64:
		return nil, &ConfigError{"MaxPasswordBytes", "must be at least 64"}
	}
	h := &Hasher{cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent)}
	h.dummy = h.params()
	h.dummy.Salt = make([]byte, cfg.SaltLen)
	h.dummy.Hash = make([]byte, cfg.KeyLen)
	if _, err := io.ReadFull(cfg.Rand, h.dummy.Salt); err != nil {
		return nil, fmt.Errorf("auth: reading random bytes: %w", err)
	}
	if _, err := io.ReadFull(cfg.Rand, h.dummy.Hash); err != nil {
		return nil, fmt.Errorf("auth: reading random bytes: %w", err)
	}
	return h, nil
}

// params returns the current parameters as a PHC without salt and hash.
func (h *Hasher) params() PHC {
	return PHC{Alg: algArgon2id, Version: argon2Version, Memory: h.cfg.Memory, Time: h.cfg.Time, Threads: h.cfg.Threads}
}

// acquire waits for a hashing slot or for ctx to end.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.sem }

// Hash returns the argon2id hash of password in PHC string format, with a
// fresh random salt. It returns ErrPasswordTooLong before any hashing for
// an over-long password, and ctx.Err() if ctx ends while it waits for a
// slot.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if len(password) > h.cfg.MaxPasswordBytes {
		return "", ErrPasswordTooLong
	}
	p := h.params()
	p.Salt = make([]byte, h.cfg.SaltLen)
	if _, err := io.ReadFull(h.cfg.Rand, p.Salt); err != nil {
		return "", fmt.Errorf("auth: reading random salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	p.Hash = argon2.IDKey([]byte(password), p.Salt, p.Time, p.Memory, p.Threads, h.cfg.KeyLen)
	h.release()
	return p.String(), nil
}

// Verify checks password against a stored hash. ok reports a match.
// rehash reports, whether or not the password matched, that the stored
// hash is not argon2id with h's current parameters (it is bcrypt, or
// argon2id with other parameters or lengths) and should be replaced after
// a successful login.
//
// Accepted hashes are argon2id PHC strings within the bounds documented on
// ParsePHC, and bcrypt $2a$, $2b$ and $2y$ with a cost up to 16. A password
// longer than 72 bytes never matches a bcrypt hash (it is never checked
// against a truncated prefix): ok is false and err nil.
//
// Errors: ErrPasswordTooLong before any hashing; a *PHCError for a
// malformed or out-of-bounds hash; ctx.Err() if ctx ends while waiting
// for a slot. ok is false whenever err is not nil.
func (h *Hasher) Verify(ctx context.Context, password, phc string) (ok, rehash bool, err error) {
	if len(password) > h.cfg.MaxPasswordBytes {
		return false, false, ErrPasswordTooLong
	}
	if isBcrypt(phc) {
		return h.verifyBcrypt(ctx, password, phc)
	}
	p, err := ParsePHC(phc)
	if err != nil {
		return false, false, err
	}
	rehash = p.Memory != h.cfg.Memory || p.Time != h.cfg.Time || p.Threads != h.cfg.Threads ||
		len(p.Salt) != int(h.cfg.SaltLen) || len(p.Hash) != int(h.cfg.KeyLen)
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(password), p.Salt, p.Time, p.Memory, p.Threads, uint32(len(p.Hash)))
	h.release()
	return subtle.ConstantTimeCompare(got, p.Hash) == 1, rehash, nil
}

func (h *Hasher) verifyBcrypt(ctx context.Context, password, hash string) (ok, rehash bool, err error) {
	if err := checkBcrypt(hash); err != nil {
		return false, false, err
	}
	// A password longer than bcrypt reads never matches (bcrypt alone
	// would accept any password sharing its first 72 bytes), but it costs
	// a whole compare all the same: an answer without one would tell an
	// imported bcrypt account apart by its speed (LG-3).
	overlong := len(password) > bcryptMaxPassword
	if overlong {
		password = password[:bcryptMaxPassword]
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	err = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	h.release()
	switch {
	case err == nil:
		return !overlong, true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, true, nil
	}
	return false, false, phcErr("bcrypt", "unusable hash")
}

// checkBcrypt checks the shape of a bcrypt hash: $2a$, $2b$ or $2y$, a
// two-digit cost from 4 to 16, and 53 characters of bcrypt's base64.
func checkBcrypt(s string) error {
	if len(s) != bcryptHashLen || s[6] != '$' {
		return phcErr("bcrypt", "malformed")
	}
	if s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9' {
		return phcErr("bcrypt", "malformed cost")
	}
	cost := int(s[4]-'0')*10 + int(s[5]-'0')
	if cost < bcrypt.MinCost || cost > maxBcryptCost {
		return phcErr("bcrypt", "cost out of range")
	}
	for i := 7; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '/') {
			return phcErr("bcrypt", "malformed salt or hash")
		}
	}
	return nil
}

// VerifyDummy does the work of Verify against an argon2id hash with the
// current parameters and always fails. Call it where there is no hash to
// check (unknown user, user without a password, locked account) so that
// the response time does not reveal which case occurred. Like Verify, it
// returns at once for a password over MaxPasswordBytes
// (ErrPasswordTooLong) or a ctx that ends while it waits for a slot
// (ctx.Err()), without hashing; else nil, the work done.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	if len(password) > h.cfg.MaxPasswordBytes {
		return ErrPasswordTooLong
	}
	if err := h.acquire(ctx); err != nil {
		return err
	}
	got := argon2.IDKey([]byte(password), h.dummy.Salt, h.dummy.Time, h.dummy.Memory, h.dummy.Threads, uint32(len(h.dummy.Hash)))
	h.release()
	// The comparison is done for its cost only; its result is ignored.
	_ = subtle.ConstantTimeCompare(got, h.dummy.Hash)
	return nil
}

// MatchesAny reports whether password matches any of hashes (a password
// history, newest first). It stops at the first match. Empty or malformed
// entries cannot match and are skipped. It returns ErrPasswordTooLong, or
// ctx.Err() when ctx ends, as an error.
func (h *Hasher) MatchesAny(ctx context.Context, password string, hashes []string) (bool, error) {
	if len(password) > h.cfg.MaxPasswordBytes {
		return false, ErrPasswordTooLong
	}
	for _, s := range hashes {
		if s == "" {
			continue
		}
		ok, _, err := h.Verify(ctx, password, s)
		var pe *PHCError
		switch {
		case errors.As(err, &pe):
			continue
		case err != nil:
			return false, err
		case ok:
			return true, nil
		}
	}
	return false, nil
}
