package guard

import (
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/session"
)

// policyEnd records a session that the policy ended as the session check
// records it: past a lifetime or idle timeout (its own or the policy's),
// session.expired by its user; short of a requirement, session.revoked by
// the system with sessionAllowed's reason.
func TestPolicyEnd(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	base := session.Session{Tenant: "acme", UserID: "ada", CreatedAt: t0, LastSeen: t0,
		ExpiresAt: t0.Add(7 * 24 * time.Hour), IdleTimeout: 24 * time.Hour}
	for _, c := range []struct {
		name   string
		pol    Policy
		at     time.Duration
		action audit.Action
		reason string
	}{
		{"policy lifetime", Policy{SessionLifetime: time.Hour}, 2 * time.Hour, audit.SessionExpired, "lifetime"},
		{"own lifetime", Policy{}, 8 * 24 * time.Hour, audit.SessionExpired, "lifetime"},
		{"policy idle timeout", Policy{IdleTimeout: time.Hour}, 2 * time.Hour, audit.SessionExpired, "idle_timeout"},
		{"own idle timeout", Policy{}, 25 * time.Hour, audit.SessionExpired, "idle_timeout"},
		{"sso required", Policy{RequireSSO: true}, time.Minute, audit.SessionRevoked, "sso_required"},
		{"mfa required", Policy{RequireMFA: true}, time.Minute, audit.SessionRevoked, "mfa_required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := base
			e := policyEnd(&s, &c.pol, time.Time{}, t0.Add(c.at))
			if e.Action != c.action || e.Reason != c.reason || e.Target != s.ID() || e.Tenant != "acme" {
				t.Errorf("policyEnd = %s %q (target %q), want %s %q", e.Action, e.Reason, e.Target, c.action, c.reason)
			}
		})
	}
}
