package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

// Severity: medium. A session cookie sent from a client whose IP cannot
// be identified is refused (403), yet Authenticate, which ran before the
// check, wrote the session's last-seen: refused requests kept a session
// alive past its idle timeout, for as long as whoever holds the cookie
// (a stolen one, say) sends them through a proxy that garbles
// X-Forwarded-For. A refused request no longer touches the session: on
// the embedded store and on a store that looks up and touches in one step
// (sqlitestore, a session.LookupToucher), at a cadence under and over
// session.Config.MaxTouchGap; nor does AuthenticateFrom given no address.
func TestAuditHTTPMW_UnidentifiedRequestsDoNotKeepSessionAlive(t *testing.T) {
	const idle = 10 * time.Minute
	touchCases(t, idle, func(t *testing.T, f *fixture, tok string, host sessionHost, every time.Duration) {
		// Refused requests while the session is live (its last use, the
		// sign-in, at 0), then one past its idle timeout.
		elapsed := time.Duration(0)
		for elapsed+every < idle {
			f.clock.Advance(every)
			elapsed += every
			if err := host.use(f, tok, "", ""); !errors.Is(err, guard.ErrIPNotAllowed) {
				t.Fatalf("unidentified request after %v: %v, want ErrIPNotAllowed", elapsed, err)
			}
		}
		f.clock.Advance(idle - elapsed + time.Second)
		if _, err := f.g.Authenticate(f.ctx, tok); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("session idle for over 10 minutes but for refused requests, under a 10-minute idle timeout: %v, want ErrUnauthenticated", err)
		}
	})
}

// touchCases runs test for each host (sessionHosts), session store
// (touchBackends) and cadence, under and over session.Config.MaxTouchGap,
// on a fixture that trusts behindProxy's proxies and whose tenant's idle
// timeout is idle, with a user just signed in (tok).
func touchCases(t *testing.T, idle time.Duration, test func(t *testing.T, f *fixture, tok string, host sessionHost, every time.Duration)) {
	for _, host := range sessionHosts {
		for _, b := range touchBackends {
			for _, every := range []time.Duration{45 * time.Second, 4 * time.Minute} {
				t.Run(host.name+"/"+b.name+"/every "+every.String(), func(t *testing.T) {
					f := newFixture(t, behindProxy, func(c *guard.Config) { c.Stores = b.stores(t) })
					_, tok := f.userWithRoles(t, "ada@example.test")
					tn, err := f.g.Tenant(f.ctx, tenantID)
					if err != nil {
						t.Fatal(err)
					}
					pol := tn.Policy
					pol.IdleTimeout = idle
					if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, pol, tn.Version); err != nil {
						t.Fatal(err)
					}
					test(t, f, tok, host, every)
				})
			}
		}
	}
}

// touchBackends are the session stores on which a refused request must
// not touch a session: the embedded one (lookup, then touch) and one that
// looks up and touches in one step (sqlitestore, a session.LookupToucher).
var touchBackends = []struct {
	name   string
	stores func(*testing.T) guard.Stores
}{
	{"memstore", func(*testing.T) guard.Stores { return newMem() }},
	{"sqlitestore", newSQLite},
}
