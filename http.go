package guard

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

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

// AuthenticateRequest authenticates r by its session cookie. The returned
// principal carries r's client IP and user agent.
func (g *Guard) AuthenticateRequest(r *http.Request) (Principal, error) {
	tok, ok := g.SessionToken(r)
	if !ok {
		return Principal{}, ErrUnauthenticated
	}
	p, err := g.Authenticate(r.Context(), tok)
	if err != nil {
		return Principal{}, err
	}
	p.IP = ClientIP(r)
	p.UserAgent = r.UserAgent()
	return p, nil
}

// Middleware authenticates every request that carries a session cookie and
// puts the principal in the request context (see PrincipalFrom). A request
// without a valid session goes on anonymously (a stale cookie is cleared);
// a store failure answers 503 and goes no further: it never lets a request
// through as authenticated. Use RequireSession to refuse anonymous ones.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := g.AuthenticateRequest(r)
		switch {
		case err == nil:
			r = r.WithContext(WithPrincipal(r.Context(), p))
		case errors.Is(err, ErrUnavailable):
			http.Error(w, "Service temporarily unavailable", http.StatusServiceUnavailable)
			return
		default:
			if _, had := g.SessionToken(r); had {
				g.ClearSessionCookie(w)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// RequireSession answers 401 to requests that Middleware did not
// authenticate. Mount it inside Middleware.
func RequireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := PrincipalFrom(r.Context()); !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// SetSessionCookie hands a session token to the client: a __Host- cookie,
// Secure, HttpOnly, SameSite=Lax, Path=/, expiring with the session's
// absolute lifetime (the server enforces every timeout itself).
func (g *Guard) SetSessionCookie(w http.ResponseWriter, token string, s session.Session) {
	http.SetCookie(w, &http.Cookie{
		Name: g.cookie, Value: token, Path: "/", Expires: s.ExpiresAt.UTC(),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// ClearSessionCookie removes the session cookie from the client.
func (g *Guard) ClearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: g.cookie, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(0, 0),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// ClientIP returns the IP address of r's peer (the connection), unmapped
// from IPv4-in-IPv6 and without zone, or "" if RemoteAddr holds none.
// Forwarded headers are ignored: trusted-proxy handling comes with the
// ipfilter package.
func ClientIP(r *http.Request) string {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && ap.Addr().Is4() {
		// The common case, without allocating: RemoteAddr is "a.b.c.d:port"
		// and its host part is already canonical.
		host, _, _ := strings.Cut(r.RemoteAddr, ":")
		return host
	}
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	return a.Unmap().WithZone("").String()
}
