package guard

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/sso"
)

// ssoStartLimit bounds SP-initiated logins started per client IP (each one
// stores a tracked request; an IPv6 client per prefix: throttleIP): 30 a
// minute.
var ssoStartLimit = auth.Limit{Max: 30, ResetAfter: time.Minute, LockFor: time.Minute, MaxLockFor: 15 * time.Minute}

func (g *Guard) needSSO() error {
	if g.sso == nil {
		return ErrSSONotConfigured
	}
	return nil
}

// SSOMetadata returns the tenant's service-provider metadata XML, to give
// to the tenant's IdP.
func (g *Guard) SSOMetadata(tenant string) ([]byte, error) {
	if err := g.needSSO(); err != nil {
		return nil, err
	}
	return g.sso.Metadata(tenant)
}

// SSOConnection returns the tenant's IdP connection.
func (g *Guard) SSOConnection(ctx context.Context, by Principal, tenant string) (sso.Connection, error) {
	if err := g.needSSO(); err != nil {
		return sso.Connection{}, err
	}
	if err := g.may(ctx, by, tenant, rbac.Settings, rbac.Read); err != nil {
		return sso.Connection{}, err
	}
	c, err := g.sso.Connection(ctx, tenant)
	return c, ssoErr("sso connection", err)
}

// SetSSOConnection configures the tenant's IdP (metadata XML or URL,
// the certificates its metadata must be signed with, if any, attribute
// and role mapping, just-in-time provisioning, allowed domains, the
// AuthnContextClassRefs trusted as a multi-factor login). The
// sso.configured audit event records whether metadata signatures are
// required (metadata_signed), the SHA-256 fingerprints of the
// certificates (metadata_signers, with its count and digest as
// listMeta gives them), the IdP signing certificates the connection
// trusts, those of the metadata (signing_certificates) and those added
// beside it (extra_certificates), by fingerprint likewise, the trusted
// multi-factor contexts
// (mfa_authn_contexts, space-separated, with its count and digest
// likewise), just-in-time provisioning (jit) and who gets in with which
// roles: the role mapping (group_roles, default_role, sync_roles) and the
// allowed domains (see mappingMeta).
// The role mapping may not name the owner role, nor (with RBAC) a role
// the tenant does not define (*InputError on group roles or default
// role); DeleteRole then refuses to delete a role the mapping names.
// Whoever controls the IdP can sign in as any user of the tenant, so only
// an owner may do it, with a recent authentication.
//
// A connection that cannot be recorded in the audit log does not stand:
// the tenant's previous connection is put back as it was stored (or, for a
// tenant that had none, the new one removed), and ErrUnavailable returned.
// A change made meanwhile by another owner is overwritten by that undo. If
// the undo fails, ErrUnavailable is returned too and the new connection
// stays, unrecorded.
//
// Replacing the IdP (a connection whose metadata names another entity ID
// than the stored one's) ends the sessions the old IdP vouched for: once
// the new connection is on record, every single sign-on session (FlagSSO)
// of the tenant created before the change ends (the caller's own
// included, if the old IdP signed it in), while password sessions stay,
// as do sign-ins through the new IdP after the change; see
// DeleteSSOConnection for how they are ended and recorded (reason
// idp_replaced). A sign-in through the old IdP still under way ends too:
// one that completes after the change is refused (login.failed, reason
// idp_changed). A change of the same IdP's settings or metadata ends
// nothing. Before the sessions are ended, the time of the change is kept
// with the tenant (Tenant.IdPChangedAt): the session check (Authenticate)
// ends any single sign-on session created at or before it at its next
// request (session.revoked by the system, reason idp_changed), on this
// Guard at once and on others within Config.PolicyCacheTTL. Revocations
// stand: if that time cannot be kept or the sessions cannot all be ended,
// the new connection stays (it is on record, and returned with the
// error), those ended so far stay ended (and recorded), and
// ErrUnavailable is returned; the session check ends the rest anyway,
// once the time is kept (it is kept unless ErrUnavailable came of that:
// call SetSSOConnection again, or DeleteSSOConnection, to keep it).
func (g *Guard) SetSSOConnection(ctx context.Context, by Principal, c sso.Connection) (sso.Connection, error) {
	if err := g.needSSO(); err != nil {
		return sso.Connection{}, err
	}
	if err := g.requireOwner(ctx, by, c.Tenant); err != nil {
		return sso.Connection{}, err
	}
	if err := g.requireRecentAuth(ctx, by, rbac.Settings, rbac.Manage); err != nil {
		return sso.Connection{}, err
	}
	if _, err := g.EffectivePolicy(ctx, c.Tenant); err != nil {
		return sso.Connection{}, err
	}
	if err := g.checkRoleMapping(ctx, c); err != nil {
		return sso.Connection{}, err
	}
	undo, prev, err := g.ssoUndo(ctx, c.Tenant)
	if err != nil {
		return sso.Connection{}, err
	}
	out, err := g.sso.PutConnection(ctx, c)
	if err != nil {
		return sso.Connection{}, ssoErr("set sso connection", err)
	}
	// Read after the change is stored: every session created before it
	// (by the old IdP) was created at or before cutoff.
	cutoff := g.now()
	e := g.adminEvent(by, c.Tenant, audit.SSOConfigured, c.Tenant)
	e.Meta = map[string]string{"jit": boolString(c.JIT), "idp_initiated": boolString(c.IdPInitiated), "metadata_url": clip(c.MetadataURL, 500),
		"allow_sha1": boolString(c.AllowSHA1), "allow_cbc": boolString(c.AllowCBC),
		"metadata_signed": boolString(len(out.MetadataSigningCertificates) > 0)}
	if len(out.MFAAuthnContexts) > 0 {
		listMeta(e.Meta, "mfa_authn_contexts", out.MFAAuthnContexts, " ")
	}
	if fps := certFingerprints(out.MetadataSigningCertificates); len(fps) > 0 {
		listMeta(e.Meta, "metadata_signers", fps, ",")
	}
	// Whoever holds the key of a trusted IdP signing certificate signs
	// assertions as the IdP: the record names them all.
	if fps := idpSigners(out.Metadata); len(fps) > 0 {
		listMeta(e.Meta, "signing_certificates", fps, ",")
	}
	if fps := certFingerprints(out.ExtraCertificates); len(fps) > 0 {
		listMeta(e.Meta, "extra_certificates", fps, ",")
	}
	maps.Copy(e.Meta, mappingMeta(out))
	if err := g.record(ctx, e); err != nil {
		_ = undo(context.WithoutCancel(ctx))
		return sso.Connection{}, err
	}
	if prev != nil && idpEntityID(*prev) != idpEntityID(out) {
		if err := g.idpChanged(ctx, by, c.Tenant, cutoff, "idp_replaced"); err != nil {
			return out, err
		}
	}
	return out, nil
}

// mappingMeta describes for the sso.configured event who the connection
// lets in and with which roles: group_roles, the mapping as sorted
// "group"=role pairs (the group quoted), group_roles_count and
// group_roles_sha256 (of every pair, one a line: the list is clipped to
// 1000 bytes, the digest is not), default_role, sync_roles,
// allowed_domains (sorted, space-separated, clipped likewise),
// allowed_domains_count and allowed_domains_sha256.
func mappingMeta(c sso.Connection) map[string]string {
	pairs := make([]string, 0, len(c.GroupRoles))
	for _, group := range slices.Sorted(maps.Keys(c.GroupRoles)) {
		pairs = append(pairs, strconv.Quote(group)+"="+c.GroupRoles[group])
	}
	domains := slices.Sorted(slices.Values(c.AllowedDomains))
	m := map[string]string{"default_role": clip(c.DefaultRole, 100), "sync_roles": boolString(c.SyncRoles)}
	listMeta(m, "group_roles", pairs, " ")
	listMeta(m, "allowed_domains", domains, " ")
	return m
}

// listMeta puts a list into an audit event's Meta under key: the items
// joined by sep, as many whole items as fit in 1000 bytes (a first item
// longer than that is clipped); key_count, the number of items; and
// key_sha256, the SHA-256 (hex) of every item, one a line, so that a
// clipped list is still told apart from another.
func listMeta(m map[string]string, key string, items []string, sep string) {
	const limit = 1000
	n := 0
	for i, item := range items {
		size := len(item)
		if i > 0 {
			size += len(sep)
		}
		if n+size > limit {
			break
		}
		n += size
	}
	joined := strings.Join(items, sep)
	if n == 0 {
		n = len(joined) // not even the first fits whole: clipped
	}
	sum := sha256.Sum256([]byte(strings.Join(items, "\n")))
	m[key] = clip(joined[:n], limit)
	m[key+"_count"] = itoa(len(items))
	m[key+"_sha256"] = hex.EncodeToString(sum[:])
}

// checkRoleMapping refuses a connection's role mapping (GroupRoles,
// DefaultRole) that names the owner role, which the IdP never gives, or,
// with RBAC, a role the tenant does not define, which would refuse every
// just-in-time sign-in of a user it maps, and every sync (*InputError on
// the field).
func (g *Guard) checkRoleMapping(ctx context.Context, c sso.Connection) error {
	if slices.Contains(slices.Collect(maps.Values(c.GroupRoles)), rbac.Owner) {
		return &InputError{Field: "group roles", Reason: "may not map a group to owner"}
	}
	if c.DefaultRole == rbac.Owner {
		return &InputError{Field: "default role", Reason: "may not be owner"}
	}
	if g.rbac == nil || len(c.GroupRoles) == 0 && c.DefaultRole == "" {
		return nil
	}
	defined, err := g.rbac.Roles(ctx, c.Tenant)
	if err != nil {
		return rbacErr("load roles", err)
	}
	for _, role := range c.GroupRoles {
		if !definesRole(defined, role) {
			return &InputError{Field: "group roles", Reason: "maps a group to a role the tenant does not define"}
		}
	}
	if c.DefaultRole != "" && !definesRole(defined, c.DefaultRole) {
		return &InputError{Field: "default role", Reason: "is not a role the tenant defines"}
	}
	return nil
}

// definesRole reports whether the roles defined include one named name.
func definesRole(defined []rbac.RoleInfo, name string) bool {
	return slices.ContainsFunc(defined, func(r rbac.RoleInfo) bool { return r.Name == name })
}

// ssoMapsRole reports whether the tenant's IdP connection, if any, maps a
// group (or its DefaultRole) to role.
func (g *Guard) ssoMapsRole(ctx context.Context, tenant, role string) (bool, error) {
	c, err := g.idpConnection(ctx, tenant)
	if c == nil {
		return false, err
	}
	return c.DefaultRole == role || slices.Contains(slices.Collect(maps.Values(c.GroupRoles)), role), nil
}

// idpChanged ends the sessions the tenant's IdP vouched for until cutoff,
// once its replacement or removal is on record: first it keeps cutoff
// with the tenant (TenantStore.MarkIdPChanged, to the microsecond, as
// sessions are timed), so that the session check ends each such session
// at its next request whatever happens next, and drops this Guard's
// cached copy of the tenant so that it does so at once (other replicas
// within Config.PolicyCacheTTL); then it ends them now (endIdPSessions,
// recorded with reason). A mark that fails does not stop the sweep; the
// first error is returned (ErrUnavailable, or the context's).
func (g *Guard) idpChanged(ctx context.Context, by Principal, tenant string, cutoff time.Time, reason string) error {
	merr := g.stores.Tenants.MarkIdPChanged(ctx, tenant, cutoff.UTC().Truncate(time.Microsecond))
	g.policies.forget(tenant)
	_, err := g.endIdPSessions(ctx, by, tenant, cutoff, reason)
	if merr != nil {
		return unavailable("mark idp changed", merr)
	}
	return err
}

// idpEntityID returns the entity ID of the IdP a connection's metadata
// names, or "" if it does not parse.
func idpEntityID(c sso.Connection) string {
	idp, err := sso.ParseMetadata([]byte(c.Metadata), time.Time{})
	if err != nil {
		return ""
	}
	return idp.EntityID
}

// idpStill returns "" if the tenant's IdP is still the one with entity ID
// idp, else why not: the reason and error of a refused sign-in (reason
// idp_changed if it was replaced or removed, unavailable if the
// connection cannot be read).
func (g *Guard) idpStill(ctx context.Context, tenant, idp string) (string, error) {
	c, err := g.sso.Connection(ctx, tenant)
	switch {
	case errors.Is(err, sso.ErrNotFound):
		return ReasonIdPChanged, ErrSSOFailed
	case err != nil:
		return ReasonUnavailable, ssoErr("sso connection", err)
	case idpEntityID(c) != idp:
		return ReasonIdPChanged, ErrSSOFailed
	}
	return "", nil
}

// endIdPSessions ends the tenant's single sign-on sessions (FlagSSO)
// created at or before cutoff, when the tenant's IdP was replaced or
// removed: the sessions it vouched for. A tenant has one IdP at a time,
// so every such session came from the IdP in place until cutoff; those
// created after it (through a new IdP) and password sessions are left
// alone. Users are read page by page, and each user's matching sessions
// are ended (session.Manager.RevokeUserWhere) and recorded as
// session.revoked by by (Target the user, Meta reason, sessions_ended)
// when any live one ended. It returns how many live sessions it ended;
// on a failure, those so far and the error (ErrUnavailable, or the
// context's): the sessions ended stay ended.
func (g *Guard) endIdPSessions(ctx context.Context, by Principal, tenant string, cutoff time.Time, reason string) (int, error) {
	vouched := func(s session.Session) bool { return s.Flags&FlagSSO != 0 && !s.CreatedAt.After(cutoff) }
	n := 0
	err := g.eachUser(ctx, tenant, func(u auth.UserSummary) error {
		ended, err := g.sessions.RevokeUserWhere(ctx, tenant, u.ID, vouched)
		// By their own limits: the change of IdP being swept is in the
		// tenant's policy already (endedLive would count none).
		k, rerr := g.recordEnded(ctx, by, tenant, u.ID, reason, liveCount(ended, g.now()))
		n += k
		switch {
		case err != nil:
			return unavailable("end sso sessions", err)
		case rerr != nil:
			return rerr
		}
		return nil
	})
	return n, err
}

// ssoUndo reads the tenant's IdP connection and returns what puts it back
// as stored, whatever replaces or removes it meanwhile: the undo of a
// change that cannot be recorded; and the connection read (nil if none).
// For a tenant without a connection, the undo removes the one stored
// since, if any.
func (g *Guard) ssoUndo(ctx context.Context, tenant string) (func(context.Context) error, *sso.Connection, error) {
	prev, err := g.sso.Connection(ctx, tenant)
	switch {
	case errors.Is(err, sso.ErrNotFound):
		return func(ctx context.Context) error {
			if err := g.stores.SSO.Connections.DeleteConnection(ctx, tenant); err != nil && !errors.Is(err, sso.ErrNotFound) {
				return err
			}
			return nil
		}, nil, nil
	case err != nil:
		return nil, nil, ssoErr("sso connection", err)
	}
	return func(ctx context.Context) error { return g.stores.SSO.Connections.PutConnection(ctx, prev) }, &prev, nil
}

// certFingerprints returns the SHA-256 fingerprints (hex of the DER) of
// PEM certificates: what an audit event names them by, never their PEM.
func certFingerprints(pems []string) []string {
	var ders [][]byte
	for _, p := range pems {
		if b, _ := pem.Decode([]byte(p)); b != nil {
			ders = append(ders, b.Bytes)
		}
	}
	return fingerprints(ders)
}

// fingerprints returns the SHA-256 fingerprints (hex) of DER
// certificates.
func fingerprints(ders [][]byte) []string {
	fps := make([]string, len(ders))
	for i, d := range ders {
		sum := sha256.Sum256(d)
		fps[i] = hex.EncodeToString(sum[:])
	}
	return fps
}

// DeleteSSOConnection removes the tenant's IdP (owners only). A tenant
// that requires SSO must turn that off first (*PolicyError): the policy
// is read from the store, not the cache, before the removal and again
// after it, and if a change requiring SSO came between (SetPolicy, which
// checks the IdP again once its change is written, refuses one that sees
// the removal), the connection is put back as it was stored. A removal
// that cannot be
// recorded in the audit log does not stand: the connection is put back as
// it was stored, and ErrUnavailable returned (if that fails too, the
// connection stays removed, unrecorded, and ErrUnavailable is returned).
//
// Once the removal is on record, the sessions the IdP vouched for end:
// every single sign-on session (FlagSSO) of the tenant created before the
// removal, user by user, each user's recorded as session.revoked (Meta
// reason idp_removed, sessions_ended) when any live one ended; password
// sessions stay. A sign-in through the IdP still under way is refused
// when it completes (login.failed, reason idp_changed). Before the
// sessions are ended, the time of the removal is kept with the tenant, so
// that the session check ends any left, as for a replacement (see
// SetSSOConnection). Revocations stand: if that time cannot be kept or
// the sessions cannot all be ended, the IdP stays removed, those ended so
// far stay ended, and ErrUnavailable is returned; the session check ends
// the rest anyway once the time is kept. Calling DeleteSSOConnection
// again finishes the job: for a tenant without an IdP it keeps the time
// again, ends every single sign-on session left and returns
// sso.ErrNotFound.
func (g *Guard) DeleteSSOConnection(ctx context.Context, by Principal, tenant string) error {
	if err := g.needSSO(); err != nil {
		return err
	}
	if err := g.requireOwner(ctx, by, tenant); err != nil {
		return err
	}
	if err := g.keepIdP(ctx, tenant); err != nil {
		return err
	}
	undo, _, err := g.ssoUndo(ctx, tenant)
	if err != nil {
		return err
	}
	if err := g.sso.DeleteConnection(ctx, tenant); err != nil {
		if errors.Is(err, sso.ErrNotFound) {
			// No IdP: no single sign-on session is vouched for any more.
			if err := g.idpChanged(ctx, by, tenant, g.now(), "idp_removed"); err != nil {
				return err
			}
		}
		return ssoErr("delete sso connection", err)
	}
	// A SetPolicy requiring SSO may have checked the IdP before the
	// removal and written after the check above: read again now the IdP
	// is gone (each side writes, then reads the other's), and put it back
	// if the tenant requires SSO (or that cannot be read).
	if err := g.keepIdP(ctx, tenant); err != nil {
		if uerr := undo(context.WithoutCancel(ctx)); uerr != nil {
			return unavailable("undo sso connection", uerr)
		}
		return err
	}
	cutoff := g.now()
	e := g.adminEvent(by, tenant, audit.SSOConfigured, tenant)
	e.Meta = map[string]string{"deleted": "true"}
	if err := g.record(ctx, e); err != nil {
		_ = undo(context.WithoutCancel(ctx))
		return err
	}
	return g.idpChanged(ctx, by, tenant, cutoff, "idp_removed")
}

// keepIdP refuses the removal of the tenant's IdP while the tenant
// requires SSO (*PolicyError). The policy is read from the store, not the
// cache, as keepBreakGlass reads it.
func (g *Guard) keepIdP(ctx context.Context, tenant string) error {
	t, err := g.Tenant(ctx, tenant)
	if err != nil {
		return err
	}
	if t.Policy.RequireSSO {
		return &PolicyError{Field: "RequireSSO", Reason: "is on: turn it off before removing the IdP"}
	}
	return nil
}

// requireOwner allows the system, and users holding the owner role (any
// tenant user when RBAC is off). An API key is refused (reason
// owner_only) whatever its roles: these are people's decisions, and a
// key's own owner role would outlast its creator's.
func (g *Guard) requireOwner(ctx context.Context, by Principal, tenant string) error {
	if err := g.may(ctx, by, tenant, rbac.Settings, rbac.Manage); err != nil {
		return err
	}
	if by.Kind == KindSystem || g.rbac == nil {
		return nil
	}
	if by.Kind != KindUser {
		return g.denied(ctx, by, rbac.Settings, rbac.Manage, "owner_only")
	}
	roles, err := g.rbac.RolesOf(ctx, tenant, by.subject())
	if err != nil {
		return rbacErr("roles", err)
	}
	if !slices.Contains(roles, rbac.Owner) {
		return g.denied(ctx, by, rbac.Settings, rbac.Manage, "owner_only")
	}
	return nil
}

// SSOStart is a request to start an SP-initiated SSO login.
type SSOStart struct {
	Tenant string
	// ReturnTo is the relative path to go to after the login ("" for the
	// default); anything that is not a safe local path is refused.
	ReturnTo string
	// Binding is a new random value for every login start, which the
	// host also puts in a short-lived __Host- cookie (Secure, HttpOnly,
	// Path=/, SameSite=None; never adopting a value the browser brings)
	// and passes again to CompleteSSO: it ties the login to this browser
	// (no login CSRF). It may not hold a NUL byte (*InputError).
	Binding string
	// IP of the client: logins started are limited per IP.
	IP string
	// ForceAuthn asks the IdP to authenticate the user again even if it
	// has a session (a step-up by single sign-on).
	ForceAuthn bool
	// RequireMFA asks the IdP for a multi-factor login: the AuthnRequest
	// names the connection's MFAAuthnContexts (a RequestedAuthnContext,
	// Comparison exact), for a user RequireMFA refused. With ForceAuthn, so
	// that the IdP does not answer from a session it opened with one
	// factor. The session gets FlagMFA only if the IdP's answer asserts
	// one of them. A connection without MFAAuthnContexts gives
	// sso.ErrNoMFAContexts.
	RequireMFA bool
	// Replaces is the ID (Principal.SessionID) of the session the browser
	// is signed in with when the login starts: that of the principal its
	// request to start the login authenticated as (PrincipalFrom), ""
	// for none. The sign-in replaces it: CompleteSSO ends it before it
	// creates the new session (see SSOResponse.Replaces), so that it
	// neither outlives the sign-in (perhaps another user's session, on a
	// shared computer) nor fills the session limit against its own
	// replacement (a step-up under OnSessionLimit RefuseNewSession). The
	// session cookie (SameSite=Lax) is not sent with the IdP's cross-site
	// POST to the ACS, so this request is where the host sees it. It is
	// committed in the tracked request with Binding, which it needs
	// (*InputError without one, or for an ID that is not one). An
	// IdP-initiated answer, which no StartSSO began, replaces nothing.
	Replaces string
}

// StartSSO starts an SP-initiated login at the tenant's IdP: send the
// browser to the returned Login's RedirectURL, or serve its Form. The
// AuthnRequest is tracked server-side, so the response must answer it.
// It returns sso.ErrNotFound if the tenant has no IdP, and
// sso.ErrNoMFAContexts for RequireMFA when its connection lists no
// MFAAuthnContexts.
func (g *Guard) StartSSO(ctx context.Context, req SSOStart) (*sso.Login, error) {
	if err := g.needSSO(); err != nil {
		return nil, err
	}
	if _, err := g.EffectivePolicy(ctx, req.Tenant); err != nil {
		return nil, err
	}
	if err := checkClientIP(req.IP); err != nil {
		return nil, err
	}
	if err := checkReplaces(req.Replaces); err != nil {
		return nil, err
	}
	if req.Replaces != "" && req.Binding == "" {
		return nil, &InputError{Field: "replaces", Reason: "needs a binding"}
	}
	if err := checkBinding(req.Binding); err != nil {
		return nil, err
	}
	if req.IP != "" {
		r, err := g.stores.Throttle.Reserve(ctx, "sso-start:"+g.throttleIP(req.IP), g.now(), ssoStartLimit)
		if err != nil {
			return nil, unavailable("throttle", err)
		}
		if !r.Allowed {
			return nil, ErrTooManyAttempts
		}
	}
	l, err := g.sso.StartLogin(ctx, req.Tenant, sso.LoginOptions{ReturnTo: req.ReturnTo, Binding: ssoBinding(req.Binding, req.Replaces),
		ForceAuthn: req.ForceAuthn, RequireMFA: req.RequireMFA})
	return l, ssoErr("start sso", err)
}

// checkReplaces refuses a replaced session's ID (SSOStart.Replaces,
// SSOResponse.Replaces) that is not one (*InputError); "" is none.
func checkReplaces(id string) error {
	if id == "" {
		return nil
	}
	if _, err := session.ParseID(id); err != nil {
		return &InputError{Field: "replaces", Reason: "is not a session ID"}
	}
	return nil
}

// checkBinding refuses a browser binding (SSOStart.Binding,
// SSOResponse.Binding) holding a NUL byte (*InputError): the separator of
// ssoBinding, or "b\x00<id>" given at the ACS would match the commitment
// of a login started with binding b replacing session id, and complete it
// without ending that session.
func checkBinding(b string) error {
	if strings.ContainsRune(b, 0) {
		return &InputError{Field: "binding", Reason: "contains a NUL byte"}
	}
	return nil
}

// ssoBinding is the browser binding package sso tracks for a login: the
// host's, followed by a NUL byte and the ID of the session the login
// replaces, if any. A binding given to StartSSO holds no NUL and a
// session ID none either, so one commitment is never another's: the
// answer's binding and replaced session must both be the start's for
// package sso to accept it.
func ssoBinding(binding, replaces string) string {
	if replaces == "" {
		return binding
	}
	return binding + "\x00" + replaces
}

// SSOResponse is a POST to a tenant's assertion consumer service.
type SSOResponse struct {
	Tenant  string
	Request *http.Request // the POST, with SAMLResponse and RelayState
	// Binding is the value of the binding cookie set by StartSSO's caller.
	// One holding a NUL byte is refused (*InputError).
	Binding string
	// Replaces is SSOStart.Replaces of the login answered, which the host
	// keeps with the binding (in its cookie: the session cookie is not
	// sent with the IdP's POST), "" for none. It must be the start's: any
	// other value, as any other binding, refuses the answer
	// (sso.ReasonBindingMismatch), so only the session that the browser
	// which started the login was signed in with can be named.
	Replaces      string
	IP, UserAgent string
}

// CompleteSSO verifies a SAML response (hardened beyond crewjam's checks:
// see package sso) and signs the user in through the same pipeline as a
// password login: the tenant's IP allow-list, deactivated users refused,
// the session limit, audit. The user is found by the asserted email, or
// created when the connection allows just-in-time provisioning (with the
// mapped roles, never owner). An account created meanwhile with the same
// address (two first sign-ins of one user at once, or an administrator's
// CreateUser) is taken as found, with the checks below. The session ends no later than the IdP
// asked. Every refusal is ErrSSOFailed for the browser; the precise reason
// is in the sso.failed event. The refusals of a response before it is
// accepted (a client IP over 64 bytes, and all of package sso's: a bad
// signature, an unknown IdP, a replay, ...), which anyone may post in a
// loop, are recorded at most 30 times a minute for the tenant and
// reason, so that they cannot flood its log: the ones beyond are refused
// all the same, unrecorded (the 30th recorded carries Meta
// recording_paused "true"). Each reason is counted apart: a loop of junk
// (malformed, signature_invalid, ...) does not silence the refusal of a
// real assertion (a captured one replayed: request_unknown, replayed). The refusals after it (an IP allow-list, an unknown or
// deactivated user, ...) are always recorded.
//
// The email is not all: an assertion whose NameID is persistent (the
// IdP's stable name for one person) is refused for an account whose kept
// subject (Stores.SSO.Subjects, from its last SSO sign-in) is another
// persistent NameID from the same IdP (ReasonSubjectMismatch, the
// account as the event's actor, the two NameIDs in its detail; nothing
// synced onto it): another person at the IdP, who may have set their
// email there to the account's. Other NameID formats are matched by
// email alone, and so is an account whose subject expired (it lasts the
// tenant's SessionLifetime after the last SSO sign-in) or was kept
// before the tenant replaced or removed its IdP (Tenant.IdPChangedAt
// after User.LastSSOAt): the sign-in links it anew. See otherSubject.
//
// An account whose address is unverified (User.EmailUnverified: set by
// the user's own ChangeEmail, perhaps to a colleague's address before the
// tenant had an IdP) is never matched: the sign-in is refused
// (ReasonEmailUnverified, the account as the event's actor) and nothing,
// roles included, is synced onto it. It is resolved when the address is
// proved, by whoever receives its mail: through RequestEmailChange and
// ConfirmEmailChange of that same address, or a password-reset link
// (ForgotPassword, or an administrator's SendInvitation) used with
// ResetPassword. Or an administrator who finds the claim false deletes
// the account (the refused event names it), which frees the address for
// the IdP's user, provisioned just in time if the connection allows it.
//
// On success, LoginResult.ReturnTo is where to send the browser, and the
// user's LastSSOAt is set (see UserAccess.SSO).
//
// The session the browser was signed in with when the login started
// (SSOResponse.Replaces, of an answer to a request started with a
// binding) ends once the answer is accepted and the user may sign in,
// before the new session is created: whoever it belongs to, as a
// sign-in replaces the session a browser had (it is recorded as that
// session's audit.Logout, with the sign-in's client address), and so it
// does not count against the session limit, under which a step-up
// (SSOStart.ForceAuthn) of a user at the limit with RefuseNewSession
// would otherwise be refused. A session already ended is left at that;
// a store failure refuses the sign-in (ErrUnavailable) with the session
// as it was or ended. It stays ended if the sign-in fails after.
//
// The session has FlagMFA when the assertion's AuthnContextClassRef (of
// every AuthnStatement, if it has several) is one of the connection's
// MFAAuthnContexts: the IdP says the user signed in with more than one
// factor. That is about how the user signed in, not when: an IdP that
// answered from an older session of its own (a stale AuthnInstant) still
// gives FlagMFA, beside FlagStaleAuthn, which makes step-up checks ask
// for a new sign-in. The sso.succeeded and login.succeeded events record
// the class reference (authn_context) and whether it counted
// (sso.succeeded idp_mfa; login.succeeded mfa=idp).
func (g *Guard) CompleteSSO(ctx context.Context, resp SSOResponse) (LoginResult, string, error) {
	if err := g.needSSO(); err != nil {
		return LoginResult{}, "", err
	}
	pol, err := g.EffectivePolicy(ctx, resp.Tenant)
	if err != nil {
		return LoginResult{}, "", err
	}
	a := attempt{req: LoginRequest{Tenant: resp.Tenant, IP: resp.IP, UserAgent: clip(resp.UserAgent, 1024)}}
	refusal := func(reason, detail string) audit.Event {
		e := a.event(audit.SSOFailed, audit.Failure, reason)
		if detail != "" {
			e.Meta = map[string]string{"detail": clip(detail, 500)}
		}
		return e
	}
	fail := func(reason, detail string, err error) error {
		return cmp.Or(g.record(ctx, refusal(reason, detail)), err)
	}
	// A response refused before it is accepted, which anyone may post in
	// a loop, is recorded at most 30 times a minute for the tenant and
	// reason (recordRefusal: the event names no user yet).
	reject := func(reason, detail string, err error) error {
		return cmp.Or(g.recordRefusal(ctx, refusal(reason, detail)), err)
	}
	// Before the response is checked (and its request used up).
	if err := checkClientIP(resp.IP); err != nil {
		return LoginResult{}, "", reject(ReasonBadInput, "", err)
	}
	if err := checkReplaces(resp.Replaces); err != nil {
		return LoginResult{}, "", reject(ReasonBadInput, "", err)
	}
	if err := checkBinding(resp.Binding); err != nil {
		return LoginResult{}, "", reject(ReasonBadInput, "", err)
	}
	res, err := g.sso.ACS(ctx, resp.Tenant, resp.Request, ssoBinding(resp.Binding, resp.Replaces))
	if err != nil {
		var re *sso.RejectError
		if errors.As(err, &re) {
			return LoginResult{}, "", reject(string(re.Reason), re.Detail, ErrSSOFailed)
		}
		var ie *sso.InputError
		if errors.As(err, &ie) || errors.Is(err, sso.ErrNotFound) {
			return LoginResult{}, "", reject("not_configured", "", ErrSSOFailed)
		}
		if noSSO(err) {
			// Answered, unrecorded, as on a Guard without Config.SSO.
			return LoginResult{}, "", ErrSSONotConfigured
		}
		return LoginResult{}, "", reject(ReasonUnavailable, "", unavailable("sso", err))
	}
	a.email = res.Email
	if err := g.checkIPString(ctx, resp.Tenant, ipfilter.Users, resp.IP, a.actor(), resp.UserAgent); err != nil {
		reason := ReasonUnavailable
		if errors.Is(err, ErrIPNotAllowed) {
			reason = ReasonIPDenied
		}
		return LoginResult{}, "", fail(reason, "", err)
	}
	u, err := g.stores.Users.UserByEmail(ctx, resp.Tenant, res.Email)
	provisioned := false
	if errors.Is(err, auth.ErrNotFound) && res.JIT {
		u, err = g.provision(ctx, resp.Tenant, res)
		switch {
		case err == nil:
			provisioned = true
		case errors.Is(err, ErrEmailTaken):
			// Created since the look-up: by another first sign-in of the
			// same user (a retried POST, a second tab) or by an
			// administrator. Taken as found, with the same checks.
			u, err = g.stores.Users.UserByEmail(ctx, resp.Tenant, res.Email)
			if errors.Is(err, auth.ErrNotFound) {
				// And deleted again meanwhile.
				return LoginResult{}, "", fail("provisioning", ErrEmailTaken.Error(), ErrSSOFailed)
			}
		case errors.Is(err, ErrUnavailable):
			return LoginResult{}, "", fail(ReasonUnavailable, "", err)
		default:
			return LoginResult{}, "", fail("provisioning", err.Error(), ErrSSOFailed)
		}
	}
	switch {
	case provisioned:
	case errors.Is(err, auth.ErrNotFound):
		return LoginResult{}, "", fail(ReasonUnknownUser, "", ErrSSOFailed)
	case err != nil:
		return LoginResult{}, "", fail(ReasonUnavailable, "", unavailable("load user", err))
	case u.EmailUnverified:
		// Whoever set the address never proved it is theirs: the IdP's
		// user may be someone else. Nothing is synced onto the account.
		a.user = &u
		return LoginResult{}, "", fail(ReasonEmailUnverified, "", ErrSSOFailed)
	case u.Status != auth.StatusActive:
		// Refused before anything is synced onto the account.
		a.user = &u
		return LoginResult{}, "", fail(ReasonDeactivated, "", ErrSSOFailed)
	}
	if !provisioned {
		// Another person at the same IdP with the account's address:
		// refused before anything is synced onto the account.
		if reason, detail, err := g.otherSubject(ctx, u, res); reason != "" {
			a.user = &u
			return LoginResult{}, "", fail(reason, detail, err)
		}
	}
	if !provisioned && res.SyncRoles && g.rbac != nil {
		if err := g.syncRoles(ctx, u, res.Roles); err != nil {
			if errors.Is(err, ErrUnavailable) {
				// A store failure, not the IdP's answer: 503, as the
				// other store failures of a sign-in.
				return LoginResult{}, "", fail(ReasonUnavailable, "", err)
			}
			return LoginResult{}, "", fail("role_sync", err.Error(), ErrSSOFailed)
		}
	}
	a.user = &u
	if u.Status != auth.StatusActive {
		return LoginResult{}, "", fail(ReasonDeactivated, "", ErrSSOFailed)
	}
	ok := a.event(audit.SSOSucceeded, audit.Success, "")
	ok.Meta = map[string]string{"idp": clip(res.IdPEntityID, 300), "name_id": clip(res.NameID, 300), "assertion": clip(res.AssertionID, 200),
		"idp_mfa": boolString(res.MFA)}
	if res.IdPInitiated {
		ok.Meta["idp_initiated"] = "true"
	}
	if res.AuthnContext != "" {
		ok.Meta["authn_context"] = clip(res.AuthnContext, 256)
	}
	if err := g.record(ctx, ok); err != nil {
		return LoginResult{}, "", err
	}
	// Only a session committed with the binding the browser presented:
	// an unsolicited answer, or one to a login started without a
	// binding, checked no binding, so its Replaces names nothing.
	if resp.Replaces != "" && res.Bound {
		if err := g.endReplaced(ctx, resp); err != nil {
			return LoginResult{}, "", fail(ReasonUnavailable, "", err)
		}
	}
	sub := &sso.Subject{Tenant: u.Tenant, UserID: u.ID, IdP: res.IdPEntityID, NameID: res.NameID, SessionIndex: res.SessionIndex}
	if len(res.NameIDFormat) <= maxNameIDFormat {
		sub.NameIDFormat = res.NameIDFormat
	}
	si := signIn{flags: FlagSSO, endBy: res.SessionNotOnOrAfter, subject: sub, meta: map[string]string{"method": "sso"}}
	if res.AuthnContext != "" {
		si.meta["authn_context"] = clip(res.AuthnContext, 256)
	}
	if res.MFA {
		// The IdP's multi-factor login, trusted by the tenant's connection
		// (sso.Connection.MFAAuthnContexts). Kept apart from freshness:
		// FlagStaleAuthn below says when, this says how.
		si.flags |= FlagMFA
		si.meta["mfa"] = "idp"
	}
	if !g.freshAuthn(res.AuthnInstant) {
		si.flags |= FlagStaleAuthn
		si.meta["authn_stale"] = "true"
	}
	lr, err := g.proceed(ctx, a, pol, gate{}, si)
	return lr, res.ReturnTo, err
}

// endReplaced ends the session an SSO sign-in replaces
// (SSOResponse.Replaces, already checked against the login's binding),
// followed through its rotations (a step-up in another tab while the user
// was at the IdP), as its own Logout: recorded as audit.Logout by its
// user, with the sign-in's client address (Meta via rotated_token when
// reached through a rotation, as LogoutToken records it). One found past
// its own idle timeout or lifetime, or that the tenant's policy no longer
// allowed, is recorded as Authenticate would have recorded its end
// (session.expired, or session.revoked by the system: endedBefore). One
// already gone is left at that; a store failure is ErrUnavailable.
func (g *Guard) endReplaced(ctx context.Context, resp SSOResponse) error {
	h, err := session.ParseID(resp.Replaces)
	if err != nil {
		return nil // checked before
	}
	s, rotated, err := g.sessions.RevokeLineageHash(ctx, h)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return nil
	case err != nil:
		return unavailable("end session", err)
	}
	if ended, ok := g.endedBefore(ctx, &s); ok {
		return g.record(ctx, ended)
	}
	e := g.adminEvent(Principal{Kind: KindUser, Tenant: s.Tenant, UserID: s.UserID, IP: resp.IP, UserAgent: resp.UserAgent},
		s.Tenant, audit.Logout, s.ID())
	if rotated {
		e.Meta = map[string]string{"via": "rotated_token"}
	}
	return g.record(ctx, e)
}

// otherSubject returns "" if the assertion res may sign in u, an
// existing user found by the asserted email, as far as who u is at the
// IdP goes; else why not (reason, detail and error of a refused
// sign-in). A persistent NameID is the IdP's stable, never reassigned
// name for one person: when res has one and u's kept subject
// (Stores.SSO.Subjects) is a persistent NameID from the same IdP
// (entity ID) and another, the assertion is about another person
// (reason subject_mismatch, ErrSSOFailed), who may have set their email
// at the IdP to u's. The address alone decides (the subject is replaced
// at sign-in, as before) when res's NameID is of another format
// (transient, unspecified, emailAddress: no stable name to compare),
// when u has no kept subject (none kept yet, or expired: it lasts the
// tenant's SessionLifetime after u's last SSO sign-in), when it was kept
// from another IdP, and when the tenant replaced or removed its IdP
// (Tenant.IdPChangedAt, read from the store) after u's last SSO sign-in
// (User.LastSSOAt): the IdP then may name u anew. A store failure is
// reason unavailable.
func (g *Guard) otherSubject(ctx context.Context, u auth.User, res *sso.Result) (string, string, error) {
	if res.NameIDFormat != nameIDPersistent {
		return "", "", nil
	}
	sub, err := g.ssoSubject(ctx, u.Tenant, u.ID)
	switch {
	case errors.Is(err, sso.ErrNotFound):
		return "", "", nil
	case err != nil:
		return ReasonUnavailable, "", unavailable("sso subject", err)
	case sub.IdP != res.IdPEntityID || sub.NameIDFormat != nameIDPersistent || sub.NameID == res.NameID:
		return "", "", nil
	}
	t, err := g.Tenant(ctx, u.Tenant)
	if err != nil {
		return ReasonUnavailable, "", err
	}
	if !t.IdPChangedAt.IsZero() && !u.LastSSOAt.After(t.IdPChangedAt) {
		return "", "", nil // kept before the IdP changed
	}
	return ReasonSubjectMismatch, "persistent NameID " + strconv.Quote(clip(res.NameID, 200)) + " is not the account's " +
		strconv.Quote(clip(sub.NameID, 200)), ErrSSOFailed
}

// maxAuthnAge is how old an IdP's AuthnInstant may be for the sign-in to
// count as a recent authentication: the IdP's own login and the round trip
// to the ACS, with some clock skew.
const maxAuthnAge = 2 * time.Minute

// freshAuthn reports whether an IdP authenticated the user at instant
// recently enough for the sign-in to count as a full authentication (and
// so satisfy step-up checks for Config.StepUpWindow): within maxAuthnAge,
// or the step-up window if shorter, either side of now. A missing
// AuthnInstant is not fresh.
func (g *Guard) freshAuthn(instant time.Time) bool {
	if instant.IsZero() {
		return false
	}
	age := g.now().Sub(instant)
	return age.Abs() <= min(maxAuthnAge, g.stepUp)
}

// provision creates a user for a first SSO login (just-in-time), without
// a password, with the mapped roles. A store failure, reading the new
// user back included, is ErrUnavailable.
func (g *Guard) provision(ctx context.Context, tenant string, res *sso.Result) (auth.User, error) {
	roles := slices.DeleteFunc(slices.Clone(res.Roles), func(r string) bool { return r == rbac.Owner })
	if g.rbac == nil {
		roles = nil
	}
	nu, err := g.CreateUser(ctx, System("sso"), NewUser{Tenant: tenant, Email: res.Email, Name: res.Name, Roles: roles})
	if err != nil {
		return auth.User{}, err
	}
	u, err := g.stores.Users.User(ctx, tenant, nu.ID)
	if err != nil {
		return auth.User{}, unavailable("load user", err)
	}
	return u, nil
}

// syncRoles makes the user's roles those the IdP's groups map to (owner
// excepted: it is never given nor taken by the IdP). Nothing changes
// unless every wanted role is one the tenant defines (a mapped role
// deleted since gives rbac.ErrRoleNotFound, naming it). Then the roles
// the IdP no longer gives are taken away first, and only then the new
// ones granted: removals only lower privilege, so a sync that fails part
// way (a store failure) never leaves the user a role the IdP took away,
// at worst fewer roles than the IdP gives, until the next sign-in.
func (g *Guard) syncRoles(ctx context.Context, u auth.User, want []string) error {
	sub := rbac.User(u.ID)
	have, err := g.rbac.RolesOf(ctx, u.Tenant, sub)
	if err != nil {
		return rbacErr("roles", err)
	}
	defined, err := g.rbac.Roles(ctx, u.Tenant)
	if err != nil {
		return rbacErr("load roles", err)
	}
	for _, r := range want {
		if r != rbac.Owner && !definesRole(defined, r) {
			return fmt.Errorf("%w: %q", rbac.ErrRoleNotFound, clip(r, 100))
		}
	}
	sys := System("sso")
	for _, r := range have {
		if r != rbac.Owner && !slices.Contains(want, r) {
			if err := g.RevokeRole(ctx, sys, u.Tenant, sub.String(), r); err != nil {
				return err
			}
		}
	}
	for _, r := range want {
		if r != rbac.Owner && !slices.Contains(have, r) {
			if err := g.GrantRole(ctx, sys, u.Tenant, sub.String(), r); err != nil {
				return err
			}
		}
	}
	return nil
}

// LogoutSSO ends the principal's Guard session and, when the tenant's IdP
// has a single logout endpoint, returns the URL to send the browser to so
// the IdP ends its session too ("" otherwise: the local logout is all
// there is). Guard's session ends first, whatever the IdP does.
//
// The LogoutRequest names the user as the IdP did at their last SSO
// sign-in (NameID, its format and the IdP's SessionIndex, kept in
// Stores.SSO.Subjects); without a kept subject, by email address, which
// only an IdP that identifies users by email can match.
//
// A kept subject is named only to the IdP that issued it (sso.Subject.IdP):
// when the tenant has replaced its IdP since the user signed in, the new
// IdP never learns the old one's NameID or session, and the logout is
// local only ("" returned), as it is for a subject kept before Guard
// recorded its IdP (which IdP issued it is unknown).
func (g *Guard) LogoutSSO(ctx context.Context, p Principal, returnTo string) (string, error) {
	if err := g.Logout(ctx, p); err != nil {
		return "", err
	}
	if g.sso == nil || p.Flags&FlagSSO == 0 {
		return "", nil
	}
	opts := sso.LogoutOptions{ReturnTo: returnTo}
	if sub, err := g.ssoSubject(ctx, p.Tenant, p.UserID); err == nil {
		if sub.IdP == "" {
			return "", nil // whose it is is unknown: named to no IdP
		}
		// StartLogout sends nothing (sso.ErrOtherIdP) unless sub.IdP is
		// the tenant's IdP, judged on the connection it would send to.
		opts.NameID, opts.NameIDFormat, opts.SessionIndex, opts.IdP = sub.NameID, sub.NameIDFormat, sub.SessionIndex, sub.IdP
	} else {
		u, err := g.stores.Users.User(ctx, p.Tenant, p.UserID)
		if err != nil {
			return "", nil // the session is over; the IdP's is not ours to force
		}
		opts.NameID, opts.NameIDFormat = u.Email, nameIDEmail
	}
	lo, err := g.sso.StartLogout(ctx, p.Tenant, opts)
	if err != nil {
		return "", nil
	}
	return lo.RedirectURL, nil
}

// NameID formats: an email address, and the IdP's persistent, opaque
// name of one person.
const (
	nameIDEmail      = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	nameIDPersistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
)

// maxNameIDFormat is the longest NameID format kept for single logout (a
// URI; a longer one is left out of the LogoutRequest).
const maxNameIDFormat = 256

// ssoSubject returns the user's kept IdP subject, or sso.ErrNotFound when
// none is kept (or no store keeps them).
func (g *Guard) ssoSubject(ctx context.Context, tenant, userID string) (sso.Subject, error) {
	if g.stores.SSO.Subjects == nil {
		return sso.Subject{}, sso.ErrNotFound
	}
	return g.stores.SSO.Subjects.Subject(ctx, tenant, userID, g.now())
}

// HandleSLO processes a request to the tenant's single logout URL: the
// IdP's answer to LogoutSSO (returns where to send the browser), or the
// IdP asking to end a user's sessions (returns the URL that answers the
// IdP). The user is the one whose last SSO sign-in, through the IdP that
// sent the request (its verified Issuer), had the request's NameID
// (Stores.SSO.Subjects): a NameID another IdP issued (one the tenant has
// since replaced, or an unknown one: a subject kept before Guard recorded
// its IdP) names nobody to this one. When no subject of this IdP has the
// NameID, the user is the one whose email is the NameID, unless that
// address is unverified (as CompleteSSO, which never signs such an
// account in): the tenant's IdP signs users in by email, so an email
// names the same user whichever IdP sends it. Every session of that user ends,
// whatever SessionIndex the request names: a logout from the IdP never
// leaves a Guard session of the person behind. A store failure answers nothing to the IdP
// (ErrUnavailable), so it does not take the logout as done. A tenant that
// does not exist is ErrTenantNotFound, and nothing is recorded. A message
// package sso refuses (a bad signature, an unknown IdP, a replay, ...) is
// ErrSSOFailed, recorded as a refused sso.failed event (Meta step logout)
// at most 30 times a minute for the tenant and reason, counted apart from
// CompleteSSO's: anyone may post them in a loop, and they must not flood
// the log (the ones beyond are refused all the same, unrecorded; the
// 30th recorded carries Meta recording_paused "true").
func (g *Guard) HandleSLO(ctx context.Context, tenant string, r *http.Request) (string, error) {
	if err := g.needSSO(); err != nil {
		return "", err
	}
	if _, err := g.EffectivePolicy(ctx, tenant); err != nil {
		return "", err
	}
	res, err := g.sso.SLO(ctx, tenant, r)
	if err != nil {
		var re *sso.RejectError
		if errors.As(err, &re) {
			// Anyone may post a refused message in a loop: at most 30
			// are recorded a minute for the tenant and reason
			// (recordRefusal).
			e := audit.Event{Tenant: tenant, Actor: audit.Actor{Kind: audit.ActorAnonymous}, Action: audit.SSOFailed,
				Outcome: audit.Failure, Reason: string(re.Reason), Meta: map[string]string{"step": "logout"}}
			return "", cmp.Or(g.recordRefusal(ctx, e), ErrSSOFailed)
		}
		return "", ssoErr("sso logout", err)
	}
	if res.Request == nil {
		return res.ReturnTo, nil
	}
	users, err := g.sloUsers(ctx, tenant, res.Request.IdP, res.Request.NameID)
	if err != nil {
		return "", err
	}
	for _, userID := range users {
		ended, err := g.sessions.RevokeUser(ctx, tenant, userID, [32]byte{})
		if err != nil {
			return "", unavailable("end sessions", err)
		}
		e := audit.Event{Tenant: tenant, Actor: audit.Actor{Kind: audit.ActorSystem, ID: "idp"}, Action: audit.SessionRevoked,
			Target: userID, Outcome: audit.Success, Reason: "idp_logout", Meta: map[string]string{"sessions_ended": itoa(g.endedLive(ctx, tenant, ended))}}
		if err := g.record(ctx, e); err != nil {
			return "", err
		}
	}
	return res.RedirectURL, nil
}

// sloUsers returns the IDs of the users a LogoutRequest from the tenant's
// IdP, idp, names by nameID: those whose kept subject is idp's and has
// it, or else the user whose email it is.
func (g *Guard) sloUsers(ctx context.Context, tenant, idp, nameID string) ([]string, error) {
	if st := g.stores.SSO.Subjects; st != nil {
		subs, err := st.SubjectsByNameID(ctx, tenant, idp, nameID, g.now())
		if err != nil {
			return nil, unavailable("sso subjects", err)
		}
		if len(subs) > 0 {
			users := make([]string, len(subs))
			for i, s := range subs {
				users[i] = s.UserID
			}
			return users, nil
		}
	}
	email, err := auth.CanonicalEmail(nameID)
	if err != nil {
		return nil, nil
	}
	u, err := g.stores.Users.UserByEmail(ctx, tenant, email)
	switch {
	case errors.Is(err, auth.ErrNotFound), err == nil && u.EmailUnverified:
		return nil, nil
	case err != nil:
		return nil, unavailable("load user", err)
	}
	return []string{u.ID}, nil
}

// ssoErr keeps the sso package's answers about input and state, reports
// a tenant that does not exist as ErrTenantNotFound (ring-fenced, the
// tenant's connection store is found through the registry), a tenant
// without single sign-on (noSSO) as ErrSSONotConfigured, and store
// failures as ErrUnavailable.
func ssoErr(op string, err error) error {
	var (
		ie *sso.InputError
		fe *sso.FetchError
		re *sso.RejectError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie), errors.As(err, &fe), errors.As(err, &re), errors.Is(err, sso.ErrNotFound),
		errors.Is(err, sso.ErrNoLogout), errors.Is(err, sso.ErrFull), errors.Is(err, sso.ErrNoMFAContexts):
		return err
	case errors.Is(err, ErrTenantNotFound):
		return ErrTenantNotFound
	case noSSO(err):
		return ErrSSONotConfigured
	}
	return unavailable(op, err)
}

// noSSO reports whether err, from the IdP connection store, says that the
// tenant has no single sign-on although Config.SSO is set: ring-fenced,
// the TenantOpener gave the tenant no SSO.Connections store (routedSSO).
// Such a tenant is answered as on a Guard without Config.SSO: it has no
// IdP, a policy requiring SSO is a *PolicyError, and the single sign-on
// calls are ErrSSONotConfigured (through ssoErr).
func noSSO(err error) bool { return errors.Is(err, ErrSSONotConfigured) }

// hasIdP reports whether the tenant has a single sign-on connection.
func (g *Guard) hasIdP(ctx context.Context, tenant string) (bool, error) {
	c, err := g.idpConnection(ctx, tenant)
	return c != nil, err
}

// idpConnection returns the tenant's IdP connection, or nil if it has
// none (or SSO is not configured, on the Guard or for the tenant: noSSO).
func (g *Guard) idpConnection(ctx context.Context, tenant string) (*sso.Connection, error) {
	if g.sso == nil {
		return nil, nil
	}
	c, err := g.sso.Connection(ctx, tenant)
	switch {
	case errors.Is(err, sso.ErrNotFound), noSSO(err):
		return nil, nil
	case err != nil:
		return nil, ssoErr("sso connection", err)
	}
	return &c, nil
}

// SSOServiceProvider returns the tenant's service-provider URLs (entity
// ID, metadata, ACS, single logout), to give to its IdP.
func (g *Guard) SSOServiceProvider(tenant string) (sso.SP, error) {
	if err := g.needSSO(); err != nil {
		return sso.SP{}, err
	}
	return g.sso.SP(tenant)
}

// RefreshSSOMetadata fetches the tenant's IdP metadata again from its URL
// (for example from a scheduled job), keeping the last good copy when the
// IdP does not answer with usable metadata. It reports whether the
// stored connection changed (a new document, or the same one fetched
// again: sso.Provider.RefreshMetadata); a new document is recorded
// (sso.metadata_refreshed, by the
// system, with the SHA-256 fingerprints of the IdP's signing certificates
// before and after, comma-separated, with their count and digest as
// listMeta gives them, and certificates_changed), since the certificates
// decide whose assertions are accepted. A host running sso.Refresher on
// its own Provider records nothing in Guard's log: call this instead.
//
// A new document that cannot be recorded does not stand: the connection
// is put back as it was before the fetch (overwriting any change made
// meanwhile), ErrUnavailable returned, and the next refresh tries again.
// If that fails too, the new document stays, unrecorded, and
// ErrUnavailable is returned.
//
// A tenant that does not exist is ErrTenantNotFound; one without an IdP
// connection, sso.ErrNotFound.
func (g *Guard) RefreshSSOMetadata(ctx context.Context, tenant string) (bool, error) {
	if err := g.needSSO(); err != nil {
		return false, err
	}
	if _, err := g.EffectivePolicy(ctx, tenant); err != nil {
		return false, err
	}
	before, err := g.sso.Connection(ctx, tenant)
	if err != nil {
		return false, ssoErr("refresh sso metadata", err)
	}
	changed, err := g.sso.RefreshMetadata(ctx, tenant)
	if err != nil || !changed {
		return changed, ssoErr("refresh sso metadata", err)
	}
	after, err := g.sso.Connection(ctx, tenant)
	if err != nil {
		return changed, ssoErr("refresh sso metadata", err)
	}
	if after.Metadata == before.Metadata {
		return changed, nil // fetched again, the same document
	}
	old, now := idpSigners(before.Metadata), idpSigners(after.Metadata)
	changedCerts := !slices.Equal(old, now)
	e := audit.Event{Tenant: tenant, Actor: audit.Actor{Kind: audit.ActorSystem, ID: "sso-refresh"}, Action: audit.SSOMetadataRefreshed,
		Target: tenant, Outcome: audit.Success, Meta: map[string]string{"metadata_url": clip(after.MetadataURL, 500),
			"certificates_changed": boolString(changedCerts)}}
	listMeta(e.Meta, "signing_certificates", now, ",")
	if changedCerts {
		listMeta(e.Meta, "previous_signing_certificates", old, ",")
	}
	if err := g.record(ctx, e); err != nil {
		_ = g.stores.SSO.Connections.PutConnection(context.WithoutCancel(ctx), before)
		return false, err
	}
	return changed, nil
}

// idpSigners returns the SHA-256 fingerprints of the signing certificates
// in IdP metadata, or none if it names none or does not parse.
func idpSigners(metadata string) []string {
	idp, err := sso.ParseMetadata([]byte(metadata), time.Time{})
	if err != nil {
		return nil
	}
	ders := make([][]byte, len(idp.Certificates))
	for i, c := range idp.Certificates {
		ders[i] = c.Raw
	}
	return fingerprints(ders)
}

func itoa(n int) string { return strconv.Itoa(n) }

// checkSSOPolicy refuses a policy that requires SSO without an IdP or
// without a usable break-glass owner: an active owner of the tenant with
// a password and a confirmed second factor (*PolicyError, Field
// BreakGlassUser). With keepStored (SetPolicy, before the write), an
// owner without a password is let stand when the tenant's stored policy
// already requires SSO with that same owner (as an older Guard accepted
// it), so that such a tenant can still change its other settings; the
// password is required of a policy that switches RequireSSO on or names
// another owner.
func (g *Guard) checkSSOPolicy(ctx context.Context, tenant string, p Policy, keepStored bool) error {
	if !p.RequireSSO {
		return nil
	}
	noSSOErr := &PolicyError{Field: "RequireSSO", Reason: "needs SSO to be configured (Config.SSO)"}
	if g.sso == nil {
		return noSSOErr
	}
	if _, err := g.sso.Connection(ctx, tenant); err != nil {
		switch {
		case noSSO(err):
			return noSSOErr
		case errors.Is(err, sso.ErrNotFound):
			return errNoIdP()
		}
		return ssoErr("sso connection", err)
	}
	if p.BreakGlassUser == "" {
		return nil
	}
	if g.mfa == nil {
		return &PolicyError{Field: "BreakGlassUser", Reason: "needs MFA to be configured (Config.MFA): break-glass sign-in takes a second factor"}
	}
	u, err := g.stores.Users.User(ctx, tenant, p.BreakGlassUser)
	if errors.Is(err, auth.ErrNotFound) || err == nil && u.Status != auth.StatusActive {
		return &PolicyError{Field: "BreakGlassUser", Reason: "must be an active user of the tenant"}
	}
	if err != nil {
		return unavailable("load user", err)
	}
	if g.rbac != nil {
		roles, err := g.rbac.RolesOf(ctx, tenant, rbac.User(u.ID))
		if err != nil {
			return rbacErr("roles", err)
		}
		if !slices.Contains(roles, rbac.Owner) {
			return &PolicyError{Field: "BreakGlassUser", Reason: "must be an owner"}
		}
	}
	// Break-glass sign-in takes a password: an owner without one (made
	// by single sign-on) could not sign in when the IdP fails.
	if u.PasswordHash == "" {
		kept := false
		if keepStored {
			cur, err := g.Tenant(ctx, tenant)
			if err != nil {
				return err
			}
			kept = cur.Policy.RequireSSO && cur.Policy.BreakGlassUser == p.BreakGlassUser
		}
		if !kept {
			return &PolicyError{Field: "BreakGlassUser", Reason: "has no password: break-glass sign-in takes one, so they must set one first"}
		}
	}
	// Break-glass sign-in takes a factor the owner already has: one
	// enrolled with the password alone would prove nothing.
	fs, err := g.mfa.Factors(ctx, tenant, u.ID)
	if err != nil {
		return unavailable("load factors", err)
	}
	if !slices.ContainsFunc(fs, mfa.Factor.Confirmed) {
		return &PolicyError{Field: "BreakGlassUser", Reason: "has no second factor yet: break-glass sign-in takes one, so they must set one up first"}
	}
	return nil
}

// errNoIdP refuses a policy requiring SSO for a tenant without an IdP
// connection.
func errNoIdP() error {
	return &PolicyError{Field: "RequireSSO", Reason: "needs the tenant's IdP to be configured first"}
}

// keepBreakGlass refuses, with ErrBreakGlassUser recorded as a failed
// action (reason break_glass_user), a change that would take the owner
// role or the account (deactivation, deletion) from the tenant's
// break-glass owner while the tenant requires SSO: the admin names another
// break-glass owner, or stops requiring SSO, first. The policy is read
// from the store, not the cache. It is a guard rail for the admin; the
// rule itself is enforced at sign-in, where a break-glass user who is no
// longer an owner is refused.
func (g *Guard) keepBreakGlass(ctx context.Context, by Principal, tenant, userID string, action audit.Action, target string) error {
	bg, err := g.breakGlassUser(ctx, tenant)
	if err != nil || bg == "" || bg != userID {
		return err
	}
	return g.refuseBreakGlass(ctx, by, tenant, action, target)
}

// keptBreakGlass is keepBreakGlass once the change is written: a
// SetPolicy naming userID the break-glass owner may have come between
// keepBreakGlass and the write, having found them still an active owner.
// The policy is read again now (each side writes, then reads the
// other's): if userID is the break-glass owner now, or the policy cannot
// be read, the change is undone (undo; nil undoes nothing: the change
// changed nothing) and refused as keepBreakGlass refuses it (the read's
// error returned unrecorded). An undo that fails is returned as
// ErrUnavailable, the change then standing, unrecorded.
func (g *Guard) keptBreakGlass(ctx context.Context, by Principal, tenant, userID string, action audit.Action, target string,
	undo func(context.Context) error) error {
	bg, err := g.breakGlassUser(ctx, tenant)
	if err == nil && bg != userID {
		return nil
	}
	if uerr := undoChange(ctx, undo); uerr != nil {
		return uerr
	}
	if err != nil {
		return err
	}
	return g.refuseBreakGlass(ctx, by, tenant, action, target)
}

// refuseBreakGlass records action on target as failed (reason
// break_glass_user) and returns ErrBreakGlassUser.
func (g *Guard) refuseBreakGlass(ctx context.Context, by Principal, tenant string, action audit.Action, target string) error {
	e := g.adminEvent(by, tenant, action, target)
	e.Outcome, e.Reason = audit.Failure, "break_glass_user"
	if err := g.record(ctx, e); err != nil {
		return err
	}
	return ErrBreakGlassUser
}

// breakGlassFactors returns how many confirmed second factors userID must
// keep: 1 while they are the tenant's break-glass owner and the tenant
// requires SSO (break-glass sign-in takes one, so removing the last would
// leave nobody who can sign in if the IdP fails), else 0. The policy is
// read from the store, not the cache. RemoveFactor removes with this floor
// in one atomic store step (mfa.Manager.RemoveFactorKeeping), so two
// removals at once cannot take the last factor either; any confirmed
// factor counts, as at break-glass sign-in.
func (g *Guard) breakGlassFactors(ctx context.Context, tenant, userID string) (int, error) {
	bg, err := g.breakGlassUser(ctx, tenant)
	if err != nil || bg == "" || bg != userID {
		return 0, err
	}
	return 1, nil
}

// breakGlassUser returns the ID of the tenant's break-glass owner while
// the tenant requires SSO, else "", read from the store (not the cache).
func (g *Guard) breakGlassUser(ctx context.Context, tenant string) (string, error) {
	t, err := g.Tenant(ctx, tenant)
	if err != nil {
		return "", err
	}
	if !t.Policy.RequireSSO {
		return "", nil
	}
	return t.Policy.BreakGlassUser, nil
}
