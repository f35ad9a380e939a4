package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guardhq/guard/auth"
)

// Users is the PostgreSQL auth.UserStore and auth.UserUpdater. Email and id
// are unique per tenant by constraint; every update is one statement.
type Users struct {
	pool *pgxpool.Pool
	sql  userSQL
}

var (
	_ auth.UserStore   = (*Users)(nil)
	_ auth.UserUpdater = (*Users)(nil)
)

type userSQL struct {
	create, byID, byEmail, list, summaries, delete        string
	setStatus, setPassword, rehash, recordLogin, setEmail string
	deactivateIdle, verifyEmail, resetPassword            string
	deactivate                                            string
	changePassword, changeEmail                           string
	expirePassword, unexpirePassword, recordSSOLogin      string
	setReactivatedAt                                      string
}

const userCols = `tenant, id, email, name, status, password_hash, password_history, password_changed_at, created_at, last_login_at, password_expired, last_sso_at, email_unverified, reactivated_at`

func newUserSQL(q string) userSQL {
	s := func(sql string) string { return schemaSQL(q, sql) }
	return userSQL{
		create:  s(`INSERT INTO {s}.users (` + userCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`),
		byID:    s(`SELECT ` + userCols + ` FROM {s}.users WHERE tenant = $1 AND id = $2`),
		byEmail: s(`SELECT ` + userCols + ` FROM {s}.users WHERE tenant = $1 AND email = $2`),
		list:    s(`SELECT ` + userCols + ` FROM {s}.users WHERE tenant = $1 AND id > $2 ORDER BY id LIMIT $3`),
		delete:  s(`DELETE FROM {s}.users WHERE tenant = $1 AND id = $2`),
		summaries: s(`SELECT id, email, name, status, password_hash <> '', password_changed_at, created_at, last_login_at, last_sso_at,
				email_unverified, password_expired, reactivated_at
			FROM {s}.users WHERE tenant = $1 AND id > $2 ORDER BY id LIMIT $3`),

		setStatus: s(`UPDATE {s}.users SET status = $3 WHERE tenant = $1 AND id = $2`),
		// Compare-and-set on the row as it is when the row lock is held
		// ($4 active, $5 deactivated); the second column tells
		// ErrConflict from ErrNotFound when nothing was updated.
		deactivateIdle: s(`WITH u AS (
				UPDATE {s}.users SET status = $5
				WHERE tenant = $1 AND id = $2 AND status = $4
					AND (coalesce(last_login_at, created_at) IS NULL OR coalesce(last_login_at, created_at) <= $3)
					AND (reactivated_at IS NULL OR reactivated_at <= $3)
				RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM {s}.users WHERE tenant = $1 AND id = $2)`),
		// The replaced hash (if any) goes in front of the history, which
		// is then cut to $5 entries: all in one statement, on the row as
		// it is when the row lock is held.
		setPassword: s(`UPDATE {s}.users SET
				password_history = (CASE WHEN password_hash <> '' THEN array_prepend(password_hash, password_history)
					ELSE password_history END)[1:$5],
				password_hash = $3,
				password_changed_at = $4,
				password_expired = false
			WHERE tenant = $1 AND id = $2`),
		// setPassword as a compare-and-set on the row as it is when the
		// row lock is held ($6 email, $7 hash, $8 status, $9 expired,
		// $10 reactivated_at, NULL for none),
		// verifying the email; the second column tells ErrConflict from
		// ErrNotFound when nothing was updated.
		resetPassword: s(casPasswordSQL(`,
					email_unverified = false`)),
		// resetPassword leaving email_unverified as it is.
		changePassword: s(casPasswordSQL(``)),
		// Compare-and-set; the second column tells ErrConflict from
		// ErrNotFound when nothing was updated.
		rehash: s(`WITH u AS (
				UPDATE {s}.users SET password_hash = $4
				WHERE tenant = $1 AND id = $2 AND password_hash = $3
				RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM {s}.users WHERE tenant = $1 AND id = $2)`),
		recordLogin: s(`UPDATE {s}.users SET last_login_at = $3 WHERE tenant = $1 AND id = $2 RETURNING ` + userCols),
		recordSSOLogin: s(`UPDATE {s}.users SET last_login_at = $3, last_sso_at = $3 WHERE tenant = $1 AND id = $2
			RETURNING ` + userCols),
		// users_email_key refuses an email another user of the tenant
		// has; the user's own email again matches its row and conflicts
		// with nothing.
		setEmail: s(`UPDATE {s}.users SET email = $3, email_unverified = $4 WHERE tenant = $1 AND id = $2`),
		// setEmail as a compare-and-set on the row as it is when the row
		// lock is held ($5 email, $6 hash, $7 status, $8 expired, $9
		// reactivated_at, NULL for none): a row that does not match is
		// not written, so breaks no constraint.
		// The second column tells ErrConflict from ErrNotFound when
		// nothing was updated.
		changeEmail: s(`WITH u AS (
				UPDATE {s}.users SET email = $3, email_unverified = $4
				WHERE tenant = $1 AND id = $2 AND email = $5 AND password_hash = $6 AND status = $7 AND password_expired = $8
					AND reactivated_at IS NOT DISTINCT FROM $9
				RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM {s}.users WHERE tenant = $1 AND id = $2)`),
		// set: this statement set the flag (it was clear); known: the user
		// exists (in the statement's snapshot).
		// $3 active, $4 deactivated; the second column tells a user not
		// active from a missing one when nothing was updated.
		deactivate: s(`WITH u AS (
				UPDATE {s}.users SET status = $4 WHERE tenant = $1 AND id = $2 AND status = $3
				RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM {s}.users WHERE tenant = $1 AND id = $2)`),
		expirePassword: s(`WITH u AS (
				UPDATE {s}.users SET password_expired = true WHERE tenant = $1 AND id = $2 AND NOT password_expired
				RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM {s}.users WHERE tenant = $1 AND id = $2)`),
		unexpirePassword: s(`UPDATE {s}.users SET password_expired = false WHERE tenant = $1 AND id = $2`),
		setReactivatedAt: s(`UPDATE {s}.users SET reactivated_at = $3 WHERE tenant = $1 AND id = $2`),
		// Compare-and-set on the row as it is when the row lock is held:
		// the flag is cleared only while the email is still $3, and the
		// returned column tells ErrConflict from success (no row:
		// ErrNotFound).
		verifyEmail: s(`UPDATE {s}.users SET email_unverified = email_unverified AND email IS DISTINCT FROM $3
			WHERE tenant = $1 AND id = $2 RETURNING email IS NOT DISTINCT FROM $3`),
	}
}

// casPasswordSQL is setPassword as a compare-and-set on the row ($6
// email, $7 hash, $8 status, $9 expired, $10 reactivated_at), setting the
// columns of extra (empty or starting with a comma) as well.
func casPasswordSQL(extra string) string {
	return `WITH u AS (
				UPDATE {s}.users SET
					password_history = (CASE WHEN password_hash <> '' THEN array_prepend(password_hash, password_history)
						ELSE password_history END)[1:$5],
					password_hash = $3,
					password_changed_at = $4,
					password_expired = false` + extra + `
				WHERE tenant = $1 AND id = $2 AND email = $6 AND password_hash = $7 AND status = $8 AND password_expired = $9
					AND reactivated_at IS NOT DISTINCT FROM $10
				RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM {s}.users WHERE tenant = $1 AND id = $2)`
}

// checkUserText returns an *auth.InputError for a field that PostgreSQL
// text cannot hold.
func checkUserText(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if p := textProblem(fields[i+1]); p != "" {
			return &auth.InputError{Field: fields[i], Reason: p}
		}
	}
	return nil
}

func scanUser(row pgx.Row) (auth.User, error) {
	var u auth.User
	var status string
	var changed, created, lastLogin, lastSSO, reactivated *time.Time
	err := row.Scan(&u.Tenant, &u.ID, &u.Email, &u.Name, &status, &u.PasswordHash, &u.PasswordHistory,
		&changed, &created, &lastLogin, &u.PasswordExpired, &lastSSO, &u.EmailUnverified, &reactivated)
	if err != nil {
		return auth.User{}, err
	}
	u.Status = auth.Status(status)
	u.PasswordChangedAt = fromNullTime(changed)
	u.CreatedAt = fromNullTime(created)
	u.LastLoginAt = fromNullTime(lastLogin)
	u.LastSSOAt = fromNullTime(lastSSO)
	u.ReactivatedAt = fromNullTime(reactivated)
	if len(u.PasswordHistory) == 0 {
		u.PasswordHistory = nil
	}
	return u, nil
}

// CreateUser implements auth.UserStore.
func (s *Users) CreateUser(ctx context.Context, u auth.User) error {
	if err := checkUserText("tenant", u.Tenant, "id", u.ID, "email", u.Email, "name", u.Name,
		"status", string(u.Status), "password hash", u.PasswordHash); err != nil {
		return err
	}
	for _, h := range u.PasswordHistory {
		if err := checkUserText("password history", h); err != nil {
			return err
		}
	}
	hist := u.PasswordHistory
	if hist == nil {
		hist = []string{}
	}
	_, err := s.pool.Exec(ctx, s.sql.create, u.Tenant, u.ID, u.Email, u.Name, string(u.Status), u.PasswordHash, hist,
		nullTime(u.PasswordChangedAt), nullTime(u.CreatedAt), nullTime(u.LastLoginAt), u.PasswordExpired,
		nullTime(u.LastSSOAt), u.EmailUnverified, nullTime(u.ReactivatedAt))
	if code, constraint := pgCode(err); code == codeUniqueViolation {
		if constraint == "users_email_key" {
			return auth.ErrDuplicateEmail
		}
		return auth.ErrDuplicateID
	}
	if err != nil {
		return wrap("users: create", err)
	}
	return nil
}

// get runs a query that returns at most one user.
func (s *Users) get(ctx context.Context, op, sql string, args ...any) (auth.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.User{}, auth.ErrNotFound
	}
	if err != nil {
		return auth.User{}, wrap("users: "+op, err)
	}
	return u, nil
}

// User implements auth.UserStore.
func (s *Users) User(ctx context.Context, tenant, id string) (auth.User, error) {
	if checkUserText("tenant", tenant, "id", id) != nil {
		return auth.User{}, auth.ErrNotFound // cannot be stored, so is not
	}
	return s.get(ctx, "get", s.sql.byID, tenant, id)
}

// UserByEmail implements auth.UserStore.
func (s *Users) UserByEmail(ctx context.Context, tenant, email string) (auth.User, error) {
	if checkUserText("tenant", tenant, "email", email) != nil {
		return auth.User{}, auth.ErrNotFound
	}
	return s.get(ctx, "get by email", s.sql.byEmail, tenant, email)
}

// ListUsers implements auth.UserStore. Ids are ordered byte by byte (the
// columns use the "C" collation); a limit of 0 or less returns no users.
func (s *Users) ListUsers(ctx context.Context, tenant, after string, limit int) ([]auth.User, error) {
	return listUsers(ctx, s, "users: list", s.sql.list, tenant, after, limit, func(r pgx.CollectableRow) (auth.User, error) { return scanUser(r) })
}

// ListUserSummaries implements auth.UserStore: ListUsers without the
// password hash and history columns.
func (s *Users) ListUserSummaries(ctx context.Context, tenant, after string, limit int) ([]auth.UserSummary, error) {
	return listUsers(ctx, s, "users: list summaries", s.sql.summaries, tenant, after, limit, func(r pgx.CollectableRow) (auth.UserSummary, error) {
		var u auth.UserSummary
		var status string
		var changed, created, lastLogin, lastSSO, reactivated *time.Time
		if err := r.Scan(&u.ID, &u.Email, &u.Name, &status, &u.HasPassword, &changed, &created, &lastLogin, &lastSSO,
			&u.EmailUnverified, &u.PasswordExpired, &reactivated); err != nil {
			return auth.UserSummary{}, err
		}
		u.Status = auth.Status(status)
		u.PasswordChangedAt = fromNullTime(changed)
		u.CreatedAt = fromNullTime(created)
		u.LastLoginAt = fromNullTime(lastLogin)
		u.LastSSOAt = fromNullTime(lastSSO)
		u.ReactivatedAt = fromNullTime(reactivated)
		return u, nil
	})
}

// listUsers runs query, a listing of at most limit users of tenant after
// after, and scans each row.
func listUsers[T any](ctx context.Context, s *Users, op, query, tenant, after string, limit int, scan pgx.RowToFunc[T]) ([]T, error) {
	if limit <= 0 {
		return nil, nil
	}
	if err := checkUserText("tenant", tenant, "after", after); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, query, tenant, after, limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

// DeleteUser implements auth.UserStore. The password history is a column
// of the user's row and goes with it.
func (s *Users) DeleteUser(ctx context.Context, tenant, id string) error {
	return s.exec(ctx, "delete", s.sql.delete, tenant, id)
}

// exec runs sql, a change of the user (tenant, id) with args after them,
// and returns auth.ErrNotFound if no row matched.
func (s *Users) exec(ctx context.Context, op, sql, tenant, id string, args ...any) error {
	if checkUserText("tenant", tenant, "id", id) != nil {
		return auth.ErrNotFound // cannot be stored, so is not
	}
	tag, err := s.pool.Exec(ctx, sql, append([]any{tenant, id}, args...)...)
	if err != nil {
		return wrap("users: "+op, err)
	}
	if tag.RowsAffected() == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// SetStatus implements auth.UserUpdater.
func (s *Users) SetStatus(ctx context.Context, tenant, id string, st auth.Status) error {
	if err := checkUserText("status", string(st)); err != nil {
		return err
	}
	return s.exec(ctx, "set status", s.sql.setStatus, tenant, id, string(st))
}

// DeactivateIdle implements auth.UserUpdater as a compare-and-set on the
// status and the last activity.
func (s *Users) DeactivateIdle(ctx context.Context, tenant, id string, idleSince time.Time) error {
	if checkUserText("tenant", tenant, "id", id) != nil {
		return auth.ErrNotFound
	}
	var updated, exists bool
	// Microseconds, rounded down as the stored times are.
	err := s.pool.QueryRow(ctx, s.sql.deactivateIdle, tenant, id, nullTime(idleSince.Truncate(time.Microsecond)),
		string(auth.StatusActive), string(auth.StatusDeactivated)).Scan(&updated, &exists)
	if err != nil {
		return wrap("users: deactivate idle user", err)
	}
	return casResult(updated, exists)
}

// Deactivate implements auth.UserUpdater as a compare-and-set on the
// status.
func (s *Users) Deactivate(ctx context.Context, tenant, id string) (bool, error) {
	if checkUserText("tenant", tenant, "id", id) != nil {
		return false, auth.ErrNotFound // cannot be stored, so is not
	}
	var changed, known bool
	err := s.pool.QueryRow(ctx, s.sql.deactivate, tenant, id, string(auth.StatusActive), string(auth.StatusDeactivated)).Scan(&changed, &known)
	if err != nil {
		return false, wrap("users: deactivate user", err)
	}
	if !changed && !known {
		return false, auth.ErrNotFound
	}
	return changed, nil
}

// SetReactivatedAt implements auth.UserUpdater in one UPDATE.
func (s *Users) SetReactivatedAt(ctx context.Context, tenant, id string, at time.Time) error {
	return s.exec(ctx, "set reactivation", s.sql.setReactivatedAt, tenant, id, nullTime(at))
}

// SetPassword implements auth.UserUpdater in one UPDATE: the replaced hash
// is pushed to the front of the history and the history cut to keep
// entries with array operations on the locked row.
func (s *Users) SetPassword(ctx context.Context, tenant, id, hash string, at time.Time, keep int) error {
	if err := checkUserText("password hash", hash); err != nil {
		return err
	}
	keep = max(0, min(keep, 1<<30))
	return s.exec(ctx, "set password", s.sql.setPassword, tenant, id, hash, nullTime(at), keep)
}

// ResetPassword implements auth.UserUpdater in one UPDATE, SetPassword's
// made a compare-and-set on the email, hash, status, expiry mark and
// reactivation time.
func (s *Users) ResetPassword(ctx context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	return s.casPassword(ctx, "users: reset password", s.sql.resetPassword, tenant, id, was, hash, at, keep)
}

// ChangePassword implements auth.UserUpdater in one UPDATE, as
// ResetPassword, leaving email_unverified as it is.
func (s *Users) ChangePassword(ctx context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	return s.casPassword(ctx, "users: change password", s.sql.changePassword, tenant, id, was, hash, at, keep)
}

// wasConds returns the email, hash and status of was as the parameters of
// a compare-and-set: a field PostgreSQL text cannot hold matches no stored
// one, so it is NULL, which matches none.
func wasConds(was auth.User) (cond [3]*string) {
	for i, v := range []string{was.Email, was.PasswordHash, string(was.Status)} {
		if textProblem(v) == "" {
			cond[i] = &v
		}
	}
	return cond
}

// casPassword runs query, resetPassword or changePassword, for op.
func (s *Users) casPassword(ctx context.Context, op, query, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	if err := checkUserText("password hash", hash); err != nil {
		return err
	}
	if checkUserText("tenant", tenant, "id", id) != nil {
		return auth.ErrNotFound
	}
	cond := wasConds(was)
	keep = max(0, min(keep, 1<<30))
	var updated, exists bool
	err := s.pool.QueryRow(ctx, query, tenant, id, hash, nullTime(at), keep,
		cond[0], cond[1], cond[2], was.PasswordExpired, nullTime(was.ReactivatedAt)).Scan(&updated, &exists)
	if err != nil {
		return wrap(op, err)
	}
	return casResult(updated, exists)
}

// RehashPassword implements auth.UserUpdater as a compare-and-set on the
// stored hash.
func (s *Users) RehashPassword(ctx context.Context, tenant, id, oldHash, newHash string) error {
	if err := checkUserText("password hash", newHash); err != nil {
		return err
	}
	if checkUserText("tenant", tenant, "id", id) != nil {
		return auth.ErrNotFound
	}
	old := &oldHash
	if checkUserText("password hash", oldHash) != nil {
		old = nil // no stored hash can equal it; NULL matches none
	}
	var updated, exists bool
	if err := s.pool.QueryRow(ctx, s.sql.rehash, tenant, id, old, newHash).Scan(&updated, &exists); err != nil {
		return wrap("users: rehash password", err)
	}
	return casResult(updated, exists)
}

// casResult is the error of a compare-and-set on a user that returned
// whether it updated the row and whether the row exists.
func casResult(updated, exists bool) error {
	switch {
	case updated:
		return nil
	case exists:
		return auth.ErrConflict
	default:
		return auth.ErrNotFound
	}
}

// RecordLogin implements auth.UserUpdater with UPDATE … RETURNING, so the
// user comes back as stored after the update.
func (s *Users) RecordLogin(ctx context.Context, tenant, id string, at time.Time) (auth.User, error) {
	if checkUserText("tenant", tenant, "id", id) != nil {
		return auth.User{}, auth.ErrNotFound
	}
	return s.get(ctx, "record login", s.sql.recordLogin, tenant, id, nullTime(at))
}

// RecordSSOLogin implements auth.UserUpdater with UPDATE … RETURNING, as
// RecordLogin does.
func (s *Users) RecordSSOLogin(ctx context.Context, tenant, id string, at time.Time) (auth.User, error) {
	if checkUserText("tenant", tenant, "id", id) != nil {
		return auth.User{}, auth.ErrNotFound
	}
	return s.get(ctx, "record sso login", s.sql.recordSSOLogin, tenant, id, nullTime(at))
}

// SetEmail implements auth.UserUpdater in one UPDATE: the unique
// constraint on (tenant, email) makes it ErrDuplicateEmail, checked and
// applied atomically however many replicas race, and no matched row makes
// it ErrNotFound.
func (s *Users) SetEmail(ctx context.Context, tenant, id, email string, unverified bool) error {
	if err := checkUserText("email", email); err != nil {
		return err
	}
	err := s.exec(ctx, "set email", s.sql.setEmail, tenant, id, email, unverified)
	if code, constraint := pgCode(err); code == codeUniqueViolation && constraint == "users_email_key" {
		return auth.ErrDuplicateEmail
	}
	return err
}

// ChangeEmail implements auth.UserUpdater in one UPDATE, SetEmail's made
// a compare-and-set on the email, hash, status, expiry mark and
// reactivation time.
func (s *Users) ChangeEmail(ctx context.Context, tenant, id string, was auth.User, email string, unverified bool) error {
	if err := checkUserText("email", email); err != nil {
		return err
	}
	if checkUserText("tenant", tenant, "id", id) != nil {
		return auth.ErrNotFound
	}
	cond := wasConds(was)
	var updated, exists bool
	err := s.pool.QueryRow(ctx, s.sql.changeEmail, tenant, id, email, unverified,
		cond[0], cond[1], cond[2], was.PasswordExpired, nullTime(was.ReactivatedAt)).Scan(&updated, &exists)
	if code, constraint := pgCode(err); code == codeUniqueViolation && constraint == "users_email_key" {
		return auth.ErrDuplicateEmail
	}
	if err != nil {
		return wrap("users: change email", err)
	}
	return casResult(updated, exists)
}

// VerifyEmail implements auth.UserUpdater in one UPDATE … RETURNING,
// which clears the flag only if the email is still email.
func (s *Users) VerifyEmail(ctx context.Context, tenant, id, email string) error {
	if checkUserText("tenant", tenant, "id", id) != nil {
		return auth.ErrNotFound
	}
	e := &email
	if checkUserText("email", email) != nil {
		e = nil // no stored email can equal it; NULL matches none
	}
	var same bool
	err := s.pool.QueryRow(ctx, s.sql.verifyEmail, tenant, id, e).Scan(&same)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return auth.ErrNotFound
	case err != nil:
		return wrap("users: verify email", err)
	case !same:
		return auth.ErrConflict
	}
	return nil
}

// ExpirePassword implements auth.UserUpdater in one statement.
// It sets the flag only if it is clear, so set is whether this call set it.
func (s *Users) ExpirePassword(ctx context.Context, tenant, id string) (bool, error) {
	if checkUserText("tenant", tenant, "id", id) != nil {
		return false, auth.ErrNotFound // cannot be stored, so is not
	}
	var set, known bool
	if err := s.pool.QueryRow(ctx, s.sql.expirePassword, tenant, id).Scan(&set, &known); err != nil {
		return false, wrap("users: expire password", err)
	}
	if !set && !known {
		return false, auth.ErrNotFound
	}
	return set, nil
}

// ClearPasswordExpired implements auth.UserUpdater in one UPDATE.
func (s *Users) ClearPasswordExpired(ctx context.Context, tenant, id string) error {
	return s.exec(ctx, "clear password expired", s.sql.unexpirePassword, tenant, id)
}
