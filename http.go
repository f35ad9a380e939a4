package guard

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/session"
)

// SessionToken returns the session token carried by r's cookie, without
// allocating.
func (g *Guard) SessionToken(r *http.Request) (string, bool) {
	for _, line := range r.Header["Cookie"] {
		if v, ok := session.CookieValue(line, g.cookie); ok {
			return v, true
		}
	}
	return "", false
}

// AuthenticateRequest authenticates r: by its API key when it carries an
// "Authorization: Bearer" header (the only place a key is accepted), else
// by its session cookie. A request with more than one Authorization header
// is refused as one with a bad API key (ErrUnauthenticated, counted
// against the client IP), whatever they hold. It resolves the client IP (Config.Proxies) and
// applies the tenant's allow-list for people or for API keys. The returned
// principal carries the client IP and user agent. A session refused by the
// allow-list, or let through by a report-only one, is recorded (ip.denied)
// at most once a minute for each user and client (an IPv6 client per
// Config.IPv6Prefix), not at every request.
// A request the allow-list refuses does not keep its session alive: the
// list is applied within the session check, before the session's
// last-seen is written; on a store that writes it in the lookup itself
// (session.LookupToucher: PostgreSQL, Redis, SQLite), the write is taken
// back by a second call, made only for such a refused request and only
// if no later request has written last-seen since (see
// session.Manager.AuthenticateHashAdmit); an allowed request pays nothing
// for it. A session the tenant's policy no longer allows (MFA or SSO
// required since) is ended as Authenticate ends it (ErrPolicyChanged),
// wherever the client is. AuthenticateFrom does for a session token what
// this does for a request's session cookie, and AuthenticateAPIKey for
// an API key what this does for its bearer key, for a host that is not
// net/http and gives the client's address itself.
//
// A request whose client IP cannot be identified is refused with
// ErrIPNotAllowed when it carries a valid session (recorded in its tenant,
// at most once a minute for each user: ip.denied, reason unidentified;
// the session's last-seen is not written, so such requests do not keep it
// alive) or any API key. A key that exists is
// recorded in its tenant, at most once a minute for each key: ip.denied,
// reason unidentified, or apikey.denied when it is revoked or expired. A
// malformed or unknown key is recorded nowhere.
//
// Errors: ErrUnauthenticated (no or bad credential), ErrIPNotAllowed (the
// client IP is not allowed or cannot be identified), ErrTooManyAttempts
// (too many bad API keys from this IP), ErrUnavailable (a store failed).
func (g *Guard) AuthenticateRequest(r *http.Request) (Principal, error) {
	addr, aerr := g.resolver.ClientIP(r)
	if aerr != nil {
		addr = netip.Addr{}
	}
	if key, ok := bearer(r); ok {
		return g.authenticateKey(r.Context(), key, addr, r.UserAgent(), aerr)
	}
	tok, ok := g.SessionToken(r)
	if !ok {
		return Principal{}, ErrUnauthenticated
	}
	return g.authenticateClient(r.Context(), tok, addr, r.UserAgent(), aerr)
}

// authenticateClient authenticates session token for AuthenticateRequest
// and AuthenticateFrom: presented by the client at addr (resolved,
// unmapped, without a zone; invalid: the client cannot be identified, for
// the reason cause, nil if there is none to record) with user agent ua,
// clipped here.
func (g *Guard) authenticateClient(ctx context.Context, token string, addr netip.Addr, ua string, cause error) (Principal, error) {
	h, err := session.ParseToken(token)
	if err != nil {
		return Principal{}, ErrUnauthenticated
	}
	ua = clip(ua, 512)
	if !addr.IsValid() {
		// Refused whatever the session: checked (to record the refusal
		// in its tenant), but not touched, so that refused requests do
		// not keep it alive past its idle timeout.
		p, err := g.authenticateHash(ctx, h, false, nil)
		if err != nil {
			return Principal{}, err
		}
		return Principal{}, g.unidentified(ctx, p, ua, cause)
	}
	// The tenant's allow-list for people is applied within the session
	// check, so that a refused request does not keep the session alive.
	p, err := g.authenticateHash(ctx, h, true, &client{addr: addr, ua: ua})
	if err != nil {
		return Principal{}, err
	}
	p.Addr, p.IP, p.UserAgent = addr, addr.String(), ua
	return p, nil
}

// unidentified refuses principal p's request, made with user agent ua
// from a client whose IP cannot be identified (cause, nil if none is
// known): it returns ErrIPNotAllowed, and records the refusal if it is
// due (ipRecordIfDue: the first for the user in a minute; the session is
// refused at each of its requests, and a proxy sending a garbled header,
// or a client sending one on purpose, would otherwise write an event per
// request). A store failure is ErrUnavailable.
func (g *Guard) unidentified(ctx context.Context, p Principal, ua string, cause error) error {
	return cmp.Or(g.ipRecordIfDue(ctx, unidentifiedEvent(p, ua, cause)), ErrIPNotAllowed)
}

// unidentifiedEvent is the ip.denied event (reason unidentified) of
// principal p's request, made with user agent ua from a client whose IP
// cannot be identified (cause, recorded as untrustedMeta says).
func unidentifiedEvent(p Principal, ua string, cause error) audit.Event {
	return audit.Event{Tenant: p.Tenant, Actor: p.actor(), Action: audit.IPDenied, IP: "", UserAgent: clip(ua, 512),
		Outcome: audit.Failure, Reason: "unidentified", Meta: untrustedMeta(cause)}
}

// untrustedMeta is the Meta of an event recording a request whose client
// IP cannot be resolved (cause): the offending value, which came from the
// request, recorded as untrusted input (untrusted_<source>); nil when
// cause carries none.
func untrustedMeta(cause error) map[string]string {
	var re *ipfilter.ResolveError
	if !errors.As(cause, &re) {
		return nil
	}
	return map[string]string{"untrusted_" + strings.ToLower(re.Source): clip(re.Value, 200)}
}

// ReasonHeader is the response header in which Guard says why it
// refused a request, when the reason is one the user should be told:
// Middleware, why it refused the session cookie (ReasonSignedInElsewhere,
// ReasonPolicyChanged; also in the request's context: SignedOutReason);
// Require and RequireMFA, why a signed-in session may not go on
// (ReasonPasswordExpired, ReasonApprovalRequired).
const ReasonHeader = "Guard-Reason"

// Values of ReasonHeader.
const (
	// ReasonSignedInElsewhere: the session was ended because its user
	// signed in on another client (ErrSignedInElsewhere); answered with
	// 401.
	ReasonSignedInElsewhere = "signed_in_elsewhere"
	// ReasonPasswordExpired: the session signed in with a password that
	// must be changed (FlagPasswordExpired); answered with 403 until the
	// user changes it (ErrPasswordChangeRequired). It is also the reason
	// of the access.denied event.
	ReasonPasswordExpired = "password_expired"
	// ReasonPolicyChanged: the session was ended because the tenant now
	// requires MFA or SSO, which its sign-in did not have
	// (ErrPolicyChanged); answered with 401. Signing in again meets the
	// policy.
	ReasonPolicyChanged = "policy_changed"
	// ReasonApprovalRequired: the action is under four-eyes approval and
	// the route was mounted with Require, not RequireApprovable
	// (ErrApprovalRequired); answered with 403.
	ReasonApprovalRequired = "approval_required"
)

type signedOutKey struct{}

// SignedOutReason returns why Middleware refused the session cookie of
// the request whose context is ctx (ReasonSignedInElsewhere,
// ReasonPolicyChanged), or "" if it did not or gave no reason.
func SignedOutReason(ctx context.Context) string {
	r, _ := ctx.Value(signedOutKey{}).(string)
	return r
}

// Middleware authenticates every request that carries a session cookie or
// an API key and puts the principal in the request context (see
// PrincipalFrom). A request without a credential goes on anonymously (a
// stale cookie is cleared; if its session was ended by a sign-in
// elsewhere, the answer carries "Guard-Reason: signed_in_elsewhere" and
// SignedOutReason says so); a bad API key answers 401, as does a request
// with more than one Authorization header (whatever they hold, with or
// without a session cookie); a client IP outside the tenant's allow-list
// 403, too many bad keys 429, and a store failure 503 — none of these
// goes further: Middleware never lets a request through as authenticated
// on an error. Use RequireSession to refuse
// anonymous requests (401, with that Guard-Reason), and Require for role
// checks. Every 401 carries the WWW-Authenticate header Challenge.
//
// Every answer to a request that carries a credential (a session cookie
// or an API key), refused or not, is marked "Cache-Control: no-store"
// before next runs, so that neither the browser (its back button after a
// sign-out) nor a shared cache keeps what a signed-in user was shown; a
// handler may set its own Cache-Control over it. Anonymous requests are
// left as they are.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := g.AuthenticateRequest(r)
		if err == nil || !errors.Is(err, ErrUnauthenticated) {
			noStore(w)
		}
		switch {
		case err == nil:
			r = r.WithContext(WithPrincipal(r.Context(), p))
		case errors.Is(err, ErrUnavailable):
			g.refuse(w, r, http.StatusServiceUnavailable, unavailableText, err)
			return
		case errors.Is(err, ErrIPNotAllowed):
			g.refuse(w, r, http.StatusForbidden, "", err)
			return
		case errors.Is(err, ErrTooManyAttempts):
			g.refuse(w, r, http.StatusTooManyRequests, "", err)
			return
		default:
			if _, isKey := bearer(r); isKey {
				noStore(w)
				g.refuse(w, r, http.StatusUnauthorized, "", err)
				return
			}
			if _, had := g.SessionToken(r); had {
				g.ClearSessionCookie(w) // marks the answer no-store
				reason := ""
				switch {
				case errors.Is(err, ErrSignedInElsewhere):
					// Recorded as session.evicted by the sign-in that
					// ended it: only the client is told.
					reason = ReasonSignedInElsewhere
				case errors.Is(err, ErrPolicyChanged):
					reason = ReasonPolicyChanged
				}
				if reason != "" {
					w.Header().Set(ReasonHeader, reason)
					r = r.WithContext(context.WithValue(r.Context(), signedOutKey{}, reason))
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

const unavailableText = "Service temporarily unavailable"

// noStore marks w's answer as one no cache may keep.
func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

// Challenge is the WWW-Authenticate header of every 401 Guard writes
// (Middleware, RequireSession, Require, RequireApprovable, RequireMFA),
// as RFC 9110 §11.6.1 requires of a 401: every route behind Middleware
// accepts an API key as a Bearer token. A 401 answered by
// Config.OnRefuse has it on w already.
const Challenge = `Bearer realm="api"`

// refuse answers a request that Middleware, Require or RequireMFA refuse:
// with Config.OnRefuse when the host set one, else in plain text.
// The plain text is msg, or the status's own text when msg is empty. A
// 401 gets its challenge first.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, status int, msg string, cause error) {
	if status == http.StatusUnauthorized {
		challenge(w)
	}
	if g.onRefuse != nil {
		g.onRefuse(w, r, status, cause)
		return
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	http.Error(w, msg, status)
}

// challenge puts the WWW-Authenticate header of a 401 on w's answer.
func challenge(w http.ResponseWriter) { w.Header().Set("WWW-Authenticate", Challenge) }

// RequireSession answers 401 to requests that Middleware did not
// authenticate (with the Guard-Reason header Middleware set, if any, and
// WWW-Authenticate: Challenge). Mount it inside Middleware.
func RequireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := PrincipalFrom(r.Context()); !ok {
			challenge(w)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// SetSessionCookie hands a session token to the client: a __Host- cookie,
// Secure, HttpOnly, SameSite=Lax, Path=/, expiring with the session's
// absolute lifetime (the server enforces every timeout itself). The
// answer that carries it is marked "Cache-Control: no-store": a shared
// cache must not hand the cookie to someone else.
func (g *Guard) SetSessionCookie(w http.ResponseWriter, token string, s session.Session) {
	noStore(w)
	http.SetCookie(w, &http.Cookie{
		Name: g.cookie, Value: token, Path: "/", Expires: s.ExpiresAt.UTC(),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// ClearSessionCookie removes the session cookie from the client, in an
// answer marked "Cache-Control: no-store" as SetSessionCookie's.
func (g *Guard) ClearSessionCookie(w http.ResponseWriter) {
	noStore(w)
	http.SetCookie(w, &http.Cookie{
		Name: g.cookie, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(0, 0),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// checkCookieName refuses a session cookie name (Config.CookieName) that
// is not a valid cookie name, or lacks the "__Host-" prefix the cookie's
// attributes are made for.
func checkCookieName(name string) error {
	if !strings.HasPrefix(name, "__Host-") {
		return &PolicyError{Field: "CookieName", Reason: `must start with "__Host-"`}
	}
	if err := (&http.Cookie{Name: name, Value: "x"}).Valid(); err != nil || len(name) > 64 {
		return &PolicyError{Field: "CookieName", Reason: "is not a valid cookie name of at most 64 bytes"}
	}
	return nil
}
