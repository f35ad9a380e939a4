package sqlitestore

import (
	"context"
	"fmt"
	"math"

	"github.com/guardhq/guard/ipfilter"
)

// IPLists is the ipfilter.Store of a Store. Each tenant is one row that
// holds both scopes and the version, so Lists reads one consistent version
// in one SELECT, and Replace is one statement too: an INSERT … ON CONFLICT
// DO NOTHING for a tenant never written (prev 0), otherwise an UPDATE …
// WHERE version = prev, run under the database write lock. Of concurrent
// Replaces from the same prev, in any number of processes, exactly one
// changes the row; the others get ipfilter.ErrConflict.
//
// Entries are stored byte for byte and in order, never parsed, sorted or
// rewritten: each scope is one BLOB of the entries, each prefixed by its
// length as a uvarint (encodeStrings). Version, read on every request of a tenant with
// allow-lists, reads the version column only; large lists are kept in
// overflow pages that it does not read.
type IPLists struct{ s *Store }

var _ ipfilter.Store = (*IPLists)(nil)

// Lists implements ipfilter.Store with one SELECT of the tenant's row.
func (l *IPLists) Lists(ctx context.Context, tenant string) (ipfilter.Lists, error) {
	if err := l.s.ready(ctx); err != nil {
		return ipfilter.Lists{}, err
	}
	var out ipfilter.Lists
	var version int64
	var users, keys []byte
	err := l.s.reads.queryRow(ctx, ipLists, tenant).Scan(&version, &out.Users.ReportOnly, &out.APIKeys.ReportOnly, &users, &keys)
	if isNoRows(err) {
		return ipfilter.Lists{}, nil
	}
	if err != nil {
		return ipfilter.Lists{}, fmt.Errorf("sqlitestore: read ip allow-lists: %w", err)
	}
	out.Version = uint64(version)
	if out.Users.Entries, err = decodeStrings(users); err != nil {
		return ipfilter.Lists{}, err
	}
	if out.APIKeys.Entries, err = decodeStrings(keys); err != nil {
		return ipfilter.Lists{}, err
	}
	return out, nil
}

// Version implements ipfilter.Store: one SELECT of one column.
func (l *IPLists) Version(ctx context.Context, tenant string) (uint64, error) {
	if err := l.s.ready(ctx); err != nil {
		return 0, err
	}
	var version int64
	err := l.s.reads.queryRow(ctx, ipVersion, tenant).Scan(&version)
	if isNoRows(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: read ip allow-list version: %w", err)
	}
	return uint64(version), nil
}

// Replace implements ipfilter.Store in one statement. A scope other than
// ipfilter.Users and ipfilter.APIKeys gives an *ipfilter.InputError and
// changes nothing.
func (l *IPLists) Replace(ctx context.Context, tenant string, scope ipfilter.Scope, r ipfilter.Rules, prev uint64) (uint64, error) {
	var create, update stmtID
	switch scope {
	case ipfilter.Users:
		create, update = ipCreateUsers, ipUpdateUsers
	case ipfilter.APIKeys:
		create, update = ipCreateKeys, ipUpdateKeys
	default:
		return 0, &ipfilter.InputError{Field: "scope", Reason: "must be Users or APIKeys"}
	}
	if prev >= math.MaxInt64 {
		return 0, ipfilter.ErrConflict // no stored version is that high
	}
	entries := encodeStrings(r.Entries)
	var changed bool
	err := l.s.writeOne(ctx, func(w *wtx) error {
		var err error
		if prev == 0 {
			changed, err = affected(w.exec(create, tenant, entries, r.ReportOnly))
		} else {
			changed, err = affected(w.exec(update, tenant, entries, r.ReportOnly, int64(prev)))
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: replace ip allow-list: %w", err)
	}
	if !changed {
		return 0, ipfilter.ErrConflict
	}
	return prev + 1, nil
}
