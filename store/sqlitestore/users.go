package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/guardhq/guard/auth"
)

// Users is the auth.UserStore and auth.UserUpdater of a Store: one row per
// user, keyed by (tenant, id), with a unique index on (tenant, email). The
// password history is a JSON array in the user's row, so deleting the user
// deletes it.
//
// Each updater is one statement (SetStatus, Deactivate, DeactivateIdle, SetReactivatedAt, RehashPassword, RecordLogin,
// RecordSSOLogin, SetEmail, VerifyEmail, ExpirePassword, ClearPasswordExpired) or one write transaction (SetPassword, which rewrites the
// history; ResetPassword and ChangePassword, which compare the row first;
// ChangeEmail, which reads the row when its conditional UPDATE changed
// nothing).
type Users struct {
	s *Store
	// chunk bounds the users of one query of ListUserSummaries
	// (summaryChunk if 0; tests set less).
	chunk int
}

var (
	_ auth.UserStore   = (*Users)(nil)
	_ auth.UserUpdater = (*Users)(nil)
)

func scanUser(r scanner) (auth.User, error) {
	var u auth.User
	var status, hist string
	var changed, login, sso, reactivated sql.NullInt64
	var created int64
	if err := r.Scan(&u.Tenant, &u.ID, &u.Email, &u.Name, &status, &u.PasswordHash, &hist, &changed, &created, &login,
		&u.PasswordExpired, &sso, &u.EmailUnverified, &reactivated); err != nil {
		return auth.User{}, err
	}
	u.Status = auth.Status(status)
	h, err := decodeHistory(hist)
	if err != nil {
		return auth.User{}, err
	}
	u.PasswordHistory = h
	u.PasswordChangedAt = fromNullMicros(changed)
	u.CreatedAt = fromMicros(created)
	u.LastLoginAt = fromNullMicros(login)
	u.LastSSOAt = fromNullMicros(sso)
	u.ReactivatedAt = fromNullMicros(reactivated)
	return u, nil
}

func encodeHistory(h []string) (string, error) {
	if len(h) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("sqlitestore: encode password history: %w", err)
	}
	return string(b), nil
}

func decodeHistory(s string) ([]string, error) {
	if s == "" || s == "[]" {
		return nil, nil
	}
	var h []string
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, fmt.Errorf("sqlitestore: stored password history: %w", err)
	}
	return h, nil
}

// CreateUser implements auth.UserStore.
func (us *Users) CreateUser(ctx context.Context, u auth.User) error {
	hist, err := encodeHistory(u.PasswordHistory)
	if err != nil {
		return err
	}
	return us.s.write(ctx, func(w *wtx) error {
		_, err := w.exec(userInsert, u.Tenant, u.ID, u.Email, u.Name, string(u.Status), u.PasswordHash, hist,
			nullMicros(u.PasswordChangedAt), micros(u.CreatedAt), nullMicros(u.LastLoginAt), u.PasswordExpired,
			nullMicros(u.LastSSOAt), u.EmailUnverified, nullMicros(u.ReactivatedAt))
		if err == nil {
			return nil
		}
		if !isConstraint(err) {
			return fmt.Errorf("sqlitestore: create user: %w", err)
		}
		// Which one? The transaction still holds the write lock.
		var one int
		switch err := w.queryRow(userEmailIn, u.Tenant, u.Email).Scan(&one); {
		case err == nil:
			return auth.ErrDuplicateEmail
		case !isNoRows(err):
			return fmt.Errorf("sqlitestore: create user: %w", err)
		}
		return auth.ErrDuplicateID
	})
}

// User implements auth.UserStore.
func (us *Users) User(ctx context.Context, tenant, id string) (auth.User, error) {
	if err := us.s.ready(ctx); err != nil {
		return auth.User{}, err
	}
	return oneUser(us.s.reads.queryRow(ctx, userByID, tenant, id))
}

// UserByEmail implements auth.UserStore.
func (us *Users) UserByEmail(ctx context.Context, tenant, email string) (auth.User, error) {
	if err := us.s.ready(ctx); err != nil {
		return auth.User{}, err
	}
	return oneUser(us.s.reads.queryRow(ctx, userByEmail, tenant, email))
}

func oneUser(r scanner) (auth.User, error) {
	u, err := scanUser(r)
	if err != nil {
		if isNoRows(err) {
			return auth.User{}, auth.ErrNotFound
		}
		return auth.User{}, fmt.Errorf("sqlitestore: read user: %w", err)
	}
	return u, nil
}

// ListUsers implements auth.UserStore. Ids are ordered byte by byte (the
// BINARY collation); a limit of zero or less returns no users.
func (us *Users) ListUsers(ctx context.Context, tenant, after string, limit int) ([]auth.User, error) {
	if err := us.s.ready(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	out, err := queryAll(ctx, us.s.reads, userList, scanUser, tenant, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list users: %w", err)
	}
	return out, nil
}

// summaryChunk is the most users ListUserSummaries reads in one query.
const summaryChunk = 5000

// ListUserSummaries implements auth.UserStore with the order of ListUsers.
// It reads the users in chunks of up to 5,000, each chunk packed in one
// row (see packed.go): the number of users, eleven lists of numbers (the
// byte lengths of id, email, name and status, whether there is a password,
// the four times in microseconds, empty for NULL, two flags: 1 if the
// email is unverified, plus 2 if the password has expired, and the time of
// the last reactivation, empty for NULL), and the four texts
// of every user. A pass over 10,000 users takes 12-17 ms instead of 32-40
// ms with ListUsers on a 2-vCPU machine, with 600 allocations instead of
// 200,000 (BenchmarkTenantPass in examples/server).
func (us *Users) ListUserSummaries(ctx context.Context, tenant, after string, limit int) ([]auth.UserSummary, error) {
	if err := us.s.ready(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	chunk := us.chunk
	if chunk <= 0 {
		chunk = summaryChunk
	}
	out := make([]auth.UserSummary, 0, min(limit, chunk))
	for len(out) < limit {
		n := min(limit-len(out), chunk)
		var c packedChunk
		if err := us.s.reads.queryRow(ctx, userSummaries, tenant, after, n).Scan(&c.n, &c.lists[0], &c.lists[1], &c.lists[2],
			&c.lists[3], &c.lists[4], &c.lists[5], &c.lists[6], &c.lists[7], &c.lists[8], &c.lists[9], &c.lists[10], &c.texts); err != nil {
			return nil, fmt.Errorf("sqlitestore: list user summaries: %w", err)
		}
		start := len(out)
		var err error
		if out, err = c.unpack(out); err != nil {
			return nil, err
		}
		got := out[start:]
		// The aggregates take the rows in the order of the primary key,
		// which SQLite does not promise: the order is checked (and
		// restored).
		if !slices.IsSortedFunc(got, compareSummaries) {
			slices.SortFunc(got, compareSummaries)
		}
		if len(got) > n || len(got) > 0 && got[0].ID <= after {
			return nil, fmt.Errorf("sqlitestore: list user summaries: %d users after %q for a limit of %d", len(got), after, n)
		}
		if len(got) < n {
			break
		}
		after = got[len(got)-1].ID
	}
	return out, nil
}

func compareSummaries(a, b auth.UserSummary) int { return strings.Compare(a.ID, b.ID) }

// packedChunk is a chunk of ListUserSummaries as the query returns it.
type packedChunk struct {
	n     int
	lists [11]string // lengths of id, email, name, status; password; times; flags; reactivation
	texts string
}

// unpack appends the users of c to out.
func (c *packedChunk) unpack(out []auth.UserSummary) ([]auth.UserSummary, error) {
	var lists [11]numbers
	for j := range lists {
		lists[j].s = c.lists[j]
	}
	ts := texts(c.texts)
	for range c.n {
		var u auth.UserSummary
		var status string
		ok := true
		for j, p := range []*string{&u.ID, &u.Email, &u.Name, &status} {
			var took bool
			*p, took = text(&lists[j], &ts)
			ok = ok && took
		}
		var f [7]int64 // password; the four times; the flags; the reactivation
		var null [7]bool
		for j := range f {
			var read bool
			f[j], null[j], read = lists[4+j].next()
			ok = ok && read
		}
		if !ok || null[0] || null[2] || null[5] {
			return nil, errPacked
		}
		if f[5]&^3 != 0 {
			return nil, errPacked
		}
		u.Status, u.HasPassword, u.CreatedAt = auth.Status(status), f[0] != 0, fromMicros(f[2])
		u.EmailUnverified, u.PasswordExpired = f[5]&1 != 0, f[5]&2 != 0
		if !null[1] {
			u.PasswordChangedAt = fromMicros(f[1])
		}
		if !null[3] {
			u.LastLoginAt = fromMicros(f[3])
		}
		if !null[4] {
			u.LastSSOAt = fromMicros(f[4])
		}
		if !null[6] {
			u.ReactivatedAt = fromMicros(f[6])
		}
		out = append(out, u)
	}
	for j := range lists {
		if !lists[j].done(c.n) {
			return nil, errPacked
		}
	}
	if ts != "" {
		return nil, errPacked
	}
	return out, nil
}

// DeleteUser implements auth.UserStore.
func (us *Users) DeleteUser(ctx context.Context, tenant, id string) error {
	return us.oneRow(ctx, "delete user", func(w *wtx) (sql.Result, error) { return w.exec(userDelete, tenant, id) })
}

// SetStatus implements auth.UserUpdater.
func (us *Users) SetStatus(ctx context.Context, tenant, id string, s auth.Status) error {
	return us.oneRow(ctx, "set user status", func(w *wtx) (sql.Result, error) { return w.exec(userStatus, string(s), tenant, id) })
}

// DeactivateIdle implements auth.UserUpdater with one conditional UPDATE.
func (us *Users) DeactivateIdle(ctx context.Context, tenant, id string, idleSince time.Time) error {
	err := us.oneRow(ctx, "deactivate idle user", func(w *wtx) (sql.Result, error) {
		return w.exec(userIdleOff, tenant, id, micros(idleSince), string(auth.StatusActive), string(auth.StatusDeactivated))
	})
	if !errors.Is(err, auth.ErrNotFound) {
		return err
	}
	// Nothing changed: no such user, or not active, or active since.
	if _, err := us.User(ctx, tenant, id); err != nil {
		return err
	}
	return auth.ErrConflict
}

// Deactivate implements auth.UserUpdater: the UPDATE sets the status
// only if it is active (see changeIf).
func (us *Users) Deactivate(ctx context.Context, tenant, id string) (bool, error) {
	return us.changeIf(ctx, "deactivate user", tenant, id, func(w *wtx) (sql.Result, error) {
		return w.exec(userOff, tenant, id, string(auth.StatusActive), string(auth.StatusDeactivated))
	})
}

// changeIf runs a conditional UPDATE of user id (exec) in one write
// transaction: whether it changed a row is whether this call made the
// change; if it did not, a read tells a row the condition left alone
// from a missing user (auth.ErrNotFound).
func (us *Users) changeIf(ctx context.Context, op, tenant, id string, exec func(w *wtx) (sql.Result, error)) (bool, error) {
	var changed bool
	err := us.s.writeOne(ctx, func(w *wtx) error {
		var err error
		if changed, err = affected(exec(w)); err != nil || changed {
			return err
		}
		var one int
		err = w.queryRow(userExists, tenant, id).Scan(&one)
		if isNoRows(err) {
			return auth.ErrNotFound
		}
		return err
	})
	if err != nil && !errors.Is(err, auth.ErrNotFound) {
		return false, fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	return changed, err
}

// SetReactivatedAt implements auth.UserUpdater.
func (us *Users) SetReactivatedAt(ctx context.Context, tenant, id string, at time.Time) error {
	return us.oneRow(ctx, "set reactivation", func(w *wtx) (sql.Result, error) {
		return w.exec(userReactivated, tenant, id, nullMicros(at))
	})
}

// ExpirePassword implements auth.UserUpdater: the UPDATE sets the flag
// only if it is clear (see changeIf).
func (us *Users) ExpirePassword(ctx context.Context, tenant, id string) (bool, error) {
	return us.changeIf(ctx, "expire password", tenant, id, func(w *wtx) (sql.Result, error) {
		return w.exec(userExpirePw, tenant, id)
	})
}

// ClearPasswordExpired implements auth.UserUpdater.
func (us *Users) ClearPasswordExpired(ctx context.Context, tenant, id string) error {
	return us.oneRow(ctx, "clear password expired", func(w *wtx) (sql.Result, error) { return w.exec(userUnexpirePw, tenant, id) })
}

// oneRow runs the UPDATE or DELETE of one user that f executes and turns
// its result into nil or auth.ErrNotFound.
func (us *Users) oneRow(ctx context.Context, op string, f func(w *wtx) (sql.Result, error)) error {
	var changed bool
	err := us.s.writeOne(ctx, func(w *wtx) error {
		var err error
		changed, err = affected(f(w))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	if !changed {
		return auth.ErrNotFound
	}
	return nil
}

// SetPassword implements auth.UserUpdater in one write transaction.
func (us *Users) SetPassword(ctx context.Context, tenant, id, hash string, at time.Time, keep int) error {
	return us.setPassword(ctx, tenant, id, hash, at, keep, nil, userPwSet)
}

// ResetPassword implements auth.UserUpdater in one write transaction: the
// row is compared with was and written under the writer's lock.
func (us *Users) ResetPassword(ctx context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	return us.setPassword(ctx, tenant, id, hash, at, keep, &was, userResetSet)
}

// ChangePassword implements auth.UserUpdater in one write transaction,
// as ResetPassword, leaving email_unverified as it is.
func (us *Users) ChangePassword(ctx context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	return us.setPassword(ctx, tenant, id, hash, at, keep, &was, userPwSet)
}

// setPassword is SetPassword, or when was is not nil a compare-and-set
// with was that writes with set: ResetPassword (userResetSet) or
// ChangePassword (userPwSet).
func (us *Users) setPassword(ctx context.Context, tenant, id, hash string, at time.Time, keep int, was *auth.User, set stmtID) error {
	return us.s.write(ctx, func(w *wtx) error {
		var cur, hist string
		var err error
		if was == nil {
			err = w.queryRow(userPwGet, tenant, id).Scan(&cur, &hist)
		} else {
			var same bool
			err = w.queryRow(userResetGet, tenant, id, was.Email, was.PasswordHash, string(was.Status), was.PasswordExpired,
				nullMicros(was.ReactivatedAt)).Scan(&cur, &hist, &same)
			if err == nil && !same {
				return auth.ErrConflict
			}
		}
		if isNoRows(err) {
			return auth.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("sqlitestore: set password: %w", err)
		}
		h, err := decodeHistory(hist)
		if err != nil {
			return err
		}
		if cur != "" {
			h = append([]string{cur}, h...)
		}
		h = h[:min(len(h), max(keep, 0))]
		enc, err := encodeHistory(h)
		if err != nil {
			return err
		}
		if _, err := w.exec(set, hash, enc, nullMicros(at), tenant, id); err != nil {
			return fmt.Errorf("sqlitestore: set password: %w", err)
		}
		return nil
	})
}

// RehashPassword implements auth.UserUpdater with one conditional UPDATE.
func (us *Users) RehashPassword(ctx context.Context, tenant, id, oldHash, newHash string) error {
	err := us.oneRow(ctx, "rehash password", func(w *wtx) (sql.Result, error) {
		return w.exec(userRehash, tenant, id, oldHash, newHash)
	})
	if !errors.Is(err, auth.ErrNotFound) {
		return err
	}
	// Nothing changed: no such user, or the hash is no longer oldHash.
	if _, err := us.User(ctx, tenant, id); err != nil {
		return err
	}
	return auth.ErrConflict
}

// RecordLogin implements auth.UserUpdater with one UPDATE … RETURNING.
func (us *Users) RecordLogin(ctx context.Context, tenant, id string, at time.Time) (auth.User, error) {
	var u auth.User
	err := us.s.writeOne(ctx, func(w *wtx) error {
		var err error
		u, err = oneUser(w.queryRow(userLogin, tenant, id, nullMicros(at)))
		return err
	})
	return u, err
}

// RecordSSOLogin implements auth.UserUpdater with one UPDATE … RETURNING.
func (us *Users) RecordSSOLogin(ctx context.Context, tenant, id string, at time.Time) (auth.User, error) {
	var u auth.User
	err := us.s.writeOne(ctx, func(w *wtx) error {
		var err error
		u, err = oneUser(w.queryRow(userSSOLogin, tenant, id, nullMicros(at)))
		return err
	})
	return u, err
}

// SetEmail implements auth.UserUpdater with one UPDATE: the unique index
// on (tenant, email) refuses an email another user of the tenant has, and
// setting the user's own email again matches its row without a conflict.
func (us *Users) SetEmail(ctx context.Context, tenant, id, email string, unverified bool) error {
	err := us.oneRow(ctx, "set user email", func(w *wtx) (sql.Result, error) {
		return w.exec(userSetEmail, tenant, id, email, unverified)
	})
	if isConstraint(err) {
		// The only constraint the statement can break: the primary key
		// does not change.
		return auth.ErrDuplicateEmail
	}
	return err
}

// ChangeEmail implements auth.UserUpdater in one write transaction:
// SetEmail's UPDATE made a compare-and-set on the email, hash, status,
// expiry mark and reactivation time, then, when it changed nothing, a
// read that tells ErrConflict from ErrNotFound under the same lock.
func (us *Users) ChangeEmail(ctx context.Context, tenant, id string, was auth.User, email string, unverified bool) error {
	err := us.s.write(ctx, func(w *wtx) error {
		changed, err := affected(w.exec(userChangeEmail, tenant, id, email, unverified,
			was.Email, was.PasswordHash, string(was.Status), was.PasswordExpired, nullMicros(was.ReactivatedAt)))
		switch {
		case isConstraint(err):
			// The only constraint the statement can break: the primary
			// key does not change.
			return auth.ErrDuplicateEmail
		case err != nil:
			return fmt.Errorf("sqlitestore: change user email: %w", err)
		case changed:
			return nil
		}
		var one int
		switch err := w.queryRow(userExists, tenant, id).Scan(&one); {
		case isNoRows(err):
			return auth.ErrNotFound
		case err != nil:
			return fmt.Errorf("sqlitestore: change user email: %w", err)
		}
		return auth.ErrConflict
	})
	return err
}

// VerifyEmail implements auth.UserUpdater with one UPDATE … RETURNING,
// which clears the flag only if the email is still email.
func (us *Users) VerifyEmail(ctx context.Context, tenant, id, email string) error {
	var same bool
	err := us.s.writeOne(ctx, func(w *wtx) error {
		return w.queryRow(userVerifyEmail, tenant, id, email).Scan(&same)
	})
	switch {
	case isNoRows(err):
		return auth.ErrNotFound
	case err != nil:
		return fmt.Errorf("sqlitestore: verify email: %w", err)
	case !same:
		return auth.ErrConflict
	}
	return nil
}
