package redisstore_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/sso/ssotest"
	"github.com/guardhq/guard/store/memstore"
	"github.com/guardhq/guard/store/redisstore"
)

func newSSO(t *testing.T) sso.Stores {
	s, _, _ := open(t)
	return s.SSOStores()
}

func TestSSO(t *testing.T) { ssotest.Run(t, newSSO) }

func TestSSOConcurrent(t *testing.T) { ssotest.RunConcurrent(t, newSSO) }

// newSSOHashTag is newSSO with a prefix holding a hash tag, as Redis
// Cluster needs.
func newSSOHashTag(t *testing.T) sso.Stores {
	c := newClient(t)
	s, err := redisstore.New(t.Context(), c, redisstore.Options{Prefix: cleanPrefix(t, c, "{guardtest:"+randomHex()+"}:")})
	if err != nil {
		t.Fatal(err)
	}
	return s.SSOStores()
}

// TestSSOHashTagPrefix runs the suites with a prefix holding a hash tag:
// the subject scripts read and write keys named by data (a user's previous
// NameID, the users of a NameID), which the tag keeps in one slot.
func TestSSOHashTagPrefix(t *testing.T) {
	ssotest.Run(t, newSSOHashTag)
	ssotest.RunConcurrent(t, newSSOHashTag)
}

// TestSSOStores checks that SSOStores fills the three short-lived roles
// with the store and leaves connections (tenant data) to another backend.
func TestSSOStores(t *testing.T) {
	s, _, _ := open(t)
	st := s.SSOStores()
	if st.Requests != s || st.Replay != s || st.Subjects != s {
		t.Errorf("SSOStores = %+v; want Requests, Replay and Subjects to be the store", st)
	}
	if st.Connections != nil {
		t.Errorf("SSOStores().Connections = %v; want nil", st.Connections)
	}
	// Stores sets the same three roles and keeps the base's connections.
	base := memstore.New().Stores()
	got := s.Stores(base).SSO
	if got.Requests != s || got.Replay != s || got.Subjects != s || got.Connections != base.SSO.Connections {
		t.Errorf("Stores(base).SSO = %+v; want Requests, Replay and Subjects to be the store, Connections the base's", got)
	}
}

// testIdP is the IdP of ssoSubject's subjects.
const testIdP = "https://idp.example/metadata"

func ssoSubject(tenant, user, nameID string, expires time.Time) sso.Subject {
	return sso.Subject{
		Tenant: tenant, UserID: user, IdP: testIdP, NameID: nameID,
		NameIDFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress", SessionIndex: "_s-" + user,
		Expires: expires,
	}
}

// TestSSOSubjectKeys checks the key layout of subjects and their NameID
// indexes, and that both expire when their data stops mattering: a
// subject at its Expires, an index with the last of its users; a user
// moved to another NameID leaves its old index, and users expired at the
// now of a PutSubject are dropped from the indexes it changes.
func TestSSOSubjectKeys(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	expireTime := func(key string) time.Duration { t.Helper(); return keyExpiry(t, c, key) }
	at := expiryAt
	members := func(key string) []string {
		t.Helper()
		m, err := c.ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	put := func(s sso.Subject, now time.Time) {
		t.Helper()
		if err := st.PutSubject(ctx, s, now); err != nil {
			t.Fatal(err)
		}
	}

	// Tenant "a:b" with user "c" and tenant "a" with user "b:c" have
	// different keys, and so do their NameIDs.
	s1 := ssoSubject("a:b", "c", "n", base.Add(time.Hour+time.Microsecond))
	s2 := ssoSubject("a", "b:c", "n", base.Add(2*time.Hour))
	put(s1, base)
	put(s2, base)
	if got, want := expireTime(prefix+"su:3:a:b:c"), at(s1.Expires); got != want {
		t.Errorf("subject expires at %v, want %v (Expires)", got, want)
	}
	if got, want := expireTime(prefix+"su:1:a:b:c"), at(s2.Expires); got != want {
		t.Errorf("subject expires at %v, want %v (Expires)", got, want)
	}
	if got := members(prefix + "sn:3:a:b:n"); len(got) != 1 || got[0] != "c" {
		t.Errorf("index of (a:b, n) = %q, want [c]", got)
	}
	if got := members(prefix + "sn:1:a:n"); len(got) != 1 || got[0] != "b:c" {
		t.Errorf("index of (a, n) = %q, want [b:c]", got)
	}

	// An index expires with the last of its users, whichever was put last.
	u1 := ssoSubject("t", "u1", "shared", base.Add(3*time.Hour))
	u2 := ssoSubject("t", "u2", "shared", base.Add(time.Hour))
	put(u1, base)
	put(u2, base)
	idx := prefix + "sn:1:t:shared"
	if got, want := expireTime(idx), at(u1.Expires); got != want {
		t.Errorf("index expires at %v, want %v (its last user's Expires)", got, want)
	}

	// u1 moves to another NameID: it leaves the index, which then expires
	// with u2.
	put(ssoSubject("t", "u1", "other", base.Add(4*time.Hour)), base)
	if got := members(idx); len(got) != 1 || got[0] != "u2" {
		t.Errorf("index after u1 moved = %q, want [u2]", got)
	}
	if got, want := expireTime(idx), at(u2.Expires); got != want {
		t.Errorf("index expires at %v after u1 moved, want %v (u2's Expires)", got, want)
	}
	// A put at a now after u2's Expires drops u2 from the index it adds to.
	put(ssoSubject("t", "u3", "shared", base.Add(5*time.Hour)), u2.Expires)
	if got := members(idx); len(got) != 1 || got[0] != "u3" {
		t.Errorf("index after a put at u2's Expires = %q, want [u3]", got)
	}
	// The last user leaving an index removes it.
	put(ssoSubject("t", "u3", "third", base.Add(5*time.Hour)), base)
	if n, err := c.Exists(ctx, idx).Result(); err != nil || n != 0 {
		t.Errorf("EXISTS of an index whose users all left = %d, %v; want 0", n, err)
	}
}

// TestSSOSubjectsGoneFromRedis checks SubjectsByNameID when Redis has
// dropped a subject (at its Expires by the Redis clock, here by DEL) that
// an index still lists: the user is not returned, and once it signs in
// with another NameID it is found under that one alone.
func TestSSOSubjectsGoneFromRedis(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	u1 := ssoSubject("t", "u1", "n1", base.Add(time.Hour))
	u2 := ssoSubject("t", "u2", "n1", base.Add(time.Hour))
	for _, s := range []sso.Subject{u1, u2} {
		if err := st.PutSubject(ctx, s, base); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Del(ctx, prefix+"su:1:t:u1").Err(); err != nil {
		t.Fatal(err)
	}
	check := func(nameID string, want ...string) {
		t.Helper()
		got, err := st.SubjectsByNameID(ctx, "t", testIdP, nameID, base)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range got {
			ids = append(ids, s.UserID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Errorf("SubjectsByNameID(%s) = %q, want %q", nameID, ids, want)
		}
	}
	check("n1", "u2")
	if _, err := st.Subject(ctx, "t", "u1", base); !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("Subject of a dropped subject = %v, want ErrNotFound", err)
	}
	// The index of n1 still lists u1 (its previous NameID was gone with
	// its subject), yet u1 is found under n2 only.
	if err := st.PutSubject(ctx, ssoSubject("t", "u1", "n2", base.Add(2*time.Hour)), base); err != nil {
		t.Fatal(err)
	}
	check("n1", "u2")
	check("n2", "u1")
}

func ssoReq(tenant, id string, expires time.Time) sso.Request {
	return sso.Request{
		Tenant: tenant, ID: id, Kind: sso.KindLogin, RelayState: "relay-" + id, ReturnTo: "/home",
		Binding: strings.Repeat("ab", 32), CreatedAt: expires.Add(-10 * time.Minute), Expires: expires,
	}
}

// TestSSOKeys checks the key layout of the package documentation and that
// both kinds of SSO key expire when their data stops mattering (PTTL > 0,
// at the exact millisecond), so that Redis memory stays bounded.
func TestSSOKeys(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	expireTime := func(key string) time.Duration {
		t.Helper()
		if d, err := c.PTTL(ctx, key).Result(); err != nil || d <= 0 {
			t.Errorf("PTTL %s = %v, %v; want > 0", key, d, err)
		}
		d, err := c.PExpireTime(ctx, key).Result()
		if err != nil {
			t.Fatalf("PEXPIRETIME %s: %v", key, err)
		}
		return d
	}
	at := func(t time.Time) time.Duration { return time.Duration(t.UnixMilli()+1) * time.Millisecond }

	// Requests: at Expires; tenant "a:b" with ID "c" and tenant "a" with
	// ID "b:c" have different keys; consuming removes the key, and so
	// does consuming an expired request.
	r1 := ssoReq("a:b", "c", base.Add(10*time.Minute+time.Microsecond))
	r2 := ssoReq("a", "b:c", base.Add(20*time.Minute))
	k1, k2 := prefix+"sr:3:a:b:c", prefix+"sr:1:a:b:c"
	for _, r := range []sso.Request{r1, r2} {
		if err := st.RememberRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := expireTime(k1), at(r1.Expires); got != want {
		t.Errorf("request expires at %v, want %v (Expires)", got, want)
	}
	if got, want := expireTime(k2), at(r2.Expires); got != want {
		t.Errorf("request expires at %v, want %v (Expires)", got, want)
	}
	// A refused duplicate keeps the expiry.
	dup := r1
	dup.Expires = base.Add(time.Hour)
	if err := st.RememberRequest(ctx, dup); !errors.Is(err, sso.ErrDuplicate) {
		t.Fatalf("duplicate RememberRequest = %v", err)
	}
	if got, want := expireTime(k1), at(r1.Expires); got != want {
		t.Errorf("after a duplicate the request expires at %v, want %v", got, want)
	}
	if got, err := st.ConsumeRequest(ctx, "a:b", "c", base); err != nil || got.ReturnTo != r1.ReturnTo {
		t.Errorf("ConsumeRequest(a:b, c) = %+v, %v; want the request remembered", got, err)
	}
	if _, err := st.ConsumeRequest(ctx, "a", "b:c", r2.Expires); !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("ConsumeRequest of an expired request = %v, want ErrNotFound", err)
	}
	if got := keysOf(t, c, prefix+"sr:*"); len(got) != 0 {
		t.Errorf("request keys left after consuming (one expired): %q", got)
	}

	// Replay records: ReplayGrace after until; a repeated insert keeps it,
	// replacing an expired record moves it.
	until := base.Add(5*time.Minute + 3*time.Microsecond)
	ak := prefix + "sa:3:a:b:c"
	for _, tc := range []struct {
		tenant, id string
		want       bool
	}{{"a:b", "c", true}, {"a", "b:c", true}, {"a:b", "c", false}} {
		if isNew, err := st.InsertID(ctx, tc.tenant, tc.id, until, base); err != nil || isNew != tc.want {
			t.Fatalf("InsertID(%s, %s) = %v, %v; want %v", tc.tenant, tc.id, isNew, err, tc.want)
		}
	}
	if n, err := c.Exists(ctx, ak, prefix+"sa:1:a:b:c").Result(); err != nil || n != 2 {
		t.Errorf("EXISTS of the two replay keys = %d, %v; want 2", n, err)
	}
	if got, want := expireTime(ak), at(until.Add(redisstore.ReplayGrace)); got != want {
		t.Errorf("replay record expires at %v, want %v (until and the grace)", got, want)
	}
	if isNew, err := st.InsertID(ctx, "a:b", "c", until.Add(time.Hour), base.Add(time.Minute)); err != nil || isNew {
		t.Fatalf("repeated InsertID = %v, %v", isNew, err)
	}
	if got, want := expireTime(ak), at(until.Add(redisstore.ReplayGrace)); got != want {
		t.Errorf("after a repeated insert the replay record expires at %v, want %v (unchanged)", got, want)
	}
	until2 := until.Add(time.Hour)
	if isNew, err := st.InsertID(ctx, "a:b", "c", until2, until); err != nil || !isNew {
		t.Fatalf("InsertID at until = %v, %v; want new", isNew, err)
	}
	if got, want := expireTime(ak), at(until2.Add(redisstore.ReplayGrace)); got != want {
		t.Errorf("a replaced replay record expires at %v, want %v (the new until and the grace)", got, want)
	}
}

// TestSSOExpiry checks both clocks of the replay cache and of requests:
// a record past its until by the time passed counts as absent whatever
// Redis holds, and Redis drops the keys by itself at real times.
func TestSSOExpiry(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()

	// By the time passed: the key is still in Redis (until is in 2099),
	// yet the record is absent at until and after.
	until := base.Add(5 * time.Minute)
	if isNew, err := st.InsertID(ctx, "t", "id-old", until, base); err != nil || !isNew {
		t.Fatalf("InsertID = %v, %v", isNew, err)
	}
	if isNew, err := st.InsertID(ctx, "t", "id-old", until, until.Add(-time.Microsecond)); err != nil || isNew {
		t.Errorf("InsertID a microsecond before until = %v, %v; want not new", isNew, err)
	}
	if n, err := c.Exists(ctx, prefix+"sa:1:t:id-old").Result(); err != nil || n != 1 {
		t.Fatalf("EXISTS of the replay key = %d, %v; want 1", n, err)
	}
	if isNew, err := st.InsertID(ctx, "t", "id-old", until.Add(time.Minute), until.Add(time.Microsecond)); err != nil || !isNew {
		t.Errorf("InsertID past until (key still in Redis) = %v, %v; want new", isNew, err)
	}

	// By the Redis clock, at real times: a request expiring in 50 ms goes
	// by itself, the long ones stay, and so does a replay record ending in
	// 50 ms, for ReplayGrace more (a host whose clock is behind Redis's
	// still finds it).
	now := time.Now().UTC()
	if _, err := st.InsertID(ctx, "t", "id-short", now.Add(50*time.Millisecond), now); err != nil {
		t.Fatal(err)
	}
	if _, err := st.InsertID(ctx, "t", "id-long", now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	short := ssoReq("t", "id-short", now.Add(50*time.Millisecond))
	long := ssoReq("t", "id-long", now.Add(time.Hour))
	for _, r := range []sso.Request{short, long} {
		if err := st.RememberRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n, err := c.Exists(ctx, prefix+"sr:1:t:id-short").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS of the short request after its expiry = %d, %v; want 0 (expired by Redis)", n, err)
	}
	for _, k := range []string{prefix + "sa:1:t:id-short", prefix + "sa:1:t:id-long", prefix + "sr:1:t:id-long", prefix + "sa:1:t:id-old"} {
		if n, err := c.Exists(ctx, k).Result(); err != nil || n != 1 {
			t.Errorf("EXISTS %s = %d, %v; want 1", k, n, err)
		}
	}
	// The record past its until (judged by the caller's now) is absent
	// though Redis keeps it, the live one is not.
	if isNew, err := st.InsertID(ctx, "t", "id-short", now.Add(time.Hour), time.Now()); err != nil || !isNew {
		t.Errorf("InsertID of an ID past its until = %v, %v; want new", isNew, err)
	}
	if isNew, err := st.InsertID(ctx, "t", "id-long", now.Add(time.Hour), time.Now()); err != nil || isNew {
		t.Errorf("InsertID of a live ID = %v, %v; want not new", isNew, err)
	}
	if _, err := st.ConsumeRequest(ctx, "t", "id-short", now); !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("ConsumeRequest of a request expired by Redis = %v, want ErrNotFound", err)
	}
	if got, err := st.ConsumeRequest(ctx, "t", "id-long", time.Now()); err != nil || got.ID != "id-long" {
		t.Errorf("ConsumeRequest of the live request = %+v, %v", got, err)
	}
}

// TestSSOAcrossClients checks the once-only rules from two clients of the
// same prefix, as two replicas would run them.
func TestSSOAcrossClients(t *testing.T) {
	const n = 50
	twoStores := func(t *testing.T) [2]*redisstore.Store {
		s1, _, prefix := open(t)
		s2, err := redisstore.New(t.Context(), newClient(t), redisstore.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return [2]*redisstore.Store{s1, s2}
	}
	t.Run("InsertIDOnce", func(t *testing.T) {
		st := twoStores(t)
		for round := range 3 {
			id := fmt.Sprint("_assertion-", round)
			var mu sync.Mutex
			var fresh, seen int
			parallel(n, func(i int) {
				isNew, err := st[i%2].InsertID(t.Context(), "t", id, base.Add(5*time.Minute), base.Add(time.Duration(i)*time.Microsecond))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("InsertID %d: %v", i, err)
				case isNew:
					fresh++
				default:
					seen++
				}
			})
			if fresh != 1 || seen != n-1 {
				t.Errorf("round %d: %d of %d concurrent inserts from two clients were new and %d not, want 1 and %d", round, fresh, n, seen, n-1)
			}
		}
	})
	t.Run("InsertExpiredIDOnce", func(t *testing.T) {
		st := twoStores(t)
		if _, err := st[0].InsertID(t.Context(), "t", "_a", base, base.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		fresh := 0
		parallel(n, func(i int) {
			isNew, err := st[i%2].InsertID(t.Context(), "t", "_a", base.Add(5*time.Minute), base)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("InsertID %d: %v", i, err)
			} else if isNew {
				fresh++
			}
		})
		if fresh != 1 {
			t.Errorf("%d of %d concurrent inserts replacing an expired record were new, want 1", fresh, n)
		}
	})
	t.Run("ConsumeRequestOnce", func(t *testing.T) {
		st := twoStores(t)
		for round := range 3 {
			r := ssoReq("t", fmt.Sprint("id-r", round), base.Add(10*time.Minute))
			if err := st[1].RememberRequest(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var ok, missing int
			parallel(n, func(i int) {
				got, err := st[i%2].ConsumeRequest(t.Context(), r.Tenant, r.ID, base)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
					if got.RelayState != r.RelayState || got.Binding != r.Binding || !got.Expires.Equal(r.Expires) {
						t.Errorf("ConsumeRequest %d returned %+v, want the request remembered", i, got)
					}
				case errors.Is(err, sso.ErrNotFound):
					missing++
				default:
					t.Errorf("ConsumeRequest %d: %v", i, err)
				}
			})
			if ok != 1 || missing != n-1 {
				t.Errorf("round %d: %d of %d concurrent consumptions from two clients succeeded and %d found nothing, want 1 and %d", round, ok, n, missing, n-1)
			}
		}
	})
	t.Run("RememberRequestOnce", func(t *testing.T) {
		st := twoStores(t)
		var mu sync.Mutex
		var won []string
		parallel(n, func(i int) {
			r := ssoReq("t", "id-same", base.Add(10*time.Minute))
			r.ReturnTo = fmt.Sprint("/", i)
			err := st[i%2].RememberRequest(t.Context(), r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, r.ReturnTo)
			case !errors.Is(err, sso.ErrDuplicate):
				t.Errorf("RememberRequest %d: %v", i, err)
			}
		})
		if len(won) != 1 {
			t.Fatalf("%d of %d concurrent remembers from two clients succeeded, want exactly 1", len(won), n)
		}
		if got, err := st[0].ConsumeRequest(t.Context(), "t", "id-same", base); err != nil || got.ReturnTo != won[0] {
			t.Errorf("ConsumeRequest = %q, %v; want the winner's %q", got.ReturnTo, err, won[0])
		}
	})
}

// TestSSORedisDown checks that every SSO method returns an error when
// Redis cannot be reached, and never a sentinel or a result that means an
// answer: an assertion is never "new" and a request never found.
func TestSSORedisDown(t *testing.T) {
	st, err := redisstore.New(t.Context(), deadClient(t), redisstore.Options{SkipEvictionCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	check := func(what string, err error, result any) {
		t.Helper()
		switch {
		case err == nil:
			t.Errorf("%s with Redis down: no error, result %+v", what, result)
		case errors.Is(err, sso.ErrNotFound), errors.Is(err, sso.ErrDuplicate), errors.Is(err, sso.ErrFull):
			t.Errorf("%s with Redis down: %v; a failure must not look like an answer", what, err)
		case !strings.HasPrefix(err.Error(), "redisstore: "):
			t.Errorf("%s with Redis down: %q, want it prefixed redisstore:", what, err)
		case !errors.Is(err, syscall.ECONNREFUSED):
			t.Errorf("%s with Redis down: %v, want it to wrap the connection error", what, err)
		}
	}
	check("RememberRequest", st.RememberRequest(ctx, ssoReq("t", "id", base)), nil)
	r, err := st.ConsumeRequest(ctx, "t", "id", base)
	check("ConsumeRequest", err, r)
	isNew, err := st.InsertID(ctx, "t", "id", base.Add(time.Minute), base)
	check("InsertID", err, isNew)
	if isNew {
		t.Error("InsertID with Redis down reported a new ID")
	}
	check("PutSubject", st.PutSubject(ctx, ssoSubject("t", "u", "n", base.Add(time.Hour)), base), nil)
	sub, err := st.Subject(ctx, "t", "u", base)
	check("Subject", err, sub)
	subs, err := st.SubjectsByNameID(ctx, "t", testIdP, "n", base)
	check("SubjectsByNameID", err, subs)
}

// TestSSOForeignData checks that SSO keys holding something this package
// did not write give errors, never a request, "not found" or a new ID, and
// that nothing is consumed or overwritten.
func TestSSOForeignData(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	notAnswer := func(what string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, sso.ErrNotFound) || errors.Is(err, sso.ErrDuplicate) {
			t.Errorf("%s of foreign data = %v; want a failure", what, err)
		}
	}
	unchanged := func(key, want string) {
		t.Helper()
		if v, err := c.Get(ctx, key).Result(); err != nil || v != want {
			t.Errorf("%s holds %q, %v; want it unchanged (%q)", key, v, err, want)
		}
	}

	// Keys of the wrong type.
	if err := c.Set(ctx, prefix+"sr:1:t:s", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, prefix+"sa:1:t:h", "e", "1").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := st.ConsumeRequest(ctx, "t", "s", base)
	notAnswer("ConsumeRequest", err)
	// RememberRequest over a foreign key fails (ErrDuplicate: the key is
	// taken) and changes nothing.
	if err := st.RememberRequest(ctx, ssoReq("t", "s", base.Add(time.Minute))); err == nil {
		t.Error("RememberRequest over a foreign key succeeded")
	}
	unchanged(prefix+"sr:1:t:s", "not a hash")
	_, err = st.InsertID(ctx, "t", "h", base.Add(time.Minute), base)
	notAnswer("InsertID", err)

	// Replay records that are not a time: ErrCorrupt, and kept.
	for _, v := range []string{"soon", "", "1e3", "-5", " 12"} {
		k := prefix + "sa:1:t:v"
		if err := c.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if isNew, err := st.InsertID(ctx, "t", "v", base.Add(time.Minute), base); !errors.Is(err, redisstore.ErrCorrupt) || isNew {
			t.Errorf("InsertID over a record holding %q = %v, %v; want ErrCorrupt", v, isNew, err)
		}
		unchanged(k, v)
	}

	// Requests with missing or malformed fields: ErrCorrupt, and not
	// consumed.
	for name, fields := range map[string][]any{
		"NoExpires":  {"k", "login", "r", "x", "p", "/", "b", "", "c", ""},
		"BadExpires": {"k", "login", "r", "x", "p", "/", "b", "", "c", "", "e", "later"},
		"BadCreated": {"k", "login", "r", "x", "p", "/", "b", "", "c", "x", "e", "4102444800000000"},
	} {
		k := prefix + "sr:1:t:" + name
		if err := c.HSet(ctx, k, fields...).Err(); err != nil {
			t.Fatal(err)
		}
		if r, err := st.ConsumeRequest(ctx, "t", name, base); !errors.Is(err, redisstore.ErrCorrupt) {
			t.Errorf("ConsumeRequest of a request with %s = %+v, %v; want ErrCorrupt", name, r, err)
		}
		if n, err := c.Exists(ctx, k).Result(); err != nil || n != 1 {
			t.Errorf("the malformed request (%s) was removed: EXISTS = %d, %v", name, n, err)
		}
	}

	// Subjects and NameID indexes of the wrong type or with missing or
	// malformed fields: every method fails, and PutSubject changes nothing.
	good := ssoSubject("t", "good", "n-good", base.Add(time.Hour))
	if err := st.PutSubject(ctx, good, base); err != nil {
		t.Fatal(err)
	}
	subjects := map[string][]any{
		"NoExpires":  {"n", "n-bad", "f", "", "i", ""},
		"BadExpires": {"n", "n-bad", "f", "", "i", "", "e", "later"},
		"NoNameID":   {"f", "", "i", "", "e", "4102444800000000"},
	}
	for name, fields := range subjects {
		k := prefix + "su:1:t:" + name
		if err := c.HSet(ctx, k, fields...).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.ZAdd(ctx, prefix+"sn:1:t:n-bad", redis.Z{Score: 4102444800000000, Member: name}).Err(); err != nil {
			t.Fatal(err)
		}
		if s, err := st.Subject(ctx, "t", name, base); !errors.Is(err, redisstore.ErrCorrupt) {
			t.Errorf("Subject with %s = %+v, %v; want ErrCorrupt", name, s, err)
		}
		if err := st.PutSubject(ctx, ssoSubject("t", name, "n-good", base.Add(time.Hour)), base); !errors.Is(err, redisstore.ErrCorrupt) {
			t.Errorf("PutSubject over a subject with %s = %v; want ErrCorrupt", name, err)
		}
		if n, err := c.HLen(ctx, k).Result(); err != nil || n != int64(len(fields)/2) {
			t.Errorf("the malformed subject (%s) was changed: HLEN = %d, %v", name, n, err)
		}
	}
	if s, err := st.SubjectsByNameID(ctx, "t", testIdP, "n-bad", base); !errors.Is(err, redisstore.ErrCorrupt) {
		t.Errorf("SubjectsByNameID over malformed subjects = %+v, %v; want ErrCorrupt", s, err)
	}
	if err := c.Set(ctx, prefix+"su:1:t:str", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, prefix+"sn:1:t:n-str", "not a set", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err = st.Subject(ctx, "t", "str", base)
	notAnswer("Subject", err)
	_, err = st.SubjectsByNameID(ctx, "t", testIdP, "n-str", base)
	notAnswer("SubjectsByNameID", err)
	for _, s := range []sso.Subject{
		ssoSubject("t", "str", "n-new", base.Add(time.Hour)),  // the subject is not a hash
		ssoSubject("t", "good", "n-str", base.Add(time.Hour)), // the new index is not a sorted set
	} {
		if err := st.PutSubject(ctx, s, base); !errors.Is(err, redisstore.ErrCorrupt) {
			t.Errorf("PutSubject(%s, %s) over foreign data = %v; want ErrCorrupt", s.UserID, s.NameID, err)
		}
	}
	// The previous NameID's index is not a sorted set.
	if err := c.Set(ctx, prefix+"sn:1:t:n-good", "not a set any more", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := st.PutSubject(ctx, ssoSubject("t", "good", "n-new", base.Add(time.Hour)), base); !errors.Is(err, redisstore.ErrCorrupt) {
		t.Errorf("PutSubject with a foreign previous index = %v; want ErrCorrupt", err)
	}
	unchanged(prefix+"su:1:t:str", "not a hash")
	unchanged(prefix+"sn:1:t:n-str", "not a set")
	if got, err := st.Subject(ctx, "t", "good", base); err != nil || got.NameID != good.NameID {
		t.Errorf("Subject after refused puts = %+v, %v; want the subject put first", got, err)
	}
	if n, err := c.Exists(ctx, prefix+"sn:1:t:n-new").Result(); err != nil || n != 0 {
		t.Errorf("refused puts left the index of n-new: EXISTS = %d, %v", n, err)
	}
}

// TestSSOBadInput checks that times the store cannot keep exactly are
// refused with a typed error, and change nothing.
func TestSSOBadInput(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	var inputErr *redisstore.InputError
	past := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	late := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)

	for name, edit := range map[string]func(*sso.Request){
		"ExpiresZero":         func(r *sso.Request) { r.Expires = time.Time{} },
		"ExpiresAfter2255":    func(r *sso.Request) { r.Expires = late },
		"CreatedAtBefore1970": func(r *sso.Request) { r.CreatedAt = past },
	} {
		r := ssoReq("t", "bad", base.Add(time.Minute))
		edit(&r)
		if err := st.RememberRequest(ctx, r); !errors.As(err, &inputErr) {
			t.Errorf("RememberRequest with %s: %v, want *InputError", name, err)
		}
	}
	for name, times := range map[string][2]time.Time{
		"UntilBefore1970": {past, base},
		"UntilAfter2255":  {late, base},
		"NowZero":         {base.Add(time.Minute), {}},
	} {
		if isNew, err := st.InsertID(ctx, "t", "bad", times[0], times[1]); !errors.As(err, &inputErr) || isNew {
			t.Errorf("InsertID with %s = %v, %v; want *InputError", name, isNew, err)
		}
	}
	for name, times := range map[string][2]time.Time{
		"ExpiresZero":      {{}, base},
		"ExpiresAfter2255": {late, base},
		"NowBefore1970":    {base.Add(time.Hour), past},
	} {
		if err := st.PutSubject(ctx, ssoSubject("t", "u", "n", times[0]), times[1]); !errors.As(err, &inputErr) {
			t.Errorf("PutSubject with %s: %v, want *InputError", name, err)
		}
	}
	if got := keysOf(t, c, prefix+"*"); len(got) != 0 {
		t.Errorf("refused calls left keys %q", got)
	}
	sub := ssoSubject("t", "u", "n", base.Add(time.Hour))
	if err := st.PutSubject(ctx, sub, base); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Subject(ctx, "t", "u", late); !errors.As(err, &inputErr) {
		t.Errorf("Subject(2300) = %+v, %v; want *InputError", got, err)
	}
	if got, err := st.SubjectsByNameID(ctx, "t", testIdP, "n", past); !errors.As(err, &inputErr) || got != nil {
		t.Errorf("SubjectsByNameID(1900) = %+v, %v; want *InputError", got, err)
	}
	// A refused ConsumeRequest consumes nothing.
	r := ssoReq("t", "good", base.Add(time.Minute))
	if err := st.RememberRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ConsumeRequest(ctx, "t", "good", late); !errors.As(err, &inputErr) {
		t.Errorf("ConsumeRequest(2300): %v, want *InputError", err)
	}
	if got, err := st.ConsumeRequest(ctx, "t", "good", base); err != nil || got.RelayState != r.RelayState {
		t.Errorf("ConsumeRequest after a refused one = %+v, %v; want the request", got, err)
	}
}

// TestSSOOneRoundTrip checks that each SSO method is one command, hence
// one round trip, once the scripts are loaded.
func TestSSOOneRoundTrip(t *testing.T) {
	cnt := &counter{}
	st, _, _ := open(t, cnt)
	ctx := t.Context()
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	r := ssoReq("t", "id-1", base.Add(time.Minute))
	for _, tc := range []struct {
		name string
		call func() error
		cmd  string
	}{
		{"RememberRequest", func() error { return st.RememberRequest(ctx, r) }, "evalsha"},
		{"ConsumeRequest", func() error { _, err := st.ConsumeRequest(ctx, "t", "id-1", base); return err }, "evalsha"},
		{"InsertID", func() error { _, err := st.InsertID(ctx, "t", "_a", base.Add(time.Minute), base); return err }, "evalsha"},
		{"PutSubject", func() error { return st.PutSubject(ctx, ssoSubject("t", "u1", "n1", base.Add(time.Hour)), base) }, "evalsha"},
		{"PutSubjectMoving", func() error { return st.PutSubject(ctx, ssoSubject("t", "u1", "n2", base.Add(time.Hour)), base) }, "evalsha"},
		{"Subject", func() error { _, err := st.Subject(ctx, "t", "u1", base); return err }, "hmget"},
		{"SubjectsByNameID", func() error { _, err := st.SubjectsByNameID(ctx, "t", testIdP, "n2", base); return err }, "evalsha"},
	} {
		cnt.reset()
		if err := tc.call(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if trips, cmds := cnt.counted(); trips != 1 || len(cmds) != 1 || cmds[0] != tc.cmd {
			t.Errorf("%s cost %d round trips, commands %v; want one %s", tc.name, trips, cmds, tc.cmd)
		}
	}
}

// TestSSOSubjectWithoutIdP checks a subject written before this package
// kept the IdP (no field p): Subject returns it without an IdP, it
// belongs to none (SubjectsByNameID finds it for no IdP, even the empty
// one, while finding the subjects of the IdP asked for beside it), and
// the user's next sign-in replaces it whole, IdP included.
func TestSSOSubjectWithoutIdP(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	expires := base.Add(time.Hour)
	if err := c.HSet(ctx, prefix+"su:1:t:old", "n", "n1", "f", "urn:f", "i", "_s-old", "e", fmt.Sprint(expires.UnixMicro())).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ZAdd(ctx, prefix+"sn:1:t:n1", redis.Z{Score: float64(expires.UnixMicro()), Member: "old"}).Err(); err != nil {
		t.Fatal(err)
	}
	now := ssoSubject("t", "new", "n1", expires)
	if err := st.PutSubject(ctx, now, base); err != nil {
		t.Fatal(err)
	}
	got, err := st.Subject(ctx, "t", "old", base)
	if want := (sso.Subject{Tenant: "t", UserID: "old", NameID: "n1", NameIDFormat: "urn:f", SessionIndex: "_s-old", Expires: expires}); err != nil || got != want {
		t.Errorf("Subject of a subject without p = %+v, %v; want %+v", got, err, want)
	}
	for _, idp := range []string{testIdP, ""} {
		var ids []string
		subs, err := st.SubjectsByNameID(ctx, "t", idp, "n1", base)
		for _, s := range subs {
			ids = append(ids, s.UserID)
		}
		if want := map[string]string{testIdP: "[new]", "": "[]"}[idp]; err != nil || fmt.Sprint(ids) != want {
			t.Errorf("SubjectsByNameID(%q, n1) = %q, %v; want %s", idp, ids, err, want)
		}
	}
	again := ssoSubject("t", "old", "n1", expires)
	if err := st.PutSubject(ctx, again, base); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Subject(ctx, "t", "old", base); err != nil || got.IdP != testIdP {
		t.Errorf("Subject after a new sign-in = %+v, %v; want IdP %s", got, err, testIdP)
	}
	if subs, err := st.SubjectsByNameID(ctx, "t", testIdP, "n1", base); err != nil || len(subs) != 2 {
		t.Errorf("SubjectsByNameID after a new sign-in = %+v, %v; want new and old", subs, err)
	}
}
