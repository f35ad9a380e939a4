package guard_test

import (
	"errors"
	"maps"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// Severity: medium. A valid session cookie from a client whose IP cannot
// be identified (a trusted proxy's garbled X-Forwarded-For) is refused at
// each request, and each refusal was recorded: an ip.denied event per
// request, an unbounded flood into the tenant's audit chain that a
// misconfigured proxy, or a signed-in user sending the header on purpose,
// causes at will. Such refusals are now recorded once a minute for each
// user, as the allow-list's refusals of a session are; every request is
// refused all the same. AuthenticateFrom given no address alike.
func TestAuditHTTPMW_UnidentifiedSessionRecordedOnceAMinute(t *testing.T) {
	for _, host := range sessionHosts {
		t.Run(host.name, func(t *testing.T) {
			f := newFixture(t, behindProxy)
			ada, adaTok := f.userWithRoles(t, "ada@example.test")
			bob, bobTok := f.userWithRoles(t, "bob@example.test")
			use := func(who, tok string, n int) {
				t.Helper()
				for i := range n {
					if err := host.use(f, tok, "", "loop"); !errors.Is(err, guard.ErrIPNotAllowed) {
						t.Fatalf("%s's request %d from an unidentified client: %v, want ErrIPNotAllowed", who, i, err)
					}
				}
			}
			recorded := func(userID string) int {
				t.Helper()
				n := 0
				for _, e := range f.events(t, audit.IPDenied) {
					if e.Reason == "unidentified" && e.Actor.ID == userID {
						if e.Outcome != audit.Failure || e.IP != "" || e.UserAgent != "loop" || !maps.Equal(e.Meta, host.untrusted) {
							t.Errorf("ip.denied event %+v, want a failure with no IP, user agent loop and Meta %v", e, host.untrusted)
						}
						n++
					}
				}
				return n
			}
			use("Ada", adaTok, 10)
			if n := recorded(ada.UserID); n != 1 {
				t.Errorf("%d unidentified ip.denied events for ten of Ada's requests within a minute, want 1", n)
			}
			use("Bob", bobTok, 3)
			if n := recorded(bob.UserID); n != 1 {
				t.Errorf("%d unidentified ip.denied events for Bob's requests, want 1 of his own", n)
			}
			f.clock.Advance(time.Minute)
			use("Ada", adaTok, 3)
			if n := recorded(ada.UserID); n != 2 {
				t.Errorf("%d unidentified ip.denied events for Ada a minute later, want 2", n)
			}
		})
	}
}
