package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// fastConfig is a cheap argon2id configuration for tests: 64 KiB, one
// pass, one lane.
func fastConfig() HasherConfig {
	return HasherConfig{Memory: 64, Time: 1, Threads: 1, MaxConcurrent: 2}
}

func newTestHasher(t *testing.T, cfg HasherConfig) *Hasher {
	t.Helper()
	h, err := NewHasher(cfg)
	if err != nil {
		t.Fatalf("NewHasher(%+v): %v", cfg, err)
	}
	return h
}

func mustHash(t *testing.T, h *Hasher, password string) string {
	t.Helper()
	s, err := h.Hash(context.Background(), password)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	return s
}

// holdAllSlots takes every hashing slot of h, so that any call that tries to
// hash waits; the slots are given back when the test ends.
func holdAllSlots(t *testing.T, h *Hasher) {
	t.Helper()
	for range cap(h.sem) {
		h.sem <- struct{}{}
	}
	t.Cleanup(func() {
		for range cap(h.sem) {
			<-h.sem
		}
	})
}

// blockedCtx is the context for a call made while every slot is held: it
// ends after a second, so a call that wrongly waits for a slot fails the
// test with context.DeadlineExceeded instead of hanging.
func blockedCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	t.Cleanup(cancel)
	return ctx
}

// bcryptHash returns a bcrypt hash of password at MinCost with the given
// prefix ("$2a$", "$2b$" or "$2y$"); Go's bcrypt writes $2a$, the others are
// the same algorithm and are made by rewriting the prefix.
func bcryptHash(t *testing.T, password, prefix string) string {
	t.Helper()
	b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt.GenerateFromPassword: %v", err)
	}
	s := string(b)
	if !strings.HasPrefix(s, "$2a$04$") {
		t.Fatalf("bcrypt hash %q does not start with $2a$04$", s)
	}
	return prefix + s[len("$2a$"):]
}

var defaultPHC = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHasherDefaults(t *testing.T) {
	h := newTestHasher(t, HasherConfig{})
	want := HasherConfig{
		Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32,
		MaxConcurrent: max(1, runtime.GOMAXPROCS(0)), MaxPasswordBytes: 1024,
	}
	got := h.cfg
	got.Rand = nil
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	if h.cfg.Rand == nil {
		t.Error("default Rand is nil")
	}
	if cap(h.sem) != want.MaxConcurrent {
		t.Errorf("cap(sem) = %d, want %d", cap(h.sem), want.MaxConcurrent)
	}

	ctx := context.Background()
	s := mustHash(t, h, "correct horse battery staple")
	if !defaultPHC.MatchString(s) {
		t.Fatalf("Hash = %q, want $argon2id$v=19$m=19456,t=2,p=1$<22 chars>$<43 chars>", s)
	}
	p, err := ParsePHC(s)
	if err != nil {
		t.Fatalf("ParsePHC(Hash): %v", err)
	}
	if len(p.Salt) != 16 || len(p.Hash) != 32 {
		t.Errorf("salt %d bytes, hash %d bytes; want 16 and 32", len(p.Salt), len(p.Hash))
	}
	if want := argon2.IDKey([]byte("correct horse battery staple"), p.Salt, 2, 19*1024, 1, 32); !bytes.Equal(p.Hash, want) {
		t.Error("hash is not argon2id(password, salt, t=2, m=19456, p=1, 32)")
	}
	if ok, rehash, err := h.Verify(ctx, "correct horse battery staple", s); !ok || rehash || err != nil {
		t.Errorf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	if ok, rehash, err := h.Verify(ctx, "correct horse battery stapler", s); ok || rehash || err != nil {
		t.Errorf("Verify(wrong password) = %v, %v, %v; want false, false, nil", ok, rehash, err)
	}
}

func TestHashVerify(t *testing.T) {
	h := newTestHasher(t, fastConfig())
	ctx := context.Background()
	s := mustHash(t, h, "tr0ub4dor&3")
	if !strings.HasPrefix(s, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("Hash = %q, want prefix $argon2id$v=19$m=64,t=1,p=1$", s)
	}
	if s2 := mustHash(t, h, "tr0ub4dor&3"); s2 == s {
		t.Error("two hashes of the same password are equal: salt is not fresh")
	}
	tests := []struct {
		name     string
		password string
		ok       bool
	}{
		{"Right", "tr0ub4dor&3", true},
		{"Wrong", "tr0ub4dor&4", false},
		{"Empty", "", false},
		{"Prefix", "tr0ub4dor&", false},
		{"Longer", "tr0ub4dor&33", false},
		{"CaseChanged", "TR0UB4DOR&3", false},
		{"TrailingSpace", "tr0ub4dor&3 ", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, tc.password, s)
			if ok != tc.ok || rehash || err != nil {
				t.Errorf("Verify = %v, %v, %v; want %v, false, nil", ok, rehash, err, tc.ok)
			}
		})
	}
	t.Run("EmptyPassword", func(t *testing.T) {
		e := mustHash(t, h, "")
		if ok, _, err := h.Verify(ctx, "", e); !ok || err != nil {
			t.Errorf("Verify(\"\", Hash(\"\")) = %v, %v; want true, nil", ok, err)
		}
		if ok, _, err := h.Verify(ctx, "x", e); ok || err != nil {
			t.Errorf("Verify(\"x\", Hash(\"\")) = %v, %v; want false, nil", ok, err)
		}
	})
}

// TestHashUsesRand checks that the salt comes from Config.Rand and that the
// hash is argon2id of the password with that salt.
func TestHashUsesRand(t *testing.T) {
	cfg := fastConfig()
	cfg.SaltLen, cfg.KeyLen = 16, 32
	seq := make([]byte, 16+32+16)
	for i := range seq {
		seq[i] = byte(i*7 + 3)
	}
	cfg.Rand = bytes.NewReader(seq)
	h := newTestHasher(t, cfg) // reads 16+32 bytes for the dummy hash
	if !bytes.Equal(h.dummy.Salt, seq[:16]) || !bytes.Equal(h.dummy.Hash, seq[16:48]) {
		t.Error("dummy salt and hash are not the first bytes of Rand")
	}
	s := mustHash(t, h, "pässwörd")
	salt := seq[48:64]
	want := "$argon2id$v=19$m=64,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" +
		base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte("pässwörd"), salt, 1, 64, 1, 32))
	if s != want {
		t.Errorf("Hash = %q, want %q", s, want)
	}

	// Rand is now exhausted.
	got, err := h.Hash(context.Background(), "pässwörd")
	if err == nil || got != "" {
		t.Errorf("Hash with exhausted Rand = %q, %v; want \"\", error", got, err)
	}
	if !errors.Is(err, io.EOF) {
		t.Errorf("Hash error %v does not wrap io.EOF", err)
	}
	if len(h.sem) != 0 {
		t.Errorf("a failed Hash left %d slots taken", len(h.sem))
	}
}

func TestNewHasherRandError(t *testing.T) {
	errBroken := errors.New("broken source")
	cfg := fastConfig()
	cfg.Rand = iotest.ErrReader(errBroken)
	h, err := NewHasher(cfg)
	if h != nil || !errors.Is(err, errBroken) {
		t.Errorf("NewHasher with a failing Rand = %v, %v; want nil, error wrapping %v", h, err, errBroken)
	}
}

func TestNewHasherConfigError(t *testing.T) {
	tests := []struct {
		name  string
		cfg   HasherConfig
		field string // "" means the config is valid
	}{
		{"Zero", HasherConfig{}, ""},
		{"ThreadsMax", HasherConfig{Threads: 16, Memory: 128}, ""},
		{"Threads17", HasherConfig{Threads: 17}, "Threads"},
		{"Threads255", HasherConfig{Threads: 255}, "Threads"},
		{"MemoryMin", HasherConfig{Memory: 8}, ""},
		{"MemoryBelow8", HasherConfig{Memory: 7}, "Memory"},
		{"MemoryBelow8PerThread", HasherConfig{Memory: 127, Threads: 16}, "Memory"},
		{"MemoryMax", HasherConfig{Memory: 1 << 20}, ""},
		{"MemoryAbove1GiB", HasherConfig{Memory: 1<<20 + 1}, "Memory"},
		{"TimeMax", HasherConfig{Time: 16}, ""},
		{"Time17", HasherConfig{Time: 17}, "Time"},
		{"SaltLenMin", HasherConfig{SaltLen: 16}, ""},
		{"SaltLen15", HasherConfig{SaltLen: 15}, "SaltLen"},
		{"SaltLen8", HasherConfig{SaltLen: 8}, "SaltLen"},
		{"SaltLenMax", HasherConfig{SaltLen: 64}, ""},
		{"SaltLen65", HasherConfig{SaltLen: 65}, "SaltLen"},
		{"KeyLenMin", HasherConfig{KeyLen: 16}, ""},
		{"KeyLen15", HasherConfig{KeyLen: 15}, "KeyLen"},
		{"KeyLenMax", HasherConfig{KeyLen: 128}, ""},
		{"KeyLen129", HasherConfig{KeyLen: 129}, "KeyLen"},
		{"MaxConcurrentNegative", HasherConfig{MaxConcurrent: -1}, "MaxConcurrent"},
		{"MaxPasswordBytesMin", HasherConfig{MaxPasswordBytes: 64}, ""},
		{"MaxPasswordBytes63", HasherConfig{MaxPasswordBytes: 63}, "MaxPasswordBytes"},
		{"MaxPasswordBytesNegative", HasherConfig{MaxPasswordBytes: -1}, "MaxPasswordBytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHasher(tc.cfg)
			if tc.field == "" {
				if err != nil || h == nil {
					t.Fatalf("NewHasher = %v, %v; want a Hasher", h, err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || h != nil {
				t.Fatalf("NewHasher = %v, %v; want nil, *ConfigError", h, err)
			}
			if ce.Field != tc.field {
				t.Errorf("ConfigError.Field = %q, want %q", ce.Field, tc.field)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "auth: ") || !strings.Contains(msg, tc.field) {
				t.Errorf("Error() = %q, want the auth: prefix and the field %s", msg, tc.field)
			}
		})
	}
}

func TestVerifyRehash(t *testing.T) {
	ctx := context.Background()
	base := fastConfig()
	stored := newTestHasher(t, base)
	const pw = "rehash me, please"
	s := mustHash(t, stored, pw)

	with := func(f func(*HasherConfig)) HasherConfig {
		c := base
		f(&c)
		return c
	}
	tests := []struct {
		name   string
		cfg    HasherConfig
		rehash bool
	}{
		{"SameParameters", base, false},
		{"SameParametersOtherConcurrency", with(func(c *HasherConfig) { c.MaxConcurrent = 7 }), false},
		{"Memory", with(func(c *HasherConfig) { c.Memory = 128 }), true},
		{"Time", with(func(c *HasherConfig) { c.Time = 2 }), true},
		{"Threads", with(func(c *HasherConfig) { c.Threads = 2 }), true},
		{"SaltLen", with(func(c *HasherConfig) { c.SaltLen = 32 }), true},
		{"KeyLen", with(func(c *HasherConfig) { c.KeyLen = 64 }), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHasher(t, tc.cfg)
			if ok, rehash, err := h.Verify(ctx, pw, s); !ok || rehash != tc.rehash || err != nil {
				t.Errorf("Verify(right) = %v, %v, %v; want true, %v, nil", ok, rehash, err, tc.rehash)
			}
			if ok, rehash, err := h.Verify(ctx, pw+"!", s); ok || rehash != tc.rehash || err != nil {
				t.Errorf("Verify(wrong) = %v, %v, %v; want false, %v, nil", ok, rehash, err, tc.rehash)
			}
		})
	}

	t.Run("ShortSaltFromElsewhere", func(t *testing.T) {
		// ParsePHC accepts salts from 8 bytes; such a hash verifies and is
		// flagged for rehashing since the Hasher writes 16.
		salt := []byte("8bytes!!")
		p := PHC{Alg: "argon2id", Version: 19, Memory: 64, Time: 1, Threads: 1, Salt: salt,
			Hash: argon2.IDKey([]byte(pw), salt, 1, 64, 1, 32)}
		if ok, rehash, err := stored.Verify(ctx, pw, p.String()); !ok || !rehash || err != nil {
			t.Errorf("Verify = %v, %v, %v; want true, true, nil", ok, rehash, err)
		}
	})
}

func TestVerifyMalformed(t *testing.T) {
	h := newTestHasher(t, fastConfig())
	holdAllSlots(t, h) // a malformed hash is refused before waiting for a slot
	ctx := blockedCtx(t)
	for _, s := range []string{
		"",
		"plaintext",
		"$argon2i$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=64,t=0,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=2097152,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
		"$2a$04$short",
	} {
		ok, rehash, err := h.Verify(ctx, "password", s)
		var pe *PHCError
		if ok || rehash || !errors.As(err, &pe) {
			t.Errorf("Verify(%q) = %v, %v, %v; want false, false, *PHCError", s, ok, rehash, err)
		}
	}
}

func TestVerifyBcrypt(t *testing.T) {
	h := newTestHasher(t, fastConfig())
	ctx := context.Background()
	const pw = "bcrypt-legacy-pw"
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		t.Run(strings.Trim(prefix, "$"), func(t *testing.T) {
			s := bcryptHash(t, pw, prefix)
			if ok, rehash, err := h.Verify(ctx, pw, s); !ok || !rehash || err != nil {
				t.Errorf("Verify(right) = %v, %v, %v; want true, true, nil", ok, rehash, err)
			}
			if ok, rehash, err := h.Verify(ctx, pw+"x", s); ok || !rehash || err != nil {
				t.Errorf("Verify(wrong) = %v, %v, %v; want false, true, nil", ok, rehash, err)
			}
			if ok, _, err := h.Verify(ctx, "", s); ok || err != nil {
				t.Errorf("Verify(empty) = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

// TestVerifyBcryptTruncation checks that a password longer than 72 bytes
// never matches a bcrypt hash of its first 72 bytes, which bcrypt itself
// would accept.
func TestVerifyBcryptTruncation(t *testing.T) {
	h := newTestHasher(t, fastConfig())
	ctx := context.Background()
	pw72 := strings.Repeat("0123456789ab", 6) // 72 bytes
	s := bcryptHash(t, pw72, "$2b$")
	if err := bcrypt.CompareHashAndPassword([]byte(s), []byte(pw72+"x")); err != nil {
		t.Logf("note: this bcrypt no longer accepts a truncated match (%v)", err)
	}
	tests := []struct {
		name     string
		password string
		ok       bool
	}{
		{"Exactly72", pw72, true},
		{"73", pw72 + "x", false},
		{"72PlusMany", pw72 + strings.Repeat("y", 200), false},
		{"71", pw72[:71], false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, tc.password, s)
			if ok != tc.ok || !rehash || err != nil {
				t.Errorf("Verify = %v, %v, %v; want %v, true, nil", ok, rehash, err, tc.ok)
			}
		})
	}
}

func TestVerifyBcryptRefused(t *testing.T) {
	good := bcryptHash(t, "whatever-pw", "$2a$")
	withCost := func(c string) string { return good[:4] + c + good[6:] }
	tests := []struct {
		name string
		hash string
	}{
		{"Cost17", withCost("17")},
		{"Cost31", withCost("31")},
		{"Cost99", withCost("99")},
		{"Cost03", withCost("03")},
		{"Cost00", withCost("00")},
		{"CostNotDigits", withCost("1a")},
		{"CostOneDigit", good[:4] + "4$" + good[6:]},
		{"NoDollarAfterCost", good[:6] + "x" + good[7:]},
		{"TooShort", good[:59]},
		{"TooLong", good + "a"},
		{"BadChar", good[:20] + "!" + good[21:]},
		{"PlusNotInAlphabet", good[:20] + "+" + good[21:]},
		{"Newline", good[:59] + "\n"},
		{"PrefixOnly", "$2a$"},
	}
	h := newTestHasher(t, HasherConfig{Memory: 64, Time: 1, MaxConcurrent: 1})
	holdAllSlots(t, h) // the shape is checked before waiting for a slot, so before hashing
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(blockedCtx(t), "whatever-pw", tc.hash)
			var pe *PHCError
			if ok || rehash || !errors.As(err, &pe) {
				t.Fatalf("Verify = %v, %v, %v; want false, false, *PHCError", ok, rehash, err)
			}
			if pe.Part != "bcrypt" {
				t.Errorf("PHCError.Part = %q, want bcrypt", pe.Part)
			}
			if strings.Contains(err.Error(), tc.hash) {
				t.Errorf("Error() %q contains the hash", err)
			}
		})
	}
}

func TestCheckBcryptCosts(t *testing.T) {
	good := bcryptHash(t, "x", "$2y$")
	for c := 0; c <= 99; c++ {
		s := good[:4] + string(rune('0'+c/10)) + string(rune('0'+c%10)) + good[6:]
		err := checkBcrypt(s)
		if valid := c >= 4 && c <= 16; valid != (err == nil) {
			t.Errorf("checkBcrypt(cost %02d) = %v; want valid=%v", c, err, valid)
		}
	}
}

func TestPasswordTooLong(t *testing.T) {
	tests := []struct {
		name string
		max  int // MaxPasswordBytes; 0 for the default 1024
		long int // a length just over the limit
	}{
		{"Default", 0, 1025},
		{"Custom64", 64, 65},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fastConfig()
			cfg.MaxPasswordBytes = tc.max
			var reads atomic.Int64
			cfg.Rand = readerFunc(func(p []byte) (int, error) {
				reads.Add(1)
				return len(p), nil
			})
			h := newTestHasher(t, cfg)
			atLimit := strings.Repeat("é", (tc.long-1)/2) + strings.Repeat("a", (tc.long-1)%2)
			if len(atLimit) != tc.long-1 {
				t.Fatalf("bad test: %d bytes", len(atLimit))
			}
			// At the limit, hashing works.
			s := mustHash(t, h, atLimit)
			if ok, _, err := h.Verify(context.Background(), atLimit, s); !ok || err != nil {
				t.Fatalf("Verify(password at the limit) = %v, %v; want true, nil", ok, err)
			}

			// Over the limit, every call fails before taking a slot or
			// reading a salt: with every slot held, a call that waited would
			// end with context.DeadlineExceeded instead.
			bcryptStored := bcryptHash(t, "short", "$2a$")
			holdAllSlots(t, h)
			before := reads.Load()
			over := atLimit + "b"
			ctx := blockedCtx(t)
			if got, err := h.Hash(ctx, over); got != "" || !errors.Is(err, ErrPasswordTooLong) {
				t.Errorf("Hash = %q, %v; want \"\", ErrPasswordTooLong", got, err)
			}
			for _, stored := range []string{s, bcryptStored, "garbage"} {
				if ok, rehash, err := h.Verify(ctx, over, stored); ok || rehash || !errors.Is(err, ErrPasswordTooLong) {
					t.Errorf("Verify(%.12q…) = %v, %v, %v; want false, false, ErrPasswordTooLong", stored, ok, rehash, err)
				}
			}
			if ok, err := h.MatchesAny(ctx, over, []string{s}); ok || !errors.Is(err, ErrPasswordTooLong) {
				t.Errorf("MatchesAny = %v, %v; want false, ErrPasswordTooLong", ok, err)
			}
			if ok, err := h.MatchesAny(ctx, over, nil); ok || !errors.Is(err, ErrPasswordTooLong) {
				t.Errorf("MatchesAny(no hashes) = %v, %v; want false, ErrPasswordTooLong", ok, err)
			}
			if r := reads.Load(); r != before {
				t.Errorf("Rand was read %d times for an over-long password", r-before)
			}
		})
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestContextWhileWaiting holds the only slot and checks that every call
// that must hash gives up with ctx.Err() when its context ends.
func TestContextWhileWaiting(t *testing.T) {
	h := newTestHasher(t, HasherConfig{Memory: 64, Time: 1, MaxConcurrent: 1})
	argonHash := mustHash(t, h, "pw-in-wait")
	bcryptH := bcryptHash(t, "pw-in-wait", "$2b$")

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Hash", func(ctx context.Context) error {
			s, err := h.Hash(ctx, "pw-in-wait")
			if s != "" {
				return errors.New("Hash returned a hash with an error")
			}
			return err
		}},
		{"VerifyArgon2id", func(ctx context.Context) error {
			ok, rehash, err := h.Verify(ctx, "pw-in-wait", argonHash)
			if ok || rehash {
				return errors.New("Verify returned ok or rehash with an error")
			}
			return err
		}},
		{"VerifyBcrypt", func(ctx context.Context) error {
			ok, rehash, err := h.Verify(ctx, "pw-in-wait", bcryptH)
			if ok || rehash {
				return errors.New("Verify returned ok or rehash with an error")
			}
			return err
		}},
		// A password too long for bcrypt never matches, but waits for
		// its compare like any other (no answer by speed, LG-3).
		{"VerifyBcryptOverlong", func(ctx context.Context) error {
			ok, rehash, err := h.Verify(ctx, strings.Repeat("pw-in-wait", 10), bcryptH)
			if ok || rehash {
				return errors.New("Verify returned ok or rehash with an error")
			}
			return err
		}},
		{"MatchesAny", func(ctx context.Context) error {
			ok, err := h.MatchesAny(ctx, "pw-in-wait", []string{"junk", argonHash})
			if ok {
				return errors.New("MatchesAny returned true with an error")
			}
			return err
		}},
		{"VerifyDummy", func(ctx context.Context) error {
			h.VerifyDummy(ctx, "pw-in-wait")
			return ctx.Err()
		}},
	}
	for _, c := range calls {
		t.Run(c.name+"/CancelledWhileWaiting", func(t *testing.T) {
			holdAllSlots(t, h)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- c.call(ctx) }()
			select {
			case err := <-done:
				t.Fatalf("returned %v while the only slot was held", err)
			case <-time.After(50 * time.Millisecond):
			}
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("err = %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("did not return after its context was cancelled")
			}
		})
		t.Run(c.name+"/DeadlineWhileWaiting", func(t *testing.T) {
			holdAllSlots(t, h)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if err := c.call(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want context.DeadlineExceeded", err)
			}
		})
		t.Run(c.name+"/AlreadyCancelledWithFreeSlot", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := c.call(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			if len(h.sem) != 0 {
				t.Errorf("%d slots left taken", len(h.sem))
			}
		})
	}
}

// TestConcurrencyLimit checks MaxConcurrent=2. What a test can observe is
// the semaphore: it has two slots, a third call waits while both are taken
// and proceeds once one is free, and under load every call finishes and
// gives its slot back. (len(h.sem) <= cap(h.sem) always holds for a
// channel; the sampled maximum is reported for information.)
func TestConcurrencyLimit(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxConcurrent = 2
	h := newTestHasher(t, cfg)
	if cap(h.sem) != 2 {
		t.Fatalf("cap(sem) = %d, want 2", cap(h.sem))
	}
	const pw = "concurrent-pw"
	stored := mustHash(t, h, pw)

	t.Run("ThirdWaits", func(t *testing.T) {
		h.sem <- struct{}{}
		h.sem <- struct{}{}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := h.Hash(ctx, pw); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Hash with both slots taken = %v, want context.DeadlineExceeded", err)
		}
		<-h.sem
		if ok, _, err := h.Verify(context.Background(), pw, stored); !ok || err != nil {
			t.Errorf("Verify with one slot free = %v, %v; want true, nil", ok, err)
		}
		<-h.sem
	})

	t.Run("UnderLoad", func(t *testing.T) {
		stop := make(chan struct{})
		maxSeen := make(chan int, 1)
		go func() {
			m := 0
			for {
				select {
				case <-stop:
					maxSeen <- m
					return
				default:
				}
				if n := len(h.sem); n > m {
					m = n
				}
				runtime.Gosched()
			}
		}()
		var wg sync.WaitGroup
		var failures atomic.Int64
		ctx := context.Background()
		for i := range 16 {
			wg.Go(func() {
				switch i % 4 {
				case 0:
					s, err := h.Hash(ctx, pw)
					if err != nil || !strings.HasPrefix(s, "$argon2id$") {
						failures.Add(1)
					}
				case 1:
					if ok, _, err := h.Verify(ctx, pw, stored); !ok || err != nil {
						failures.Add(1)
					}
				case 2:
					h.VerifyDummy(ctx, pw)
				case 3:
					if ok, err := h.MatchesAny(ctx, pw, []string{"bad", "$argon2id$x", stored}); !ok || err != nil {
						failures.Add(1)
					}
				}
			})
		}
		wg.Wait()
		close(stop)
		m := <-maxSeen
		if n := failures.Load(); n != 0 {
			t.Errorf("%d concurrent calls failed", n)
		}
		if m > 2 {
			t.Errorf("saw %d slots taken, limit is 2", m)
		}
		if n := len(h.sem); n != 0 {
			t.Errorf("%d slots still taken after all calls returned", n)
		}
		t.Logf("most slots seen taken at once: %d of 2", m)
	})
}

func TestMatchesAny(t *testing.T) {
	h := newTestHasher(t, fastConfig())
	ctx := context.Background()
	const pw = "history-pw-1"
	match := mustHash(t, h, pw)
	other := mustHash(t, h, "history-pw-2")
	bcryptMatch := bcryptHash(t, pw, "$2y$")
	bcryptOther := bcryptHash(t, "history-pw-3", "$2a$")
	junk := []string{
		"",
		"not a hash",
		"$argon2id$v=19$m=64,t=1,p=1$AAAA",
		"$argon2id$v=19$m=64,t=99,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2i$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
		bcryptOther[:4] + "31" + bcryptOther[6:],
		"$2a$04$",
	}
	tests := []struct {
		name   string
		hashes []string
		want   bool
	}{
		{"Nil", nil, false},
		{"OnlyEmpty", []string{"", ""}, false},
		{"OnlyMalformed", junk, false},
		{"NoMatch", []string{other, bcryptOther}, false},
		{"Newest", []string{match, other}, true},
		{"Oldest", []string{other, bcryptOther, match}, true},
		{"AfterMalformed", append(append([]string{}, junk...), match), true},
		{"Bcrypt", append(append([]string{other}, junk...), bcryptMatch), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.MatchesAny(ctx, pw, tc.hashes)
			if got != tc.want || err != nil {
				t.Errorf("MatchesAny = %v, %v; want %v, nil", got, err, tc.want)
			}
		})
	}
	if len(h.sem) != 0 {
		t.Errorf("%d slots left taken", len(h.sem))
	}
}

func TestVerifyDummy(t *testing.T) {
	h := newTestHasher(t, HasherConfig{Memory: 64, Time: 1, MaxConcurrent: 1, MaxPasswordBytes: 64})
	ctx := context.Background()
	for _, pw := range []string{"", "x", "\x00\xff", strings.Repeat("p", 64)} {
		h.VerifyDummy(ctx, pw) // must not panic
	}
	if len(h.sem) != 0 {
		t.Errorf("VerifyDummy left %d slots taken", len(h.sem))
	}
	if !strings.HasPrefix(h.dummy.String(), "$argon2id$v=19$m=64,t=1,p=1$") ||
		len(h.dummy.Salt) != 16 || len(h.dummy.Hash) != 32 {
		t.Errorf("dummy hash %q does not have the current parameters", h.dummy)
	}

	t.Run("ReturnsPromptly", func(t *testing.T) {
		holdAllSlots(t, h)
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		for _, c := range []struct {
			name string
			ctx  context.Context
			pw   string
		}{
			{"OverLongPassword", context.Background(), strings.Repeat("p", 65)},
			{"CancelledContext", cancelled, "short"},
		} {
			done := make(chan struct{})
			go func() {
				h.VerifyDummy(c.ctx, c.pw)
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: VerifyDummy did not return with the slot held", c.name)
			}
		}
	})
}
