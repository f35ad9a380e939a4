package guard

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/session"
)

// MaxPasswordBytes is the longest password accepted anywhere, checked
// before any hashing so an over-long input costs nothing.
const MaxPasswordBytes = 1024

// LoginRequest is one password login attempt.
type LoginRequest struct {
	Tenant   string
	Email    string
	Password string
	// IP and UserAgent of the client, for throttling and audit. An empty IP
	// skips per-IP throttling (for logins that do not come over a network).
	IP        string
	UserAgent string
}

// LoginResult is a successful login: the session token to hand to the
// client (see SetSessionCookie), the session and the user.
type LoginResult struct {
	Token   string
	Session session.Session
	User    User
	// Evicted is the number of the user's older sessions ended by the
	// concurrent-session limit.
	Evicted int
	// PasswordExpired reports that the password is older than the tenant's
	// PasswordMaxAge; the session carries FlagPasswordExpired.
	PasswordExpired bool
}

// Failure reasons recorded in login.failed audit events.
const (
	ReasonUnknownUser  = "unknown_user"
	ReasonBadPassword  = "bad_password"
	ReasonDeactivated  = "deactivated"
	ReasonLocked       = "locked"
	ReasonIPThrottled  = "ip_throttled"
	ReasonBadInput     = "bad_input"
	ReasonUnavailable  = "unavailable"
	ReasonSessionLimit = "session_limit"
	ReasonNoPassword   = "no_password"
)

// attempt carries what the failure and success paths of a login record.
type attempt struct {
	req   LoginRequest
	email string
	user  *auth.User
}

func (a attempt) actor() audit.Actor {
	if a.user != nil {
		return audit.Actor{Kind: audit.ActorUser, ID: a.user.ID, Email: a.user.Email}
	}
	return audit.Actor{Kind: audit.ActorAnonymous, Email: a.email}
}

func (a attempt) event(action audit.Action, outcome audit.Outcome, reason string) audit.Event {
	return audit.Event{Tenant: a.req.Tenant, Actor: a.actor(), Action: action, IP: a.req.IP,
		UserAgent: a.req.UserAgent, Outcome: outcome, Reason: reason}
}

// Login verifies a password and creates a session.
//
// Every failure caused by the credentials (unknown user, wrong password,
// deactivated, locked, throttled) returns ErrInvalidCredentials after the
// same amount of hashing work, so neither the message nor the timing tells
// whether an account exists; the cause is recorded in the login.failed
// audit event. Malformed input returns an *InputError or
// auth.ErrPasswordTooLong without hashing. A store failure returns
// ErrUnavailable: the login is denied, never allowed.
//
// Each attempt is reserved in the throttle store before the password is
// evaluated, per account and per client IP, so concurrent guesses can never
// get more evaluations than the limit. A successful login resets the
// account's failures.
func (g *Guard) Login(ctx context.Context, req LoginRequest) (LoginResult, error) {
	pol, err := g.EffectivePolicy(ctx, req.Tenant)
	if errors.Is(err, ErrTenantNotFound) {
		g.hasher.VerifyDummy(ctx, req.Password)
		return LoginResult{}, ErrInvalidCredentials
	}
	if err != nil {
		return LoginResult{}, err
	}
	a := attempt{req: req}
	if len(req.Password) > MaxPasswordBytes {
		return LoginResult{}, g.loginFailed(ctx, a, ReasonBadInput, auth.ErrPasswordTooLong)
	}
	email, err := auth.CanonicalEmail(req.Email)
	if err != nil {
		return LoginResult{}, g.loginFailed(ctx, a, ReasonBadInput, err)
	}
	a.email = email
	if err := checkText("user agent", req.UserAgent, 1024); err != nil {
		return LoginResult{}, g.loginFailed(ctx, a, ReasonBadInput, err)
	}
	now := g.now()

	ipKey := ""
	if req.IP != "" {
		ipKey = "ip:" + req.IP
		r, err := g.stores.Throttle.Reserve(ctx, ipKey, now, g.ipLim)
		if err != nil {
			return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("throttle", err))
		}
		if !r.Allowed {
			g.hasher.VerifyDummy(ctx, req.Password)
			return LoginResult{}, g.loginFailed(ctx, a, ReasonIPThrottled, ErrInvalidCredentials)
		}
	}

	u, err := g.stores.Users.UserByEmail(ctx, req.Tenant, email)
	switch {
	case errors.Is(err, auth.ErrNotFound):
	case err != nil:
		return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("load user", err))
	default:
		a.user = &u
	}

	acctKey := accountKey(req.Tenant, email)
	lim := g.acctLim
	if a.user == nil {
		// Nobody can own a permanent lock on a name that is not an account:
		// this keeps the throttle's memory bounded under a spray of invented
		// names, and looks the same from outside (a locked account answers
		// like a wrong password).
		lim.PermanentAfter = 0
	}
	res, err := g.stores.Throttle.Reserve(ctx, acctKey, now, lim)
	if err != nil {
		return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("throttle", err))
	}
	if !res.Allowed {
		g.hasher.VerifyDummy(ctx, req.Password)
		return LoginResult{}, g.loginFailed(ctx, a, ReasonLocked, ErrInvalidCredentials)
	}

	ok, rehash, reason := false, false, ReasonBadPassword
	switch {
	case a.user == nil:
		g.hasher.VerifyDummy(ctx, req.Password)
		reason = ReasonUnknownUser
	case a.user.PasswordHash == "":
		g.hasher.VerifyDummy(ctx, req.Password)
		reason = ReasonNoPassword
	default:
		ok, rehash, err = g.hasher.Verify(ctx, req.Password, a.user.PasswordHash)
		if err != nil && ctx.Err() != nil {
			return LoginResult{}, ctx.Err()
		}
		// Any other error is a corrupt stored hash: a failure like a wrong password.
		if err != nil {
			ok = false
		}
	}
	if ok && a.user.Status != auth.StatusActive {
		ok, reason = false, ReasonDeactivated
	}
	if !ok {
		var extra []audit.Event
		if res.Locks {
			e := a.event(audit.LoginLocked, audit.Failure, reason)
			e.Meta = lockMeta(res)
			extra = append(extra, e)
		}
		return LoginResult{}, g.loginFailed(ctx, a, reason, ErrInvalidCredentials, extra...)
	}
	return g.loginSucceeded(ctx, a, pol, acctKey, ipKey, rehash)
}

func (g *Guard) loginSucceeded(ctx context.Context, a attempt, pol Policy, acctKey, ipKey string, rehash bool) (LoginResult, error) {
	u := *a.user
	if err := g.stores.Throttle.Reset(ctx, acctKey); err != nil {
		return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("throttle", err))
	}
	if ipKey != "" {
		if err := g.stores.Throttle.Release(ctx, ipKey); err != nil {
			return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("throttle", err))
		}
	}
	now := g.now()
	var flags uint32
	expired := pol.PasswordMaxAge > 0 && now.Sub(u.PasswordChangedAt) > pol.PasswordMaxAge
	if expired {
		flags |= FlagPasswordExpired
	}
	token, s, evicted, err := g.sessions.Create(ctx, session.Options{
		Tenant: u.Tenant, UserID: u.ID, IP: a.req.IP, UserAgent: a.req.UserAgent,
		IdleTimeout: pol.IdleTimeout, Lifetime: pol.SessionLifetime, Limit: ptr(pol.sessionLimit()),
		Flags: flags,
	})
	if errors.Is(err, session.ErrLimit) {
		return LoginResult{}, g.loginFailed(ctx, a, ReasonSessionLimit, ErrSessionLimit)
	}
	if err != nil {
		return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("create session", err))
	}
	// Re-read the status in the same step that records the login: a
	// deactivation that raced this login either ended the new session
	// already or is seen here.
	cur, err := g.stores.UserUpdates.RecordLogin(ctx, u.Tenant, u.ID, now.UTC().Truncate(time.Microsecond))
	if err != nil || cur.Status != auth.StatusActive {
		g.dropSession(ctx, s)
		if err != nil && !errors.Is(err, auth.ErrNotFound) {
			return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("record login", err))
		}
		return LoginResult{}, g.loginFailed(ctx, a, ReasonDeactivated, ErrInvalidCredentials)
	}
	events := make([]audit.Event, 0, 1+len(evicted))
	ok := a.event(audit.LoginSucceeded, audit.Success, "")
	ok.Target = s.ID()
	if expired {
		ok.Meta = map[string]string{"password_expired": "true"}
	}
	events = append(events, ok)
	for _, ev := range evicted {
		e := a.event(audit.SessionEvicted, audit.Success, "session_limit")
		e.Target = ev.ID()
		events = append(events, e)
	}
	if err := g.record(ctx, events...); err != nil {
		// No session without its audit event.
		g.dropSession(ctx, s)
		return LoginResult{}, err
	}
	if rehash {
		g.rehash(ctx, cur, a.req.Password)
	}
	return LoginResult{Token: token, Session: s, User: userView(cur), Evicted: len(evicted), PasswordExpired: expired}, nil
}

// rehash replaces an outdated password hash (bcrypt, or argon2id with old
// parameters) after a successful login. It is best effort: a failure leaves
// the old, still valid hash in place and is retried at the next login.
func (g *Guard) rehash(ctx context.Context, u auth.User, password string) {
	h, err := g.hasher.Hash(ctx, password)
	if err != nil {
		return
	}
	if err := g.stores.UserUpdates.RehashPassword(ctx, u.Tenant, u.ID, u.PasswordHash, h); err != nil {
		return
	}
	_ = g.record(ctx, audit.Event{Tenant: u.Tenant, Actor: audit.Actor{Kind: audit.ActorSystem, ID: "rehash"},
		Action: audit.PasswordRehashed, Target: u.ID, Outcome: audit.Success})
}

// loginFailed records a login.failed event (and any extra events) and
// returns err, or ErrUnavailable if the event cannot be recorded: a login
// attempt is never left unlogged silently.
func (g *Guard) loginFailed(ctx context.Context, a attempt, reason string, err error, extra ...audit.Event) error {
	events := append([]audit.Event{a.event(audit.LoginFailed, audit.Failure, reason)}, extra...)
	if rerr := g.record(ctx, events...); rerr != nil {
		return rerr
	}
	return err
}

func lockMeta(r auth.Reservation) map[string]string {
	m := map[string]string{"lockouts": strconv.Itoa(r.Lockouts)}
	if r.Permanent {
		m["permanent"] = "true"
	} else {
		m["until"] = r.LockedUntil.UTC().Format(time.RFC3339)
	}
	return m
}

// accountKey is the throttle key of an account: a hash of tenant and
// canonical email, so that the throttle store, which may be shared by
// ring-fenced tenants, holds no email address.
func accountKey(tenant, email string) string {
	h := sha256.New()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(email))
	return "acct:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// dropSession ends a session that must not survive (best effort: the
// caller is already failing the request).
func (g *Guard) dropSession(ctx context.Context, s session.Session) {
	_, _ = g.sessions.RevokeID(context.WithoutCancel(ctx), s.Tenant, s.UserID, s.ID())
}

// record writes audit events before the action they record is reported as
// done. A failure is returned as ErrUnavailable.
func (g *Guard) record(ctx context.Context, events ...audit.Event) error {
	for _, e := range events {
		if _, err := g.audit.Record(ctx, e); err != nil {
			return unavailable("audit", err)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
