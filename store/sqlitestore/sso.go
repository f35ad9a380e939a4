package sqlitestore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/guardhq/guard/sso"
)

// SSO is every sso store of a Store: IdP connections (sso.ConnectionStore),
// tracked requests (sso.RequestStore), the assertion replay cache
// (sso.ReplayCache) and the users' subjects at the IdP (sso.SubjectStore).
// Stores returns it as every role of sso.Stores.
//
// A connection is one row per tenant: the metadata source (URL, time of
// the last fetch, the XML) in columns, the other fields as JSON, so that
// fields added to sso.Connection need no migration. Every invariant is one
// statement, so it holds across processes: UpdateMetadata is one
// conditional UPDATE (set if newer, from the stored URL only),
// ConsumeRequest one DELETE … RETURNING, and InsertID one INSERT … ON
// CONFLICT DO UPDATE … WHERE the stored record has run out, which changes
// a row only when the ID is new, and PutSubject one INSERT … ON CONFLICT
// DO UPDATE of the user's row.
//
// Expired requests, replay records and subjects are deleted as the stores
// go: every defaultSweepEvery-th RememberRequest, InsertID and PutSubject
// of a Store also deletes, in the same transaction, up to sweepBatch rows
// of its table that expired SweepGrace or more before the time the caller
// passes, so these tables are bounded by the rate of logins (subjects by
// the users signed in through SSO) and no method returns sso.ErrFull; a
// replica whose clock is behind by less than SweepGrace still refuses a
// replayed assertion and still finds a subject that is live by its own
// clock. Sweep deletes them all.
type SSO struct {
	s          *Store
	sweepEvery uint64
	remembers  atomic.Uint64
	inserts    atomic.Uint64
	puts       atomic.Uint64
}

var (
	_ sso.ConnectionStore = (*SSO)(nil)
	_ sso.RequestStore    = (*SSO)(nil)
	_ sso.ReplayCache     = (*SSO)(nil)
	_ sso.SubjectStore    = (*SSO)(nil)
)

// Stores returns s as every role of sso.Stores.
func (s *SSO) Stores() sso.Stores {
	return sso.Stores{Connections: s, Requests: s, Replay: s, Subjects: s}
}

// writeSweeping runs f, one atomic statement, on the writer. Every
// sweepEvery-th call counted by n (none when sweepEvery is 0) runs it
// instead in one write transaction after sweep, a statement that deletes
// up to sweepBatch rows that expired at or before cutoff (Unix
// microseconds).
func (s *SSO) writeSweeping(ctx context.Context, n *atomic.Uint64, sweep stmtID, cutoff int64, f func(w *wtx) error) error {
	if s.sweepEvery == 0 || n.Add(1)%s.sweepEvery != 0 {
		return s.s.writeOne(ctx, f)
	}
	return s.s.write(ctx, func(w *wtx) error {
		if _, err := w.exec(sweep, cutoff, sweepBatch); err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		return f(w)
	})
}

// notUTF8 returns the name of the first string in v (a struct, looking into
// its slices, maps and nested structs) that is not valid UTF-8, which JSON
// cannot keep as it is; "" if there is none.
func notUTF8(v reflect.Value, name string) string {
	switch v.Kind() {
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			return name
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				if bad := notUTF8(v.Field(i), f.Name); bad != "" {
					return bad
				}
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if bad := notUTF8(v.Index(i), name); bad != "" {
				return bad
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if bad := cmp.Or(notUTF8(it.Key(), name), notUTF8(it.Value(), name)); bad != "" {
				return bad
			}
		}
	}
	return ""
}

// PutConnection implements sso.ConnectionStore with one upsert. A field
// stored as JSON that holds a string that is not valid UTF-8 (which JSON
// would rewrite) gives an *sso.InputError and stores nothing; the tenant
// and the metadata source are stored byte for byte.
func (s *SSO) PutConnection(ctx context.Context, c sso.Connection) error {
	settings, err := encodeSettings(c)
	if err != nil {
		return err
	}
	err = s.s.writeOne(ctx, func(w *wtx) error {
		_, err := w.exec(ssoPut, c.Tenant, c.MetadataURL, nullMicros(c.MetadataFetchedAt), settings, c.Metadata)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: put sso connection: %w", err)
	}
	return nil
}

// Connection implements sso.ConnectionStore with one SELECT.
func (s *SSO) Connection(ctx context.Context, tenant string) (sso.Connection, error) {
	if err := s.s.ready(ctx); err != nil {
		return sso.Connection{}, err
	}
	var c sso.Connection
	var t, url, settings, metadata string
	var fetched sql.NullInt64
	err := s.s.reads.queryRow(ctx, ssoGet, tenant).Scan(&t, &url, &fetched, &settings, &metadata)
	if isNoRows(err) {
		return sso.Connection{}, sso.ErrNotFound
	}
	if err != nil {
		return sso.Connection{}, fmt.Errorf("sqlitestore: read sso connection: %w", err)
	}
	if c, err = decodeSettings(settings); err != nil {
		return sso.Connection{}, err
	}
	c.Tenant, c.MetadataURL, c.Metadata, c.MetadataFetchedAt = t, url, metadata, fromNullMicros(fetched)
	return c, nil
}

// encodeSettings returns the settings column of c: c as JSON, without the
// four fields kept in columns of their own. A string that is not valid
// UTF-8 gives an *sso.InputError naming its field.
func encodeSettings(c sso.Connection) (string, error) {
	c.Tenant, c.MetadataURL, c.Metadata, c.MetadataFetchedAt = "", "", "", time.Time{}
	if bad := notUTF8(reflect.ValueOf(c), "Connection"); bad != "" {
		return "", &sso.InputError{Field: bad, Reason: "is not valid UTF-8"}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("sqlitestore: encode sso connection: %w", err)
	}
	return string(b), nil
}

// decodeSettings reads the settings column: the connection without the
// four fields kept in columns of their own.
func decodeSettings(settings string) (sso.Connection, error) {
	var c sso.Connection
	if err := json.Unmarshal([]byte(settings), &c); err != nil {
		return sso.Connection{}, fmt.Errorf("sqlitestore: stored sso connection: %w", err)
	}
	return c, nil
}

// DeleteConnection implements sso.ConnectionStore with one DELETE.
func (s *SSO) DeleteConnection(ctx context.Context, tenant string) error {
	var found bool
	err := s.s.writeOne(ctx, func(w *wtx) error {
		var err error
		found, err = affected(w.exec(ssoDelete, tenant))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: delete sso connection: %w", err)
	}
	if !found {
		return sso.ErrNotFound
	}
	return nil
}

// UpdateMetadata implements sso.ConnectionStore with one conditional
// UPDATE. When it changes nothing, a read tells a refused update from a
// tenant without a connection.
func (s *SSO) UpdateMetadata(ctx context.Context, tenant, url, metadata string, fetchedAt time.Time) (bool, error) {
	var changed bool
	err := s.s.writeOne(ctx, func(w *wtx) error {
		var err error
		changed, err = affected(w.exec(ssoUpdate, tenant, url, metadata, nullMicros(fetchedAt)))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlitestore: update sso metadata: %w", err)
	}
	if changed {
		return true, nil
	}
	var one int
	switch err := s.s.reads.queryRow(ctx, ssoExists, tenant).Scan(&one); {
	case isNoRows(err):
		return false, sso.ErrNotFound
	case err != nil:
		return false, fmt.Errorf("sqlitestore: update sso metadata: %w", err)
	}
	return false, nil
}

// RememberRequest implements sso.RequestStore with one INSERT … ON
// CONFLICT DO NOTHING. Every defaultSweepEvery-th RememberRequest of a
// Store also deletes, in the same transaction, up to sweepBatch requests
// that expired SweepGrace or more before r.CreatedAt.
func (s *SSO) RememberRequest(ctx context.Context, r sso.Request) error {
	var created bool
	err := s.writeSweeping(ctx, &s.remembers, reqSweep, sweepCutoff(r.CreatedAt), func(w *wtx) error {
		var err error
		created, err = affected(w.exec(reqRemember, r.Tenant, r.ID, r.Kind, r.RelayState, r.ReturnTo, r.Binding,
			micros(r.CreatedAt), micros(r.Expires)))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: remember sso request: %w", err)
	}
	if !created {
		return sso.ErrDuplicate
	}
	return nil
}

// ConsumeRequest implements sso.RequestStore with one DELETE … RETURNING:
// of concurrent calls, in any process, one gets the row. An expired
// request is removed all the same, and gives sso.ErrNotFound.
func (s *SSO) ConsumeRequest(ctx context.Context, tenant, id string, now time.Time) (sso.Request, error) {
	var r sso.Request
	err := s.s.writeOne(ctx, func(w *wtx) error {
		var created, expires int64
		if err := w.queryRow(reqConsume, tenant, id).Scan(&r.Tenant, &r.ID, &r.Kind, &r.RelayState, &r.ReturnTo,
			&r.Binding, &created, &expires); err != nil {
			return err
		}
		r.CreatedAt, r.Expires = fromMicros(created), fromMicros(expires)
		return nil
	})
	if isNoRows(err) {
		return sso.Request{}, sso.ErrNotFound
	}
	if err != nil {
		return sso.Request{}, fmt.Errorf("sqlitestore: consume sso request: %w", err)
	}
	if !now.Before(r.Expires) {
		return sso.Request{}, sso.ErrNotFound
	}
	return r, nil
}

// InsertID implements sso.ReplayCache with one INSERT … ON CONFLICT DO
// UPDATE that replaces only a record that has run out: of concurrent
// inserts of one ID, in any process, exactly one changes a row. Every
// defaultSweepEvery-th InsertID of a Store also deletes, in the same
// transaction, up to sweepBatch records that ran out SweepGrace or more
// before now.
func (s *SSO) InsertID(ctx context.Context, tenant, id string, until, now time.Time) (bool, error) {
	var inserted bool
	err := s.writeSweeping(ctx, &s.inserts, replaySweep, sweepCutoff(now), func(w *wtx) error {
		var err error
		inserted, err = affected(w.exec(replayInsert, tenant, id, ceilMicros(until), micros(now)))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlitestore: insert sso replay id: %w", err)
	}
	return inserted, nil
}

// Sweep deletes every tracked request, replay record and subject that
// expired SweepGrace or more before now, in one write transaction, and
// returns how many rows it deleted. RememberRequest, InsertID and
// PutSubject sweep now and then; a host may also call Sweep periodically.
func (s *SSO) Sweep(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.s.write(ctx, func(w *wtx) error {
		for _, id := range []stmtID{reqSweep, replaySweep, subjSweep} {
			res, err := w.exec(id, sweepCutoff(now), -1)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: sweep sso: %w", err)
	}
	return n, nil
}

// PutSubject implements sso.SubjectStore with one INSERT … ON CONFLICT DO
// UPDATE of the user's row, which replaces every field: of concurrent puts
// for one user, in any process, the last to commit is stored whole. Every
// field is kept byte for byte (like the tenant and ID of a request), and
// Expires to the microsecond. A Subject that sso.Subject.Validate refuses
// gives its *sso.InputError, and nothing is written. Every
// defaultSweepEvery-th PutSubject of a Store also deletes, in the same
// transaction, up to sweepBatch subjects that expired SweepGrace or more
// before now.
func (s *SSO) PutSubject(ctx context.Context, sub sso.Subject, now time.Time) error {
	if err := sub.Validate(); err != nil {
		return err
	}
	err := s.writeSweeping(ctx, &s.puts, subjSweep, sweepCutoff(now), func(w *wtx) error {
		_, err := w.exec(subjPut, sub.Tenant, sub.UserID, sub.IdP, sub.NameID, sub.NameIDFormat, sub.SessionIndex, micros(sub.Expires))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: put sso subject: %w", err)
	}
	return nil
}

// Subject implements sso.SubjectStore with one SELECT by primary key that
// finds the row only if now is before its Expires.
func (s *SSO) Subject(ctx context.Context, tenant, userID string, now time.Time) (sso.Subject, error) {
	if err := s.s.ready(ctx); err != nil {
		return sso.Subject{}, err
	}
	sub, err := scanSubject(s.s.reads.queryRow(ctx, subjGet, tenant, userID, micros(now)))
	if isNoRows(err) {
		return sso.Subject{}, sso.ErrNotFound
	}
	if err != nil {
		return sso.Subject{}, fmt.Errorf("sqlitestore: read sso subject: %w", err)
	}
	return sub, nil
}

// SubjectsByNameID implements sso.SubjectStore with one SELECT of a range
// of the index on (tenant, idp, name_id, user_id): IdPs and NameIDs are
// compared byte for byte, and the subjects come in the byte order of their
// user IDs, the order of strings.Compare. An empty idp reads nothing.
func (s *SSO) SubjectsByNameID(ctx context.Context, tenant, idp, nameID string, now time.Time) ([]sso.Subject, error) {
	if err := s.s.ready(ctx); err != nil {
		return nil, err
	}
	if idp == "" {
		return nil, nil // a subject without an IdP belongs to none
	}
	out, err := queryAll(ctx, s.s.reads, subjByNameID, scanSubject, tenant, idp, nameID, micros(now))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list sso subjects: %w", err)
	}
	return out, nil
}

// scanSubject reads a row of subjectCols.
func scanSubject(r scanner) (sso.Subject, error) {
	var sub sso.Subject
	var expires int64
	if err := r.Scan(&sub.Tenant, &sub.UserID, &sub.IdP, &sub.NameID, &sub.NameIDFormat, &sub.SessionIndex, &expires); err != nil {
		return sso.Subject{}, err
	}
	sub.Expires = fromMicros(expires)
	return sub, nil
}
