// Package memstore keeps every Guard store in memory: for tests, for
// trying Guard out, and as the reference implementation that the
// conformance suites (authtest, sessiontest, audittest, guardtest) are
// checked against. Nothing survives a restart and nothing is shared
// between processes; use sqlitestore, pgstore or redisstore for that.
//
// Every type is safe for concurrent use, and each store method is atomic
// under one lock, which is how the invariants of the store interfaces
// hold.
package memstore

import guard "github.com/guardhq/guard"

// Store bundles one of each in-memory store.
type Store struct {
	Users     *Users
	Throttle  *Throttle
	Sessions  *Sessions
	Audit     *Audit
	Tenants   *Tenants
	APIKeys   *APIKeys
	MFA       *MFA
	IPLists   *IPLists
	Policies  *Policies
	Approvals *Approvals
	SSO       *SSO
}

// New returns an empty Store.
func New() *Store {
	return &Store{
		Users:     NewUsers(),
		Throttle:  NewThrottle(0),
		Sessions:  NewSessions(),
		Audit:     NewAudit(),
		Tenants:   NewTenants(),
		APIKeys:   NewAPIKeys(),
		MFA:       NewMFA(),
		IPLists:   NewIPLists(),
		Policies:  NewPolicies(),
		Approvals: NewApprovals(),
		SSO:       NewSSO(),
	}
}

// Stores returns s as the facade's guard.Stores.
func (s *Store) Stores() guard.Stores {
	return guard.Stores{
		Users:        s.Users,
		UserUpdates:  s.Users,
		Throttle:     s.Throttle,
		Sessions:     s.Sessions,
		SessionIndex: s.Sessions,
		Audit:        s.Audit,
		Tenants:      s.Tenants,
		APIKeys:      s.APIKeys,
		MFA:          s.MFA.Stores(),
		IPLists:      s.IPLists,
		Policies:     s.Policies,
		Approvals:    s.Approvals,
		SSO:          s.SSO.Stores(),
	}
}
