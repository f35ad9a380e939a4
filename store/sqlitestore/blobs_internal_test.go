package sqlitestore

import (
	"slices"
	"testing"
)

// The stored form of string lists (allow-list entries, policy changes)
// round-trips any list, and a BLOB that encodeStrings did not write is an
// error, never a panic or a list read past its end.
func FuzzStrings(f *testing.F) {
	f.Add([]byte{}, []byte("10.0.0.0/8"))
	f.Add([]byte{3, 'a', 'b', 'c', 0}, []byte{0xff, 0})
	f.Add([]byte{0x80}, []byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, []byte("x"))
	f.Fuzz(func(t *testing.T, stored, entry []byte) {
		if got, err := decodeStrings(stored); err == nil {
			if again := encodeStrings(got); !slices.Equal(again, stored) {
				t.Fatalf("decodeStrings(%x) = %q, which encodes to %x", stored, got, again)
			}
		}
		list := []string{string(entry), "", string(stored), string(entry)}
		got, err := decodeStrings(encodeStrings(list))
		if err != nil || !slices.Equal(got, list) {
			t.Fatalf("round trip of %q = %q, %v", list, got, err)
		}
	})
}
