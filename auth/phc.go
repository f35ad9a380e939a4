package auth

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// PHC is a parsed argon2id hash in PHC string format:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with salt and hash in unpadded standard base64. Bcrypt hashes ($2a$,
// $2b$, $2y$) are not PHC strings; Hasher.Verify recognises them by prefix
// and hands them to bcrypt.
type PHC struct {
	Alg     string // always "argon2id" for a parsed value
	Version int    // always 19 (0x13) for a parsed value
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
	Salt    []byte
	Hash    []byte
}

// Bounds on the argon2id parameters accepted from a stored hash. They
// keep a hostile or corrupt hash string from making a verification
// allocate or compute without limit.
const (
	phcMaxLen     = 512     // bytes of the whole string
	phcMaxMemory  = 1 << 20 // KiB (1 GiB)
	phcMaxTime    = 16
	phcMaxThreads = 16
	phcMinSalt    = 8
	phcMaxSalt    = 64
	phcMinHash    = 16
	phcMaxHash    = 128
	argon2Version = 19
	algArgon2id   = "argon2id"
)

// PHCError reports a password hash string that cannot be used. Part names
// the piece that is wrong ("format", "algorithm", "version", "memory",
// "time", "threads", "salt", "hash", "bcrypt"); the string itself is never
// included, since it is a secret verifier.
type PHCError struct {
	Part   string
	Reason string
}

func (e *PHCError) Error() string {
	return fmt.Sprintf("auth: malformed password hash: %s: %s", e.Part, e.Reason)
}

func phcErr(part, reason string) *PHCError { return &PHCError{Part: part, Reason: reason} }

// ParsePHC parses an argon2id PHC string strictly: exactly the fields
// $argon2id$v=19$m=M,t=T,p=P$salt$hash in that order, decimal numbers
// without sign or leading zeros, unpadded standard base64 with no stray
// characters, and every parameter within the bounds documented on PHC
// (memory at most 1 GiB and at least 8 KiB per thread, time 1..16,
// threads 1..16, salt 8..64 bytes, hash 16..128 bytes). Any other input
// gives a *PHCError and a zero PHC.
func ParsePHC(s string) (PHC, error) {
	if len(s) > phcMaxLen {
		return PHC{}, phcErr("format", "too long")
	}
	if isBcrypt(s) {
		return PHC{}, phcErr("algorithm", "bcrypt hashes are not PHC strings")
	}
	f := strings.Split(s, "$")
	if len(f) < 2 || f[0] != "" {
		return PHC{}, phcErr("format", "does not start with $")
	}
	if f[1] != algArgon2id {
		return PHC{}, phcErr("algorithm", "unsupported")
	}
	if len(f) != 6 {
		return PHC{}, phcErr("format", "want 5 $-separated fields")
	}
	v, ok := strings.CutPrefix(f[2], "v=")
	if !ok {
		return PHC{}, phcErr("version", "missing")
	}
	ver, err := parseDecimal(v)
	if err != nil || ver != argon2Version {
		return PHC{}, phcErr("version", "unsupported")
	}
	p := PHC{Alg: algArgon2id, Version: argon2Version}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return PHC{}, phcErr("format", "want parameters m, t and p")
	}
	var vals [3]uint64
	for i, name := range [3]string{"m", "t", "p"} {
		num, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return PHC{}, phcErr("format", "want parameters m, t and p in that order")
		}
		n, err := parseDecimal(num)
		if err != nil {
			return PHC{}, phcErr(paramPart(name), "not a decimal number")
		}
		vals[i] = n
	}
	m, t, th := vals[0], vals[1], vals[2]
	switch {
	case th < 1 || th > phcMaxThreads:
		return PHC{}, phcErr("threads", "out of range")
	case t < 1 || t > phcMaxTime:
		return PHC{}, phcErr("time", "out of range")
	case m > phcMaxMemory:
		return PHC{}, phcErr("memory", "too large")
	case m < 8*th:
		return PHC{}, phcErr("memory", "below 8 KiB per thread")
	}
	p.Memory, p.Time, p.Threads = uint32(m), uint32(t), uint8(th)
	if p.Salt, err = decodeB64(f[4], phcMaxSalt); err != nil {
		return PHC{}, phcErr("salt", err.Error())
	}
	if len(p.Salt) < phcMinSalt {
		return PHC{}, phcErr("salt", "too short")
	}
	if p.Hash, err = decodeB64(f[5], phcMaxHash); err != nil {
		return PHC{}, phcErr("hash", err.Error())
	}
	if len(p.Hash) < phcMinHash {
		return PHC{}, phcErr("hash", "too short")
	}
	return p, nil
}

// String returns p in PHC string format.
func (p PHC) String() string {
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s", p.Alg, p.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(p.Salt), base64.RawStdEncoding.EncodeToString(p.Hash))
}

func paramPart(name string) string {
	switch name {
	case "m":
		return "memory"
	case "t":
		return "time"
	}
	return "threads"
}

type parseError string

func (e parseError) Error() string { return string(e) }

// parseDecimal parses a PHC decimal: digits only, no leading zero (except
// "0" itself), at most 10 digits.
func parseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, parseError("not a decimal number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, parseError("not a decimal number")
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// decodeB64 decodes unpadded standard base64, refusing any byte outside
// the alphabet (the decoder itself would skip newlines) and non-zero
// trailing bits, and anything that decodes to more than max bytes.
func decodeB64(s string, max int) ([]byte, error) {
	if s == "" {
		return nil, parseError("empty")
	}
	if base64.RawStdEncoding.DecodedLen(len(s)) > max {
		return nil, parseError("too long")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, parseError("not unpadded standard base64")
		}
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, parseError("not unpadded standard base64")
	}
	return b, nil
}

// isBcrypt reports whether s carries a bcrypt prefix that Verify accepts.
func isBcrypt(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}
