package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guardhq/guard/sso"
)

// SSO is every PostgreSQL sso store: IdP connections
// (sso.ConnectionStore), tracked requests (sso.RequestStore), the
// assertion replay cache (sso.ReplayCache) and the users' subjects at the
// IdP (sso.SubjectStore). Stores returns it as every role of sso.Stores.
//
// Every method is one statement, so every invariant holds across
// replicas:
//   - a tenant's connection is one row: PutConnection replaces it whole
//     with one INSERT … ON CONFLICT DO UPDATE, and UpdateMetadata is one
//     conditional UPDATE (the stored URL equal, the stored fetch time
//     before the new one), which PostgreSQL re-checks on the row as it is
//     once locked, so a late or stale fetch never overwrites a newer copy;
//   - RememberRequest is one INSERT … ON CONFLICT DO NOTHING, and
//     ConsumeRequest one DELETE … RETURNING: of concurrent calls for one
//     request, on any number of replicas, one gets the row;
//   - InsertID is one INSERT … ON CONFLICT DO UPDATE … WHERE until_us <=
//     now RETURNING: a new id is inserted and a record expired at now
//     replaced, reported new; of concurrent inserts of one id exactly one
//     gets a row back;
//   - a user's subject is one row: PutSubject replaces it whole with one
//     INSERT … ON CONFLICT DO UPDATE of every column, so of concurrent
//     puts for one user one lands last, whole; Subject and
//     SubjectsByNameID are one SELECT each.
//
// A connection is a row whose columns are the tenant, the metadata URL,
// the metadata and its fetch time (what UpdateMetadata reads and writes),
// and the rest of the connection as JSON (jsonb), so fields added to
// sso.Connection need no migration. Expiry is judged by the times the
// callers pass, kept to the microsecond, never by the database's clock.
// RememberRequest deletes up to GCBatch requests that expired SSOGCGrace
// or more before the new request's CreatedAt, InsertID up to GCBatch
// records whose until is SSOGCGrace or more before its now, and
// PutSubject up to GCBatch subjects whose Expires is SSOGCGrace or more
// before its now (each skipping rows other transactions hold), so the
// requests and replay records stay bounded by the rate of logins (neither
// method returns sso.ErrFull), and the subjects by the users signed in
// through SSO.
type SSO struct {
	pool *pgxpool.Pool
	sql  ssoSQL
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

type ssoSQL struct {
	putConn, conn, deleteConn, updateMetadata string
	remember, consume                         string
	insertID                                  string
	putSubject, subject, subjectsByNameID     string
}

const requestCols = `kind, relay_state, return_to, binding, created_us, expires_us`

const subjectCols = `idp, name_id, name_id_format, session_index, expires_us`

func newSSOSQL(q string) ssoSQL {
	s := func(sql string) string { return schemaSQL(q, sql) }
	return ssoSQL{
		// The fields kept in columns are zero in the JSON ($5) and are
		// removed from it (the keys are the Go field names, as
		// encoding/json writes them).
		putConn: s(`INSERT INTO {s}.sso_connections (tenant, metadata_url, metadata, fetched_at, settings)
			VALUES ($1, $2, $3, $4, $5::jsonb - '{Tenant,MetadataURL,Metadata,MetadataFetchedAt}'::text[])
			ON CONFLICT (tenant) DO UPDATE SET metadata_url = EXCLUDED.metadata_url, metadata = EXCLUDED.metadata,
				fetched_at = EXCLUDED.fetched_at, settings = EXCLUDED.settings`),
		conn:       s(`SELECT metadata_url, metadata, fetched_at, settings FROM {s}.sso_connections WHERE tenant = $1`),
		deleteConn: s(`DELETE FROM {s}.sso_connections WHERE tenant = $1`),
		// Set if newer, while the URL is unchanged (NULL is the zero
		// time, before any other); the second column tells a refused
		// update (the connection exists) from a missing connection.
		updateMetadata: s(`WITH u AS (
				UPDATE {s}.sso_connections SET metadata = $3, fetched_at = $4
				WHERE tenant = $1 AND metadata_url = $2
					AND COALESCE(fetched_at, '-infinity') < COALESCE($4::timestamptz, '-infinity')
				RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM {s}.sso_connections WHERE tenant = $1)`),

		// $9 is CreatedAt less SSOGCGrace.
		remember: s(`WITH gc AS (
				DELETE FROM {s}.sso_requests WHERE (tenant, id) IN (
					SELECT tenant, id FROM {s}.sso_requests
					WHERE expires_us <= $9 AND NOT (tenant = $1 AND id = $2)
					ORDER BY expires_us
					LIMIT ` + gcBatch + `
					FOR UPDATE SKIP LOCKED))
			INSERT INTO {s}.sso_requests (tenant, id, ` + requestCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (tenant, id) DO NOTHING`),
		consume: s(`DELETE FROM {s}.sso_requests WHERE tenant = $1 AND id = $2 RETURNING ` + requestCols),

		// A record whose until is at or before now ($4) is replaced; a
		// live one is left alone and no row comes back. The conflict
		// check waits for a concurrent insert of the same id and then
		// sees its row, so of concurrent inserts one gets a row. $5 is
		// now less SSOGCGrace.
		insertID: s(`WITH gc AS (
				DELETE FROM {s}.sso_replay WHERE (tenant, id) IN (
					SELECT tenant, id FROM {s}.sso_replay
					WHERE until_us <= $5 AND NOT (tenant = $1 AND id = $2)
					ORDER BY until_us
					LIMIT ` + gcBatch + `
					FOR UPDATE SKIP LOCKED))
			INSERT INTO {s}.sso_replay AS r (tenant, id, until_us) VALUES ($1, $2, $3)
			ON CONFLICT (tenant, id) DO UPDATE SET until_us = EXCLUDED.until_us WHERE r.until_us <= $4
			RETURNING true`),

		// The subject replaces the user's row whole. $8 is now less
		// SSOGCGrace. The deletion of expired rows never waits for a
		// lock: it skips rows other transactions hold and deletes by
		// ctid exactly the row versions it has locked (see
		// throttle_reserve). PostgreSQL runs it once the INSERT is done
		// (a WITH clause that nothing reads runs last), so a put that
		// waits for its user's row holds no other.
		putSubject: s(`WITH gc AS (
				DELETE FROM {s}.sso_subjects WHERE ctid = ANY (ARRAY(
					SELECT ctid FROM {s}.sso_subjects
					WHERE expires_us <= $8 AND NOT (tenant = $1 AND user_id = $2)
					ORDER BY expires_us
					LIMIT ` + gcBatch + `
					FOR UPDATE SKIP LOCKED)))
			INSERT INTO {s}.sso_subjects (tenant, user_id, ` + subjectCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (tenant, user_id) DO UPDATE SET idp = EXCLUDED.idp, name_id = EXCLUDED.name_id,
				name_id_format = EXCLUDED.name_id_format, session_index = EXCLUDED.session_index,
				expires_us = EXCLUDED.expires_us`),
		// Live iff now ($3) is before the expiry.
		subject: s(`SELECT ` + subjectCols + ` FROM {s}.sso_subjects
			WHERE tenant = $1 AND user_id = $2 AND expires_us > $3`),
		subjectsByNameID: s(`SELECT user_id, ` + subjectCols + ` FROM {s}.sso_subjects
			WHERE tenant = $1 AND idp = $2 AND name_id = $3 AND expires_us > $4
			ORDER BY user_id`),
	}
}

// SSOGCGrace is how long after its expiry, judged by the time a write is
// given, a tracked SAML request, replay record or subject becomes garbage
// that SSO deletes: RememberRequest deletes requests that expired
// SSOGCGrace or more before the new request's CreatedAt, InsertID records
// whose until is SSOGCGrace or more before its now, PutSubject subjects
// whose Expires is SSOGCGrace or more before its now. A replica whose
// clock is behind the others' by less than SSOGCGrace thus still finds
// every request, record and subject that is live by its own clock (a
// captured assertion stays refused on every replica), and a store never
// judges expiry by a clock of its own.
// The grace does not change what a caller sees: a request expired at its
// now is not found, a record whose until is at or before its now counts
// as absent, and a subject whose Expires is at or before its now is not
// found, however recent.
const SSOGCGrace = 5 * time.Minute

// gcCutoff returns us less grace (SSOGCGrace, MFAGCGrace, ThrottleGCGrace), in
// microseconds (saturated).
func gcCutoff(us int64, grace time.Duration) int64 {
	g := grace.Microseconds()
	if us < math.MinInt64+g {
		return math.MinInt64
	}
	return us - g
}

// Times the bigint columns can hold, in Unix microseconds.
var (
	minMicrosTime = time.UnixMicro(math.MinInt64)
	maxMicrosTime = time.UnixMicro(math.MaxInt64)
)

// ssoMicros returns t in Unix microseconds (truncated), or an
// *sso.InputError naming field when t lies outside the years that an
// int64 of microseconds can hold (about 290,000 BC to 294,000 AD).
func ssoMicros(field string, t time.Time) (int64, error) {
	if t.Before(minMicrosTime) || t.After(maxMicrosTime) {
		return 0, &sso.InputError{Field: field, Reason: "is outside the range of Unix microseconds"}
	}
	return micros(t), nil
}

// ssoMicrosUp is ssoMicros rounded up to the microsecond: for an expiry
// that must not come early.
func ssoMicrosUp(field string, t time.Time) (int64, error) {
	if _, err := ssoMicros(field, t); err != nil {
		return 0, err
	}
	return microsUp(t), nil
}

// The times a timestamptz column holds: from 4714-11-24 BC (Go year
// -4713) to the end of 294276 AD.
var (
	minTimestamptz = time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC)
	endTimestamptz = time.Date(294277, 1, 1, 0, 0, 0, 0, time.UTC)
)

// ssoTimestamptz returns t for a nullable timestamptz column (nil for the
// zero time), or an *sso.InputError naming field when PostgreSQL cannot
// hold t.
func ssoTimestamptz(field string, t time.Time) (*time.Time, error) {
	if !t.IsZero() && (t.Before(minTimestamptz) || !t.Before(endTimestamptz)) {
		return nil, &sso.InputError{Field: field, Reason: "is outside the range of PostgreSQL timestamps"}
	}
	return nullTime(t), nil
}

// jsonProblem returns why v, a value of a field kept as JSON, cannot be
// kept as given ("" if it can): a string in it, at any depth, that is
// not valid UTF-8 (encoding/json would replace the bytes) or holds a NUL
// byte (which jsonb refuses).
func jsonProblem(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return textProblem(v.String())
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if p := jsonProblem(v.Index(i)); p != "" {
				return p
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if p := jsonProblem(it.Key()); p != "" {
				return p
			}
			if p := jsonProblem(it.Value()); p != "" {
				return p
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return jsonProblem(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			if p := jsonProblem(v.Field(i)); p != "" {
				return p
			}
		}
	}
	return ""
}

// connSettings returns the fields of c kept as JSON: c without the four
// kept in columns (zeroed here, and removed from the JSON by the SQL). A
// string that JSON text cannot keep as given gives an *sso.InputError
// naming the field.
func connSettings(c sso.Connection) ([]byte, error) {
	c.Tenant, c.MetadataURL, c.Metadata, c.MetadataFetchedAt = "", "", "", time.Time{}
	v := reflect.ValueOf(c)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if p := jsonProblem(v.Field(i)); p != "" {
			return nil, &sso.InputError{Field: f.Name, Reason: p}
		}
	}
	js, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("pgstore: sso: encoding the connection: %w", err)
	}
	return js, nil
}

// PutConnection implements sso.ConnectionStore in one INSERT … ON CONFLICT
// DO UPDATE. A field kept as JSON holding a string that is not valid
// UTF-8, or holds a NUL byte, is an *sso.InputError, and nothing is
// stored; the tenant, the metadata URL and the metadata are bytea and may
// hold any bytes. MetadataFetchedAt is kept to the microsecond (a time
// PostgreSQL cannot hold, before 4713 BC or after 294276 AD, is an
// *sso.InputError too).
func (s *SSO) PutConnection(ctx context.Context, c sso.Connection) error {
	fetched, err := ssoTimestamptz("MetadataFetchedAt", c.MetadataFetchedAt)
	if err != nil {
		return err
	}
	settings, err := connSettings(c)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, s.sql.putConn, nonNil([]byte(c.Tenant)), nonNil([]byte(c.MetadataURL)),
		nonNil([]byte(c.Metadata)), fetched, settings)
	if err != nil {
		return wrap("sso: put connection", err)
	}
	return nil
}

// Connection implements sso.ConnectionStore in one primary-key read. The
// connection comes back with MetadataFetchedAt in UTC; JSON fields this
// code does not know (written by newer code) are ignored.
func (s *SSO) Connection(ctx context.Context, tenant string) (sso.Connection, error) {
	var (
		c        sso.Connection
		fetched  *time.Time
		settings []byte
	)
	err := s.pool.QueryRow(ctx, s.sql.conn, nonNil([]byte(tenant))).
		Scan((*byteaString)(&c.MetadataURL), (*byteaString)(&c.Metadata), &fetched, &settings)
	if errors.Is(err, pgx.ErrNoRows) {
		return sso.Connection{}, sso.ErrNotFound
	}
	if err != nil {
		return sso.Connection{}, wrap("sso: connection", err)
	}
	url, metadata := c.MetadataURL, c.Metadata
	if c, err = decodeSettings(settings); err != nil {
		return sso.Connection{}, wrap("sso: connection", err)
	}
	c.Tenant, c.MetadataURL, c.Metadata, c.MetadataFetchedAt = tenant, url, metadata, fromNullTime(fetched)
	return c, nil
}

// decodeSettings reads the settings column that connSettings wrote.
func decodeSettings(settings []byte) (sso.Connection, error) {
	var c sso.Connection
	if err := json.Unmarshal(settings, &c); err != nil {
		return sso.Connection{}, fmt.Errorf("decoding the stored connection: %w", err)
	}
	return c, nil
}

// DeleteConnection implements sso.ConnectionStore.
func (s *SSO) DeleteConnection(ctx context.Context, tenant string) error {
	tag, err := s.pool.Exec(ctx, s.sql.deleteConn, nonNil([]byte(tenant)))
	if err != nil {
		return wrap("sso: delete connection", err)
	}
	if tag.RowsAffected() == 0 {
		return sso.ErrNotFound
	}
	return nil
}

// UpdateMetadata implements sso.ConnectionStore in one conditional UPDATE
// (set if newer, while the URL is unchanged), which PostgreSQL re-checks
// on the row as it is once locked. fetchedAt is kept to the microsecond;
// one PostgreSQL cannot hold is an *sso.InputError, and changes nothing.
func (s *SSO) UpdateMetadata(ctx context.Context, tenant, url, metadata string, fetchedAt time.Time) (bool, error) {
	at, err := ssoTimestamptz("fetchedAt", fetchedAt)
	if err != nil {
		return false, err
	}
	var updated, exists bool
	err = s.pool.QueryRow(ctx, s.sql.updateMetadata, nonNil([]byte(tenant)), nonNil([]byte(url)),
		nonNil([]byte(metadata)), at).Scan(&updated, &exists)
	if err != nil {
		return false, wrap("sso: update metadata", err)
	}
	if !exists {
		return false, sso.ErrNotFound
	}
	return updated, nil
}

// RememberRequest implements sso.RequestStore in one INSERT … ON CONFLICT
// DO NOTHING, which also deletes up to GCBatch other requests that
// expired SSOGCGrace or more before r.CreatedAt (the store has no clock
// of its own: the time a request is created stands for now). Times are
// kept to the microsecond; a CreatedAt or Expires outside the range of
// Unix microseconds is an *sso.InputError, and changes nothing. It never
// returns sso.ErrFull.
func (s *SSO) RememberRequest(ctx context.Context, r sso.Request) error {
	created, err := ssoMicros("Request.CreatedAt", r.CreatedAt)
	if err != nil {
		return err
	}
	expires, err := ssoMicros("Request.Expires", r.Expires)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, s.sql.remember, nonNil([]byte(r.Tenant)), nonNil([]byte(r.ID)), nonNil([]byte(r.Kind)),
		nonNil([]byte(r.RelayState)), nonNil([]byte(r.ReturnTo)), nonNil([]byte(r.Binding)), created, expires, gcCutoff(created, SSOGCGrace))
	if err != nil {
		return wrap("sso: remember request", err)
	}
	if tag.RowsAffected() == 0 {
		return sso.ErrDuplicate
	}
	return nil
}

// ConsumeRequest implements sso.RequestStore with one DELETE … RETURNING:
// of concurrent calls for one request, on any number of replicas, one
// gets the row. The request is removed whether or not it has expired; it
// is returned only if now (truncated to the microsecond) is before its
// Expires. A now outside the range of Unix microseconds is an
// *sso.InputError, and changes nothing.
func (s *SSO) ConsumeRequest(ctx context.Context, tenant, id string, now time.Time) (sso.Request, error) {
	at, err := ssoMicros("now", now)
	if err != nil {
		return sso.Request{}, err
	}
	var (
		r                = sso.Request{Tenant: tenant, ID: id}
		created, expires int64
	)
	err = s.pool.QueryRow(ctx, s.sql.consume, nonNil([]byte(tenant)), nonNil([]byte(id))).
		Scan((*byteaString)(&r.Kind), (*byteaString)(&r.RelayState), (*byteaString)(&r.ReturnTo), (*byteaString)(&r.Binding),
			&created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return sso.Request{}, sso.ErrNotFound
	}
	if err != nil {
		return sso.Request{}, wrap("sso: consume request", err)
	}
	if at >= expires {
		return sso.Request{}, sso.ErrNotFound
	}
	r.CreatedAt, r.Expires = fromMicros(created), fromMicros(expires)
	return r, nil
}

// InsertID implements sso.ReplayCache in one INSERT … ON CONFLICT DO
// UPDATE … WHERE until_us <= now RETURNING, which also deletes up to
// GCBatch other records whose until is SSOGCGrace or more before now.
// Times are kept to the microsecond, erring on the side of remembering:
// until is rounded up and now truncated, so a record is never taken as
// absent before its until. An until or now outside the range of Unix
// microseconds is an *sso.InputError, and changes nothing. It never
// returns sso.ErrFull.
func (s *SSO) InsertID(ctx context.Context, tenant, id string, until, now time.Time) (bool, error) {
	u, err := ssoMicrosUp("until", until)
	if err != nil {
		return false, err
	}
	at, err := ssoMicros("now", now)
	if err != nil {
		return false, err
	}
	var isNew bool
	err = s.pool.QueryRow(ctx, s.sql.insertID, nonNil([]byte(tenant)), nonNil([]byte(id)), u, at, gcCutoff(at, SSOGCGrace)).Scan(&isNew)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap("sso: insert replay id", err)
	}
	return isNew, nil
}

// checkSubjectText returns an *sso.InputError for a field of a subject
// that PostgreSQL text cannot hold. The fields come in pairs: a name, then
// the value.
func checkSubjectText(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if p := textProblem(fields[i+1]); p != "" {
			return &sso.InputError{Field: fields[i], Reason: p}
		}
	}
	return nil
}

// PutSubject implements sso.SubjectStore in one INSERT … ON CONFLICT DO
// UPDATE that replaces the user's row whole, which also deletes up to
// GCBatch other subjects whose Expires is SSOGCGrace or more before now.
// A Subject that sso.Subject.Validate refuses gives its *sso.InputError,
// and nothing is stored. The strings are text: one that is not valid
// UTF-8 or holds a NUL byte (which a NameID, XML text, never does) is an
// *sso.InputError, and nothing is stored. Times are kept to the microsecond, erring on the
// side of keeping: Expires is rounded up and now truncated, so a subject
// is found at every now before its Expires. An Expires or now outside the
// range of Unix microseconds is an *sso.InputError, and changes nothing.
func (s *SSO) PutSubject(ctx context.Context, sub sso.Subject, now time.Time) error {
	if err := sub.Validate(); err != nil {
		return err
	}
	if err := checkSubjectText("Subject.Tenant", sub.Tenant, "Subject.UserID", sub.UserID, "Subject.IdP", sub.IdP, "Subject.NameID", sub.NameID,
		"Subject.NameIDFormat", sub.NameIDFormat, "Subject.SessionIndex", sub.SessionIndex); err != nil {
		return err
	}
	expires, err := ssoMicrosUp("Subject.Expires", sub.Expires)
	if err != nil {
		return err
	}
	at, err := ssoMicros("now", now)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, s.sql.putSubject, sub.Tenant, sub.UserID, sub.IdP, sub.NameID, sub.NameIDFormat, sub.SessionIndex,
		expires, gcCutoff(at, SSOGCGrace))
	if err != nil {
		return wrap("sso: put subject", err)
	}
	return nil
}

// Subject implements sso.SubjectStore in one primary-key read of a row
// live at now (truncated to the microsecond). Expires comes back in UTC.
// A tenant or user ID that PostgreSQL text cannot hold gives
// sso.ErrNotFound (no subject can be stored under it); a now outside the
// range of Unix microseconds is an *sso.InputError.
func (s *SSO) Subject(ctx context.Context, tenant, userID string, now time.Time) (sso.Subject, error) {
	at, err := ssoMicros("now", now)
	if err != nil {
		return sso.Subject{}, err
	}
	if checkSubjectText("tenant", tenant, "userID", userID) != nil {
		return sso.Subject{}, sso.ErrNotFound // cannot be stored, so is not
	}
	sub := sso.Subject{Tenant: tenant, UserID: userID}
	var expires int64
	err = s.pool.QueryRow(ctx, s.sql.subject, tenant, userID, at).
		Scan(&sub.IdP, &sub.NameID, &sub.NameIDFormat, &sub.SessionIndex, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return sso.Subject{}, sso.ErrNotFound
	}
	if err != nil {
		return sso.Subject{}, wrap("sso: subject", err)
	}
	sub.Expires = fromMicros(expires)
	return sub, nil
}

// SubjectsByNameID implements sso.SubjectStore in one read of the index
// on (tenant, IdP, NameID, user ID): the IdP and the NameID match exactly
// (the "C" collation compares bytes) and the subjects come sorted by
// UserID byte by byte, as strings.Compare orders them, with Expires in
// UTC. now is truncated to the microsecond. An empty idp, or a tenant, idp
// or NameID that PostgreSQL text cannot hold, gives no subjects (none can
// be found under it); a now outside the range of Unix microseconds is an
// *sso.InputError.
func (s *SSO) SubjectsByNameID(ctx context.Context, tenant, idp, nameID string, now time.Time) ([]sso.Subject, error) {
	at, err := ssoMicros("now", now)
	if err != nil {
		return nil, err
	}
	if idp == "" || checkSubjectText("tenant", tenant, "idp", idp, "nameID", nameID) != nil {
		return []sso.Subject{}, nil
	}
	rows, err := s.pool.Query(ctx, s.sql.subjectsByNameID, tenant, idp, nameID, at)
	if err != nil {
		return nil, wrap("sso: subjects by name id", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sso.Subject, error) {
		sub := sso.Subject{Tenant: tenant}
		var expires int64
		err := r.Scan(&sub.UserID, &sub.IdP, &sub.NameID, &sub.NameIDFormat, &sub.SessionIndex, &expires)
		sub.Expires = fromMicros(expires)
		return sub, err
	})
	if err != nil {
		return nil, wrap("sso: subjects by name id", err)
	}
	return out, nil
}
