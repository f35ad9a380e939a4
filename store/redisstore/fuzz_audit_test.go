package redisstore

import (
	"errors"
	"strings"
	"testing"
)

// FUZZ-1: a user's session index holding a member that is longer than a
// hex hash (data this package did not write: another application on the
// prefix, a manual change) makes decodeSessions panic in hex.Decode
// instead of failing closed with ErrCorrupt, as the package documents.
// List and Create (the evicted sessions) go through it, so every login of
// that user panics.
func TestAuditFuzz_FUZZ1_LongSessionMemberPanics(t *testing.T) {
	member := strings.Repeat("0", 66) // 33 bytes of hex; a hash is 32
	row := []any{"acme", "u1", "1", "1", "2", "3", "192.0.2.1", "UA", "0", member}
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("decodeSessions panicked on a %d-character index member: %v; want an error wrapping ErrCorrupt", len(member), r)
			}
		}()
		_, err = decodeSessions([]any{row})
	}()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("decodeSessions = %v, want an error wrapping ErrCorrupt", err)
	}
}
