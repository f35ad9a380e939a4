package ipfilter

import "context"

// Scope says whose requests an allow-list restricts. Every tenant has one
// list per scope, and the two are independent.
type Scope uint8

const (
	// Users restricts people: sign-in and every request of a session.
	Users Scope = 1
	// APIKeys restricts requests authenticated by an API key.
	APIKeys Scope = 2
)

// Scopes lists every valid Scope, in order.
var Scopes = [...]Scope{Users, APIKeys}

// String returns "users" or "api_keys" (a stable name backends may use as
// a key or column value).
func (s Scope) String() string {
	switch s {
	case Users:
		return "users"
	case APIKeys:
		return "api_keys"
	}
	return "Scope(" + itoa(int(s)) + ")"
}

// Valid reports whether s is Users or APIKeys.
func (s Scope) Valid() bool { return s == Users || s == APIKeys }

// Rules is the stored allow-list of one scope of one tenant.
type Rules struct {
	// Entries are the allow-list in canonical form (Set.Entries). Empty
	// means no restriction.
	Entries []string
	// ReportOnly: requests from outside the list are reported (Decision
	// WouldDeny) but not blocked, so that a list can be tried out before
	// it is enforced.
	ReportOnly bool
}

// Lists is everything stored for one tenant: both scopes and the
// version.
type Lists struct {
	// Version counts the changes to the tenant's lists: 0 for a tenant
	// never written, then one more with each Replace.
	Version uint64
	Users   Rules
	APIKeys Rules
}

// Rules returns the rules of scope s (the zero Rules for an invalid scope).
func (l *Lists) Rules(s Scope) Rules {
	switch s {
	case Users:
		return l.Users
	case APIKeys:
		return l.APIKeys
	}
	return Rules{}
}

// Store keeps the allow-lists of every tenant, with a version per tenant
// that moves with every change, so that a cache of compiled lists (Filter)
// on any replica can tell, by reading one number, whether it is current.
//
// Tenants never see each other's lists. Entries are opaque strings to a
// store (never rewritten, for example by an SQL inet type), and a scope
// holds at least DefaultMaxEntries of them. Callers only pass the scopes
// Users and APIKeys.
type Store interface {
	// Lists returns both scopes of tenant and the tenant's version, read
	// in one atomic step (never the rules of one version with the number
	// of another). A tenant never written has the zero Lists: Version 0
	// and empty rules, and that is not an error. The returned Entries
	// belong to the caller.
	Lists(ctx context.Context, tenant string) (Lists, error)
	// Version returns tenant's version, as Lists would, 0 for a tenant
	// never written.
	Version(ctx context.Context, tenant string) (uint64, error)
	// Replace sets the rules of one scope of tenant to r, entries verbatim
	// and in the given order, and increments the tenant's version by one,
	// in one atomic step, but only if the version is still prev; it
	// returns the new version, prev+1. If the version is not prev, it
	// returns ErrConflict and changes nothing. The other scope is left
	// alone. r.Entries is not retained.
	Replace(ctx context.Context, tenant string, scope Scope, r Rules, prev uint64) (uint64, error)
}
