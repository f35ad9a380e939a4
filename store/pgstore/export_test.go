package pgstore

import "context"

// MigrateTo runs the migrations of s up to version target, as an older
// version of this package would have: for tests of upgrades.
func MigrateTo(ctx context.Context, s *Store, target int) error { return s.migrateTo(ctx, target) }

// SetPolicyHistory sets the number of changes p keeps per tenant (for
// tests of pruning).
func SetPolicyHistory(p *Policies, keep int) { p.keep = int64(keep) }

// WatchAppName is the application_name of the Watch of a schema, for
// tests.
func WatchAppName(schema string) string { return watchAppName(watchChannel(schema)) }
