package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guardhq/guard/ipfilter"
)

// IPLists is the PostgreSQL ipfilter.Store. Each tenant is one row that
// holds both scopes and the version, so Lists reads one consistent version
// in one statement, and Replace is one statement too: an INSERT … ON
// CONFLICT DO NOTHING for a tenant never written (prev 0), otherwise an
// UPDATE … WHERE version = prev, which PostgreSQL re-checks on the row as
// it is once locked. Of concurrent Replaces from the same prev, on any
// number of replicas, exactly one changes the row; the others get
// ipfilter.ErrConflict.
//
// Entries are stored as bytea arrays, byte for byte and in order: never
// parsed, sorted or rewritten (no inet type). Version reads only the
// version column; large lists are kept out of line (TOAST) and are not
// read by it.
type IPLists struct {
	pool  *pgxpool.Pool
	sql   ipListSQL
	watch *versionWatch
}

var _ ipfilter.Store = (*IPLists)(nil)

type ipListSQL struct {
	lists, version string
	// create and update are indexed by scope: 0 Users, 1 APIKeys.
	create, update [2]string
}

func newIPListSQL(q string) ipListSQL {
	s := func(sql string) string { return schemaSQL(q, sql) }
	return ipListSQL{
		lists: s(`SELECT version, users_entries, users_report_only, api_keys_entries, api_keys_report_only
			FROM {s}.ip_lists WHERE tenant = $1`),
		version: s(`SELECT version FROM {s}.ip_lists WHERE tenant = $1`),
		create: [2]string{
			s(`INSERT INTO {s}.ip_lists (tenant, version, users_entries, users_report_only, api_keys_entries, api_keys_report_only)
				VALUES ($1, 1, $2, $3, '{}', false) ON CONFLICT (tenant) DO NOTHING RETURNING version`),
			s(`INSERT INTO {s}.ip_lists (tenant, version, users_entries, users_report_only, api_keys_entries, api_keys_report_only)
				VALUES ($1, 1, '{}', false, $2, $3) ON CONFLICT (tenant) DO NOTHING RETURNING version`),
		},
		update: [2]string{
			s(`UPDATE {s}.ip_lists SET users_entries = $2, users_report_only = $3, version = version + 1
				WHERE tenant = $1 AND version = $4 RETURNING version`),
			s(`UPDATE {s}.ip_lists SET api_keys_entries = $2, api_keys_report_only = $3, version = version + 1
				WHERE tenant = $1 AND version = $4 RETURNING version`),
		},
	}
}

// entriesOf returns scanned entries as strings (nil for none); the strings
// share the scanned bytes.
func entriesOf(b []byteaString) []string {
	if len(b) == 0 {
		return nil
	}
	out := make([]string, len(b))
	for i, e := range b {
		out[i] = string(e)
	}
	return out
}

// Lists implements ipfilter.Store in one statement on one row.
func (s *IPLists) Lists(ctx context.Context, tenant string) (ipfilter.Lists, error) {
	var (
		l            ipfilter.Lists
		version      int64
		users, apiKs []byteaString
	)
	err := s.pool.QueryRow(ctx, s.sql.lists, []byte(tenant)).
		Scan(&version, &users, &l.Users.ReportOnly, &apiKs, &l.APIKeys.ReportOnly)
	if errors.Is(err, pgx.ErrNoRows) {
		return ipfilter.Lists{}, nil
	}
	if err != nil {
		return ipfilter.Lists{}, wrap("ip lists: lists", err)
	}
	l.Version = uint64(version)
	l.Users.Entries, l.APIKeys.Entries = entriesOf(users), entriesOf(apiKs)
	return l, nil
}

// Version implements ipfilter.Store: one primary-key read of one bigint,
// or none while Store.Watch runs and holds the tenant's version.
func (s *IPLists) Version(ctx context.Context, tenant string) (uint64, error) {
	return s.watch.version(ctx, kindIPLists, tenant, func(ctx context.Context) (uint64, error) {
		return s.readVersion(ctx, tenant)
	})
}

func (s *IPLists) readVersion(ctx context.Context, tenant string) (uint64, error) {
	var version int64
	err := s.pool.QueryRow(ctx, s.sql.version, []byte(tenant)).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("ip lists: version", err)
	}
	return uint64(version), nil
}

// Replace implements ipfilter.Store in one statement. A scope other than
// ipfilter.Users and ipfilter.APIKeys is an error and changes nothing.
func (s *IPLists) Replace(ctx context.Context, tenant string, scope ipfilter.Scope, r ipfilter.Rules, prev uint64) (uint64, error) {
	var i int
	switch scope {
	case ipfilter.Users:
		i = 0
	case ipfilter.APIKeys:
		i = 1
	default:
		return 0, fmt.Errorf("pgstore: ip lists: invalid scope %v", scope)
	}
	if prev >= math.MaxInt64 {
		return 0, ipfilter.ErrConflict // no stored version is that high
	}
	entries := make([][]byte, len(r.Entries)) // never nil: NOT NULL
	for j, e := range r.Entries {
		entries[j] = []byte(e)
	}
	var (
		row pgx.Row
		v   int64
	)
	if prev == 0 {
		row = s.pool.QueryRow(ctx, s.sql.create[i], []byte(tenant), entries, r.ReportOnly)
	} else {
		row = s.pool.QueryRow(ctx, s.sql.update[i], []byte(tenant), entries, r.ReportOnly, int64(prev))
	}
	err := row.Scan(&v)
	s.watch.forget(kindIPLists, tenant, false) // whatever happened, read it again
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ipfilter.ErrConflict
	}
	if err != nil {
		return 0, wrap("ip lists: replace", err)
	}
	return uint64(v), nil
}
