package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func b64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

func seqBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*31)
	}
	return b
}

var (
	salt16 = b64(seqBytes(16, 1)) // 22 characters
	hash32 = b64(seqBytes(32, 2)) // 43 characters
)

// phc builds a PHC string from its textual parts.
func phc(params, salt, hash string) string {
	return "$argon2id$v=19$" + params + "$" + salt + "$" + hash
}

var validPHC = []struct {
	name string
	s    string
	want PHC
}{
	{"Defaults", phc("m=19456,t=2,p=1", salt16, hash32),
		PHC{"argon2id", 19, 19456, 2, 1, seqBytes(16, 1), seqBytes(32, 2)}},
	{"MinimumMemory", phc("m=8,t=1,p=1", salt16, hash32),
		PHC{"argon2id", 19, 8, 1, 1, seqBytes(16, 1), seqBytes(32, 2)}},
	{"MinimumMemory16Threads", phc("m=128,t=1,p=16", salt16, hash32),
		PHC{"argon2id", 19, 128, 1, 16, seqBytes(16, 1), seqBytes(32, 2)}},
	{"MaximumMemoryAndTime", phc("m=1048576,t=16,p=16", salt16, hash32),
		PHC{"argon2id", 19, 1 << 20, 16, 16, seqBytes(16, 1), seqBytes(32, 2)}},
	{"Salt8", phc("m=64,t=1,p=1", b64(seqBytes(8, 3)), hash32),
		PHC{"argon2id", 19, 64, 1, 1, seqBytes(8, 3), seqBytes(32, 2)}},
	{"Salt64", phc("m=64,t=1,p=1", b64(seqBytes(64, 3)), hash32),
		PHC{"argon2id", 19, 64, 1, 1, seqBytes(64, 3), seqBytes(32, 2)}},
	{"Hash16", phc("m=64,t=1,p=1", salt16, b64(seqBytes(16, 4))),
		PHC{"argon2id", 19, 64, 1, 1, seqBytes(16, 1), seqBytes(16, 4)}},
	{"Hash128", phc("m=64,t=1,p=1", salt16, b64(seqBytes(128, 4))),
		PHC{"argon2id", 19, 64, 1, 1, seqBytes(16, 1), seqBytes(128, 4)}},
	{"SaltAndHashLengthMod3", phc("m=64,t=1,p=1", b64(seqBytes(17, 5)), b64(seqBytes(18, 6))),
		PHC{"argon2id", 19, 64, 1, 1, seqBytes(17, 5), seqBytes(18, 6)}},
	{"ZeroBytes", phc("m=64,t=1,p=1", strings.Repeat("A", 22), strings.Repeat("A", 43)),
		PHC{"argon2id", 19, 64, 1, 1, make([]byte, 16), make([]byte, 32)}},
	{"AllOnes", phc("m=64,t=1,p=1", strings.Repeat("/", 21)+"w", strings.Repeat("/", 42)+"8"),
		PHC{"argon2id", 19, 64, 1, 1, bytes.Repeat([]byte{0xff}, 16), bytes.Repeat([]byte{0xff}, 32)}},
}

var invalidPHC = []struct {
	name string
	s    string
	part string
}{
	{"Empty", "", "format"},
	{"Dollar", "$", "algorithm"},
	{"NoLeadingDollar", strings.TrimPrefix(phc("m=64,t=1,p=1", salt16, hash32), "$"), "format"},
	{"LeadingSpace", " " + phc("m=64,t=1,p=1", salt16, hash32), "format"},
	{"Argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt16 + "$" + hash32, "algorithm"},
	{"Argon2d", "$argon2d$v=19$m=64,t=1,p=1$" + salt16 + "$" + hash32, "algorithm"},
	{"UpperCaseAlg", "$ARGON2ID$v=19$m=64,t=1,p=1$" + salt16 + "$" + hash32, "algorithm"},
	{"Scrypt", "$scrypt$ln=16,r=8,p=1$" + salt16 + "$" + hash32, "algorithm"},
	{"Bcrypt2a", "$2a$10$" + strings.Repeat("a", 53), "algorithm"},
	{"Bcrypt2b", "$2b$04$abc", "algorithm"},
	{"Bcrypt2y", "$2y$", "algorithm"},
	{"AlgOnly", "$argon2id", "format"},
	{"MissingHash", "$argon2id$v=19$m=64,t=1,p=1$" + salt16, "format"},
	{"MissingVersion", "$argon2id$m=64,t=1,p=1$" + salt16 + "$" + hash32, "format"},
	{"ExtraField", phc("m=64,t=1,p=1", salt16, hash32) + "$", "format"},
	{"ExtraFieldWithData", phc("m=64,t=1,p=1", salt16, hash32) + "$" + hash32, "format"},
	{"VersionKey", "$argon2id$x=19$m=64,t=1,p=1$" + salt16 + "$" + hash32, "version"},
	{"VersionEmpty", "$argon2id$v=$m=64,t=1,p=1$" + salt16 + "$" + hash32, "version"},
	{"Version16", "$argon2id$v=16$m=64,t=1,p=1$" + salt16 + "$" + hash32, "version"},
	{"Version0x13", "$argon2id$v=0x13$m=64,t=1,p=1$" + salt16 + "$" + hash32, "version"},
	{"VersionLeadingZero", "$argon2id$v=019$m=64,t=1,p=1$" + salt16 + "$" + hash32, "version"},
	{"VersionSign", "$argon2id$v=+19$m=64,t=1,p=1$" + salt16 + "$" + hash32, "version"},
	{"VersionSpace", "$argon2id$v= 19$m=64,t=1,p=1$" + salt16 + "$" + hash32, "version"},
	{"NoParams", phc("", salt16, hash32), "format"},
	{"TwoParams", phc("m=64,t=1", salt16, hash32), "format"},
	{"FourParams", phc("m=64,t=1,p=1,k=1", salt16, hash32), "format"},
	{"TrailingComma", phc("m=64,t=1,p=1,", salt16, hash32), "format"},
	{"OutOfOrder", phc("t=1,m=64,p=1", salt16, hash32), "format"},
	{"OutOfOrder2", phc("m=64,p=1,t=1", salt16, hash32), "format"},
	{"UpperCaseParam", phc("M=64,t=1,p=1", salt16, hash32), "format"},
	{"SpaceBeforeParam", phc("m=64, t=1,p=1", salt16, hash32), "format"},
	{"MemoryEmpty", phc("m=,t=1,p=1", salt16, hash32), "memory"},
	{"MemoryLeadingZero", phc("m=064,t=1,p=1", salt16, hash32), "memory"},
	{"MemoryPlus", phc("m=+64,t=1,p=1", salt16, hash32), "memory"},
	{"MemoryMinus", phc("m=-64,t=1,p=1", salt16, hash32), "memory"},
	{"MemorySpace", phc("m= 64,t=1,p=1", salt16, hash32), "memory"},
	{"MemoryTrailingSpace", phc("m=64 ,t=1,p=1", salt16, hash32), "memory"},
	{"MemoryHex", phc("m=0x40,t=1,p=1", salt16, hash32), "memory"},
	{"Memory11Digits", phc("m=10000000000,t=1,p=1", salt16, hash32), "memory"},
	{"MemoryAbove1GiB", phc("m=1048577,t=1,p=1", salt16, hash32), "memory"},
	{"MemoryWrapsUint32", phc("m=4294967360,t=1,p=1", salt16, hash32), "memory"},
	{"MemoryBelow8", phc("m=7,t=1,p=1", salt16, hash32), "memory"},
	{"MemoryBelow8PerThread", phc("m=127,t=1,p=16", salt16, hash32), "memory"},
	{"MemoryZero", phc("m=0,t=1,p=1", salt16, hash32), "memory"},
	{"TimeZero", phc("m=64,t=0,p=1", salt16, hash32), "time"},
	{"Time17", phc("m=64,t=17,p=1", salt16, hash32), "time"},
	{"TimeLeadingZero", phc("m=64,t=01,p=1", salt16, hash32), "time"},
	{"TimeHuge", phc("m=64,t=4294967297,p=1", salt16, hash32), "time"},
	{"ThreadsZero", phc("m=64,t=1,p=0", salt16, hash32), "threads"},
	{"Threads17", phc("m=256,t=1,p=17", salt16, hash32), "threads"},
	{"ThreadsWrapsUint8", phc("m=64,t=1,p=257", salt16, hash32), "threads"},
	{"ThreadsSign", phc("m=64,t=1,p=+1", salt16, hash32), "threads"},
	{"SaltEmpty", phc("m=64,t=1,p=1", "", hash32), "salt"},
	{"Salt7", phc("m=64,t=1,p=1", b64(seqBytes(7, 1)), hash32), "salt"},
	{"Salt65", phc("m=64,t=1,p=1", b64(seqBytes(65, 1)), hash32), "salt"},
	{"SaltPadded", phc("m=64,t=1,p=1", base64.StdEncoding.EncodeToString(seqBytes(16, 1)), hash32), "salt"},
	{"SaltPadChar", phc("m=64,t=1,p=1", salt16[:21]+"=", hash32), "salt"},
	{"SaltNonCanonical", phc("m=64,t=1,p=1", strings.Repeat("A", 21)+"B", hash32), "salt"},
	{"SaltNewline", phc("m=64,t=1,p=1", salt16[:10]+"\n"+salt16[10:], hash32), "salt"},
	{"SaltCR", phc("m=64,t=1,p=1", salt16[:10]+"\r"+salt16[10:], hash32), "salt"},
	{"SaltSpace", phc("m=64,t=1,p=1", salt16[:10]+" "+salt16[11:], hash32), "salt"},
	{"SaltURLAlphabet", phc("m=64,t=1,p=1", "-"+salt16[1:], hash32), "salt"},
	{"SaltLengthMod4Is1", phc("m=64,t=1,p=1", strings.Repeat("A", 21), hash32), "salt"},
	{"HashEmpty", phc("m=64,t=1,p=1", salt16, ""), "hash"},
	{"Hash15", phc("m=64,t=1,p=1", salt16, b64(seqBytes(15, 2))), "hash"},
	{"Hash129", phc("m=64,t=1,p=1", salt16, b64(seqBytes(129, 2))), "hash"},
	{"HashPadded", phc("m=64,t=1,p=1", salt16, base64.StdEncoding.EncodeToString(seqBytes(32, 2))), "hash"},
	{"HashNonCanonical", phc("m=64,t=1,p=1", salt16, strings.Repeat("A", 42)+"B"), "hash"},
	{"HashNewline", phc("m=64,t=1,p=1", salt16, hash32[:20]+"\n"+hash32[20:]), "hash"},
	{"HashTrailingNewline", phc("m=64,t=1,p=1", salt16, hash32) + "\n", "hash"},
	{"HashNUL", phc("m=64,t=1,p=1", salt16, hash32[:42]+"\x00"), "hash"},
	{"HashNonASCII", phc("m=64,t=1,p=1", salt16, "é"+hash32[2:]), "hash"},
	{"TooLong", phc("m=64,t=1,p=1", salt16, strings.Repeat("A", 513)), "format"},
	{"TooLongOtherwiseValid", phc("m=64,t=1,p=1", salt16, hash32) + strings.Repeat("$", 513), "format"},
}

func TestParsePHCValid(t *testing.T) {
	for _, tc := range validPHC {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePHC(tc.s)
			if err != nil {
				t.Fatalf("ParsePHC(%q): %v", tc.s, err)
			}
			if !reflect.DeepEqual(p, tc.want) {
				t.Errorf("ParsePHC = %#v, want %#v", p, tc.want)
			}
			if got := p.String(); got != tc.s {
				t.Errorf("String() = %q, want the input %q", got, tc.s)
			}
			if got := tc.want.String(); got != tc.s {
				t.Errorf("want.String() = %q, want %q", got, tc.s)
			}
			again, err := ParsePHC(p.String())
			if err != nil || !reflect.DeepEqual(again, p) {
				t.Errorf("ParsePHC(p.String()) = %#v, %v; want %#v", again, err, p)
			}
		})
	}
}

func TestParsePHCInvalid(t *testing.T) {
	for _, tc := range invalidPHC {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePHC(tc.s)
			var pe *PHCError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePHC(%q) = %v, %v; want a *PHCError", tc.s, p, err)
			}
			if !reflect.DeepEqual(p, PHC{}) {
				t.Errorf("ParsePHC returned %#v with an error, want the zero PHC", p)
			}
			if pe.Part != tc.part {
				t.Errorf("PHCError = %+v, want Part %q", pe, tc.part)
			}
			checkPHCErrorText(t, tc.s, err)
		})
	}
}

var phcParts = map[string]bool{
	"format": true, "algorithm": true, "version": true, "memory": true, "time": true,
	"threads": true, "salt": true, "hash": true, "bcrypt": true,
}

// checkPHCErrorText checks that err, the error for input s, has the
// documented form and does not repeat any run of 12 or more base64
// characters of s (a salt or hash); the fixed error texts contain no such
// run, so the check cannot be fooled by an input that happens to spell part
// of a message.
func checkPHCErrorText(t *testing.T, s string, err error) {
	t.Helper()
	var pe *PHCError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *PHCError", err)
	}
	msg := err.Error()
	if want := "auth: malformed password hash: " + pe.Part + ": " + pe.Reason; msg != want {
		t.Errorf("Error() = %q, want %q", msg, want)
	}
	if !phcParts[pe.Part] {
		t.Errorf("PHCError.Part %q is not a documented part", pe.Part)
	}
	for _, run := range strings.FieldsFunc(s, func(r rune) bool { return !isB64Char(r) }) {
		if len(run) >= 12 && strings.Contains(msg, run) {
			t.Errorf("Error() %q contains %q from the input", msg, run)
		}
	}
}

func isB64Char(r rune) bool {
	return 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '+' || r == '/'
}

func TestPHCStringRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    PHC
	}{
		{"Typical", PHC{"argon2id", 19, 19456, 2, 1, seqBytes(16, 9), seqBytes(32, 8)}},
		{"Bounds", PHC{"argon2id", 19, 1 << 20, 16, 16, seqBytes(64, 7), seqBytes(128, 6)}},
		{"Small", PHC{"argon2id", 19, 8, 1, 1, seqBytes(8, 5), seqBytes(16, 4)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.p.String()
			got, err := ParsePHC(s)
			if err != nil {
				t.Fatalf("ParsePHC(%q): %v", s, err)
			}
			if !reflect.DeepEqual(got, tc.p) {
				t.Errorf("ParsePHC(p.String()) = %#v, want %#v", got, tc.p)
			}
		})
	}
}

func FuzzParsePHC(f *testing.F) {
	for _, tc := range validPHC {
		f.Add(tc.s)
	}
	for _, tc := range invalidPHC {
		f.Add(tc.s)
	}
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePHC(s)
		if err != nil {
			if !reflect.DeepEqual(p, PHC{}) {
				t.Errorf("ParsePHC(%q) returned %#v with error %v", s, p, err)
			}
			checkPHCErrorText(t, s, err)
			return
		}
		switch {
		case len(s) > 512:
			t.Errorf("accepted %d bytes", len(s))
		case p.Alg != "argon2id" || p.Version != 19:
			t.Errorf("Alg, Version = %q, %d", p.Alg, p.Version)
		case p.Time < 1 || p.Time > 16:
			t.Errorf("Time = %d", p.Time)
		case p.Threads < 1 || p.Threads > 16:
			t.Errorf("Threads = %d", p.Threads)
		case p.Memory < 8*uint32(p.Threads) || p.Memory > 1<<20:
			t.Errorf("Memory = %d with %d threads", p.Memory, p.Threads)
		case len(p.Salt) < 8 || len(p.Salt) > 64:
			t.Errorf("salt of %d bytes", len(p.Salt))
		case len(p.Hash) < 16 || len(p.Hash) > 128:
			t.Errorf("hash of %d bytes", len(p.Hash))
		}
		if got := p.String(); got != s {
			t.Errorf("ParsePHC(%q).String() = %q, not the input", s, got)
		}
	})
}
