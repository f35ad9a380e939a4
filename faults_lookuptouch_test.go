package guard_test

// TestFaultSweepLookupTouch is TestFaultSweep (faults_test.go) on the
// per-request session check's one-round-trip path: the session store is
// sqlitestore's Sessions, a session.LookupToucher as pgstore's and
// redisstore's are, behind the same counter (fLookupToucher), so that
// LookupTouch and Untouch are failed like every other call; the other
// stores are memstore's. Its flows are those that check a session:
// Authenticate, RotateSession, AuthenticateFrom and Middleware
// (AuthenticateRequest) from a client inside the tenant's allow-list for
// people and from one outside it (refused: a touch that LookupTouch made
// is taken back with Untouch), a step-up (Reauthenticate) of a session
// AuthenticateFrom let through, and LogoutToken. Each runs a request
// 45 s after the last (LookupTouch touches, under Config.MaxTouchGap) and
// 2 min after it (LookupTouch does not; a second call, Touch, writes
// last-seen once the request is let through).
//
// Besides the sweep's checks (an error is ErrUnavailable, the audit chain
// verifies, no live session without its creation on record), each flow
// checks that a store failure lets no request through and ends no
// session, and that a request that fails or is refused leaves the
// session's last-seen as it found it (AuthenticateHashAdmit: "A refused
// request does not keep the session alive"), but for a failed Untouch,
// whose request is refused with that store error and whose touch stays;
// a refusal is on record (ip.denied), if not by the request that failed,
// by the next one refused.

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/session"
)

func TestFaultSweepLookupTouch(t *testing.T) { sweep(t, lookupTouchFlows()) }

// ltFix is a fault fixture on sqlitestore's session store, with ada
// signed in (tok, p) a cadence ago, and her session's last-seen then
// (seen).
type ltFix struct {
	*ffix
	sessions session.Store // unwrapped
	p        guard.Principal
	tok      string
	h        session.Hash
	seen     time.Time
}

// ltInside and ltOutside are client addresses inside and outside the
// tenant's allow-list for people (192.0.2.0/24).
const (
	ltInside  = "192.0.2.10"
	ltOutside = "198.51.100.7"
)

// newLookupTouchFix returns an ltFix whose clock has moved on by every
// since ada signed in.
func newLookupTouchFix(t *testing.T, every time.Duration) *ltFix {
	t.Helper()
	sq := newSQLite(t)
	fx := newFaultFix(t, false, behindProxy, func(c *guard.Config) {
		c.Stores.Sessions, c.Stores.SessionIndex = sq.Sessions, sq.SessionIndex
	})
	fx.index = sq.SessionIndex
	lf := &ltFix{ffix: fx, sessions: sq.Sessions}
	lf.p, lf.tok = fx.user(t, adaEmail)
	fx.allowPeopleFrom(t, "192.0.2.0/24") // after the sign-in, from 203.0.113.5
	lf.h = lf.p.Session
	fx.clock.Advance(every)
	lf.seen = lf.lastSeen(t)
	return lf
}

// lastSeen returns the LastSeen of ada's session as stored.
func (lf *ltFix) lastSeen(t *testing.T) time.Time {
	t.Helper()
	s, err := lf.sessions.Lookup(lf.ctx, lf.h)
	if err != nil {
		t.Fatalf("ada's session: %v", err)
	}
	return s.LastSeen
}

// errLetThrough is the error of a refused flow whose request was let
// through.
var errLetThrough = errors.New("request let through")

// checkRequest checks a request of ada's session that failed with err,
// the call fired failing ("" none): a failure lets no request through; a
// request that failed, or was refused (refused), leaves last-seen as it
// found it, but for a failed Untouch; one let through writes it (a touch
// is due at either cadence); the session outlives the failure.
func (lf *ltFix) checkRequest(t *testing.T, fired string, err error, refused bool) {
	t.Helper()
	if errors.Is(err, errLetThrough) || (fired != "" && err == nil && !refused) {
		t.Errorf("VIOLATION: failed %s: the request was let through", fired)
	}
	if fired != "" && err == nil && refused {
		t.Errorf("failed %s: the request was refused with ErrIPNotAllowed, not ErrUnavailable", fired)
	}
	seen := lf.lastSeen(t)
	switch {
	case (err != nil || refused) && fired == "Sessions.Untouch":
		// The touch stays: AuthenticateHashAdmit "when it fails, the
		// request is refused with that store error instead of the
		// refusal".
	case err != nil || refused:
		if !seen.Equal(lf.seen) {
			t.Errorf("VIOLATION: failed %s (err %v): a request not let through moved last-seen from %v to %v",
				fired, err, lf.seen.Format(time.TimeOnly), seen.Format(time.TimeOnly))
		}
	case !seen.Equal(lf.clock.Now()):
		t.Errorf("failed %s: a request let through left last-seen at %v, want %v (now)",
			fired, seen.Format(time.TimeOnly), lf.clock.Now().Format(time.TimeOnly))
	}
	if !lf.tokenWorks(lf.tok) {
		t.Errorf("failed %s (err %v): the session no longer authenticates", fired, err)
	}
}

// checkRenewed checks call (RotateSession, Reauthenticate), which renewed
// ada's session, giving new token nt, or failed with err, the call fired
// failing: a failure gives no token, a renewal one that works in place of
// the old. It reports whether the session was renewed.
func (lf *ltFix) checkRenewed(t *testing.T, call, fired string, err error, nt string) bool {
	t.Helper()
	if err != nil {
		if nt != "" {
			t.Errorf("VIOLATION: failed %s: %s failed (%v) but returned a token", fired, call, err)
		}
		return false
	}
	if !lf.tokenWorks(nt) || lf.tokenWorks(lf.tok) {
		t.Errorf("failed %s: %s succeeded: new token works %v, old token works %v", fired, call, lf.tokenWorks(nt), lf.tokenWorks(lf.tok))
	}
	return true
}

func lookupTouchFlows() []faultFlow {
	var flows []faultFlow
	for _, every := range []time.Duration{45 * time.Second, 2 * time.Minute} {
		add := func(name string, start func(t *testing.T, lf *ltFix) (func() error, func(*testing.T, string, error))) {
			flows = append(flows, faultFlow{name: fmt.Sprintf("%s/every_%v", name, every),
				start: func(t *testing.T) (*ffix, func() error, func(*testing.T, string, error)) {
					lf := newLookupTouchFix(t, every)
					act, check := start(t, lf)
					return lf.ffix, act, check
				}})
		}

		add("Authenticate", func(t *testing.T, lf *ltFix) (func() error, func(*testing.T, string, error)) {
			var p guard.Principal
			return func() (err error) {
					p, err = lf.g.Authenticate(lf.ctx, lf.tok)
					return err
				},
				func(t *testing.T, fired string, err error) {
					if err != nil && p != (guard.Principal{}) {
						t.Errorf("VIOLATION: failed %s: Authenticate failed (%v) but returned a principal", fired, err)
					}
					lf.checkRequest(t, fired, err, false)
				}
		})

		for _, host := range sessionHosts {
			add("Request/allowed/"+host.name, func(t *testing.T, lf *ltFix) (func() error, func(*testing.T, string, error)) {
				return func() error { return host.use(lf.fixture, lf.tok, ltInside, "test") },
					func(t *testing.T, fired string, err error) { lf.checkRequest(t, fired, err, false) }
			})
			add("Request/refused/"+host.name, func(t *testing.T, lf *ltFix) (func() error, func(*testing.T, string, error)) {
				return func() error {
						err := host.use(lf.fixture, lf.tok, ltOutside, "test")
						switch {
						case err == nil:
							return errLetThrough
						case errors.Is(err, guard.ErrIPNotAllowed):
							return nil // refused, as it should be
						}
						return err
					},
					func(t *testing.T, fired string, err error) {
						lf.checkRequest(t, fired, err, true)
						// A refusal is recorded once a minute for the user
						// and address: if not by this request, by the
						// next one refused.
						if fired != "" && !errors.Is(host.use(lf.fixture, lf.tok, ltOutside, "test"), guard.ErrIPNotAllowed) {
							t.Errorf("failed %s: the next request from outside the allow-list is not refused", fired)
						}
						if !slices.ContainsFunc(lf.events(t, audit.IPDenied), func(e audit.Event) bool {
							return e.Actor.ID == lf.p.UserID && e.IP == ltOutside && e.Reason == "not_in_allow_list"
						}) {
							t.Errorf("VIOLATION: failed %s (err %v): the session refused from %s, no ip.denied on record", fired, err, ltOutside)
						}
					}
			})
		}

		add("RotateSession", func(t *testing.T, lf *ltFix) (func() error, func(*testing.T, string, error)) {
			var nt string
			return func() (err error) {
					nt, _, err = lf.g.RotateSession(lf.ctx, lf.tok, lf.p.Flags)
					return err
				},
				func(t *testing.T, fired string, err error) { lf.checkRenewed(t, "RotateSession", fired, err, nt) }
		})

		// A step-up of the session that AuthenticateFrom let through.
		add("Reauthenticate", func(t *testing.T, lf *ltFix) (func() error, func(*testing.T, string, error)) {
			var nt string
			var s session.Session
			return func() error {
					p, err := lf.g.AuthenticateFrom(lf.ctx, lf.tok, netip.MustParseAddr(ltInside), "test")
					if err != nil {
						return err
					}
					nt, s, err = lf.g.Reauthenticate(lf.ctx, p, lf.tok, guard.Proof{Password: ownerPW})
					return err
				},
				func(t *testing.T, fired string, err error) {
					if lf.checkRenewed(t, "Reauthenticate", fired, err, nt) && !lf.recorded(t, audit.Reauthenticated, s.ID()) {
						t.Errorf("VIOLATION: failed %s: session %s renewed without session.reauthenticated", fired, s.ID())
					}
				}
		})

		add("LogoutToken", func(t *testing.T, lf *ltFix) (func() error, func(*testing.T, string, error)) {
			return func() error { return lf.g.LogoutToken(lf.ctx, lf.tok, ltInside, "test") },
				func(t *testing.T, fired string, err error) {
					works := lf.tokenWorks(lf.tok)
					if err == nil && works {
						t.Errorf("failed %s: LogoutToken succeeded but the token works", fired)
					}
					// LogoutToken: "A store failure is ErrUnavailable and
					// ends nothing. As with Logout, a revocation stands
					// even when it cannot be recorded".
					if !works && !lf.recorded(t, audit.Logout, lf.p.SessionID()) && !standsUnrecorded(fired, err) {
						t.Errorf("VIOLATION: failed %s (err %v): session ended without logout event", fired, err)
					}
				}
		})
	}
	return flows
}
