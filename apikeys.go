package guard

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/rbac"
)

// NewAPIKey describes an API key to create.
type NewAPIKey struct {
	Tenant string
	// Name says what the key is for (required, at most 100 bytes).
	Name string
	// ExpiresAt ends the key's life (zero: it does not expire). It must be
	// in the future and at most a hundred years ahead.
	ExpiresAt time.Time
	// Roles are granted to the key (with RBAC); the creator must hold
	// every permission of each (GrantableKeyRoles lists those roles).
	Roles []string
}

// maxAPIKeyYears bounds how far ahead NewAPIKey.ExpiresAt may be: a
// hundred years, far within what every store can hold (a key meant never
// to expire has no expiry).
const maxAPIKeyYears = 100

// CreateAPIKey creates an API key for a tenant and returns it once, in
// clear: show it to the administrator and forget it; Guard keeps only its
// hash. It needs a recent authentication (ErrStepUpRequired), which an API
// key cannot give: a key, whatever its roles, is refused with ErrForbidden,
// recorded as access.denied with reason api_key, and makes no key. A user
// deactivated or deleted while the call was under way gets
// ErrUnauthenticated, and the key is revoked at once. An unknown role is
// refused before anything is created with rbac.ErrRoleNotFound (bad
// input, not recorded); a role with a permission the creator lacks, with
// ErrForbidden, recorded as a failed apikey.created, reason escalation;
// one taken from the creator while the key is being made is refused by
// the grant itself, and the key is then revoked. A tenant has at most
// Config.MaxAPIKeys live keys (neither revoked nor expired; 1000 by
// default): one more is refused with
// auth.ErrTooManyAPIKeys, recorded as a failed apikey.created with reason
// limit and Meta max the bound, and makes no key; the store counts and
// inserts in one atomic step, so concurrent calls, on any replica, never
// pass the bound. A key created by a user never does more than that user
// may do now: it loses what they lose, and does nothing while their
// password is marked compromised (ExpirePassword) or once they are
// deactivated or deleted (which revokes it). An empty or overlong name,
// and an expiry not in the future or more than a hundred years ahead, are
// refused with an *InputError; the expiry is kept to the microsecond, and
// must be in the future as kept (one less than a microsecond ahead is
// not). The key's CreatedBy is the creator's user ID, or for a key the
// host creates the System label as audit events record it (made valid
// UTF-8 and clipped to MaxSystemLabelBytes); a label holding a NUL byte is
// refused with an *InputError.
func (g *Guard) CreateAPIKey(ctx context.Context, by Principal, nk NewAPIKey) (string, auth.APIKey, error) {
	if err := g.may(ctx, by, nk.Tenant, rbac.APIKeys, rbac.Manage); err != nil {
		return "", auth.APIKey{}, err
	}
	if g.stores.APIKeys == nil {
		return "", auth.APIKey{}, ErrAPIKeysNotConfigured
	}
	if err := g.requireRecentAuth(ctx, by, rbac.APIKeys, rbac.Manage); err != nil {
		return "", auth.APIKey{}, err
	}
	if _, err := g.EffectivePolicy(ctx, nk.Tenant); err != nil {
		return "", auth.APIKey{}, err
	}
	if strings.TrimSpace(nk.Name) == "" {
		return "", auth.APIKey{}, &InputError{Field: "name", Reason: "is required"}
	}
	if err := checkText("name", nk.Name, 100); err != nil {
		return "", auth.APIKey{}, err
	}
	// A System label is kept as the audit log records it (valid UTF-8,
	// clipped to MaxSystemLabelBytes), the same on every backend; a NUL
	// byte, which not every backend can keep, is refused.
	createdBy := by.actor().ID
	if strings.IndexByte(createdBy, 0) >= 0 {
		return "", auth.APIKey{}, &InputError{Field: "creator", Reason: "contains a NUL byte"}
	}
	now := g.now().UTC().Truncate(time.Microsecond)
	// Checked as stored (to the microsecond): an expiry less than a
	// microsecond ahead would be stored equal to CreatedAt, the key
	// expired from birth.
	expires := nk.ExpiresAt.UTC().Truncate(time.Microsecond)
	if !nk.ExpiresAt.IsZero() && !expires.After(now) {
		return "", auth.APIKey{}, &InputError{Field: "expiry", Reason: "must be in the future"}
	}
	if expires.After(now.AddDate(maxAPIKeyYears, 0, 0)) {
		return "", auth.APIKey{}, &InputError{Field: "expiry", Reason: "must be at most a hundred years ahead"}
	}
	if err := g.mayGrantAll(ctx, by, nk.Tenant, audit.APIKeyCreated, clip(nk.Name, 100), nk.Roles); err != nil {
		return "", auth.APIKey{}, err
	}
	id, err := newID(g.rand)
	if err != nil {
		return "", auth.APIKey{}, err
	}
	key, hash, prefix, err := auth.GenerateAPIKey(g.rand)
	if err != nil {
		return "", auth.APIKey{}, err
	}
	k := auth.APIKey{ID: id[:16], Tenant: nk.Tenant, Name: nk.Name, Prefix: prefix, Hash: hash,
		CreatedBy: createdBy, CreatedAt: now}
	if !nk.ExpiresAt.IsZero() {
		k.ExpiresAt = expires
	}
	switch err := g.stores.APIKeys.CreateAPIKey(ctx, k, g.maxKeys); {
	case errors.Is(err, auth.ErrTooManyAPIKeys):
		e := g.adminEvent(by, nk.Tenant, audit.APIKeyCreated, clip(nk.Name, 100))
		e.Outcome, e.Reason, e.Meta = audit.Failure, "limit", map[string]string{"max": strconv.Itoa(g.maxKeys)}
		if err := g.record(ctx, e); err != nil {
			return "", auth.APIKey{}, err
		}
		return "", auth.APIKey{}, auth.ErrTooManyAPIKeys
	case err != nil:
		return "", auth.APIKey{}, unavailable("create api key", err)
	}
	if err := g.creatorStillActive(ctx, by, k); err != nil {
		return "", auth.APIKey{}, err
	}
	e := g.adminEvent(by, nk.Tenant, audit.APIKeyCreated, k.ID)
	e.Meta = map[string]string{"name": k.Name, "prefix": k.Prefix}
	if err := g.record(ctx, e); err != nil {
		_ = g.stores.APIKeys.RevokeAPIKey(context.WithoutCancel(ctx), k.Tenant, k.ID, now)
		return "", auth.APIKey{}, err
	}
	for _, role := range nk.Roles {
		if err := g.GrantRole(ctx, by, nk.Tenant, "key:"+k.ID, role); err != nil {
			_ = g.RevokeAPIKey(context.WithoutCancel(ctx), System("rollback"), k.Tenant, k.ID)
			return "", auth.APIKey{}, err
		}
	}
	k.Hash = [32]byte{}
	return key, k, nil
}

// ListAPIKeys lists a tenant's API keys, revoked ones included: never the
// keys themselves, only their IDs and first characters.
func (g *Guard) ListAPIKeys(ctx context.Context, by Principal, tenant string) ([]auth.APIKey, error) {
	if err := g.may(ctx, by, tenant, rbac.APIKeys, rbac.Read); err != nil {
		return nil, err
	}
	if g.stores.APIKeys == nil {
		return nil, ErrAPIKeysNotConfigured
	}
	ks, err := g.stores.APIKeys.ListAPIKeys(ctx, tenant)
	if err != nil {
		return nil, unavailable("list api keys", err)
	}
	for i := range ks {
		ks[i].Hash = [32]byte{}
	}
	return ks, nil
}

// RevokeAPIKey revokes one of a tenant's API keys: its next request fails.
// It needs api-keys:manage, and follows "Acting on a more privileged
// user" (see the package doc): a revoked key cannot be brought back, so
// revoking one locks its automation out for good. Unless by is the system,
// the user who created the key or the key itself, by must hold every
// permission of every role the key holds (an admin cannot revoke an
// owner's key, as they cannot take its owner role away with RevokeRole):
// otherwise the call is refused with ErrForbidden (matching
// rbac.ErrEscalation), recorded as a failed apikey.revoked with reason
// escalation and Meta role naming a role by could not grant, and the key
// is left as it is. The rule is checked once, before the revocation (which
// is not undone): a role granted to the key at the same time does not
// refuse it.
//
// It records apikey.revoked as soon as the key is revoked, then takes the
// key's roles away, so that a revocation in force is on the record
// whatever fails after it. A revocation stands even when it cannot be
// recorded in the audit log (one rolled back would be worse): a failure to
// record leaves the key revoked, its roles in place, and returns
// ErrUnavailable; a failure to take the roles away leaves the key revoked
// and recorded, and returns ErrUnavailable. Either way a second call, which
// finds the key revoked, records it again and finishes the job.
func (g *Guard) RevokeAPIKey(ctx context.Context, by Principal, tenant, id string) error {
	if err := g.may(ctx, by, tenant, rbac.APIKeys, rbac.Manage); err != nil {
		return err
	}
	if g.stores.APIKeys == nil {
		return ErrAPIKeysNotConfigured
	}
	if len(id) > auth.MaxIDBytes {
		return ErrNotFound
	}
	if g.rbac != nil {
		perms, err := g.permsOf(ctx, by, tenant)
		if err != nil {
			return err
		}
		if err := g.outranksKey(ctx, by, perms, tenant, id); err != nil {
			return err
		}
	}
	switch err := g.stores.APIKeys.RevokeAPIKey(ctx, tenant, id, g.now().UTC().Truncate(time.Microsecond)); {
	case errors.Is(err, auth.ErrNotFound):
		return ErrNotFound
	case err != nil:
		return unavailable("revoke api key", err)
	}
	if err := g.record(ctx, g.adminEvent(by, tenant, audit.APIKeyRevoked, id)); err != nil {
		return err
	}
	if g.rbac != nil {
		if err := g.rbac.RevokeAll(ctx, g.rbac.AllPerms(), tenant, rbac.Key(id)); err != nil {
			return rbacErr("revoke roles", err)
		}
	}
	return nil
}

// outranksKey returns nil if by, holding perms, may revoke API key id of
// tenant under "Acting on a more privileged user": the system, the key
// itself and the user who created it may; anyone else must hold every
// permission of every role the key holds, or is refused as outranks
// refuses (a failed apikey.revoked, reason escalation, Meta role;
// ErrForbidden matching rbac.ErrEscalation). A key the tenant does not
// have holds no role. A store failure is ErrUnavailable.
func (g *Guard) outranksKey(ctx context.Context, by Principal, perms rbac.Perms, tenant, id string) error {
	if by.Kind == KindSystem || by.Kind == KindAPIKey && by.KeyID == id {
		return nil
	}
	role, err := g.roleBeyond(ctx, perms, tenant, rbac.Key(id))
	if err != nil || role == "" {
		return err
	}
	if by.Kind == KindUser {
		// Only read when the rule would refuse: the creator may revoke
		// their own key, whatever they hold now.
		k, found, err := g.apiKeyByID(ctx, tenant, id)
		if err != nil {
			return err
		}
		if found && k.CreatedBy == by.UserID {
			return nil
		}
	}
	return g.escalation(ctx, by, tenant, audit.APIKeyRevoked, id, role)
}

// creatorStillActive checks, once k is stored, that the user creating it
// is still active, and revokes k when they are not: a deactivation (or
// deletion) that ran while the request was under way, after the creator
// was authenticated, may have revoked the creator's keys before k was
// stored. It changes the status first and revokes the keys after, so
// either its revocation finds k or this check finds the new status. A
// creator deactivated or gone gives ErrUnauthenticated.
func (g *Guard) creatorStillActive(ctx context.Context, by Principal, k auth.APIKey) error {
	if by.Kind != KindUser {
		return nil
	}
	err := g.stillActive(ctx, k.Tenant, by.UserID)
	if err != nil {
		_ = g.stores.APIKeys.RevokeAPIKey(context.WithoutCancel(ctx), k.Tenant, k.ID, k.CreatedAt)
	}
	return err
}

// stillActive returns nil if user id of tenant is active,
// ErrUnauthenticated if deactivated or gone, and ErrUnavailable if the
// user cannot be read: the check of a signed-in user whose deactivation
// may have run while their request was under way.
func (g *Guard) stillActive(ctx context.Context, tenant, id string) error {
	u, err := g.stores.Users.User(ctx, tenant, id)
	switch {
	case err == nil && u.Status == auth.StatusActive:
		return nil
	case err == nil || errors.Is(err, auth.ErrNotFound):
		return ErrUnauthenticated
	}
	return unavailable("load user", err)
}

// revokeKeysOf revokes every API key of tenant that user id created and
// that is not revoked yet, in one store step, because a key must not
// outlive its creator's access (the user is being deactivated or deleted),
// records each as apikey.revoked (Target the key, Meta reason and
// created_by), then takes each key's roles away, as RevokeAPIKey does. It
// returns how many keys it revoked. The events are recorded before any
// other step can fail, so that a revocation is never left off the record
// (a second call finds nothing left to revoke). Without an API key store
// there is nothing to revoke. A store failure gives ErrUnavailable.
func (g *Guard) revokeKeysOf(ctx context.Context, by Principal, tenant, id, reason string) (int, error) {
	if g.stores.APIKeys == nil || id == "" {
		return 0, nil
	}
	ks, err := g.stores.APIKeys.RevokeByCreator(ctx, tenant, id, g.now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return 0, unavailable("revoke api keys", err)
	}
	if len(ks) == 0 {
		return 0, nil
	}
	evs := make([]audit.Event, len(ks))
	for i, k := range ks {
		evs[i] = g.adminEvent(by, tenant, audit.APIKeyRevoked, k.ID)
		evs[i].Meta = map[string]string{"reason": reason, "created_by": id}
	}
	if err := g.record(ctx, evs...); err != nil {
		return len(ks), err
	}
	if g.rbac != nil {
		for _, k := range ks {
			if err := g.rbac.RevokeAll(ctx, g.rbac.AllPerms(), tenant, rbac.Key(k.ID)); err != nil {
				return len(ks), rbacErr("revoke roles", err)
			}
		}
	}
	return len(ks), nil
}

// apiKeyLimit throttles invalid API keys per client IP (an IPv6 client
// per prefix: throttleIP): 20 in a minute, then a lock of a minute
// doubling to an hour.
var apiKeyLimit = auth.Limit{Max: 20, ResetAfter: time.Minute, LockFor: time.Minute, MaxLockFor: time.Hour}

// refusalRecordLimit bounds the refusals of one kind recorded in a
// tenant's log (see recordDue): one a minute for each key. Every record
// it lets through starts the pause, so none carries recordRefusal's
// recording_paused mark: that such a record stands for the repeats of
// the minute after it is documented, for every one of them alike.
var refusalRecordLimit = auth.Limit{Max: 1, ResetAfter: time.Minute, LockFor: time.Minute, MaxLockFor: time.Minute}

// refusalBurstLimit bounds the refusals recorded by recordRefusal: 30 of
// one kind (reason included), then none until a minute after the 30th.
var refusalBurstLimit = auth.Limit{Max: 30, ResetAfter: time.Minute, LockFor: time.Minute, MaxLockFor: time.Minute}

// AuthenticateAPIKey checks an API key presented from client address addr
// and returns its principal, for a host that is not net/http (gRPC, a job
// queue, a framework with its own request type): it does for the key what
// AuthenticateRequest does for a request's bearer key once it has
// resolved the client's address. The key must exist, be neither revoked
// nor expired, and addr must pass the tenant's API-key allow-list. An
// IPv4-mapped addr (::ffff:a.b.c.d) is taken as the IPv4 address it
// holds, and a zone is dropped, for the throttle and the audit log as for
// the allow-list, as AuthenticateRequest resolves a request's address.
// Invalid keys are throttled per client IP (ErrTooManyAttempts once
// locked). A revoked or expired key is audited in its tenant
// (apikey.denied) and a key denied by the allow-list too (ip.denied); a
// malformed or unknown key belongs to no tenant, so no tenant's log
// records it: it is only counted against the IP, and a flood of them
// writes nothing. A revoked or expired key used from a locked IP is
// recorded too (Meta throttled), at most once a minute for each key and
// client (an IPv6 client per Config.IPv6Prefix): junk keys cannot hide
// the use of a leaked one. A valid key denied by the allow-list is
// recorded at most once a minute for each key and client, and refused all
// the same when not recorded: one key used in a loop cannot flood its
// tenant's log. Every other failure is
// ErrUnauthenticated (a bad key) or ErrIPNotAllowed; store failures are
// ErrUnavailable. The principal carries addr, as Addr and as text in IP
// (as AuthenticateRequest's does), so that the events of the key's
// actions record it; its UserAgent is left empty, and so is that of the
// events recording a refusal.
//
// An invalid (zero) or unspecified addr (0.0.0.0, ::) means the client
// cannot be identified: any key is refused with ErrIPNotAllowed whatever
// its tenant's lists, even with none, and recorded as AuthenticateRequest
// records a key from a client whose IP it cannot resolve (the two count
// as one client): a key that exists in its tenant, at most once a minute
// for each key (ip.denied, reason unidentified, or apikey.denied with IP
// UnidentifiedIP when it is revoked or expired); a malformed or unknown
// key nowhere, and it is not counted against any address. Resolve the
// address the host trusts, as Config.Proxies does for
// AuthenticateRequest: addr is taken as given.
func (g *Guard) AuthenticateAPIKey(ctx context.Context, key string, addr netip.Addr) (Principal, error) {
	return g.authenticateKey(ctx, key, givenAddr(addr), "", nil)
}

// authenticateKey authenticates API key for AuthenticateRequest and
// AuthenticateAPIKey: presented by the client at addr (resolved,
// unmapped, without a zone; invalid: the client cannot be identified, for
// the reason cause, nil if there is none to record) with user agent ua,
// clipped here, which the principal and the events recording a refusal
// carry.
func (g *Guard) authenticateKey(ctx context.Context, key string, addr netip.Addr, ua string, cause error) (Principal, error) {
	if !addr.IsValid() {
		return Principal{}, g.unidentifiedAPIKey(ctx, key, ua, cause)
	}
	if g.stores.APIKeys == nil {
		return Principal{}, ErrUnauthenticated
	}
	k, found, err := g.lookUpAPIKey(ctx, key)
	switch {
	case err != nil:
		return Principal{}, err
	case !found:
		return Principal{}, g.badAPIKey(ctx, addr)
	}
	now := g.now()
	ip := addrString(addr)
	if !k.UsableAt(now) {
		refusal := g.badAPIKey(ctx, addr)
		throttled := errors.Is(refusal, ErrTooManyAttempts)
		if !throttled && !errors.Is(refusal, ErrUnauthenticated) {
			return Principal{}, refusal
		}
		e := unusableKeyEvent(k, ip)
		e.UserAgent = clip(ua, 512)
		if throttled {
			// Recorded all the same, or whoever holds a leaked key could
			// hide its use behind a burst of junk keys; at most once a
			// minute for each key and address, so that a key used in a
			// loop does not flood its tenant's log.
			e.Meta = map[string]string{"throttled": "true"}
			err = g.keyRefusalRecord(ctx, k.ID, ip, now, e)
		} else {
			err = g.record(ctx, e)
		}
		if err != nil {
			return Principal{}, err
		}
		return Principal{}, refusal
	}
	actor := audit.Actor{Kind: audit.ActorAPIKey, ID: k.ID}
	recordIfDue := func(e audit.Event) error { return g.keyRefusalRecord(ctx, k.ID, ip, now, e) }
	if err := g.applyIPList(ctx, k.Tenant, ipfilter.APIKeys, addr, actor, ua, recordIfDue); err != nil {
		return Principal{}, err
	}
	// The creator's standing now, for every decision the principal is
	// put to (keyBound): read here once, as a session's flags are.
	st, err := g.standingOf(ctx, k.Tenant, k.CreatedBy)
	if err != nil {
		return Principal{}, err
	}
	if now.Sub(k.LastUsedAt) >= apiKeyTouchEvery {
		if err := g.stores.APIKeys.TouchAPIKey(ctx, k.Tenant, k.ID, now.UTC().Truncate(time.Microsecond)); err != nil {
			return Principal{}, unavailable("api key", err)
		}
	}
	return Principal{Kind: KindAPIKey, Tenant: k.Tenant, KeyID: k.ID, keyCreator: k.CreatedBy, keyStanding: st, keyKnown: true,
		Addr: addr, IP: ip, UserAgent: clip(ua, 512), AuthAt: k.CreatedAt}, nil
}

// unidentifiedAPIKey refuses an API key presented with user agent ua by a
// client whose IP cannot be identified (cause, ClientAddr's error; nil
// for an address a host did not give AuthenticateAPIKey), with
// ErrIPNotAllowed whatever the key. A key that exists is recorded in its
// tenant, as AuthenticateAPIKey records a refusal: apikey.denied (reason
// revoked or expired, IP UnidentifiedIP) for a key no longer usable, else
// ip.denied (reason unidentified, as for a session); either carries the
// offending value labelled untrusted (Meta untrusted_<source>), and is
// recorded at most once a minute for each key, all unidentified clients
// counting as one address. A malformed or unknown key belongs to no tenant
// and is not recorded. Store failures give ErrUnavailable.
func (g *Guard) unidentifiedAPIKey(ctx context.Context, key, ua string, cause error) error {
	if g.stores.APIKeys == nil {
		return ErrIPNotAllowed
	}
	k, found, err := g.lookUpAPIKey(ctx, key)
	if err != nil || !found {
		return cmp.Or(err, ErrIPNotAllowed)
	}
	now := g.now()
	var e audit.Event
	if k.UsableAt(now) {
		e = unidentifiedEvent(Principal{Kind: KindAPIKey, Tenant: k.Tenant, KeyID: k.ID}, ua, cause)
		e.Target = ipfilter.APIKeys.String()
	} else {
		e = unusableKeyEvent(k, UnidentifiedIP)
		e.UserAgent, e.Meta = clip(ua, 512), untrustedMeta(cause)
	}
	if err := g.keyRefusalRecord(ctx, k.ID, UnidentifiedIP, now, e); err != nil {
		return err
	}
	return ErrIPNotAllowed
}

// lookUpAPIKey returns the stored key for key, and false if key is
// malformed or unknown; a store failure is ErrUnavailable.
func (g *Guard) lookUpAPIKey(ctx context.Context, key string) (auth.APIKey, bool, error) {
	h, err := auth.ParseAPIKey(key)
	if err != nil {
		return auth.APIKey{}, false, nil
	}
	k, err := g.stores.APIKeys.APIKeyByHash(ctx, h)
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return auth.APIKey{}, false, nil
	case err != nil:
		return auth.APIKey{}, false, unavailable("api key", err)
	}
	return k, true, nil
}

// unusableKeyEvent is the apikey.denied event of key k, revoked or
// expired, used from ip.
func unusableKeyEvent(k auth.APIKey, ip string) audit.Event {
	reason := "revoked"
	if k.RevokedAt.IsZero() {
		reason = "expired"
	}
	return audit.Event{Tenant: k.Tenant, Actor: audit.Actor{Kind: audit.ActorAPIKey, ID: k.ID}, Action: audit.APIKeyDenied,
		Target: k.ID, IP: ip, Outcome: audit.Failure, Reason: reason}
}

// keyRefusalRecord records e, a refusal of API key id used from ip (its
// action: apikey.denied or ip.denied), if it is due: the first such
// refusal in a minute from the client is (recordIfDue), so that one key
// used in a loop does not flood its tenant's log. An IPv6 client is one
// client per Config.IPv6Prefix (throttleIP), as for every per-IP limit,
// so that stepping through its block does not either; the event keeps the
// exact address. A refusal that is not due is refused all the same,
// without a record. A store failure is ErrUnavailable.
func (g *Guard) keyRefusalRecord(ctx context.Context, id, ip string, now time.Time, e audit.Event) error {
	return g.recordIfDue(ctx, "apikey-denied:"+string(e.Action)+"|"+id+"|"+g.throttleIP(ip), now, refusalRecordLimit, e)
}

// recordIfDue records e, a refusal counted under key, if it may be
// recorded under lim (refusalRecordLimit: the first in a minute is), and
// does nothing otherwise. A store failure is ErrUnavailable; a record
// that fails does not count (recordReserved).
func (g *Guard) recordIfDue(ctx context.Context, key string, now time.Time, lim auth.Limit, e audit.Event) error {
	r, err := g.reserveRecord(ctx, key, now, lim)
	if err != nil || !r.Allowed {
		return err
	}
	return g.recordReserved(ctx, key, r, e)
}

// recordReserved records e, a refusal counted under key with reservation
// r (reserveRecord, Allowed), and returns the record's error. A record
// that fails gives r back (Throttle.Release, without ctx's cancellation),
// so that the next refusal of its kind is recorded in its place: a count
// kept for a record never written would leave the refusals of the rest of
// its window recorded nowhere. A failed give-back is not reported (the
// count then stands).
func (g *Guard) recordReserved(ctx context.Context, key string, r auth.Reservation, e audit.Event) error {
	err := g.record(ctx, e)
	if err != nil {
		_ = g.stores.Throttle.Release(context.WithoutCancel(ctx), key, r)
	}
	return err
}

// reserveRecord counts a refusal under key in the throttle store, under
// lim: it may be recorded if the Reservation is Allowed, and it is the
// last recorded before the count pauses recording if the Reservation
// Locks. A store failure is ErrUnavailable.
func (g *Guard) reserveRecord(ctx context.Context, key string, now time.Time, lim auth.Limit) (auth.Reservation, error) {
	r, err := g.stores.Throttle.Reserve(ctx, key, now, lim)
	if err != nil {
		return auth.Reservation{}, unavailable("throttle", err)
	}
	return r, nil
}

// recordRefusal records e, a refusal anyone can repeat at will (a
// made-up link, a forged SAML message), unless 30 of its kind were
// recorded in the last minute (refusalBurstLimit, counted in the
// throttle store: reserveRecord): a loop of them cannot flood the
// tenant's log. Its kind is its tenant, action, target (the user it
// names; none: the tenant's count), Meta step and reason: a flood of a
// cheap refusal (junk posted to the ACS, a made-up link) must not
// silence a rarer one of the same event that only a real message or link
// can cause (a replayed assertion, a link used after the address it went
// to changed), which is on record while its own reason's count lasts. A
// refusal not recorded is refused all the same. The refusal that makes
// the count 30 is recorded with Meta recording_paused "true", so that
// the log says refusals of its kind go unrecorded for a minute from it
// (refusals counted at once may be written in another order: one
// counted before it may follow it in the log). A store failure is
// ErrUnavailable; a record that fails does not count (recordReserved):
// the next refusal of its kind is recorded in its place, marked if it is
// the 30th.
func (g *Guard) recordRefusal(ctx context.Context, e audit.Event) error {
	return g.recordRefusalOf(ctx, e, e.Target)
}

// recordActorRefusal is recordRefusal for a refusal of a signed-in actor
// (a user or an API key) that they may repeat at will: its kind is its
// tenant, action, actor (kind and ID), Meta step and reason, and not its
// target, which the actor may vary in a loop (a made-up approval ID). One
// actor's loop fills their own count only: another's refusals of the same
// event are on record while theirs lasts. Not for an actor the caller
// names (an email address typed into a form), which anyone may vary.
func (g *Guard) recordActorRefusal(ctx context.Context, e audit.Event) error {
	return g.recordRefusalOf(ctx, e, "actor\x00"+string(e.Actor.Kind)+"\x00"+e.Actor.ID)
}

// recordRefusalOf records e as recordRefusal does, with who (the event's
// target, or its actor) in place of its target in its kind.
func (g *Guard) recordRefusalOf(ctx context.Context, e audit.Event, who string) error {
	k := sha256.Sum256([]byte(strings.Join([]string{e.Tenant, string(e.Action), who, e.Meta["step"], e.Reason}, "\x00")))
	key := "refusal:" + hex.EncodeToString(k[:16])
	r, err := g.reserveRecord(ctx, key, g.now(), refusalBurstLimit)
	if err != nil || !r.Allowed {
		return err
	}
	if r.Locks {
		e.Meta = maps.Clone(e.Meta)
		if e.Meta == nil {
			e.Meta = map[string]string{}
		}
		e.Meta["recording_paused"] = "true"
	}
	return g.recordReserved(ctx, key, r, e)
}

// badAPIKey counts an invalid key against the client IP and returns
// ErrUnauthenticated, or ErrTooManyAttempts when the IP is locked.
func (g *Guard) badAPIKey(ctx context.Context, addr netip.Addr) error {
	r, err := g.stores.Throttle.Reserve(ctx, "apikey-ip:"+g.throttleIP(addrString(addr)), g.now(), apiKeyLimit)
	if err != nil {
		return unavailable("throttle", err)
	}
	if !r.Allowed {
		return ErrTooManyAttempts
	}
	return ErrUnauthenticated
}

// bearer returns the API key in r's Authorization header ("Bearer gk_…"),
// the only place a key is accepted (never a query parameter or a cookie).
// A request with more than one Authorization header, whatever they hold,
// gives an empty key, refused as a bad one: the header is not a list (RFC
// 9110 §5.3), and a proxy or firewall in front may have judged another
// of them than the one Guard would read.
func bearer(r *http.Request) (string, bool) {
	hs := r.Header["Authorization"]
	if len(hs) > 1 {
		return "", true
	}
	var h string
	if len(hs) == 1 {
		h = hs[0] // what r.Header.Get gives, without a second lookup
	}
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	return strings.TrimSpace(h[7:]), true
}
