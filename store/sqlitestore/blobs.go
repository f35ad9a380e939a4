package sqlitestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Column encodings shared by several stores.

// blob32 scans a BLOB column of 32 bytes into an array.
type blob32 struct{ b *[32]byte }

// Scan implements sql.Scanner.
func (c blob32) Scan(src any) error {
	b, ok := src.([]byte)
	if !ok || len(b) != len(c.b) {
		return fmt.Errorf("sqlitestore: hash column holds %T of %d bytes, want 32 bytes", src, len(b))
	}
	copy(c.b[:], b)
	return nil
}

// flags32 reads a flags column, which holds a uint32 (a session's or an
// MFA transaction's): any other value was not written by this package.
func flags32(what string, v int64) (uint32, error) {
	if v < 0 || v > math.MaxUint32 {
		return 0, fmt.Errorf("sqlitestore: %s flags column holds %d, not a uint32", what, v)
	}
	return uint32(v), nil
}

// encodeStrings returns a list of strings as one BLOB: each string's
// length as a uvarint, then its bytes, so any bytes are kept as they are.
// It is never nil (the columns are NOT NULL).
func encodeStrings(entries []string) []byte {
	n := 0
	for _, e := range entries {
		n += binary.MaxVarintLen64 + len(e)
	}
	b := make([]byte, 0, n)
	for _, e := range entries {
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	return b
}

// errStrings reports a stored BLOB that encodeStrings did not write.
var errStrings = errors.New("sqlitestore: stored list of strings is malformed")

// decodeStrings reverses encodeStrings (nil for no entries). Anything
// encodeStrings cannot have written is errStrings.
func decodeStrings(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || k != max(1, (bits.Len64(n)+6)/7) || n > uint64(len(b)-k) {
			return nil, errStrings // short, overlong or past the end
		}
		out = append(out, string(b[k:k+int(n)]))
		b = b[k+int(n):]
	}
	return out, nil
}
