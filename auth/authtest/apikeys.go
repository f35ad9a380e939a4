package authtest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

// mkKey returns a key of tenant with a hash derived from label.
func mkKey(tenant, id string) auth.APIKey {
	return auth.APIKey{
		ID:        id,
		Tenant:    tenant,
		Name:      "key " + id + " – CI déploiement",
		Prefix:    "gk_" + fmt.Sprintf("%-8.8s", id+"xxxxxxxx"),
		Hash:      sha256.Sum256([]byte("authtest-key:" + tenant + "\x00" + id)),
		CreatedBy: "user-" + id,
		CreatedAt: base.Add(time.Duration(len(id)) * time.Second),
	}
}

type keyChecker struct {
	t  *testing.T
	st auth.APIKeyStore
}

func (c *keyChecker) create(k auth.APIKey) {
	c.t.Helper()
	if err := c.st.CreateAPIKey(c.t.Context(), k, 0); err != nil {
		c.t.Fatalf("CreateAPIKey(%s/%s): %v", k.Tenant, k.ID, err)
	}
}

func (c *keyChecker) byHash(h [32]byte) (auth.APIKey, error) {
	return c.st.APIKeyByHash(c.t.Context(), h)
}

func (c *keyChecker) want(k auth.APIKey) {
	c.t.Helper()
	got, err := c.byHash(k.Hash)
	if err != nil {
		c.t.Fatalf("APIKeyByHash(%s/%s): %v", k.Tenant, k.ID, err)
	}
	if d := diffKey(got, k); d != "" {
		c.t.Errorf("APIKeyByHash(%s/%s): %s", k.Tenant, k.ID, d)
	}
}

func (c *keyChecker) list(tenant string) []auth.APIKey {
	c.t.Helper()
	ks, err := c.st.ListAPIKeys(c.t.Context(), tenant)
	if err != nil {
		c.t.Fatalf("ListAPIKeys(%s): %v", tenant, err)
	}
	return ks
}

func diffKey(got, want auth.APIKey) string {
	switch {
	case got.ID != want.ID || got.Tenant != want.Tenant || got.Name != want.Name || got.Prefix != want.Prefix ||
		got.Hash != want.Hash || got.CreatedBy != want.CreatedBy:
		return fmt.Sprintf("got %+v, want %+v", got, want)
	case !sameTime(got.CreatedAt, want.CreatedAt):
		return fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt)
	case !sameTime(got.ExpiresAt, want.ExpiresAt):
		return fmt.Sprintf("ExpiresAt %v, want %v", got.ExpiresAt, want.ExpiresAt)
	case !sameTime(got.LastUsedAt, want.LastUsedAt):
		return fmt.Sprintf("LastUsedAt %v, want %v", got.LastUsedAt, want.LastUsedAt)
	case !sameTime(got.RevokedAt, want.RevokedAt):
		return fmt.Sprintf("RevokedAt %v, want %v", got.RevokedAt, want.RevokedAt)
	}
	return ""
}

// sameTime reports whether a and b are the same instant, or both zero.
func sameTime(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() && b.IsZero()
	}
	return a.Equal(b)
}

var apiKeyTests = []test[*keyChecker]{
	{"CreateRoundTripEveryField", func(t *testing.T, c *keyChecker) {
		k := mkKey("acme", "k1")
		k.ExpiresAt = base.Add(90*day + 7*time.Microsecond)
		c.create(k)
		c.want(k)
		plain := mkKey("acme", "k2") // zero ExpiresAt, LastUsedAt, RevokedAt
		c.create(plain)
		c.want(plain)
	}},
	{"DuplicateIDInTenant", func(t *testing.T, c *keyChecker) {
		k := mkKey("acme", "k1")
		c.create(k)
		dup := mkKey("acme", "other")
		dup.ID = "k1"
		if err := c.st.CreateAPIKey(t.Context(), dup, 0); !errors.Is(err, auth.ErrDuplicateID) {
			t.Fatalf("CreateAPIKey with a used ID = %v, want ErrDuplicateID", err)
		}
		if _, err := c.byHash(dup.Hash); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("the refused key was stored: %v", err)
		}
		c.want(k)
	}},
	{"SameIDInAnotherTenant", func(t *testing.T, c *keyChecker) {
		a, b := mkKey("acme", "k1"), mkKey("globex", "k1")
		c.create(a)
		c.create(b)
		c.want(a)
		c.want(b)
	}},
	{"DuplicateHashAnyTenant", func(t *testing.T, c *keyChecker) {
		k := mkKey("acme", "k1")
		c.create(k)
		dup := mkKey("globex", "k2")
		dup.Hash = k.Hash
		if err := c.st.CreateAPIKey(t.Context(), dup, 0); !errors.Is(err, auth.ErrDuplicateID) {
			t.Fatalf("CreateAPIKey with a used hash = %v, want ErrDuplicateID", err)
		}
		if ks := c.list("globex"); len(ks) != 0 {
			t.Errorf("the refused key was stored: %+v", ks)
		}
		c.want(k)
	}},
	{"ByHashUnknown", func(t *testing.T, c *keyChecker) {
		c.create(mkKey("acme", "k1"))
		if k, err := c.byHash(sha256.Sum256([]byte("nope"))); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("APIKeyByHash(unknown) = %+v, %v; want ErrNotFound", k, err)
		}
	}},
	{"ByHashReturnsRevokedAndExpired", func(t *testing.T, c *keyChecker) {
		exp := mkKey("acme", "old")
		exp.ExpiresAt = base.Add(-day)
		c.create(exp)
		c.want(exp)
		rev := mkKey("acme", "rev")
		c.create(rev)
		if err := c.st.RevokeAPIKey(t.Context(), "acme", "rev", base); err != nil {
			t.Fatal(err)
		}
		rev.RevokedAt = base
		c.want(rev)
	}},
	{"ListOrderedAndScoped", func(t *testing.T, c *keyChecker) {
		ids := []string{"b", "a", "ccc", "dd", "e"} // CreatedAt grows with len(id), then ID
		for _, id := range ids {
			c.create(mkKey("acme", id))
		}
		c.create(mkKey("globex", "zz"))
		if err := c.st.RevokeAPIKey(t.Context(), "acme", "e", base); err != nil {
			t.Fatal(err)
		}
		got := c.list("acme")
		want := []string{"a", "b", "e", "dd", "ccc"}
		if len(got) != len(want) {
			t.Fatalf("ListAPIKeys = %d keys, want %d", len(got), len(want))
		}
		for i, k := range got {
			if k.ID != want[i] || k.Tenant != "acme" {
				t.Errorf("ListAPIKeys[%d] = %s/%s, want acme/%s", i, k.Tenant, k.ID, want[i])
			}
		}
		if len(c.list("nobody")) != 0 {
			t.Error("ListAPIKeys of an unknown tenant is not empty")
		}
	}},
	{"RevokeKeepsFirstTime", func(t *testing.T, c *keyChecker) {
		k := mkKey("acme", "k1")
		c.create(k)
		for _, at := range []time.Time{base.Add(time.Hour), base.Add(2 * time.Hour), base} {
			if err := c.st.RevokeAPIKey(t.Context(), "acme", "k1", at); err != nil {
				t.Fatal(err)
			}
		}
		k.RevokedAt = base.Add(time.Hour)
		c.want(k)
	}},
	{"RevokeNotFound", func(t *testing.T, c *keyChecker) {
		k := mkKey("acme", "k1")
		c.create(k)
		for _, tc := range [][2]string{{"acme", "nope"}, {"globex", "k1"}} {
			if err := c.st.RevokeAPIKey(t.Context(), tc[0], tc[1], base); !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("RevokeAPIKey(%s, %s) = %v, want ErrNotFound", tc[0], tc[1], err)
			}
		}
		c.want(k)
	}},
	{"TouchSetIfNewer", func(t *testing.T, c *keyChecker) {
		k := mkKey("acme", "k1")
		c.create(k)
		for _, at := range []time.Time{base.Add(time.Minute), base.Add(3 * time.Minute), base.Add(2 * time.Minute)} {
			if err := c.st.TouchAPIKey(t.Context(), "acme", "k1", at); err != nil {
				t.Fatal(err)
			}
		}
		k.LastUsedAt = base.Add(3 * time.Minute)
		c.want(k)
	}},
	{"TouchNotFound", func(t *testing.T, c *keyChecker) {
		c.create(mkKey("acme", "k1"))
		for _, tc := range [][2]string{{"acme", "nope"}, {"globex", "k1"}} {
			if err := c.st.TouchAPIKey(t.Context(), tc[0], tc[1], base); !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("TouchAPIKey(%s, %s) = %v, want ErrNotFound", tc[0], tc[1], err)
			}
		}
	}},
}

// keyBy returns mkKey(tenant, id) created by creator.
func keyBy(tenant, id, creator string) auth.APIKey {
	k := mkKey(tenant, id)
	k.CreatedBy = creator
	return k
}

// revokeByCreator calls RevokeByCreator and checks that it returned want,
// in order, every field as stored after the call, and that the store
// agrees.
func (c *keyChecker) revokeByCreator(tenant, userID string, at time.Time, want ...auth.APIKey) {
	c.t.Helper()
	got, err := c.st.RevokeByCreator(c.t.Context(), tenant, userID, at)
	if err != nil {
		c.t.Fatalf("RevokeByCreator(%s, %s): %v", tenant, userID, err)
	}
	if len(got) != len(want) {
		c.t.Fatalf("RevokeByCreator(%s, %s) returned %d keys %v, want %d", tenant, userID, len(got), keyIDs(got), len(want))
	}
	for i := range want {
		if d := diffKey(got[i], want[i]); d != "" {
			c.t.Errorf("RevokeByCreator(%s, %s)[%d]: %s", tenant, userID, i, d)
		}
		c.want(want[i])
	}
}

func keyIDs(ks []auth.APIKey) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.Tenant + "/" + k.ID
	}
	return out
}

var revokeByCreatorTests = []test[*keyChecker]{
	{"RevokesOnlyTheCreatorsKeysInTheTenant", func(t *testing.T, c *keyChecker) {
		mine := keyBy("acme", "k1", "alice")
		theirs := keyBy("acme", "k2", "bob")
		elsewhere := keyBy("globex", "k1", "alice") // the same user ID in another tenant
		for _, k := range []auth.APIKey{mine, theirs, elsewhere} {
			c.create(k)
		}
		at := base.Add(time.Hour)
		mine.RevokedAt = at
		c.revokeByCreator("acme", "alice", at, mine)
		c.want(theirs)
		c.want(elsewhere)
	}},
	{"ReturnsThemOrderedAsStored", func(t *testing.T, c *keyChecker) {
		// CreatedAt grows with len(id), then ID: a, b, dd, ccc.
		var keys []auth.APIKey
		for _, id := range []string{"b", "ccc", "a", "dd"} {
			k := keyBy("acme", id, "alice")
			if id == "dd" {
				k.ExpiresAt = base.Add(-day) // expired keys are revoked too
				k.LastUsedAt = base.Add(-2 * day)
			}
			c.create(k)
			keys = append(keys, k)
		}
		at := base.Add(time.Hour + 7*time.Microsecond)
		for i := range keys {
			keys[i].RevokedAt = at
		}
		b, ccc, a, dd := keys[0], keys[1], keys[2], keys[3]
		c.revokeByCreator("acme", "alice", at, a, b, dd, ccc)
	}},
	{"KeepsRevokedKeys", func(t *testing.T, c *keyChecker) {
		old, live := keyBy("acme", "old", "alice"), keyBy("acme", "live", "alice")
		c.create(old)
		c.create(live)
		if err := c.st.RevokeAPIKey(t.Context(), "acme", "old", base); err != nil {
			t.Fatal(err)
		}
		old.RevokedAt = base
		at := base.Add(time.Hour)
		live.RevokedAt = at
		c.revokeByCreator("acme", "alice", at, live)
		c.want(old)
	}},
	{"SecondCallRevokesNothing", func(t *testing.T, c *keyChecker) {
		k := keyBy("acme", "k1", "alice")
		c.create(k)
		k.RevokedAt = base.Add(time.Hour)
		c.revokeByCreator("acme", "alice", k.RevokedAt, k)
		c.revokeByCreator("acme", "alice", base.Add(2*time.Hour))
		c.want(k)
		// A key created since is revoked by the next call.
		next := keyBy("acme", "k2", "alice")
		c.create(next)
		next.RevokedAt = base.Add(3 * time.Hour)
		c.revokeByCreator("acme", "alice", next.RevokedAt, next)
		c.want(k)
	}},
	{"NoKeysNoError", func(t *testing.T, c *keyChecker) {
		k := keyBy("acme", "k1", "alice")
		c.create(k)
		c.revokeByCreator("acme", "nobody", base)
		c.revokeByCreator("nowhere", "alice", base)
		c.revokeByCreator("acme", "", base)
		c.want(k)
	}},
}

// createLive calls CreateAPIKey(k, maxLive) and checks that it returns
// want (nil or ErrTooManyAPIKeys), and that k is stored or not as it says.
func (c *keyChecker) createLive(k auth.APIKey, maxLive int, want error) {
	c.t.Helper()
	err := c.st.CreateAPIKey(c.t.Context(), k, maxLive)
	if !errors.Is(err, want) || (want == nil && err != nil) {
		c.t.Fatalf("CreateAPIKey(%s/%s, %d) = %v, want %v", k.Tenant, k.ID, maxLive, err, want)
	}
	if want == nil {
		c.want(k)
		return
	}
	if got, err := c.byHash(k.Hash); !errors.Is(err, auth.ErrNotFound) {
		c.t.Errorf("the key refused with %v was stored: %+v, %v", want, got, err)
	}
}

// liveKey returns mkKey(tenant, id) created at base.
func liveKey(tenant, id string) auth.APIKey {
	k := mkKey(tenant, id)
	k.CreatedAt = base
	return k
}

var createLimitTests = []test[*keyChecker]{
	{"RefusedAtTheBoundStoresNothing", func(t *testing.T, c *keyChecker) {
		for i := range 3 {
			c.createLive(liveKey("acme", fmt.Sprintf("k%d", i)), 3, nil)
		}
		c.createLive(liveKey("acme", "k3"), 3, auth.ErrTooManyAPIKeys)
		c.createLive(liveKey("acme", "k4"), 2, auth.ErrTooManyAPIKeys) // over the bound: refused too
		if ks := c.list("acme"); len(ks) != 3 {
			t.Errorf("%d keys listed after refused creations, want 3: %v", len(ks), keyIDs(ks))
		}
		c.createLive(liveKey("acme", "k3"), 4, nil) // a higher bound leaves room
	}},
	{"ZeroOrNegativeIsNoBound", func(t *testing.T, c *keyChecker) {
		for i := range 5 {
			c.createLive(liveKey("acme", fmt.Sprintf("z%d", i)), 0, nil)
			c.createLive(liveKey("acme", fmt.Sprintf("n%d", i)), -1, nil)
		}
	}},
	{"RevokedKeyFreesAPlace", func(t *testing.T, c *keyChecker) {
		for i := range 3 {
			c.createLive(liveKey("acme", fmt.Sprintf("k%d", i)), 3, nil)
		}
		if err := c.st.RevokeAPIKey(t.Context(), "acme", "k1", base); err != nil {
			t.Fatal(err)
		}
		c.createLive(liveKey("acme", "k3"), 3, nil)
		c.createLive(liveKey("acme", "k4"), 3, auth.ErrTooManyAPIKeys)
		// Keys of a creator revoked at once free their places too.
		if _, err := c.st.RevokeByCreator(t.Context(), "acme", "user-k0", base); err != nil {
			t.Fatal(err)
		}
		c.createLive(liveKey("acme", "k4"), 3, nil)
	}},
	{"ExpiredAtCreatedAtFreesAPlace", func(t *testing.T, c *keyChecker) {
		// A key is usable before its ExpiresAt: one expiring at the new
		// key's CreatedAt is not counted, one expiring a microsecond
		// later is. The suite's times are far in the future: a store
		// that judged expiry by its own clock would count both.
		at := base.Add(time.Hour)
		gone, live := liveKey("acme", "gone"), liveKey("acme", "live")
		gone.ExpiresAt, live.ExpiresAt = at, at.Add(time.Microsecond)
		c.createLive(gone, 0, nil)
		c.createLive(live, 0, nil)
		k := liveKey("acme", "new")
		k.CreatedAt = at
		c.createLive(k, 2, nil)
		next := liveKey("acme", "next")
		next.CreatedAt = at
		c.createLive(next, 2, auth.ErrTooManyAPIKeys)
		// Later, the other key has expired too.
		next.CreatedAt = at.Add(time.Microsecond)
		c.createLive(next, 2, nil)
	}},
	{"OtherTenantsUnaffected", func(t *testing.T, c *keyChecker) {
		for i := range 2 {
			c.createLive(liveKey("acme", fmt.Sprintf("k%d", i)), 2, nil)
		}
		c.createLive(liveKey("acme", "k2"), 2, auth.ErrTooManyAPIKeys)
		for i := range 2 {
			c.createLive(liveKey("globex", fmt.Sprintf("k%d", i)), 2, nil)
		}
		c.createLive(liveKey("globex", "k2"), 2, auth.ErrTooManyAPIKeys)
		if err := c.st.RevokeAPIKey(t.Context(), "globex", "k0", base); err != nil {
			t.Fatal(err)
		}
		c.createLive(liveKey("acme", "k2"), 2, auth.ErrTooManyAPIKeys)
		c.createLive(liveKey("globex", "k2"), 2, nil)
	}},
}

// purge calls PurgeAPIKeys and checks that it deleted want keys.
func (c *keyChecker) purge(tenant string, before time.Time, want int) {
	c.t.Helper()
	n, err := c.st.PurgeAPIKeys(c.t.Context(), tenant, before)
	if err != nil {
		c.t.Fatalf("PurgeAPIKeys(%s, %v): %v", tenant, before, err)
	}
	if n != want {
		c.t.Errorf("PurgeAPIKeys(%s, %v) = %d, want %d", tenant, before, n, want)
	}
}

// gone checks that k was purged: not found by hash, not listed.
func (c *keyChecker) gone(k auth.APIKey) {
	c.t.Helper()
	if got, err := c.byHash(k.Hash); !errors.Is(err, auth.ErrNotFound) {
		c.t.Errorf("APIKeyByHash(%s/%s) after its purge = %+v, %v; want ErrNotFound", k.Tenant, k.ID, got, err)
	}
	for _, l := range c.list(k.Tenant) {
		if l.ID == k.ID {
			c.t.Errorf("ListAPIKeys(%s) lists the purged key %s", k.Tenant, k.ID)
		}
	}
}

// revoked returns k created and then revoked at at.
func (c *keyChecker) revoked(k auth.APIKey, at time.Time) auth.APIKey {
	c.t.Helper()
	c.create(k)
	if err := c.st.RevokeAPIKey(c.t.Context(), k.Tenant, k.ID, at); err != nil {
		c.t.Fatalf("RevokeAPIKey(%s/%s): %v", k.Tenant, k.ID, err)
	}
	k.RevokedAt = at
	return k
}

// expiring returns mkKey(tenant, id) with ExpiresAt at.
func expiring(tenant, id string, at time.Time) auth.APIKey {
	k := mkKey(tenant, id)
	k.ExpiresAt = at
	return k
}

// purgeBefore is the before of the purge subtests, with digits down to
// the microsecond; keys revoked or expiring a microsecond either side of
// it tell < from <=.
var purgeBefore = base.Add(30*day + 7*time.Microsecond)

var purgeTests = []test[*keyChecker]{
	{"DeletesRevokedAndExpiredBefore", func(t *testing.T, c *keyChecker) {
		const us = time.Microsecond
		revOld := c.revoked(mkKey("acme", "rev-old"), purgeBefore.Add(-us))
		expOld := expiring("acme", "exp-old", purgeBefore.Add(-us))
		c.create(expOld)
		// Revoked long ago, expiring later: revoked before is enough.
		revExpLater := c.revoked(expiring("acme", "rev-exp-later", purgeBefore.Add(day)), base)
		// Expired long ago, revoked later: expired before is enough.
		expRevLater := c.revoked(expiring("acme", "exp-rev-later", base), purgeBefore.Add(day))
		purged := []auth.APIKey{revOld, expOld, revExpLater, expRevLater}

		revAt := c.revoked(mkKey("acme", "rev-at"), purgeBefore)
		expAt := expiring("acme", "exp-at", purgeBefore)
		revLater := c.revoked(mkKey("acme", "rev-later"), purgeBefore.Add(us))
		expLater := expiring("acme", "exp-later", purgeBefore.Add(us))
		live := mkKey("acme", "live")
		for _, k := range []auth.APIKey{expAt, expLater, live} {
			c.create(k)
		}
		elsewhere := c.revoked(mkKey("globex", "rev-old"), base)
		elsewhereExp := expiring("globex", "exp-old", base)
		c.create(elsewhereExp)
		kept := []auth.APIKey{revAt, expAt, revLater, expLater, live, elsewhere, elsewhereExp}

		c.purge("acme", purgeBefore, len(purged))
		for _, k := range purged {
			c.gone(k)
		}
		for _, k := range kept {
			c.want(k)
		}
		if ks := c.list("acme"); len(ks) != 5 {
			t.Errorf("ListAPIKeys(acme) after the purge = %v, want the 5 keys kept", keyIDs(ks))
		}
		if ks := c.list("globex"); len(ks) != 2 {
			t.Errorf("ListAPIKeys(globex) after a purge of acme = %v, want both keys", keyIDs(ks))
		}
	}},
	{"SecondCallPurgesNone", func(t *testing.T, c *keyChecker) {
		k := c.revoked(mkKey("acme", "k1"), base)
		c.create(expiring("acme", "k2", base))
		c.purge("acme", purgeBefore, 2)
		c.purge("acme", purgeBefore, 0)
		c.gone(k)
		// A key revoked since is purged by the next call.
		next := c.revoked(mkKey("acme", "k3"), base)
		c.purge("acme", purgeBefore, 1)
		c.gone(next)
	}},
	{"NoKeysNoError", func(t *testing.T, c *keyChecker) {
		live := mkKey("acme", "k1")
		c.create(live)
		c.purge("acme", purgeBefore, 0)
		c.purge("nowhere", purgeBefore, 0)
		c.purge("", purgeBefore, 0)
		c.want(live)
	}},
	{"NeitherFreesNorTakesAPlace", func(t *testing.T, c *keyChecker) {
		for i := range 3 {
			c.createLive(liveKey("acme", fmt.Sprintf("k%d", i)), 3, nil)
		}
		if err := c.st.RevokeAPIKey(t.Context(), "acme", "k2", base); err != nil {
			t.Fatal(err)
		}
		c.createLive(liveKey("acme", "k3"), 3, nil)
		old := liveKey("acme", "old")
		old.ExpiresAt = base
		c.createLive(old, 0, nil)
		c.purge("acme", base.Add(time.Second), 2) // k2 and old
		// Three live keys still: the purge freed no place.
		c.createLive(liveKey("acme", "k4"), 3, auth.ErrTooManyAPIKeys)
		// The purged keys take none either: a revocation frees one, as
		// before.
		if err := c.st.RevokeAPIKey(t.Context(), "acme", "k0", base); err != nil {
			t.Fatal(err)
		}
		c.createLive(liveKey("acme", "k4"), 3, nil)
		c.createLive(liveKey("acme", "k5"), 3, auth.ErrTooManyAPIKeys)
	}},
}

func runAPIKeys(t *testing.T, newStore func(t *testing.T) auth.APIKeyStore) {
	runGroups(t, []group[*keyChecker]{{"APIKey", apiKeyTests}, {"RevokeByCreator", revokeByCreatorTests},
		{"CreateLimit", createLimitTests}, {"Purge", purgeTests}}, func(t *testing.T) *keyChecker {
		return &keyChecker{t: t, st: newStore(t)}
	})
}

func runAPIKeysConcurrent(t *testing.T, newStore func(t *testing.T) auth.APIKeyStore) {
	t.Run("CreateSameIDOnce", func(t *testing.T) {
		st := newStore(t)
		var won atomic.Int32
		parallel(50, func(i int) {
			k := mkKey("acme", fmt.Sprintf("racer-%d", i))
			k.ID = "same"
			switch err := st.CreateAPIKey(t.Context(), k, 0); {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, auth.ErrDuplicateID):
				t.Errorf("CreateAPIKey: %v", err)
			}
		})
		if n := won.Load(); n != 1 {
			t.Errorf("%d concurrent creations of one ID succeeded, want 1", n)
		}
	})
	// Creations within a bound race: exactly the bound's worth succeed,
	// the others are refused with ErrTooManyAPIKeys and store nothing;
	// another tenant's creations at the same time have their own bound.
	t.Run("CreateWithinTheBound", func(t *testing.T) {
		st := newStore(t)
		const n, maxLive = 50, 10
		var won [2]atomic.Int32
		tenants := [2]string{"acme", "globex"}
		parallel(2*n, func(i int) {
			k := liveKey(tenants[i%2], fmt.Sprintf("racer-%d", i))
			switch err := st.CreateAPIKey(t.Context(), k, maxLive); {
			case err == nil:
				won[i%2].Add(1)
			case !errors.Is(err, auth.ErrTooManyAPIKeys):
				t.Errorf("CreateAPIKey: %v", err)
			}
		})
		for i, tenant := range tenants {
			ks, err := st.ListAPIKeys(t.Context(), tenant)
			if err != nil {
				t.Fatal(err)
			}
			if got := won[i].Load(); got != maxLive || len(ks) != maxLive {
				t.Errorf("%s: %d of %d concurrent creations with maxLive %d succeeded, %d keys stored; want %d",
					tenant, got, n, maxLive, len(ks), maxLive)
			}
		}
	})
	// Calls of RevokeByCreator race with each other, with creations of
	// the creator's keys and with revocations of single keys: each key is
	// revoked once, by the call that returned it (its RevokedAt is that
	// call's) or by RevokeAPIKey, and never returned twice.
	t.Run("RevokeByCreatorEachKeyOnce", func(t *testing.T) {
		st := newStore(t)
		const before, calls, created, single = 40, 20, 20, 10
		id := func(i int) string { return fmt.Sprintf("k%03d", i) }
		for i := range before {
			if err := st.CreateAPIKey(t.Context(), keyBy("acme", id(i), "alice"), 0); err != nil {
				t.Fatal(err)
			}
		}
		callAt := func(i int) time.Time { return base.Add(time.Duration(i+1) * time.Second) }
		singleAt := func(i int) time.Time { return base.Add(time.Hour + time.Duration(i)*time.Second) }
		returned := make([][]auth.APIKey, calls+1)
		parallel(calls+created+single, func(i int) {
			switch {
			case i < calls:
				ks, err := st.RevokeByCreator(t.Context(), "acme", "alice", callAt(i))
				if err != nil {
					t.Errorf("RevokeByCreator: %v", err)
				}
				returned[i] = ks
			case i < calls+created:
				if err := st.CreateAPIKey(t.Context(), keyBy("acme", id(before+i-calls), "alice"), 0); err != nil {
					t.Errorf("CreateAPIKey: %v", err)
				}
			default:
				j := i - calls - created
				if err := st.RevokeAPIKey(t.Context(), "acme", id(j*3), singleAt(j)); err != nil {
					t.Errorf("RevokeAPIKey: %v", err)
				}
			}
		})
		// A last call revokes what was created after every other one.
		last, err := st.RevokeByCreator(t.Context(), "acme", "alice", callAt(calls))
		if err != nil {
			t.Fatal(err)
		}
		returned[calls] = last
		by := map[string]time.Time{} // key ID → the time of the call that returned it
		for i, ks := range returned {
			for _, k := range ks {
				if _, dup := by[k.ID]; dup {
					t.Errorf("key %s returned by two calls", k.ID)
				}
				if !k.RevokedAt.Equal(callAt(i)) {
					t.Errorf("key %s returned with RevokedAt %v by the call at %v", k.ID, k.RevokedAt, callAt(i))
				}
				by[k.ID] = callAt(i)
			}
		}
		ks, err := st.ListAPIKeys(t.Context(), "acme")
		if err != nil {
			t.Fatal(err)
		}
		if len(ks) != before+created {
			t.Fatalf("%d keys stored, want %d", len(ks), before+created)
		}
		for _, k := range ks {
			at, ok := by[k.ID]
			switch {
			case k.RevokedAt.IsZero():
				t.Errorf("key %s not revoked", k.ID)
			case ok && !k.RevokedAt.Equal(at):
				t.Errorf("key %s returned by the call at %v but revoked at %v", k.ID, at, k.RevokedAt)
			case !ok && k.RevokedAt.Before(singleAt(0)):
				t.Errorf("key %s revoked at %v by a call that did not return it", k.ID, k.RevokedAt)
			}
		}
	})
	// Purges of one tenant race with each other and with revocations:
	// each key is deleted by exactly one of them, so the counts add up to
	// the keys purged, and the live keys stay.
	t.Run("PurgeEachKeyOnce", func(t *testing.T) {
		st := newStore(t)
		const dead, live, calls = 40, 10, 20
		for i := range dead + live {
			k := mkKey("acme", fmt.Sprintf("k%03d", i))
			if i < dead/2 {
				k.ExpiresAt = base
			}
			if err := st.CreateAPIKey(t.Context(), k, 0); err != nil {
				t.Fatal(err)
			}
		}
		var purged atomic.Int32
		parallel(calls+dead/2, func(i int) {
			if i >= calls { // the other half is revoked meanwhile
				id := fmt.Sprintf("k%03d", dead/2+i-calls)
				if err := st.RevokeAPIKey(t.Context(), "acme", id, base); err != nil {
					t.Errorf("RevokeAPIKey: %v", err)
				}
				return
			}
			n, err := st.PurgeAPIKeys(t.Context(), "acme", purgeBefore)
			if err != nil {
				t.Errorf("PurgeAPIKeys: %v", err)
			}
			purged.Add(int32(n))
		})
		n, err := st.PurgeAPIKeys(t.Context(), "acme", purgeBefore) // what was revoked after every call
		if err != nil {
			t.Fatal(err)
		}
		if got := int(purged.Load()) + n; got != dead {
			t.Errorf("concurrent purges deleted %d keys in all, want %d", got, dead)
		}
		ks, err := st.ListAPIKeys(t.Context(), "acme")
		if err != nil {
			t.Fatal(err)
		}
		if len(ks) != live {
			t.Errorf("%d keys left after the purges, want the %d live ones: %v", len(ks), live, keyIDs(ks))
		}
	})
	t.Run("RevokeRacesTouch", func(t *testing.T) {
		st := newStore(t)
		k := mkKey("acme", "k1")
		if err := st.CreateAPIKey(t.Context(), k, 0); err != nil {
			t.Fatal(err)
		}
		parallel(40, func(i int) {
			at := base.Add(time.Duration(i) * time.Second)
			var err error
			if i%2 == 0 {
				err = st.RevokeAPIKey(t.Context(), "acme", "k1", at)
			} else {
				err = st.TouchAPIKey(t.Context(), "acme", "k1", at)
			}
			if err != nil {
				t.Error(err)
			}
		})
		got, err := st.APIKeyByHash(t.Context(), k.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if got.RevokedAt.IsZero() || got.UsableAt(base.Add(time.Hour)) {
			t.Error("the key is usable after concurrent revocations")
		}
		if want := base.Add(39 * time.Second); !got.LastUsedAt.Equal(want) {
			t.Errorf("LastUsedAt = %v after concurrent touches, want the latest %v", got.LastUsedAt, want)
		}
	})
}
