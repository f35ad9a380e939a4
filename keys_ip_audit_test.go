package guard_test

// Audit of API keys and IP allow-lists (branch audit-keysip): each test
// fails on the code as audited, because of the defect it is named after.

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/netip"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/rbac"
)

// RevokeAPIKey documents that "a revocation stands even when it cannot be
// recorded in the audit log", a failure to record returning ErrUnavailable;
// revokeKeysOf records its revocations "before any other step can fail, so
// that a revocation is never left off the record". RevokeAPIKey revokes the
// key in the store, then takes its roles away, then records: when the role
// store fails, the key is revoked (in force) and apikey.revoked is never
// written.
func TestAuditRevokeAPIKey_RoleStoreFailureLeavesRevocationUnrecorded(t *testing.T) {
	fx := newFaultFix(t, false)
	admin, _ := fx.user(t, "adam@example.test", rbac.Owner)
	key, k, err := fx.g.CreateAPIKey(fx.ctx, admin, guard.NewAPIKey{Tenant: tenantID, Name: "reporting", Roles: []string{rbac.ReportsOnly}})
	if err != nil {
		t.Fatal(err)
	}
	fx.failing(t, "Policies.Update", func() error { return fx.g.RevokeAPIKey(fx.ctx, admin, tenantID, k.ID) })
	if _, err := fx.g.AuthenticateAPIKey(fx.ctx, key, netip.MustParseAddr("198.51.100.7")); err == nil {
		t.Fatal("the key still works: the revocation did not stand")
	}
	if !fx.recorded(t, audit.APIKeyRevoked, k.ID) {
		t.Errorf("key %s is revoked, but no apikey.revoked event records it", k.ID)
	}
}

// A request whose client IP cannot be identified (a trusted proxy sent no
// or a garbled X-Forwarded-For) is refused with 403. With a session cookie
// the refusal is recorded (ip.denied, reason unidentified, the raw header
// labelled untrusted); with an API key it is refused before the key is
// even looked up, and nothing is recorded in the key's tenant: neither
// ip.denied nor, for a revoked key, apikey.denied, which AuthenticateAPIKey
// promises for every use of a revoked key (SECURITY-CHECKLIST IP-18, IP-19:
// a refusal has an audit entry).
func TestAuditAPIKeyUnidentifiedClientNotRecorded(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) {
		c.Proxies = ipfilter.ResolverConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	})
	sys := guard.System("test")
	key, k, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "reporting"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.RevokeAPIKey(f.ctx, sys, tenantID, k.ID); err != nil {
		t.Fatal(err)
	}
	h := f.g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	before := len(f.events(t, ""))
	w := serveHandler(h, "/", "", "10.0.0.1:443", "Authorization", "Bearer "+key, "X-Forwarded-For", "203.0.113.5, garbage")
	if w.Code != http.StatusForbidden {
		t.Fatalf("revoked key through a trusted proxy with a garbled X-Forwarded-For: %d, want 403", w.Code)
	}
	if n := len(f.events(t, "")) - before; n == 0 {
		t.Errorf("use of revoked key %s refused (unidentified client) and nothing recorded: want ip.denied or apikey.denied", k.ID)
	}
}

// CreateAPIKey checks only that ExpiresAt is in the future. An expiry
// beyond what the store can hold (sqlitestore keeps Unix microseconds,
// which overflow after year 294246) is accepted: CreateAPIKey reports
// success and returns the key with the expiry asked for, but the stored
// expiry wraps to a date in the distant past, so the key never works (and
// each use is counted against the caller's IP and recorded as expired).
// A bad input must be refused (*InputError), never turned into a key that
// silently does not work. (On pgstore the same expiry is beyond
// timestamptz and gives ErrUnavailable, a bad input reported as an
// outage.)
func TestAuditCreateAPIKey_ExpiryBeyondStoreRangeAccepted(t *testing.T) {
	ctx := context.Background()
	g, err := guard.New(guard.Config{Stores: newSQLite(t), AuditKey: auditKey, Hasher: fastHasher, Rand: rand.Reader, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	sys := guard.System("test")
	if _, err := g.CreateTenant(ctx, sys, tenantID, "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	exp := time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)
	key, k, err := g.CreateAPIKey(ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "forever", ExpiresAt: exp})
	var ie *guard.InputError
	if errors.As(err, &ie) {
		return // refused as bad input: what is expected
	}
	if err != nil {
		t.Fatalf("CreateAPIKey with expiry %v: %v, want success or an *InputError", exp, err)
	}
	if _, err := g.AuthenticateAPIKey(ctx, key, netip.MustParseAddr("198.51.100.7")); err != nil {
		t.Errorf("key %s created with expiry %v (returned %v) is refused at once: %v", k.ID, exp, k.ExpiresAt, err)
	}
}

// AuthenticateAPIKey bounds what one key used in a loop writes to its
// tenant's log ("nor can one key used in a loop flood its tenant's log":
// a revoked key is recorded at most once a minute per key and address once
// the address is locked). A valid key used from outside the tenant's
// API-key allow-list is neither throttled nor bounded: whoever holds a
// leaked key writes one ip.denied event per request, without limit, from
// any address the list refuses.
func TestAuditAPIKeyAllowListDenialFloodsAuditLog(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	lists, err := f.g.IPAllowLists(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.SetIPAllowList(f.ctx, sys, tenantID, guard.IPListChange{Scope: ipfilter.APIKeys, Entries: []string{"198.51.100.7"}, Version: lists.Version}); err != nil {
		t.Fatal(err)
	}
	key, _, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "reporting"})
	if err != nil {
		t.Fatal(err)
	}
	outside := netip.MustParseAddr("203.0.113.66")
	before := len(f.events(t, ""))
	const uses = 200
	for range uses {
		if _, err := f.g.AuthenticateAPIKey(f.ctx, key, outside); err == nil {
			t.Fatal("key accepted from outside the allow-list")
		}
	}
	// The revoked-key rule allows 20 (the IP throttle) plus one a minute.
	if n := len(f.events(t, "")) - before; n > 25 {
		t.Errorf("%d uses of one key from one refused address within a second wrote %d audit events, want a bounded number", uses, n)
	}
}

// AuthenticateAPIKey throttles invalid keys "per client IP" and records
// refusals with the client's address, but it uses the address as given:
// an IPv4-mapped address (what a dual-stack listener reports for an IPv4
// client) is a bucket, and an audit IP, of its own. The allow-list treats
// ::ffff:198.51.100.9 as 198.51.100.9 (ipfilter unmaps clients), and so
// does checkIPString for a LoginRequest.IP; the key throttle and the
// ip.denied event do not, so one client has two lock budgets and its
// refusals are recorded under two spellings.
func TestAuditAPIKeyThrottle_IPv4MappedAddressIsAnotherClient(t *testing.T) {
	f := newFixture(t)
	mapped := netip.MustParseAddr("::ffff:198.51.100.9")
	for range 25 {
		_, _ = f.g.AuthenticateAPIKey(f.ctx, "gk_junk", mapped)
	}
	if _, err := f.g.AuthenticateAPIKey(f.ctx, "gk_junk", mapped); !errors.Is(err, guard.ErrTooManyAttempts) {
		t.Fatalf("after 25 junk keys from %v: %v, want ErrTooManyAttempts", mapped, err)
	}
	if _, err := f.g.AuthenticateAPIKey(f.ctx, "gk_junk", mapped.Unmap()); !errors.Is(err, guard.ErrTooManyAttempts) {
		t.Errorf("junk key from %v, the same client as the locked %v: %v, want ErrTooManyAttempts", mapped.Unmap(), mapped, err)
	}
}
