package redisstore

import (
	"encoding/hex"
	"strconv"

	"github.com/guardhq/guard/session"
)

// member is the name of session h in a user index and in its key: the hash
// in lower-case hex, so that Redis's byte order of members (which breaks
// ties between equal CreatedAt scores) is the byte order of the hashes.
func member(h session.Hash) string { return hex.EncodeToString(h[:]) }

// sessionKey is the key of session h.
func (s *Store) sessionKey(h session.Hash) string {
	var b [2 + 2*len(h)]byte
	b[0], b[1] = 's', ':'
	hex.Encode(b[2:], h[:])
	return s.prefix + string(b[:])
}

// tombKey is the key of the tombstone of evicted session h: sessionKey
// with "se:" for "s:", which lookupTouchScript builds from a session key.
func (s *Store) tombKey(h session.Hash) string {
	var b [3 + 2*len(h)]byte
	b[0], b[1], b[2] = 's', 'e', ':'
	hex.Encode(b[3:], h[:])
	return s.prefix + string(b[:])
}

// tombIndexKey is the key of the sorted set of a user's tombstones, named
// like indexKey.
func (s *Store) tombIndexKey(tenant, userID string) string {
	return s.prefix + "ue:" + strconv.Itoa(len(tenant)) + ":" + tenant + ":" + userID
}

// indexKey is the key of the sorted set of a user's sessions. The tenant
// is written with its length first, so that no two (tenant, user) pairs
// share a key: ("a:b", "c") is "u:3:a:b:c" and ("a", "b:c") is
// "u:1:a:b:c". The Lua function ukey builds the same name.
func (s *Store) indexKey(tenant, userID string) string {
	return s.prefix + "u:" + strconv.Itoa(len(tenant)) + ":" + tenant + ":" + userID
}

// throttleKey is the key of the throttle record of key.
func (s *Store) throttleKey(key string) string { return s.prefix + "t:" + key }
