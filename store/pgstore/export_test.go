package pgstore

import "context"

// MigrateTo runs the migrations of s up to version target, as an older
// version of this package would have: for tests of upgrades.
func MigrateTo(ctx context.Context, s *Store, target int) error { return s.migrateTo(ctx, target) }
