package guard_test

import (
	"errors"
	"net/http"
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
// session.Config.MaxTouchGap.
func TestAuditHTTPMW_UnidentifiedRequestsDoNotKeepSessionAlive(t *testing.T) {
	for _, b := range touchBackends {
		for _, every := range []time.Duration{45 * time.Second, 4 * time.Minute} {
			t.Run(b.name+"/every "+every.String(), func(t *testing.T) {
				f := newFixture(t, behindProxy, func(c *guard.Config) { c.Stores = b.stores(t) })
				_, tok := f.userWithRoles(t, "ada@example.test")
				tn, err := f.g.Tenant(f.ctx, tenantID)
				if err != nil {
					t.Fatal(err)
				}
				pol := tn.Policy
				pol.IdleTimeout = 10 * time.Minute
				if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, pol, tn.Version); err != nil {
					t.Fatal(err)
				}
				h := f.g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
				// Refused requests while the session is live (its last
				// use, the sign-in, at 0), then one past its idle timeout.
				elapsed := time.Duration(0)
				for elapsed+every < 10*time.Minute {
					f.clock.Advance(every)
					elapsed += every
					if code := serveHandler(h, "/", tok, "10.0.0.1:443", "X-Forwarded-For", "garbage").Code; code != http.StatusForbidden {
						t.Fatalf("unidentified request after %v: %d, want 403", elapsed, code)
					}
				}
				f.clock.Advance(10*time.Minute - elapsed + time.Second)
				if _, err := f.g.Authenticate(f.ctx, tok); !errors.Is(err, guard.ErrUnauthenticated) {
					t.Errorf("session idle for over 10 minutes but for refused requests, under a 10-minute idle timeout: %v, want ErrUnauthenticated", err)
				}
			})
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
