package sqlitestore

import (
	"slices"
	"testing"
)

// The stored form of allow-list entries round-trips any list, and a BLOB
// that encodeEntries did not write is an error, never a panic or a list
// read past its end.
func FuzzEntries(f *testing.F) {
	f.Add([]byte{}, []byte("10.0.0.0/8"))
	f.Add([]byte{3, 'a', 'b', 'c', 0}, []byte{0xff, 0})
	f.Add([]byte{0x80}, []byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, []byte("x"))
	f.Fuzz(func(t *testing.T, stored, entry []byte) {
		if got, err := decodeEntries(stored); err == nil {
			if again := encodeEntries(got); !slices.Equal(again, stored) {
				t.Fatalf("decodeEntries(%x) = %q, which encodes to %x", stored, got, again)
			}
		}
		list := []string{string(entry), "", string(stored), string(entry)}
		got, err := decodeEntries(encodeEntries(list))
		if err != nil || !slices.Equal(got, list) {
			t.Fatalf("round trip of %q = %q, %v", list, got, err)
		}
	})
}
