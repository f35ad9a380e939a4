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
	if err := c.st.CreateAPIKey(c.t.Context(), k); err != nil {
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
		if err := c.st.CreateAPIKey(t.Context(), dup); !errors.Is(err, auth.ErrDuplicateID) {
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
		if err := c.st.CreateAPIKey(t.Context(), dup); !errors.Is(err, auth.ErrDuplicateID) {
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

func runAPIKeys(t *testing.T, newStore func(t *testing.T) auth.APIKeyStore) {
	runGroups(t, []group[*keyChecker]{{"APIKey", apiKeyTests}}, func(t *testing.T) *keyChecker {
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
			switch err := st.CreateAPIKey(t.Context(), k); {
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
	t.Run("RevokeRacesTouch", func(t *testing.T) {
		st := newStore(t)
		k := mkKey("acme", "k1")
		if err := st.CreateAPIKey(t.Context(), k); err != nil {
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
