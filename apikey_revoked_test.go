package guard_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// AuthenticateAPIKey documents "A revoked or expired key is audited in its
// tenant (apikey.denied)". Once the client IP is locked for junk keys, a
// revoked key used from it is still refused with ErrTooManyAttempts, and
// still recorded (Meta throttled): whoever holds a leaked, revoked key
// cannot hide its use behind a burst of junk keys. So that one key used
// in a loop cannot flood the tenant's log, such uses are recorded at most
// once a minute for each key and IP; junk keys, of no tenant, stay
// unrecorded.
func TestRevokedAPIKeyRecordedWhileIPThrottled(t *testing.T) {
	f := newFixture(t)
	key, k, addr := revokedKeyAtLockedIP(t, f)
	all := len(f.events(t, ""))
	before := len(f.events(t, audit.APIKeyDenied))
	for i := range 5 {
		if _, err := f.g.AuthenticateAPIKey(f.ctx, key, addr); !errors.Is(err, guard.ErrTooManyAttempts) {
			t.Fatalf("use %d of the revoked key from a locked IP: %v, want ErrTooManyAttempts", i, err)
		}
	}
	evs := f.events(t, audit.APIKeyDenied)[before:]
	if len(evs) != 1 {
		t.Fatalf("5 uses of revoked key %s from a locked IP within a minute: %d apikey.denied events, want 1", k.ID, len(evs))
	}
	if e := evs[0]; e.Target != k.ID || e.Reason != "revoked" || e.Meta["throttled"] != "true" || e.IP != addr.String() {
		t.Errorf("apikey.denied = %+v, want the key, reason revoked, Meta throttled, the IP", e)
	}
	if _, err := f.g.AuthenticateAPIKey(f.ctx, "gk_junk", addr); !errors.Is(err, guard.ErrTooManyAttempts) {
		t.Fatalf("junk key from a locked IP: %v", err)
	}
	if n := len(f.events(t, "")); n != all+1 {
		t.Errorf("%d events written for the refused keys, want only the revoked key's one", n-all)
	}
	// A minute later the key's next use is on record again.
	f.clock.Advance(time.Minute + time.Second)
	if _, err := f.g.AuthenticateAPIKey(f.ctx, key, addr); err == nil {
		t.Fatal("revoked key accepted")
	}
	if n := len(f.events(t, audit.APIKeyDenied)) - before; n != 2 {
		t.Errorf("a minute later: %d apikey.denied events in all, want 2", n)
	}
}

// The once-a-minute record of a revoked key used from a locked IP does
// not count when it fails: that use is ErrUnavailable, and the key's next
// use in the same minute is recorded in its place (else the first failed
// record would leave the rest of the minute's uses unrecorded).
func TestRevokedAPIKeyThrottledRecordFailedDoesNotCount(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, func(c *guard.Config) {
		fa = &failingAudit{Audit: c.Stores.Audit.(*memstoreAudit)}
		c.Stores.Audit = fa
	})
	key, k, addr := revokedKeyAtLockedIP(t, f)
	before := len(f.events(t, audit.APIKeyDenied))
	fa.set(true)
	_, err := f.g.AuthenticateAPIKey(f.ctx, key, addr)
	fa.set(false)
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("revoked key from a locked IP, its record failing: %v, want ErrUnavailable", err)
	}
	for i := range 3 {
		if _, err := f.g.AuthenticateAPIKey(f.ctx, key, addr); !errors.Is(err, guard.ErrTooManyAttempts) {
			t.Fatalf("use %d after the failed record: %v, want ErrTooManyAttempts", i, err)
		}
	}
	evs := f.events(t, audit.APIKeyDenied)[before:]
	if len(evs) != 1 || evs[0].Meta["throttled"] != "true" || evs[0].Target != k.ID {
		t.Fatalf("apikey.denied after a failed record and 3 more uses in the minute: %+v, want one, Meta throttled", evs)
	}
}

// revokedKeyAtLockedIP creates and revokes an API key, and locks an IP
// for junk keys; it returns the key, as presented and as stored, and the
// IP.
func revokedKeyAtLockedIP(t *testing.T, f *fixture) (string, auth.APIKey, netip.Addr) {
	t.Helper()
	sys := guard.System("test")
	key, k, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "reporting"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.RevokeAPIKey(f.ctx, sys, tenantID, k.ID); err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("198.51.100.9")
	for range 25 {
		_, _ = f.g.AuthenticateAPIKey(f.ctx, "gk_junk", addr)
	}
	return key, k, addr
}
