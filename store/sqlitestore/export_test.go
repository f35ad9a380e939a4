package sqlitestore

import (
	"context"

	"github.com/guardhq/guard/session"
)

// SeedSessions stores ss in one write transaction, without the checks of
// Create: for benchmarks that need many sessions quickly.
func SeedSessions(ctx context.Context, s *Store, ss []session.Session) error {
	return s.write(ctx, func(w *wtx) error {
		for i := range ss {
			if _, err := w.exec(sessInsert, sessionArgs(&ss[i])...); err != nil {
				return err
			}
		}
		return nil
	})
}

// MigrateWith runs the package's migrations followed by extra ones, as
// versions SchemaVersion()+1, +2…: for tests of failing migrations.
func MigrateWith(ctx context.Context, s *Store, extra ...[]string) error {
	ms := append([]migration(nil), migrations...)
	for _, stmts := range extra {
		ms = append(ms, migration{version: len(ms) + 1, name: "test", stmts: stmts})
	}
	return s.migrate(ctx, ms)
}

// SetSweepEvery changes how often Reserve, Create, PutCode, Hit,
// CreateTransaction, RememberRequest, InsertID and PutSubject sweep.
func SetSweepEvery(s *Store, n uint64) {
	s.Throttle.sweepEvery = n
	s.Sessions.sweepEvery = n
	s.MFA.sweepEvery = n
	s.SSO.sweepEvery = n
}

// WriteThenPanic runs a write transaction that stores a throttle record for
// key and then panics.
func WriteThenPanic(ctx context.Context, s *Store, key string) {
	s.write(ctx, func(w *wtx) error {
		if _, err := w.exec(thrUpsert, key, 1, nil, nil, 0, 0, nil); err != nil {
			return err
		}
		panic("in the middle of a transaction")
	})
}

// MigrateTo runs the package's first n migrations only, leaving the
// database as a version of this package with n migrations would.
func MigrateTo(ctx context.Context, s *Store, n int) error {
	return s.migrate(ctx, migrations[:n])
}

// SetPolicyHistory changes how many changes of each tenant's policy
// Policies keeps.
func SetPolicyHistory(s *Store, n int64) { s.Policies.keep = n }

// SubjectsByNameIDQuery is the SQL of SSO.SubjectsByNameID, for a test of
// its query plan.
var SubjectsByNameIDQuery = queries[subjByNameID]

// ApprovalsByStatusQueries are the SQL of Approvals.List with a status,
// for a test of their query plans.
var ApprovalsByStatusQueries = []string{queries[apprListStatus], queries[apprListStatusBefore]}

// HoldWriter holds the Store's writer, in a write transaction that
// writes nothing, until release is closed; held is closed once it has it.
func HoldWriter(ctx context.Context, s *Store, held chan<- struct{}, release <-chan struct{}) error {
	return s.write(ctx, func(*wtx) error {
		close(held)
		<-release
		return nil
	})
}
