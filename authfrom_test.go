package guard_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/session"
)

// sessionHost is a way a host authenticates a session token from a
// client: Middleware (AuthenticateRequest) for a net/http request, or
// AuthenticateFrom, given the client's address, for any other (gRPC, a
// websocket, a job queue). Both hold the session to its tenant's
// allow-list for people alike; the tests of that run over both.
type sessionHost struct {
	name string
	// use authenticates token from the client at addr (an IP literal;
	// "": a client whose address cannot be identified) with user agent
	// ua, and returns nil or the error it was refused with.
	use func(f *fixture, token, addr, ua string) error
	// untrusted is the Meta of the ip.denied event (reason unidentified)
	// recording a refusal of a client with no address: the request's
	// offending header, or nothing for an address the host gave.
	untrusted map[string]string
}

// sessionHosts are the two hosts. The fixture must trust the proxies of
// 10.0.0.0/8 (behindProxy): the Middleware host sends an unidentified
// client's request through one, with a garbled X-Forwarded-For.
var sessionHosts = []sessionHost{
	{name: "Middleware", use: func(f *fixture, token, addr, ua string) error {
		remote, header := "10.0.0.1:443", []string{"X-Forwarded-For", "garbage"}
		if addr != "" {
			remote, header = netip.AddrPortFrom(netip.MustParseAddr(addr), 1).String(), nil
		}
		h := f.g.Middleware(guard.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		})))
		return answerErr(serveHandler(h, "/", token, remote, append(header, "User-Agent", ua)...))
	}, untrusted: map[string]string{"untrusted_x-forwarded-for": "garbage"}},
	{name: "AuthenticateFrom", use: func(f *fixture, token, addr, ua string) error {
		var a netip.Addr
		if addr != "" {
			a = netip.MustParseAddr(addr)
		}
		_, err := f.g.AuthenticateFrom(f.ctx, token, a, ua)
		return err
	}},
}

// answerErr is the error behind Middleware's answer w to a request with a
// session cookie: nil for 204, ErrIPNotAllowed for 403, ErrUnavailable
// for 503, and for 401 ErrPolicyChanged or ErrSignedInElsewhere as its
// Guard-Reason says, else ErrUnauthenticated.
func answerErr(w *httptest.ResponseRecorder) error {
	switch w.Code {
	case http.StatusNoContent:
		return nil
	case http.StatusForbidden:
		return guard.ErrIPNotAllowed
	case http.StatusServiceUnavailable:
		return guard.ErrUnavailable
	case http.StatusUnauthorized:
		switch w.Header().Get(guard.ReasonHeader) {
		case guard.ReasonPolicyChanged:
			return guard.ErrPolicyChanged
		case guard.ReasonSignedInElsewhere:
			return guard.ErrSignedInElsewhere
		}
		return guard.ErrUnauthenticated
	}
	return fmt.Errorf("HTTP %d", w.Code)
}

// AuthenticateFrom returns what AuthenticateRequest returns for a request
// from the same client with the same session cookie and user agent: the
// same principal (the address unmapped and without its zone, the user
// agent clipped to 512 bytes) or the same error, a client with no
// address, or the unspecified one, being one that cannot be identified.
func TestAuthenticateFromAsRequest(t *testing.T) {
	f := newFixture(t)
	_, tok := f.userWithRoles(t, "ada@example.test")
	f.allowPeopleFrom(t, "192.0.2.0/24", "2001:db8::/32")
	ua := strings.Repeat("é", 300) // 600 bytes
	for _, c := range []struct {
		name, addr, remote string
		want               error
	}{
		{"inside", "192.0.2.10", "192.0.2.10:1", nil},
		{"IPv4-mapped", "::ffff:192.0.2.10", "[::ffff:192.0.2.10]:1", nil},
		{"IPv6 with a zone", "2001:db8::1%eth0", "[2001:db8::1%eth0]:1", nil},
		{"outside", "198.51.100.7", "198.51.100.7:1", guard.ErrIPNotAllowed},
		{"unspecified", "0.0.0.0", "0.0.0.0:1", guard.ErrIPNotAllowed},
		{"no address", "", "", guard.ErrIPNotAllowed},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.remote
			r.Header.Set("Cookie", "__Host-guard="+tok)
			r.Header.Set("User-Agent", ua)
			want, werr := f.g.AuthenticateRequest(r)
			if !errors.Is(werr, c.want) || (c.want == nil) != (werr == nil) {
				t.Fatalf("AuthenticateRequest: %v, want %v", werr, c.want)
			}
			var addr netip.Addr
			if c.addr != "" {
				addr = netip.MustParseAddr(c.addr)
			}
			got, err := f.g.AuthenticateFrom(f.ctx, tok, addr, ua)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("AuthenticateFrom: %v, want %v as AuthenticateRequest", err, c.want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("AuthenticateFrom's principal %+v, want AuthenticateRequest's %+v", got, want)
			}
			if c.want == nil && (got.Kind != guard.KindUser || got.IP != got.Addr.String() || got.Addr.Is4In6() ||
				got.Addr.Zone() != "" || got.UserAgent != ua[:512]) {
				t.Errorf("principal %+v: want a user's, its address unmapped and without a zone, its user agent clipped to 512 bytes", got)
			}
		})
	}
	// A token that is not a session's is refused as a missing cookie is.
	for _, bad := range []string{"", "junk", "gk_notasession"} {
		if _, err := f.g.AuthenticateFrom(f.ctx, bad, netip.MustParseAddr("192.0.2.10"), ""); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("AuthenticateFrom(%q): %v, want ErrUnauthenticated", bad, err)
		}
	}
}

// A session used from outside its tenant's allow-list for people is
// refused and the refusal recorded (ip.denied, not_in_allow_list, with the
// client's address and user agent); from inside it is let through; from
// a client with no address it is refused whatever the list, even with no
// list at all.
func TestSessionAllowListHosts(t *testing.T) {
	for _, host := range sessionHosts {
		t.Run(host.name, func(t *testing.T) {
			f := newFixture(t, behindProxy)
			ada, tok := f.userWithRoles(t, "ada@example.test")
			if err := host.use(f, tok, "", "cli"); !errors.Is(err, guard.ErrIPNotAllowed) {
				t.Errorf("no address, no allow-list: %v, want ErrIPNotAllowed", err)
			}
			f.allowPeopleFrom(t, "192.0.2.0/24")
			if err := host.use(f, tok, "192.0.2.10", "cli"); err != nil {
				t.Errorf("from inside the allow-list: %v", err)
			}
			if err := host.use(f, tok, "198.51.100.7", "cli"); !errors.Is(err, guard.ErrIPNotAllowed) {
				t.Errorf("from outside the allow-list: %v, want ErrIPNotAllowed", err)
			}
			den := f.events(t, audit.IPDenied)
			if len(den) != 2 {
				t.Fatalf("%d ip.denied events, want 2 (unidentified, not_in_allow_list): %+v", len(den), den)
			}
			if e := den[1]; e.Reason != "not_in_allow_list" || e.IP != "198.51.100.7" || e.UserAgent != "cli" ||
				e.Actor.ID != ada.UserID || e.Outcome != audit.Failure {
				t.Errorf("ip.denied event %+v, want Ada's failure, not_in_allow_list, from 198.51.100.7 with user agent cli", e)
			}
		})
	}
}

// A store failure while AuthenticateFrom checks the session, reads the
// allow-list, bounds or records a refusal, or writes last-seen, is
// ErrUnavailable: never a pass, never a refusal reported as recorded that
// was not; and it does not write the session's last-seen. Every store
// call of each case (inside, outside, report-only, no address) is failed
// in turn, on a fresh fixture.
func TestAuthenticateFromStoreFailure(t *testing.T) {
	for _, c := range []struct {
		name, addr string
		reportOnly bool
		want       error
	}{
		{"inside", "192.0.2.10", false, nil},
		{"outside", "198.51.100.7", false, guard.ErrIPNotAllowed},
		{"report-only", "198.51.100.7", true, nil},
		{"no address", "", false, guard.ErrIPNotAllowed},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := func(t *testing.T) (*ffix, string, func() session.Session) {
				fx := newFaultFix(t, false)
				_, tok := fx.user(t, "ada@example.test")
				fx.setPeopleList(t, c.reportOnly, "192.0.2.0/24")
				fx.clock.Advance(time.Minute) // a touch is due
				h, err := session.ParseToken(tok)
				if err != nil {
					t.Fatal(err)
				}
				stored := func() session.Session {
					s, err := fx.mem.Sessions.Lookup(fx.ctx, h)
					if err != nil {
						t.Fatal(err)
					}
					return s
				}
				return fx, tok, stored
			}
			use := func(fx *ffix, tok string) error {
				var addr netip.Addr
				if c.addr != "" {
					addr = netip.MustParseAddr(c.addr)
				}
				_, err := fx.g.AuthenticateFrom(fx.ctx, tok, addr, "cli")
				return err
			}
			fx, tok, _ := start(t)
			fx.fc.arm(0)
			err := use(fx, tok)
			calls, _ := fx.fc.disarm()
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("without a fault: %v, want %v", err, c.want)
			}
			t.Logf("%d store calls: %s", len(calls), strings.Join(calls, " "))
			for k, name := range calls {
				nth := 1 // name's place among the calls of that name
				for _, c := range calls[:k] {
					if c == name {
						nth++
					}
				}
				t.Run(fmt.Sprintf("%02d_%s", k+1, name), func(t *testing.T) {
					fx, tok, stored := start(t)
					before := stored().LastSeen
					fx.failingNth(t, name, nth, func() error { return use(fx, tok) })
					if after := stored().LastSeen; !after.Equal(before) {
						t.Errorf("last-seen written (%v, was %v) by a request that failed", after, before)
					}
				})
			}
		})
	}
}
