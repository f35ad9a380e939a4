package guard_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// Audit of the APIKEYS axis: API keys end to end (creation, revocation,
// authentication, the principal a key gives, the HTTP header).

var apikeyAuditAddr = netip.MustParseAddr("203.0.113.5")

// newKey creates an API key named name with roles, by by, or fails t.
func (f *fixture) newKey(t *testing.T, by guard.Principal, name string, roles ...string) (string, auth.APIKey) {
	t.Helper()
	key, k, err := f.g.CreateAPIKey(f.ctx, by, guard.NewAPIKey{Tenant: tenantID, Name: name, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	return key, k
}

// APIKEY-1. ExpirePassword is how an administrator answers a password
// known or suspected to be compromised: the user's sessions end and every
// permission check refuses the user until the password is changed. An API
// key the user (or whoever held the password) created keeps working with
// all the creator's permissions, although keyBound promises that "a key
// never does more than its creator may do now": the attacker's key minted
// with the stolen password survives the response to the compromise.
// Expected: the creator's keys are revoked (apikey.revoked, reason e.g.
// creator_password_expired) or refused as the creator's sessions are
// (ErrPasswordChangeRequired) until the password is changed.
func TestAuditAPIKeys_APIKEY1_KeyOutlivesCreatorsCompromisedPassword(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	adam, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	key, _ := f.newKey(t, adam, "sync", rbac.Admin)
	if err := f.g.ExpirePassword(f.ctx, owner, tenantID, adam.UserID); err != nil {
		t.Fatal(err)
	}
	// The creator is refused everything now.
	res, err := f.login("adam@example.test", ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Authorize(f.ctx, sess, rbac.Users, rbac.Manage); !errors.Is(err, guard.ErrPasswordChangeRequired) {
		t.Fatalf("the creator's own session after ExpirePassword: %v, want ErrPasswordChangeRequired", err)
	}
	// Their key is not.
	p, err := f.g.AuthenticateAPIKey(f.ctx, key, apikeyAuditAddr)
	if err != nil {
		return // refused at authentication: fine
	}
	if d, err := f.g.Authorize(f.ctx, p, rbac.Users, rbac.Manage); err == nil && d.Allowed {
		t.Errorf("the API key of a user whose password was marked compromised still manages users (Allowed, no error) " +
			"while the user's own sessions are refused: want the key revoked with the password mark, or refused " +
			"(ErrPasswordChangeRequired) until the creator changes the password")
	}
}

// APIKEY-2. "Nobody grants a role whose permissions they do not all hold,
// nor takes one away (RevokeRole: an admin cannot demote an owner)", and
// an admin cannot remove or lock out an owner ("Acting on a more
// privileged user"). An admin cannot RevokeRole the owner role from the
// owner's API key, but RevokeAPIKey lets the same admin (or any key with
// api-keys:manage) kill the owner's key outright, its owner role taken
// away with AllPerms: the owner's automation is locked out by someone
// less privileged. Expected: RevokeAPIKey of a key holding a role the
// caller could not grant is refused (ErrForbidden matching
// rbac.ErrEscalation, recorded as a failed apikey.revoked with reason
// escalation and Meta role), the key left usable.
func TestAuditAPIKeys_APIKEY2_AdminRevokesOwnersKey(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	key, k := f.newKey(t, owner, "owner automation", rbac.Owner)
	if err := f.g.RevokeRole(f.ctx, admin, tenantID, "key:"+k.ID, rbac.Owner); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("control: an admin taking the owner role from the owner's key: %v, want ErrForbidden", err)
	}
	err := f.g.RevokeAPIKey(f.ctx, admin, tenantID, k.ID)
	if err == nil {
		t.Errorf("an admin revoked the owner's key (role owner) it may not even demote: RevokeAPIKey = nil, " +
			"want ErrForbidden (rbac.ErrEscalation), recorded as a failed apikey.revoked with reason escalation")
	}
	if _, aerr := f.g.AuthenticateAPIKey(f.ctx, key, apikeyAuditAddr); aerr != nil {
		t.Errorf("the owner's key after the admin's RevokeAPIKey (%v): %v, want it still usable", err, aerr)
	}
}

// APIKEY-3. An API key holding api-keys:manage that calls CreateAPIKey
// passes the permission check, then requireRecentAuth answers
// ErrUnauthenticated ("not signed in") and nothing is recorded. An
// authenticated key is told it is not authenticated (a host maps that to
// 401 and the client concludes its key is bad), and a key trying to mint
// more keys (what a leaked key would do to persist) leaves no trace,
// while a key without the permission is refused with ErrForbidden and
// access.denied, and a key trying to approve is refused "on record"
// (decideApproval). Expected: ErrForbidden, recorded (access.denied or a
// failed apikey.created naming the key as actor).
func TestAuditAPIKeys_APIKEY3_KeyCreatingKeyUnauthenticatedUnrecorded(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	key, k := f.newKey(t, owner, "admin automation", rbac.Admin)
	p, err := f.g.AuthenticateAPIKey(f.ctx, key, apikeyAuditAddr)
	if err != nil {
		t.Fatal(err)
	}
	before := len(f.events(t, audit.AccessDenied)) + len(f.events(t, audit.APIKeyCreated))
	_, _, err = f.g.CreateAPIKey(f.ctx, p, guard.NewAPIKey{Tenant: tenantID, Name: "persistence"})
	if err == nil {
		t.Fatal("an API key created another API key")
	}
	if errors.Is(err, guard.ErrUnauthenticated) || !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("CreateAPIKey by an authenticated API key: %v, want ErrForbidden (not ErrUnauthenticated: the key is authenticated)", err)
	}
	var recorded bool
	for _, a := range []audit.Action{audit.AccessDenied, audit.APIKeyCreated} {
		for _, e := range f.events(t, a) {
			if e.Outcome == audit.Failure && e.Actor.Kind == audit.ActorAPIKey && e.Actor.ID == k.ID {
				recorded = true
			}
		}
	}
	if after := len(f.events(t, audit.AccessDenied)) + len(f.events(t, audit.APIKeyCreated)); !recorded {
		t.Errorf("an API key's attempt to create an API key left no failed access.denied/apikey.created event (events %d before, %d after)", before, after)
	}
}

// APIKEY-4. CreateAPIKey checks that ExpiresAt is "in the future" against
// the current time truncated to the microsecond, then stores ExpiresAt
// truncated too: an expiry less than a microsecond ahead passes the check
// and is stored equal to CreatedAt. The call succeeds and returns a key
// that is expired from birth (every use refused, recorded as
// apikey.denied reason expired). Expected: the check made on the value
// stored (an *InputError "must be in the future"), or a key usable until
// its expiry.
func TestAuditAPIKeys_APIKEY4_SubMicrosecondExpiryBornExpired(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	exp := f.clock.Now().Add(500 * time.Nanosecond)
	key, k, err := f.g.CreateAPIKey(f.ctx, owner, guard.NewAPIKey{Tenant: tenantID, Name: "short", ExpiresAt: exp})
	var ie *guard.InputError
	if errors.As(err, &ie) {
		return // refused as not in the future: fine
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.AuthenticateAPIKey(f.ctx, key, apikeyAuditAddr); err != nil {
		t.Errorf("CreateAPIKey(ExpiresAt = now+500ns) succeeded with ExpiresAt %v = CreatedAt %v, and the key it returned is "+
			"refused at once (%v): want an *InputError (expiry must be in the future) or a usable key",
			k.ExpiresAt, k.CreatedAt, err)
	}
}

// APIKEY-5. AuthenticateAPIKey takes the client address and sets
// Principal.Addr, but leaves Principal.IP empty (only AuthenticateRequest
// fills it): a host that authenticates keys itself (gRPC, a queue
// consumer) gets a principal whose every admin action is recorded with no
// IP, though the address was given and the refusals of the same key are
// recorded with it. Expected: Principal.IP is Addr as text, and the
// events of the key's actions carry it.
func TestAuditAPIKeys_APIKEY5_AuthenticateAPIKeyPrincipalWithoutIP(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	key, _ := f.newKey(t, owner, "ops", rbac.Admin)
	_, other := f.newKey(t, owner, "old")
	addr := netip.MustParseAddr("198.51.100.23")
	p, err := f.g.AuthenticateAPIKey(f.ctx, key, addr)
	if err != nil {
		t.Fatal(err)
	}
	if p.IP != addr.String() {
		t.Errorf("AuthenticateAPIKey(…, %v): Principal.Addr %v, Principal.IP %q; want IP %q", addr, p.Addr, p.IP, addr.String())
	}
	if err := f.g.RevokeAPIKey(f.ctx, p, tenantID, other.ID); err != nil {
		t.Fatal(err)
	}
	evs := f.events(t, audit.APIKeyRevoked)
	if len(evs) != 1 || evs[0].IP != addr.String() {
		t.Errorf("apikey.revoked by a key authenticated from %v: %+v, want IP %q", addr, evs, addr.String())
	}
}

// APIKEY-6. Authorization is not a list header: a request carrying it
// twice is malformed (RFC 9110 §5.3), and components disagree on which
// one counts (a proxy or WAF may check the last, or join them). bearer
// reads only the first (Header.Get) and ignores the rest: a request with
// a valid key first and another credential after it is let through as
// the first key. Expected: a request with more than one Authorization
// header is refused (401, as a bad key), whatever they hold.
func TestAuditAPIKeys_APIKEY6_SeveralAuthorizationHeaders(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	key, _ := f.newKey(t, owner, "reports", rbac.ReportsOnly)
	other, _, _, err := auth.GenerateAPIKey(randReader{})
	if err != nil {
		t.Fatal(err)
	}
	if code := serve(f.g, "", client, rbac.Reports, rbac.Read, "Authorization", "Bearer "+key); code != 204 {
		t.Fatalf("control: one Authorization header with the key: %d, want 204", code)
	}
	if code := serve(f.g, "", client, rbac.Reports, rbac.Read,
		"Authorization", "Bearer "+key, "Authorization", "Bearer "+other); code == 204 {
		t.Errorf("a request with two Authorization headers (a valid key, then another key) was let through as the first key (%d): want 401", code)
	}
}

// randReader is a deterministic, non-secret byte source for keys that no
// store holds.
type randReader struct{}

func (randReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return len(p), nil
}
