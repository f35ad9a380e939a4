package guard

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
)

// Authenticate checks a session token and returns its principal. On a
// session store with session.LookupToucher (PostgreSQL, Redis, SQLite) it
// costs one call, which also writes the session's last-seen time when a
// write is due (Config.TouchInterval after the last, 30 s by default);
// when last-seen is a minute old or more (the first request after a
// pause), that write is a second call, made only once the tenant's policy
// has allowed the session, so that a session the policy's idle timeout
// ends is never touched (session.Config.MaxTouchGap). Other stores: a
// lookup, plus the write when due. A malformed, unknown, revoked or
// expired token gives ErrUnauthenticated; the token of a session that a
// newer sign-in of its user ended (until that session would have ended
// anyway) gives ErrSignedInElsewhere, which is also ErrUnauthenticated; a
// store failure (the delete of an expired session included) gives
// ErrUnavailable, never a principal. The request that finds a session
// expired and deletes it records it (session.expired), once; an eviction
// was recorded (session.evicted) by the sign-in that caused it.
//
// Authenticate applies no IP allow-list: it knows no client. A host that
// holds sessions to their tenants' allow-lists for people authenticates
// each request with AuthenticateRequest (net/http: Middleware) or, given
// the client's address, AuthenticateFrom (any other host).
func (g *Guard) Authenticate(ctx context.Context, token string) (Principal, error) {
	h, err := session.ParseToken(token)
	if err != nil {
		return Principal{}, ErrUnauthenticated
	}
	return g.authenticateHash(ctx, h, true, nil)
}

// AuthenticateFrom authenticates a session token presented by the client
// at addr with userAgent, for a host that is not net/http (gRPC, a job
// queue taking a user's token, a framework with its own request type):
// it does for the token what AuthenticateRequest does for
// a request's session cookie once it has resolved the client's address.
// The session is checked as Authenticate checks it, then held to its
// tenant's allow-list for people: a client outside it is refused with
// ErrIPNotAllowed, and the refusal, or the would-be refusal of a
// report-only list, recorded (ip.denied) at most once a minute for each
// user and client (an IPv6 client per Config.IPv6Prefix). A refused
// request does not keep the session alive (its last-seen is not written,
// or is taken back: see AuthenticateRequest). The returned principal carries addr (Addr, and as
// text IP) and userAgent clipped to 512 bytes, as AuthenticateRequest's
// does. An IPv4-mapped addr is taken as the IPv4 address it holds, and a
// zone is dropped, as AuthenticateRequest resolves a request's address.
//
// An invalid (zero) or unspecified addr means the client cannot be
// identified: a valid session is refused with ErrIPNotAllowed whatever
// its tenant's lists, even with none (recorded at most once a minute for
// each user: ip.denied, reason unidentified; last-seen is not written).
// Resolve the address the host trusts, as Config.Proxies does for
// AuthenticateRequest: addr is taken as given.
//
// Errors: those of Authenticate (ErrUnauthenticated, ErrSignedInElsewhere,
// ErrPolicyChanged, ErrUnavailable), and ErrIPNotAllowed.
func (g *Guard) AuthenticateFrom(ctx context.Context, token string, addr netip.Addr, userAgent string) (Principal, error) {
	return g.authenticateClient(ctx, token, givenAddr(addr), userAgent, nil)
}

// client is the address and user agent of a request's client, whose
// session is held to its tenant's allow-list for people.
type client struct {
	addr netip.Addr
	ua   string
}

// expiredSession returns the session of an *session.ExpiredError in err,
// or nil. The target of errors.As escapes to the heap: kept out of the
// path of a request that succeeds, which allocates nothing here and gets
// a pointer, not a zeroed Session of ~180 bytes, back.
func expiredSession(err error) *session.Session {
	if err == nil {
		return nil
	}
	var ee *session.ExpiredError
	if !errors.As(err, &ee) {
		return nil
	}
	return &ee.Session
}

// recordExpiry records the expiry of the session that an
// *session.ExpiredError in err carries (session.expired, reason lifetime
// or idle_timeout): the request that found the session expired removed
// it, and records the expiry, once. It returns the record's error, nil
// when err carries no such session.
func (g *Guard) recordExpiry(ctx context.Context, err error) error {
	x := expiredSession(err)
	if x == nil {
		return nil
	}
	return g.record(ctx, g.expiryEvent(x))
}

// expiryEvent is the session.expired record of s, found past its own end
// now: reason lifetime once past ExpiresAt, else idle_timeout.
func (g *Guard) expiryEvent(s *session.Session) audit.Event {
	reason := "idle_timeout"
	if !g.now().Before(s.ExpiresAt) {
		reason = "lifetime"
	}
	return expiredEvent(s, reason)
}

// authenticateHash authenticates the session h under the tenant's policy
// as it is now (cached, Config.PolicyCacheTTL): a session is held to the
// lower of its own idle timeout and lifetime and the policy's, and one that
// no longer meets a requirement switched on after it was created (MFA past
// its grace period, SSO), or whose IdP was replaced or removed since
// (Tenant.IdPChangedAt, cached alike), is ended: sessionAllowed. Without
// touch, the session's last-seen is never written (a request refused
// whatever the session must not keep it alive).
//
// With from (a request's client: AuthenticateRequest, AuthenticateFrom),
// a session the policy allows is then held to its tenant's allow-list for
// people (applyIPList: ErrIPNotAllowed, recorded when ipRecordIfDue says
// so), inside the session check (session.Manager.AuthenticateHashAdmit),
// so that a refused request does not write last-seen, or has its write
// taken back: refused requests do not keep the session alive.
func (g *Guard) authenticateHash(ctx context.Context, h session.Hash, touch bool, from *client) (Principal, error) {
	var t *cachedTenant
	limits := func(s session.Session) (session.Limits, error) {
		var err error
		if t, err = g.policies.entry(ctx, s.Tenant); err != nil {
			if errors.Is(err, ErrTenantNotFound) {
				return session.Limits{}, ErrUnauthenticated
			}
			return session.Limits{}, err
		}
		return session.Limits{IdleTimeout: t.eff.IdleTimeout, Lifetime: t.eff.SessionLifetime}, nil
	}
	var (
		admit   func(session.Session) error
		listErr error // the allow-list's refusal
	)
	if from != nil && g.ipf != nil {
		admit = func(s session.Session) error {
			if sessionAllowed(&s, &t.eff, t.t.IdPChangedAt, g.now()) != "" {
				return nil // ended below, as the policy requires, wherever the client is
			}
			// Refused at each request of the session: recorded once a
			// minute for the user and address (ipRecordIfDue), not once a
			// request.
			listErr = g.applyIPList(ctx, s.Tenant, ipfilter.Users, from.addr, audit.Actor{Kind: audit.ActorUser, ID: s.UserID},
				from.ua, func(e audit.Event) error { return g.ipRecordIfDue(ctx, e) })
			return listErr
		}
	}
	var (
		s   session.Session
		err error
	)
	if touch {
		s, err = g.sessions.AuthenticateHashAdmit(ctx, h, limits, admit)
	} else {
		s, err = g.sessions.LookupHashWithin(ctx, h, limits)
	}
	if listErr != nil && errors.Is(err, listErr) {
		return Principal{}, err
	}
	if rerr := g.recordExpiry(ctx, err); rerr != nil {
		return Principal{}, rerr
	}
	if errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrUnavailable) {
		return Principal{}, err
	}
	if err != nil {
		if errors.Is(err, session.ErrEvicted) {
			return Principal{}, ErrSignedInElsewhere
		}
		if errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrExpired) || errors.Is(err, session.ErrInvalidToken) {
			return Principal{}, ErrUnauthenticated
		}
		return Principal{}, unavailable("session", err)
	}
	if reason := sessionAllowed(&s, &t.eff, t.t.IdPChangedAt, g.now()); reason != "" {
		return Principal{}, g.endForPolicy(ctx, s, reason)
	}
	return Principal{Kind: KindUser, Tenant: s.Tenant, UserID: s.UserID, Session: s.Hash, Flags: s.Flags, AuthAt: s.CreatedAt}, nil
}

// sessionAllowed returns "" if the tenant's policy pol allows session s
// at now, its IdP last replaced or removed at idpChanged (zero if never),
// else why not:
//   - "idp_changed" (ReasonIdPChanged): s is a single sign-on session
//     (FlagSSO) created at or before idpChanged, which the old IdP
//     vouched for; SetSSOConnection and DeleteSSOConnection end those
//     too, and this ends any they could not;
//   - "sso_required": RequireSSO is on and s is neither an SSO session
//     nor the current break-glass owner's (who may sign in with a
//     password, and is typically the admin who just switched SSO on; a
//     former one's break-glass sessions end when another is named);
//   - "mfa_required": RequireMFA is on, its grace period is over, and s
//     has no second factor (FlagMFA; nor FlagSSO, the IdP's to ask; nor
//     FlagEmailCode while the tenant's MFAAllowEmail is on), whenever it
//     was opened: before RequireMFA was switched on, inside the grace
//     period (FlagMustEnrol), with an email code once MFAAllowEmail is
//     off, or by a sign-in that judged under the policy before the switch
//     (another replica's cached policy, a sign-in racing SetPolicy).
func sessionAllowed(s *session.Session, pol *Policy, idpChanged, now time.Time) string {
	switch {
	case s.Flags&FlagSSO != 0 && !idpChanged.IsZero() && !s.CreatedAt.After(idpChanged):
		return ReasonIdPChanged
	case pol.RequireSSO && s.Flags&FlagSSO == 0 && s.UserID != pol.BreakGlassUser:
		return "sso_required"
	case pol.RequireMFA && s.Flags&(FlagMFA|FlagSSO) == 0 && !(pol.MFAAllowEmail && s.Flags&FlagEmailCode != 0) &&
		!now.Before(pol.MFARequiredSince.Add(pol.MFAGrace)):
		return "mfa_required"
	}
	return ""
}

// policyKeeps reports whether the tenant's effective policy pol (its IdP
// last replaced or removed at idpChanged, zero if never) still allows
// session s at now, as the session check judges it: s is within pol's
// idle timeout and lifetime, and sessionAllowed lets it through. The
// session's own limits are not looked at (session.Session.LiveAt).
func policyKeeps(s *session.Session, pol *Policy, idpChanged, now time.Time) bool {
	switch {
	case pol.IdleTimeout > 0 && now.Sub(s.LastSeen) >= pol.IdleTimeout,
		pol.SessionLifetime > 0 && !now.Before(s.CreatedAt.Add(pol.SessionLifetime)):
		return false
	}
	return sessionAllowed(s, pol, idpChanged, now) == ""
}

// keptByPolicy returns policyKeeps under the tenant's policy as the
// session check reads it (cached, Config.PolicyCacheTTL), judged at the
// time of each call; or ErrTenantNotFound, or ErrUnavailable.
func (g *Guard) keptByPolicy(ctx context.Context, tenant string) (func(session.Session) bool, error) {
	t, err := g.policies.entry(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return func(s session.Session) bool { return policyKeeps(&s, &t.eff, t.t.IdPChangedAt, g.now()) }, nil
}

// endedBefore reports whether session s, just removed by a sign-out
// (LogoutToken, an SSO sign-in's endReplaced), had ended already, only
// not yet been removed: past its own idle timeout or lifetime, or no
// longer allowed by the tenant's policy as the session check reads it
// (policyKeeps). It then returns the record of that end, as the session
// check would have made it (policyEnd: session.expired, or
// session.revoked by the system), for the caller to make instead of a
// sign-out's. A policy that cannot be read (a store failure, a tenant
// gone) judges s by its own limits alone (expiryEvent): the session is
// ended either way, and only its record is at stake.
func (g *Guard) endedBefore(ctx context.Context, s *session.Session) (audit.Event, bool) {
	now := g.now()
	t, err := g.policies.entry(ctx, s.Tenant)
	switch {
	case err != nil && s.LiveAt(now):
		return audit.Event{}, false
	case err != nil:
		return g.expiryEvent(s), true
	case s.LiveAt(now) && policyKeeps(s, &t.eff, t.t.IdPChangedAt, now):
		return audit.Event{}, false
	}
	return policyEnd(s, &t.eff, t.t.IdPChangedAt, now), true
}

// endForPolicy ends session s, which the tenant's policy no longer allows
// (reason from sessionAllowed), records it (by the request whose delete
// removed it, once) and returns ErrPolicyChanged.
func (g *Guard) endForPolicy(ctx context.Context, s session.Session, reason string) error {
	if _, err := g.sessions.RevokeID(ctx, s.Tenant, s.UserID, s.ID()); err != nil {
		if errors.Is(err, session.ErrNotFound) {
			return ErrPolicyChanged // another request ended it
		}
		return unavailable("end session", err)
	}
	if err := g.record(ctx, policyRevokedEvent(&s, reason)); err != nil {
		return err
	}
	return ErrPolicyChanged
}

// expiredEvent is the record of session s found expired (reason
// idle_timeout or lifetime): session.expired, by its user.
func expiredEvent(s *session.Session, reason string) audit.Event {
	return audit.Event{Tenant: s.Tenant, Actor: audit.Actor{Kind: audit.ActorUser, ID: s.UserID}, Action: audit.SessionExpired,
		Target: s.ID(), Outcome: audit.Success, Reason: reason}
}

// policyRevokedEvent is the record of session s ended because the
// tenant's policy no longer allows it (reason from sessionAllowed):
// session.revoked, by the system.
func policyRevokedEvent(s *session.Session, reason string) audit.Event {
	return audit.Event{Tenant: s.Tenant, Actor: audit.Actor{Kind: audit.ActorSystem, ID: "policy"}, Action: audit.SessionRevoked,
		Target: s.ID(), Outcome: audit.Success, Reason: reason, Meta: map[string]string{"user": s.UserID}}
}

// policyEnd is the record of session s, which the tenant's policy pol
// (its IdP last replaced or removed at idpChanged) no longer allowed at
// now (policyKeeps) and which was ended for it, as the session check
// records such an end: session.expired, reason lifetime or idle_timeout,
// when s is past the tighter of its own and pol's lifetime or idle
// timeout; else session.revoked by the system, reason from
// sessionAllowed.
func policyEnd(s *session.Session, pol *Policy, idpChanged, now time.Time) audit.Event {
	if e := s.CreatedAt.Add(pol.SessionLifetime); !now.Before(s.ExpiresAt) || pol.SessionLifetime > 0 && !now.Before(e) {
		return expiredEvent(s, "lifetime")
	}
	if !s.LiveAt(now) || pol.IdleTimeout > 0 && now.Sub(s.LastSeen) >= pol.IdleTimeout {
		return expiredEvent(s, "idle_timeout")
	}
	return policyRevokedEvent(s, sessionAllowed(s, pol, idpChanged, now))
}

// endPolicyEnded ends the user's sessions that are live by their own
// limits but that the tenant's policy as it is now (cached, as the
// session check reads it) no longer allows (policyKeeps): those the
// session check would end at their next request. It returns the records
// of their ends (policyEnd), for the caller to record; on a failure
// (ErrUnavailable, ErrTenantNotFound), the records of those ended so far
// and the error.
func (g *Guard) endPolicyEnded(ctx context.Context, tenant, userID string) ([]audit.Event, error) {
	t, err := g.policies.entry(ctx, tenant)
	if err != nil {
		return nil, err
	}
	now := g.now()
	ss, err := g.sessions.RevokeUserWhere(ctx, tenant, userID, func(s session.Session) bool {
		return s.LiveAt(now) && !policyKeeps(&s, &t.eff, t.t.IdPChangedAt, now)
	})
	evs := make([]audit.Event, len(ss))
	for i := range ss {
		evs[i] = policyEnd(&ss[i], &t.eff, t.t.IdPChangedAt, now)
	}
	if err != nil {
		return evs, unavailable("end sessions the policy ended", err)
	}
	return evs, nil
}

// trimPage is how many users eachUser reads at a time.
const trimPage = 100

// trimSessions ends, for each user of the tenant, the sessions beyond the
// session limit of pol (the tenant's effective policy; idpChanged its
// Tenant.IdPChangedAt), keeping the
// user's newest (session.Manager.Trim): what a lowered limit asks of the
// sessions opened before it. Only the sessions pol still allows are
// weighed (policyKeeps) — live under its idle timeout and lifetime, and
// meeting sessionAllowed — so that one about to end at its next request does not
// take the place of one kept. Users are read page by page. Each session
// ended is recorded as session.revoked by the system, reason
// session_limit, the sessions of one user in one append after the
// store ended them (as the other revocations are: should that append fail,
// they stay ended, unrecorded, and the error is returned). It returns how
// many it ended and recorded; on a failure, those ended before it and the
// error (ErrUnavailable, or the context's).
func (g *Guard) trimSessions(ctx context.Context, tenant string, pol Policy, idpChanged time.Time) (int, error) {
	if pol.SessionLimit <= 0 {
		return 0, nil
	}
	counts := func(s session.Session) bool { return policyKeeps(&s, &pol, idpChanged, g.now()) }
	n := 0
	err := g.eachUser(ctx, tenant, func(u auth.UserSummary) error {
		ended, err := g.sessions.Trim(ctx, tenant, u.ID, pol.SessionLimit, counts)
		if len(ended) > 0 {
			evs := make([]audit.Event, len(ended))
			for i, s := range ended {
				evs[i] = audit.Event{Tenant: tenant, Actor: audit.Actor{Kind: audit.ActorSystem, ID: "policy"},
					Action: audit.SessionRevoked, Target: s.ID(), Outcome: audit.Success, Reason: ReasonSessionLimit,
					Meta: map[string]string{"user": s.UserID}}
			}
			if rerr := g.record(ctx, evs...); rerr != nil {
				return rerr
			}
			n += len(ended)
		}
		if err != nil {
			return unavailable("end sessions beyond the limit", err)
		}
		return nil
	})
	return n, err
}

// eachUser calls fn with each user of the tenant, read page by page
// (trimPage at a time), until fn returns an error, which it returns; or
// the context's error, or ErrUnavailable if a page cannot be read.
func (g *Guard) eachUser(ctx context.Context, tenant string, fn func(auth.UserSummary) error) error {
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		us, err := g.stores.Users.ListUserSummaries(ctx, tenant, after, trimPage)
		if err != nil {
			return unavailable("list users", err)
		}
		for _, u := range us {
			if err := fn(u); err != nil {
				return err
			}
		}
		if len(us) < trimPage {
			return nil
		}
		after = us[len(us)-1].ID
	}
}

// Logout ends the principal's session: the one p was authenticated with,
// or, when another request rotated it since (RotateSession,
// Reauthenticate, a step-up in another tab), the session it was rotated
// to, as LogoutToken follows a rotated token (recorded with Meta via
// "rotated_token"). A principal that names no session of its own user (a
// session gone, or another user's) is ErrUnauthenticated, and nothing
// ends. Rotations are followed at most session.MaxLineageHops hops: a
// principal whose session was rotated more times since (one kept longer
// than a request) cannot be followed to its session, which may live on,
// and is ErrUnavailable, never a sign-out reported as done (as, rarely,
// is one whose session another client rotates faster than Logout follows
// it). A rotated session that ended meanwhile is ErrUnauthenticated, as
// for one gone. A revocation stands even when it cannot be recorded in the audit
// log: a failure to record leaves the session ended and returns
// ErrUnavailable.
func (g *Guard) Logout(ctx context.Context, p Principal) error {
	if p.Kind != KindUser || p.Session.IsZero() {
		return ErrUnauthenticated
	}
	s, rotated, err := g.revokeOwn(ctx, p)
	if errors.Is(err, session.ErrNotFound) {
		return ErrUnauthenticated
	}
	if err != nil {
		return unavailable("end session", err)
	}
	e := g.adminEvent(p, p.Tenant, audit.Logout, s.ID())
	if rotated {
		e.Meta = map[string]string{"via": "rotated_token"}
	}
	return g.record(ctx, e)
}

// revokeOwn ends the session of p, a user's principal with a session:
// p.Session, or, if another request rotated it since p was authenticated,
// the session it was rotated to (session.Manager.RevokeLineageHash), and
// reports whether it was reached through a rotation. p.Session, a session
// or a rotation tombstone, must be of p's tenant and user (every hop after
// it is of the same), so that a principal built by hand cannot end
// another user's session: else session.ErrNotFound, as for one gone, and
// nothing ends. A session or rotation tombstone of p's user whose chain
// was not followed to its end is session.ErrNotFound only if that chain
// ends in nothing (its session ended meanwhile); one longer than
// session.MaxLineageHops, or rotated again faster than it was followed,
// is errLineageUnfollowed: the session p names may live on, so the
// sign-out is neither done nor "not signed in". Any other error is a
// store failure.
func (g *Guard) revokeOwn(ctx context.Context, p Principal) (session.Session, bool, error) {
	if _, err := g.ownHop(ctx, p, p.Session); err != nil {
		return session.Session{}, false, err
	}
	s, rotated, err := g.sessions.RevokeLineageHash(ctx, p.Session)
	if errors.Is(err, session.ErrNotFound) {
		// Not found, though p.Session was found a moment ago (a session
		// or a rotation tombstone): ended meanwhile, or rotated again
		// faster than the chase followed it (a store without an atomic
		// lineage delete). Only the first is "not signed in".
		switch _, ferr := g.ownSession(ctx, p); {
		case ferr == nil:
			return session.Session{}, false, errLineageUnfollowed
		case !errors.Is(ferr, session.ErrNotFound):
			return session.Session{}, false, ferr
		}
	}
	return s, rotated, err
}

// ownSession follows p.Session, a session or a rotation tombstone of p's
// tenant and user, through the rotations made since p was authenticated
// (at most session.MaxLineageHops, each of p's user) to the session it is
// now, and returns that session's hash. It is session.ErrNotFound when
// the chain ends in nothing or leaves p's user, errLineageUnfollowed when
// it is longer; any other error is a store failure.
func (g *Guard) ownSession(ctx context.Context, p Principal) (session.Hash, error) {
	h := p.Session
	for range session.MaxLineageHops + 1 {
		next, err := g.ownHop(ctx, p, h)
		if err != nil {
			return session.Hash{}, err
		}
		if next.IsZero() {
			return h, nil
		}
		h = next
	}
	return session.Hash{}, errLineageUnfollowed
}

// currentSession is the session p, a user's principal with one, is now
// signed in with, to be spared when "every other session" ends: p.Session
// followed through the rotations made since p was authenticated (another
// tab), as Logout follows it. One that cannot be followed (ended
// meanwhile, or a chain longer than session.MaxLineageHops) is p.Session
// itself, which then spares nothing: every session ends. A store failure
// is ErrUnavailable. Another tab's rotation between this look-up and the
// caller's revocation still ends the current session with the others
// (the store spares the hash it is given): rare, and on the safe side.
func (g *Guard) currentSession(ctx context.Context, p Principal) (session.Hash, error) {
	switch h, err := g.ownSession(ctx, p); {
	case err == nil:
		return h, nil
	case errors.Is(err, session.ErrNotFound), errors.Is(err, errLineageUnfollowed):
		return p.Session, nil
	default:
		return session.Hash{}, unavailable("look up session", err)
	}
}

// errLineageUnfollowed is revokeOwn's failure to follow a principal's
// rotated session to the session it is now; callers answer it as a store
// failure (ErrUnavailable).
var errLineageUnfollowed = errors.New("guard: the rotations of the principal's session could not be followed to its current session")

// ownHop looks up h, a session or a rotation tombstone, and returns the
// hash it was rotated to (the zero Hash for a session). It is
// session.ErrNotFound unless h is stored and of p's tenant and user; any
// other error is a store failure.
func (g *Guard) ownHop(ctx context.Context, p Principal, h session.Hash) (session.Hash, error) {
	s, err := g.stores.Sessions.Lookup(ctx, h)
	var (
		re   *session.RotatedError
		next session.Hash
	)
	switch {
	case errors.As(err, &re):
		s.Tenant, s.UserID, next = re.Tenant, re.UserID, re.Successor
	case errors.Is(err, session.ErrNotFound):
		return session.Hash{}, session.ErrNotFound
	case err != nil:
		return session.Hash{}, err
	}
	if s.Tenant != p.Tenant || s.UserID != p.UserID {
		return session.Hash{}, session.ErrNotFound
	}
	return next, nil
}

// LogoutToken ends the session the client signed in with, given the token
// it holds, for a sign-out that cannot wait for that token to
// authenticate: the session may have been rotated since (RotateSession,
// Reauthenticate, a step-up) by another tab, an API client, or whoever
// else holds a copy of the token, and the old token then authenticates as
// nothing. For the token of a session that is still stored it does what
// Logout does for that session's principal: the session ends and
// audit.Logout is recorded on it. For a rotated token it ends the session
// the token was rotated to (following rotations, see
// session.Manager.RevokeLineage) and records audit.Logout on that one,
// with Meta via "rotated_token". Any other token (malformed, unknown, or
// that of a session the session limit evicted, which is gone already)
// gives ErrUnauthenticated and ends nothing. The token of a session that
// had ended already (past its idle timeout or lifetime, or no longer
// allowed by the tenant's policy), only not yet been removed, gives
// ErrUnauthenticated too: the session is removed and that end recorded as
// a request that found it would have recorded it (session.expired, or
// session.revoked by the system), never as a sign-out. A store failure
// is ErrUnavailable and ends nothing. As with Logout, a revocation stands
// even when it cannot be recorded: the session stays ended and
// LogoutToken returns ErrUnavailable. ip and ua are the sign-out
// request's client address (ClientIP) and User-Agent, recorded with it as
// a principal's would be ("" for none).
func (g *Guard) LogoutToken(ctx context.Context, token, ip, ua string) error {
	s, rotated, err := g.sessions.RevokeLineage(ctx, token)
	switch {
	case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrInvalidToken):
		return ErrUnauthenticated
	case err != nil:
		return unavailable("end session", err)
	}
	if ended, ok := g.endedBefore(ctx, &s); ok {
		// Gone already, on its own or by the tenant's policy, only not
		// yet removed: its end is recorded as the session check would
		// have, and not as its user's sign-out.
		if err := g.record(ctx, ended); err != nil {
			return err
		}
		return ErrUnauthenticated
	}
	e := g.adminEvent(Principal{Kind: KindUser, Tenant: s.Tenant, UserID: s.UserID, IP: ip, UserAgent: ua},
		s.Tenant, audit.Logout, s.ID())
	if rotated {
		e.Meta = map[string]string{"via": "rotated_token"}
	}
	return g.record(ctx, e)
}

// RotateSession gives the session behind token a new token (the old one
// stops working at once), keeping its user and lifetimes and setting flags.
// Call it whenever the session's privileges change. The session is first
// checked as Authenticate checks it, under the tenant's policy as it is
// now: one the policy no longer allows (past a lowered idle timeout or
// lifetime, or lacking MFA or SSO required since) is ended and recorded
// as Authenticate ends it, and RotateSession returns what Authenticate
// would (ErrUnauthenticated, ErrSignedInElsewhere, ErrPolicyChanged,
// ErrUnavailable), never a new token. Like Authenticate it applies no IP
// allow-list: call it for a request that AuthenticateRequest or
// AuthenticateFrom has let through.
func (g *Guard) RotateSession(ctx context.Context, token string, flags uint32) (string, session.Session, error) {
	h, err := session.ParseToken(token)
	if err != nil {
		return "", session.Session{}, ErrUnauthenticated
	}
	if _, err := g.authenticateHash(ctx, h, true, nil); err != nil {
		return "", session.Session{}, err
	}
	nt, s, err := g.sessions.Rotate(ctx, token, flags)
	switch {
	case errors.Is(err, session.ErrExpired):
		// It reached its end since the check: Rotate removed it.
		if rerr := g.recordExpiry(ctx, err); rerr != nil {
			return "", session.Session{}, rerr
		}
		return "", session.Session{}, ErrUnauthenticated
	case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrInvalidToken):
		return "", session.Session{}, ErrUnauthenticated
	case err != nil:
		return "", session.Session{}, unavailable("rotate session", err)
	}
	e := audit.Event{Tenant: s.Tenant, Actor: audit.Actor{Kind: audit.ActorUser, ID: s.UserID},
		Action: audit.SessionRotated, Target: s.ID(), Outcome: audit.Success}
	if err := g.record(ctx, e); err != nil {
		g.dropSession(ctx, s)
		return "", session.Session{}, err
	}
	return nt, s, nil
}

// UserSessions lists a user's live sessions, oldest first: those live by
// their own limits that the tenant's policy as it is now still allows (as
// Authenticate judges them: within its idle timeout and lifetime, and
// meeting its MFA and SSO requirements). A user may list their own;
// otherwise the principal must administer the tenant.
func (g *Guard) UserSessions(ctx context.Context, by Principal, tenant, userID string) ([]session.Session, error) {
	if err := g.mayOrSelf(ctx, by, tenant, userID, rbac.Users, rbac.Read); err != nil {
		return nil, err
	}
	keeps, err := g.keptByPolicy(ctx, tenant)
	if err != nil {
		return nil, err
	}
	ss, err := g.sessions.List(ctx, tenant, userID)
	if err != nil {
		return nil, unavailable("list sessions", err)
	}
	return slices.DeleteFunc(ss, func(s session.Session) bool { return !keeps(s) }), nil
}

// RevokeSession ends one session of a user, by its public ID. A user
// ending another session of their own needs a recent authentication
// (ErrStepUpRequired; ending the current one is a logout and does not),
// so that a stolen session cannot sign its owner out everywhere else.
// The current one (by.SessionID) is followed, as Logout follows it, to
// the session another request rotated it to since by was authenticated
// (recorded with Meta via "rotated_token"), at most
// session.MaxLineageHops rotations; a current session that cannot be
// followed so far is ErrUnavailable, as for Logout.
// A revocation stands even when it cannot be recorded in the audit log: a
// failure to record leaves the session ended and returns ErrUnavailable.
// A session ID that names no live session of the user (ended already, by
// a revocation or on its own, past its idle timeout or lifetime or the
// tenant's policy, or another user's) is session.ErrNotFound, and nothing
// is recorded (an ended session still stored is removed).
func (g *Guard) RevokeSession(ctx context.Context, by Principal, tenant, userID, sessionID string) error {
	if err := g.mayOrSelf(ctx, by, tenant, userID, rbac.Users, rbac.Manage); err != nil {
		return err
	}
	if isSelf(by, tenant, userID) && sessionID != by.SessionID() {
		if err := g.requireRecentAuth(ctx, by, rbac.Users, rbac.Manage); err != nil {
			return err
		}
	}
	keeps, err := g.keptByPolicy(ctx, tenant)
	if err != nil {
		return err
	}
	var (
		s       session.Session
		rotated bool
	)
	if isSelf(by, tenant, userID) && !by.Session.IsZero() && sessionID == by.SessionID() {
		// The current session, a logout: followed through a rotation
		// made since by was authenticated, as Logout follows it.
		s, rotated, err = g.revokeOwn(ctx, by)
	} else {
		s, err = g.sessions.RevokeID(ctx, tenant, userID, sessionID)
	}
	switch {
	case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrInvalidToken):
		return session.ErrNotFound
	case err != nil:
		return unavailable("end session", err)
	}
	if !s.LiveAt(g.now()) || !keeps(s) {
		// It had ended on its own (idle, lifetime, the tenant's policy),
		// only not yet been removed: as RevokeUserSessions, no revocation
		// is counted nor recorded for it.
		return session.ErrNotFound
	}
	e := g.adminEvent(by, tenant, audit.SessionRevoked, s.ID())
	if rotated {
		e.Meta = map[string]string{"via": "rotated_token"}
	}
	return g.record(ctx, e)
}

// RevokeUserSessions ends every session of a user except the principal's
// own current session (followed, as Logout follows it, to the session
// another request rotated it to since the principal was authenticated, at
// most session.MaxLineageHops rotations; one that cannot be followed so
// far, or that ended meanwhile, is not spared: every session ends), and
// returns how many live ones ended (the store
// also removes expired ones it finds, which are not counted, as no
// revocation counts them; nor are those the tenant's policy had ended,
// as UserSessions does not list them). A user ending their
// own other sessions needs a recent authentication (ErrStepUpRequired),
// as for RevokeSession. A failure to record leaves the sessions ended and
// returns ErrUnavailable with their number. An ID that names no user of
// the tenant, and no session, is ErrUserNotFound, unrecorded. The session
// a user keeps this way still answers to its tokens from before its
// rotations (up to session.MaxLineageHops back): LogoutToken with one, from
// a tab that has not seen the new token, signs it out.
func (g *Guard) RevokeUserSessions(ctx context.Context, by Principal, tenant, userID string) (int, error) {
	if err := g.mayOrSelf(ctx, by, tenant, userID, rbac.Users, rbac.Manage); err != nil {
		return 0, err
	}
	var keep session.Hash
	if isSelf(by, tenant, userID) {
		if err := g.requireRecentAuth(ctx, by, rbac.Users, rbac.Manage); err != nil {
			return 0, err
		}
		keep = by.Session
	}
	if len(userID) > auth.MaxIDBytes {
		return 0, ErrUserNotFound // as loadUser: no store holds such an ID
	}
	keeps, err := g.keptByPolicy(ctx, tenant)
	if err != nil {
		return 0, err
	}
	if !keep.IsZero() {
		if keep, err = g.currentSession(ctx, by); err != nil {
			return 0, err
		}
	}
	ended, err := g.sessions.RevokeUser(ctx, tenant, userID, keep)
	if err != nil {
		return 0, unavailable("end sessions", err)
	}
	if len(ended) == 0 && !isSelf(by, tenant, userID) {
		// Nothing ended: say so of an ID that names no user, unrecorded,
		// rather than record a revocation of someone who is not there.
		// (Sessions left by a failed DeleteUser still end, and are
		// recorded: the user is gone, its sessions were not.)
		if _, err := g.stores.Users.User(ctx, tenant, userID); err != nil {
			return 0, g.userErr("load user", err)
		}
	}
	n := liveCount(slices.DeleteFunc(ended, func(s session.Session) bool { return !keeps(s) }), g.now())
	e := g.adminEvent(by, tenant, audit.SessionRevoked, userID)
	e.Meta = map[string]string{"sessions_ended": strconv.Itoa(n)}
	return n, g.record(ctx, e)
}

// PasswordChange is a signed-in user's request to change their password.
type PasswordChange struct {
	Current, New string
	// Captcha is the client's CAPTCHA token, required when Config.Captcha
	// is set.
	Captcha string
}

// ChangePassword changes the signed-in user's password. It needs the
// current password, which is throttled and audited like a login (a wrong
// one gives ErrInvalidCredentials and counts towards the lock of the
// account and of the client IP, Config.IPLimit; while either is locked
// the password is not looked at, and the refusal is recorded with reason
// locked or ip_throttled; a call
// whose context ends while the current password waits for a hashing slot
// returns the context's error and counts nothing, as Login), and a
// CAPTCHA when one is configured (without a solved one it gives
// ErrCaptchaRequired, recorded as a refused password.changed with reason
// captcha, before the password is looked at); the new one must pass the tenant's
// policy, including its history, and differ from the current one
// (auth.RuleReused, even without a history). On success every other session of the
// user ends (the current one followed, as RevokeUserSessions follows it,
// through a rotation another tab made since p was authenticated), and so do the reset and email-change links mailed for the
// account (even one asked for while the change is made: a link is bound
// to the password it was made under); a notice goes to the user's address when Config.Recovery.Email
// is set.
//
// A session that signed in with a password that had to be changed
// (FlagPasswordExpired) keeps that flag as long as it lives, and so it
// ends with the change too: the user signs in again with the new
// password. ChangePasswordAndRotate keeps them signed in instead.
//
// The replaced password cannot be put back as it was (its place in the
// history, its age), so the change is recorded (password.changed) before
// it is made: if it cannot be recorded, ErrUnavailable is returned and
// the password stays as it was. The other sessions end next, before the
// password is set, so that the new password never stands beside them: a
// store failure after the record returns ErrUnavailable with the change
// on record but not made (the other sessions may have ended). Once the
// password is set they end again: a sign-in with the old password whose
// session was created meanwhile ends with them (a later one sees the
// change and is refused: see Login); a store failure there returns
// ErrUnavailable with the password changed. The sessions ended, both
// times, are recorded after the change, as one session.revoked (Meta
// reason password_changed, sessions_ended) when any live one ended; a
// failure to record that leaves the password changed and the sessions
// ended, and returns ErrUnavailable.
//
// The password is set only while the account is as the current password
// was checked against (auth.UserUpdater.ChangePassword): a change or
// reset of the password, a change of address, an ExpirePassword or a
// deactivation of the account that lands while the change runs (the
// checks and the hashing of the new password take a while) stands. The
// change is refused with ErrInvalidCredentials, recorded after its
// password.changed as a refused password.changed with reason
// password_changed, email_changed, password_expired or deactivated (and
// the other sessions it ended, which stay ended, as session.revoked as
// above); nothing else changes, and no notice is sent. A failure to
// record the refusal returns ErrUnavailable.
func (g *Guard) ChangePassword(ctx context.Context, p Principal, req PasswordChange) error {
	return g.changePassword(ctx, p, req, p.Flags&FlagPasswordExpired == 0)
}

// ChangePasswordAndRotate is ChangePassword for the session behind token,
// which must be p's own (ErrUnauthenticated otherwise, and nothing
// changes): after the change that session is rotated as after any change
// of privilege (RotateSession) — a new token, returned with the session
// for SetSessionCookie, the old one void at once — and without
// FlagPasswordExpired, so that a user whose password had to be changed
// may use their roles again from the next request. Should the rotation
// fail, the password change stands, the session keeps its old token and
// flags, and the error is returned (ErrUnauthenticated if the session
// ended meanwhile, else ErrUnavailable).
func (g *Guard) ChangePasswordAndRotate(ctx context.Context, p Principal, token string, req PasswordChange) (string, session.Session, error) {
	if p.Kind != KindUser {
		return "", session.Session{}, ErrUnauthenticated
	}
	if h, err := session.ParseToken(token); err != nil || h != p.Session {
		return "", session.Session{}, ErrUnauthenticated
	}
	if err := g.changePassword(ctx, p, req, true); err != nil {
		return "", session.Session{}, err
	}
	return g.RotateSession(ctx, token, p.Flags&^FlagPasswordExpired)
}

// changePassword is ChangePassword, ending every session of the user but
// the current one when keepCurrent (currentSession, looked up right
// before the first revocation, so that a rotation while the new password
// was checked and hashed is followed too).
func (g *Guard) changePassword(ctx context.Context, p Principal, req PasswordChange, keepCurrent bool) error {
	if p.Kind != KindUser {
		return ErrUnauthenticated
	}
	current, next := req.Current, req.New
	pol, err := g.EffectivePolicy(ctx, p.Tenant)
	if err != nil {
		return err
	}
	u, err := g.selfUser(ctx, p)
	if err != nil {
		return err
	}
	a := attempt{req: LoginRequest{Tenant: p.Tenant, IP: p.IP, UserAgent: p.UserAgent}, email: u.Email, user: &u}
	fail := func(reason string, gt gate, err error) error {
		if rerr := g.recordFailure(ctx, a, gt, captchaMeta(a.event(audit.PasswordChanged, audit.Failure, reason), err)); rerr != nil {
			return rerr
		}
		return err
	}
	if err := g.checkCaptcha(ctx, req.Captcha, p.IP); err != nil {
		return fail(ReasonCaptcha, gate{}, err)
	}
	if len(current) > MaxPasswordBytes || len(next) > MaxPasswordBytes {
		return fail(ReasonBadInput, gate{}, auth.ErrPasswordTooLong)
	}
	// Reserved per client IP and account, checked and settled as a
	// step-up's password (Reauthenticate): the guess counts like a
	// login's, against the address too.
	gt, err := g.reserveOwn(ctx, a, audit.PasswordChanged, current)
	if err != nil {
		return err
	}
	if err := g.verifyOwn(ctx, a, audit.PasswordChanged, gt, current); err != nil {
		return err
	}
	if err := g.settle(ctx, gt, true); err != nil {
		return fail(ReasonUnavailable, gate{}, err)
	}
	if err := g.checkPassword(ctx, p, pol, u, next); err != nil {
		return err
	}
	h, err := g.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	if err := g.voidLinks(ctx, p.Tenant, p.UserID); err != nil {
		return err
	}
	if err := g.record(ctx, g.adminEvent(p, p.Tenant, audit.PasswordChanged, p.UserID)); err != nil {
		return err
	}
	// The other sessions end before the password is set, so that a
	// failure never leaves the new password beside the old sessions, and
	// again once it is set (below).
	var keep session.Hash
	if keepCurrent && !p.Session.IsZero() {
		if keep, err = g.currentSession(ctx, p); err != nil {
			return err
		}
	}
	ended, err := g.sessions.RevokeUser(ctx, p.Tenant, p.UserID, keep)
	if err != nil {
		return unavailable("end sessions", err)
	}
	// Only while the account is as the current password was checked
	// against: a reset, a change, an ExpirePassword or a deactivation
	// (reactivated since or not) made since (perhaps while the new
	// password was checked and hashed) stands, and this change is
	// refused.
	now := g.now().UTC().Truncate(time.Microsecond)
	was := u
	was.Email = canonicalAddress(u.Email)
	switch err := g.stores.UserUpdates.ChangePassword(ctx, p.Tenant, p.UserID, was, h, now, pol.PasswordHistory); {
	case errors.Is(err, auth.ErrConflict):
		// Refused after the change's own record, with the reason; the
		// sessions it ended stay ended, and are recorded as on success.
		evs := []audit.Event{a.event(audit.PasswordChanged, audit.Failure, g.resetConflict(ctx, u))}
		if n := g.endedLive(ctx, p.Tenant, ended); n > 0 {
			e := g.adminEvent(p, p.Tenant, audit.SessionRevoked, p.UserID)
			e.Meta = map[string]string{"reason": "password_changed", "sessions_ended": strconv.Itoa(n)}
			evs = append(evs, e)
		}
		if err := g.record(ctx, evs...); err != nil {
			return err
		}
		return ErrInvalidCredentials
	case err != nil:
		return g.userErr("set password", err)
	}
	// A sign-in with the old password that created its session (and
	// re-read the user: see Login) between the first end of the sessions
	// and the write saw no change: its session ends now. One after the
	// write sees the change and drops its own.
	again, rerr := g.sessions.RevokeUser(ctx, p.Tenant, p.UserID, keep)
	ended = append(ended, again...)
	g.notify(ctx, u, "Your password was changed",
		"The password of your account was just changed, and your other sessions were ended. "+
			"If it was not you, reset your password now and contact your administrator.")
	if n := g.endedLive(ctx, p.Tenant, ended); n > 0 {
		e := g.adminEvent(p, p.Tenant, audit.SessionRevoked, p.UserID)
		e.Meta = map[string]string{"reason": "password_changed", "sessions_ended": strconv.Itoa(n)}
		if err := g.record(ctx, e); err != nil {
			return err
		}
	}
	if rerr != nil {
		return unavailable("end sessions", rerr)
	}
	return nil
}
