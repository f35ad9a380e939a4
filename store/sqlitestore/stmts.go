package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// stmtID names one of the Store's SQL statements (see queries).
type stmtID int

const (
	// transaction control, used on the writer only
	sqlBegin stmtID = iota
	sqlCommit
	sqlRollback

	sessLookup
	sessTouch
	sessUntouch
	sessDelete
	sessByUser
	sessDelAll
	sessInsert
	sessOthers
	sessDelOne
	sessExpire
	sessEvict
	sessRotTomb
	sessEvicted
	sessTombDrop
	sessTombDropUser
	sessTombExpire

	userByID
	userByEmail
	userList
	userSummaries
	userDelete
	userStatus
	userIdleOff
	userOff
	userRehash
	userLogin
	userInsert
	userEmailIn
	userPwGet
	userPwSet
	userResetGet
	userResetSet
	userSetEmail
	userChangeEmail
	userExpirePw
	userUnexpirePw
	userExists
	userReactivated
	userSSOLogin
	userVerifyEmail

	thrGet
	thrRelease
	thrReset
	thrUpsert
	thrSweep

	audHead
	audCheckpoint
	audMoveHead
	audNewHead
	audCpSeq
	audIndexTail
	audDropTail
	audIndexed
	audPurge
	audPurgeTail
	audPurgeHead
	audPurgeNew

	tenGet
	tenList
	tenCreate
	tenSet
	tenReviewed
	tenIdPChanged
	tenExists
	tenDelete

	keyCreate
	keyCreateLive
	keyByHash
	keyList
	keyRevoke
	keyTouch
	keyExists
	keyRevokeBy
	keyPurge

	mfaDup
	mfaCount
	mfaOthers
	mfaVoid
	mfaInsert
	mfaFactor
	mfaFactors
	mfaDelete
	mfaConfirm
	mfaAdvance
	mfaReseal
	mfaState
	mfaEnrol
	recClear
	recInsert
	recUse
	recLeft
	recList
	codePut
	codeGet
	codeTry
	codeDel
	codeSweep
	rateHit
	rateForget
	rateSweep
	txnCreate
	txnGet
	txnConsume
	txnSweep

	ipLists
	ipVersion
	ipCreateUsers
	ipCreateKeys
	ipUpdateUsers
	ipUpdateKeys

	polGet
	polVersion
	polRemove
	polAdd
	polSetVersion
	polLog
	polTrim
	polChanges
	apprCreate
	apprGet
	apprDecide
	apprConsume
	apprList
	apprListStatus
	apprListBefore
	apprListStatusBefore

	ssoPut
	ssoGet
	ssoDelete
	ssoUpdate
	ssoExists
	reqRemember
	reqConsume
	reqSweep
	replayInsert
	replaySweep
	subjPut
	subjGet
	subjByNameID
	subjSweep

	// audInsert+k inserts 1<<k events, for k < insertSizes.
	audInsert
	numStmts = audInsert + insertSizes
)

const sessionCols = `tenant, user_id, created_at, last_seen, expires_at, idle_timeout, ip, user_agent, flags`

const userCols = `tenant, id, email, name, status, password_hash, password_history, password_changed_at, created_at, last_login_at, password_expired, last_sso_at, email_unverified, reactivated_at`

const throttleCols = `failures, last, locked_until, lockouts, permanent`

const tenantCols = `id, name, policy, version, created_at, last_review, idp_changed_at`

const apiKeyCols = `tenant, id, hash, name, prefix, created_by, created_at, expires_at, last_used_at, revoked_at`

const factorCols = `tenant, user_id, id, kind, label, destination, key_id, secret, created_at, confirmed_at, last_step`

const codeCols = `tenant, txn, user_id, factor_id, kind, hash, created_at, expires_at, tries_left`

const txnCols = `hash, tenant, user_id, binding, purpose, flags, created_at, expires_at`

const subjectCols = `tenant, user_id, idp, name_id, name_id_format, session_index, expires`

const approvalCols = `tenant, id, requester_kind, requester_id, section, action, target, payload_hash,
	created_at, expires_at, status, decider_kind, decider_id, decided_at, consumed_at`

// queries is the SQL of every statement.
var queries = func() (q [numStmts]string) {
	q[sqlBegin] = `BEGIN IMMEDIATE`
	q[sqlCommit] = `COMMIT`
	q[sqlRollback] = `ROLLBACK`

	q[sessLookup] = lookupQuery
	q[sessTouch] = `UPDATE guard_sessions SET last_seen = max(last_seen, ?2) WHERE hash = ?1`
	// Compare and set: only while LastSeen is still the touch (?2).
	q[sessUntouch] = `UPDATE guard_sessions SET last_seen = ?3 WHERE hash = ?1 AND last_seen = ?2`
	q[sessDelete] = `DELETE FROM guard_sessions WHERE hash = ? RETURNING ` + sessionCols
	q[sessByUser] = `SELECT hash, ` + sessionCols + ` FROM guard_sessions WHERE tenant = ? AND user_id = ? ORDER BY created_at, hash`
	q[sessDelAll] = `DELETE FROM guard_sessions WHERE tenant = ?1 AND user_id = ?2 AND (?3 IS NULL OR hash <> ?3) RETURNING hash, ` + sessionCols
	// Inserts nothing if the hash is a tombstone's.
	q[sessInsert] = `INSERT INTO guard_sessions (hash, ` + sessionCols + `)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
		WHERE NOT EXISTS (SELECT 1 FROM guard_session_evictions WHERE hash = ?1)`
	q[sessOthers] = `SELECT hash, ` + sessionCols + ` FROM guard_sessions
		WHERE tenant = ? AND user_id = ? AND hash <> ? ORDER BY created_at, hash`
	q[sessDelOne] = `DELETE FROM guard_sessions WHERE hash = ?`
	// Not live at now: now >= ends_at (see the schema), through its index.
	q[sessExpire] = `DELETE FROM guard_sessions WHERE hash IN (
		SELECT hash FROM guard_sessions WHERE ends_at <= ?1 LIMIT ?2)`
	// The tombstone of a session about to be evicted.
	q[sessEvict] = `INSERT INTO guard_session_evictions (hash, tenant, user_id, ends_at)
		SELECT hash, tenant, user_id, ends_at FROM guard_sessions WHERE hash = ?`
	// The tombstone of a session about to be rotated away: its user, the
	// successor ?2 and the successor's end ?3.
	q[sessRotTomb] = `INSERT INTO guard_session_evictions (hash, tenant, user_id, ends_at, successor)
		SELECT hash, tenant, user_id, ?3, ?2 FROM guard_sessions WHERE hash = ?1`
	q[sessEvicted] = `SELECT ends_at, successor, tenant, user_id FROM guard_session_evictions WHERE hash = ?`
	q[sessTombDrop] = `DELETE FROM guard_session_evictions WHERE tenant = ?1 AND user_id = ?2 AND ends_at <= ?3`
	// The user's tombstones but the rotation tombstones that lead to ?3,
	// if it is a session of the user (NULL: none), at most ?4 rotations
	// back: the chain is followed from ?3 through the successor column,
	// among the user's rows (through their index).
	q[sessTombDropUser] = `WITH RECURSIVE keep (hash, hops) AS (
			SELECT hash, 0 FROM guard_sessions WHERE hash = ?3 AND tenant = ?1 AND user_id = ?2
			UNION ALL
			SELECT e.hash, k.hops + 1 FROM guard_session_evictions e JOIN keep k ON e.successor = k.hash
			WHERE e.tenant = ?1 AND e.user_id = ?2 AND k.hops < ?4
		)
		DELETE FROM guard_session_evictions WHERE tenant = ?1 AND user_id = ?2
			AND hash NOT IN (SELECT hash FROM keep)`
	q[sessTombExpire] = `DELETE FROM guard_session_evictions WHERE hash IN (
		SELECT hash FROM guard_session_evictions WHERE ends_at <= ?1 LIMIT ?2)`

	q[userByID] = `SELECT ` + userCols + ` FROM guard_users WHERE tenant = ? AND id = ?`
	q[userByEmail] = `SELECT ` + userCols + ` FROM guard_users WHERE tenant = ? AND email = ?`
	q[userList] = `SELECT ` + userCols + ` FROM guard_users WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`
	// See Users.ListUserSummaries. The chunk is a range of the primary
	// key up to the ?3-th user after ?2 (or the tenant's last), read
	// directly by the aggregates, in one statement.
	q[userSummaries] = `SELECT count(*),
			ifnull(group_concat(octet_length(id), ','), ''), ifnull(group_concat(octet_length(email), ','), ''),
			ifnull(group_concat(octet_length(name), ','), ''), ifnull(group_concat(octet_length(status), ','), ''),
			ifnull(group_concat(password_hash <> '', ','), ''), ifnull(group_concat(ifnull(password_changed_at, ''), ','), ''),
			ifnull(group_concat(created_at, ','), ''), ifnull(group_concat(ifnull(last_login_at, ''), ','), ''),
			ifnull(group_concat(ifnull(last_sso_at, ''), ','), ''), ifnull(group_concat(email_unverified + 2 * password_expired, ','), ''),
			ifnull(group_concat(ifnull(reactivated_at, ''), ','), ''),
			ifnull(group_concat(id || email || name || status, ''), '')
		FROM guard_users WHERE tenant = ?1 AND id > ?2 AND id <= coalesce(
			(SELECT id FROM guard_users WHERE tenant = ?1 AND id > ?2 ORDER BY id LIMIT 1 OFFSET ?3 - 1),
			(SELECT max(id) FROM guard_users WHERE tenant = ?1))`
	q[userDelete] = `DELETE FROM guard_users WHERE tenant = ? AND id = ?`
	q[userStatus] = `UPDATE guard_users SET status = ? WHERE tenant = ? AND id = ?`
	// ?4 active, ?5 deactivated.
	q[userIdleOff] = `UPDATE guard_users SET status = ?5
		WHERE tenant = ?1 AND id = ?2 AND status = ?4 AND coalesce(last_login_at, created_at) <= ?3
			AND (reactivated_at IS NULL OR reactivated_at <= ?3)`
	q[userOff] = `UPDATE guard_users SET status = ?4 WHERE tenant = ?1 AND id = ?2 AND status = ?3`
	q[userRehash] = `UPDATE guard_users SET password_hash = ?4 WHERE tenant = ?1 AND id = ?2 AND password_hash = ?3`
	q[userLogin] = `UPDATE guard_users SET last_login_at = ?3 WHERE tenant = ?1 AND id = ?2 RETURNING ` + userCols
	q[userSSOLogin] = `UPDATE guard_users SET last_login_at = ?3, last_sso_at = ?3 WHERE tenant = ?1 AND id = ?2 RETURNING ` + userCols
	q[userInsert] = `INSERT INTO guard_users (` + userCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	q[userEmailIn] = `SELECT 1 FROM guard_users WHERE tenant = ? AND email = ?`
	q[userPwGet] = `SELECT password_hash, password_history FROM guard_users WHERE tenant = ? AND id = ?`
	q[userPwSet] = `UPDATE guard_users SET password_hash = ?, password_history = ?, password_changed_at = ?, password_expired = 0
		WHERE tenant = ? AND id = ?`
	// ResetPassword and ChangePassword: the hash and history as
	// userPwGet, and whether the row is still as the caller read it (?3
	// email, ?4 hash, ?5 status, ?6 password_expired, ?7 reactivated_at,
	// NULL for none); then userResetSet,
	// which is userPwSet verifying the email (ResetPassword), or
	// userPwSet (ChangePassword).
	q[userResetGet] = `SELECT password_hash, password_history,
			email = ?3 AND password_hash = ?4 AND status = ?5 AND password_expired = ?6 AND reactivated_at IS ?7
		FROM guard_users WHERE tenant = ?1 AND id = ?2`
	q[userResetSet] = `UPDATE guard_users SET password_hash = ?, password_history = ?, password_changed_at = ?, password_expired = 0,
			email_unverified = 0
		WHERE tenant = ? AND id = ?`
	q[userSetEmail] = `UPDATE guard_users SET email = ?3, email_unverified = ?4 WHERE tenant = ?1 AND id = ?2`
	// ChangeEmail: userSetEmail only while the row is as the caller read
	// it (?5 email, ?6 hash, ?7 status, ?8 password_expired, ?9
	// reactivated_at, NULL for none); a row that does not match is not
	// written, so breaks no constraint.
	q[userChangeEmail] = `UPDATE guard_users SET email = ?3, email_unverified = ?4
		WHERE tenant = ?1 AND id = ?2 AND email = ?5 AND password_hash = ?6 AND status = ?7 AND password_expired = ?8
			AND reactivated_at IS ?9`
	// Clears the flag only while the email is ?3; the returned column
	// tells ErrConflict from success (no row: ErrNotFound).
	q[userVerifyEmail] = `UPDATE guard_users SET email_unverified = email_unverified AND email IS NOT ?3
		WHERE tenant = ?1 AND id = ?2 RETURNING email IS ?3`
	q[userExpirePw] = `UPDATE guard_users SET password_expired = 1 WHERE tenant = ?1 AND id = ?2 AND password_expired = 0`
	q[userExists] = `SELECT 1 FROM guard_users WHERE tenant = ?1 AND id = ?2`
	q[userUnexpirePw] = `UPDATE guard_users SET password_expired = 0 WHERE tenant = ?1 AND id = ?2`
	q[userReactivated] = `UPDATE guard_users SET reactivated_at = ?3 WHERE tenant = ?1 AND id = ?2`

	q[thrGet] = `SELECT ` + throttleCols + ` FROM guard_throttle WHERE key = ?`
	// A give-back (auth.Record.GiveBack, done in Go inside the write
	// transaction): expires_at stays as the last Reserve set it.
	q[thrRelease] = `UPDATE guard_throttle SET failures = ?2, last = ?3, locked_until = ?4, lockouts = ?5, permanent = ?6
		WHERE key = ?1`
	q[thrReset] = `DELETE FROM guard_throttle WHERE key = ?`
	q[thrUpsert] = `INSERT INTO guard_throttle (key, ` + throttleCols + `, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last = excluded.last,
			locked_until = excluded.locked_until, lockouts = excluded.lockouts,
			permanent = excluded.permanent, expires_at = excluded.expires_at`
	q[thrSweep] = `DELETE FROM guard_throttle WHERE key IN (
		SELECT key FROM guard_throttle WHERE expires_at <= ?1 AND key IS NOT ?2 LIMIT ?3)`

	q[audHead] = `SELECT seq, mac FROM guard_audit_heads WHERE tenant = ?`
	q[audCheckpoint] = `SELECT cp_seq, cp_mac, cp_at, cp_hmac FROM guard_audit_heads WHERE tenant = ?`
	// Compare-and-set of the head: the chain continues from it only if it
	// is still the link the batch starts from.
	// It returns how many events the tail holds then.
	q[audMoveHead] = `UPDATE guard_audit_heads SET seq = ?1, mac = ?2 WHERE tenant = ?3 AND seq = ?4 AND mac IS ?5
		RETURNING seq - indexed_upto`
	q[audNewHead] = `INSERT INTO guard_audit_heads (tenant, seq, mac) VALUES (?, ?, ?) ON CONFLICT (tenant) DO NOTHING`
	q[audCpSeq] = `SELECT cp_seq FROM guard_audit_heads WHERE tenant = ?`
	// The tail moves into the indexed table in one bulk insert.
	q[audIndexTail] = `INSERT INTO guard_audit_events (` + eventCols + `)
		SELECT ` + eventCols + ` FROM guard_audit_tail WHERE tenant = ?1 ORDER BY seq`
	q[audDropTail] = `DELETE FROM guard_audit_tail WHERE tenant = ?1`
	q[audIndexed] = `UPDATE guard_audit_heads SET indexed_upto = seq WHERE tenant = ?1`
	q[audPurge] = `DELETE FROM guard_audit_events WHERE tenant = ? AND seq <= ?`
	q[audPurgeTail] = `DELETE FROM guard_audit_tail WHERE tenant = ? AND seq <= ?`
	// When no event is left, the checkpoint is the head.
	q[audPurgeHead] = `UPDATE guard_audit_heads SET cp_seq = ?2, cp_mac = ?3, cp_at = ?4, cp_hmac = ?5,
			seq = CASE WHEN seq <= ?2 THEN ?2 ELSE seq END,
			mac = CASE WHEN seq <= ?2 THEN ?3 ELSE mac END
		WHERE tenant = ?1`
	q[audPurgeNew] = `INSERT INTO guard_audit_heads (tenant, seq, mac, cp_seq, cp_mac, cp_at, cp_hmac)
		VALUES (?1, ?2, ?3, ?2, ?3, ?4, ?5)`
	for k := range insertSizes {
		q[audInsert+stmtID(k)] = insertEvents(1 << k)
	}

	q[tenGet] = `SELECT ` + tenantCols + ` FROM guard_tenants WHERE id = ?`
	q[tenList] = `SELECT ` + tenantCols + ` FROM guard_tenants WHERE id > ? ORDER BY id LIMIT ?`
	q[tenCreate] = `INSERT INTO guard_tenants (` + tenantCols + `) VALUES (?, ?, ?, 1, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	// Set if newer: max() of SQLite is NULL if an argument is.
	q[tenReviewed] = `UPDATE guard_tenants SET last_review = max(ifnull(last_review, ?2), ?2) WHERE id = ?1`
	q[tenIdPChanged] = `UPDATE guard_tenants SET idp_changed_at = max(ifnull(idp_changed_at, ?2), ?2) WHERE id = ?1`
	q[tenSet] = `UPDATE guard_tenants SET policy = ?, version = version + 1 WHERE id = ? AND version = ? RETURNING version`
	q[tenExists] = `SELECT 1 FROM guard_tenants WHERE id = ?`
	q[tenDelete] = `DELETE FROM guard_tenants WHERE id = ? AND version = ?`

	q[keyCreate] = `INSERT INTO guard_api_keys (` + apiKeyCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// The key unless the tenant has ?11 keys usable at its creation (?7):
	// the count and the insert are one statement of the writer, which
	// holds the database's write lock. The count reads the tenant's range
	// of the primary key.
	q[keyCreateLive] = `INSERT INTO guard_api_keys (` + apiKeyCols + `)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
		WHERE (SELECT count(*) FROM guard_api_keys
			WHERE tenant = ?1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?7)) < ?11`
	q[keyByHash] = `SELECT ` + apiKeyCols + ` FROM guard_api_keys WHERE hash = ?`
	q[keyList] = `SELECT ` + apiKeyCols + ` FROM guard_api_keys WHERE tenant = ? ORDER BY created_at, id`
	// The first revocation time stays.
	q[keyRevoke] = `UPDATE guard_api_keys SET revoked_at = coalesce(revoked_at, ?3) WHERE tenant = ?1 AND id = ?2`
	// Set if newer: the row is written only when the time moves.
	q[keyTouch] = `UPDATE guard_api_keys SET last_used_at = ?3
		WHERE tenant = ?1 AND id = ?2 AND ?3 IS NOT NULL AND (last_used_at IS NULL OR last_used_at < ?3)`
	q[keyExists] = `SELECT 1 FROM guard_api_keys WHERE tenant = ? AND id = ?`
	// Every live key of a creator: a range of the tenant's rows (the
	// primary key), filtered; a tenant has few keys.
	q[keyRevokeBy] = `UPDATE guard_api_keys SET revoked_at = ?3
		WHERE tenant = ?1 AND created_by = ?2 AND revoked_at IS NULL RETURNING ` + apiKeyCols
	// The keys revoked or expired before ?2: a range of the tenant's rows
	// (the primary key), filtered.
	q[keyPurge] = `DELETE FROM guard_api_keys WHERE tenant = ?1 AND (revoked_at < ?2 OR expires_at < ?2)`

	q[mfaDup] = `SELECT 1 FROM guard_mfa_factors WHERE tenant = ? AND user_id = ? AND id = ?`
	q[mfaCount] = `SELECT count(*) FROM guard_mfa_factors WHERE tenant = ? AND user_id = ? AND confirmed_at IS NOT NULL`
	q[mfaOthers] = `SELECT count(*) FROM guard_mfa_factors WHERE tenant = ? AND user_id = ? AND confirmed_at IS NOT NULL AND id <> ?`
	q[mfaVoid] = `DELETE FROM guard_mfa_factors WHERE tenant = ? AND user_id = ? AND kind = ? AND confirmed_at IS NULL`
	q[mfaInsert] = `INSERT INTO guard_mfa_factors (` + factorCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	q[mfaFactor] = `SELECT ` + factorCols + ` FROM guard_mfa_factors WHERE tenant = ? AND user_id = ? AND id = ?`
	q[mfaFactors] = `SELECT ` + factorCols + ` FROM guard_mfa_factors WHERE tenant = ? AND user_id = ? ORDER BY created_at, id`
	q[mfaDelete] = `DELETE FROM guard_mfa_factors WHERE tenant = ? AND user_id = ? AND id = ? RETURNING ` + factorCols
	q[mfaConfirm] = `UPDATE guard_mfa_factors SET confirmed_at = ?4, last_step = ?5
		WHERE tenant = ?1 AND user_id = ?2 AND id = ?3 AND confirmed_at IS NULL
		AND (?6 <= 0 OR (SELECT count(*) FROM guard_mfa_factors
			WHERE tenant = ?1 AND user_id = ?2 AND confirmed_at IS NOT NULL) < ?6)`
	// The TOTP replay check: set if newer, on a confirmed factor.
	q[mfaAdvance] = `UPDATE guard_mfa_factors SET last_step = ?4
		WHERE tenant = ?1 AND user_id = ?2 AND id = ?3 AND confirmed_at IS NOT NULL AND last_step < ?4`
	q[mfaReseal] = `UPDATE guard_mfa_factors SET key_id = ?5, secret = ?6
		WHERE tenant = ?1 AND user_id = ?2 AND id = ?3 AND secret IS ?4`
	q[mfaState] = `SELECT confirmed_at IS NOT NULL FROM guard_mfa_factors WHERE tenant = ? AND user_id = ? AND id = ?`
	// limit users after ?2, each with its distinct kinds, through the
	// partial index of confirmed factors.
	// See MFA.Enrolments.
	q[mfaEnrol] = `SELECT count(*), ifnull(group_concat(octet_length(user_id), ','), ''), ifnull(group_concat(user_id, ''), ''),
			ifnull(group_concat(octet_length(kind), ','), ''), ifnull(group_concat(kind, ''), '')
		FROM guard_mfa_factors WHERE tenant = ?1 AND user_id > ?2 AND confirmed_at IS NOT NULL AND user_id <= coalesce(
			(SELECT DISTINCT user_id FROM guard_mfa_factors WHERE tenant = ?1 AND user_id > ?2 AND confirmed_at IS NOT NULL
				ORDER BY user_id LIMIT 1 OFFSET ?3 - 1),
			(SELECT max(user_id) FROM guard_mfa_factors WHERE tenant = ?1 AND confirmed_at IS NOT NULL))`
	q[recClear] = `DELETE FROM guard_mfa_recovery WHERE tenant = ? AND user_id = ?`
	q[recInsert] = `INSERT INTO guard_mfa_recovery (tenant, user_id, hash) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
	q[recUse] = `DELETE FROM guard_mfa_recovery WHERE tenant = ? AND user_id = ? AND hash = ?`
	q[recLeft] = `SELECT count(*) FROM guard_mfa_recovery WHERE tenant = ? AND user_id = ?`
	q[recList] = `SELECT hash FROM guard_mfa_recovery WHERE tenant = ? AND user_id = ?`
	q[codePut] = `INSERT INTO guard_mfa_codes (` + codeCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, txn) DO UPDATE SET user_id = excluded.user_id, factor_id = excluded.factor_id,
			kind = excluded.kind, hash = excluded.hash, created_at = excluded.created_at,
			expires_at = excluded.expires_at, tries_left = excluded.tries_left`
	q[codeGet] = `SELECT ` + codeCols + ` FROM guard_mfa_codes WHERE tenant = ? AND txn = ?`
	q[codeTry] = `UPDATE guard_mfa_codes SET tries_left = ?3 WHERE tenant = ?1 AND txn = ?2`
	q[codeDel] = `DELETE FROM guard_mfa_codes WHERE tenant = ? AND txn = ?`
	q[codeSweep] = `DELETE FROM guard_mfa_codes WHERE (tenant, txn) IN (
		SELECT tenant, txn FROM guard_mfa_codes WHERE expires_at <= ?1 LIMIT ?2)`
	// A window that has ended (?2 at or after ends_at) starts again at ?2
	// and ends at ?3; every SET expression reads the row as it was.
	q[rateHit] = `INSERT INTO guard_mfa_rates (key, hits, ends_at) VALUES (?1, 1, ?3)
		ON CONFLICT (key) DO UPDATE SET
			hits = CASE WHEN ?2 < ends_at THEN hits + 1 ELSE 1 END,
			ends_at = CASE WHEN ?2 < ends_at THEN ends_at ELSE ?3 END
		RETURNING hits`
	q[rateForget] = `DELETE FROM guard_mfa_rates WHERE key = ? AND ends_at = ?`
	q[rateSweep] = `DELETE FROM guard_mfa_rates WHERE key IN (
		SELECT key FROM guard_mfa_rates WHERE ends_at <= ?1 LIMIT ?2)`
	q[txnCreate] = `INSERT INTO guard_mfa_transactions (` + txnCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (hash) DO NOTHING`
	q[txnGet] = `SELECT ` + txnCols + ` FROM guard_mfa_transactions WHERE hash = ?`
	q[txnConsume] = `DELETE FROM guard_mfa_transactions WHERE hash = ? RETURNING ` + txnCols
	q[txnSweep] = `DELETE FROM guard_mfa_transactions WHERE hash IN (
		SELECT hash FROM guard_mfa_transactions WHERE expires_at <= ?1 AND hash IS NOT ?2 LIMIT ?3)`

	q[ipLists] = `SELECT version, users_report_only, api_keys_report_only, users_entries, api_keys_entries
		FROM guard_ip_lists WHERE tenant = ?`
	q[ipVersion] = `SELECT version FROM guard_ip_lists WHERE tenant = ?`
	// A tenant's first Replace (from version 0) creates its row; the
	// others are a compare-and-set on the version.
	q[ipCreateUsers] = `INSERT INTO guard_ip_lists
		(tenant, version, users_report_only, api_keys_report_only, users_entries, api_keys_entries)
		VALUES (?1, 1, ?3, 0, ?2, X'') ON CONFLICT (tenant) DO NOTHING`
	q[ipCreateKeys] = `INSERT INTO guard_ip_lists
		(tenant, version, users_report_only, api_keys_report_only, users_entries, api_keys_entries)
		VALUES (?1, 1, 0, ?3, X'', ?2) ON CONFLICT (tenant) DO NOTHING`
	q[ipUpdateUsers] = `UPDATE guard_ip_lists SET users_entries = ?2, users_report_only = ?3, version = version + 1
		WHERE tenant = ?1 AND version = ?4`
	q[ipUpdateKeys] = `UPDATE guard_ip_lists SET api_keys_entries = ?2, api_keys_report_only = ?3, version = version + 1
		WHERE tenant = ?1 AND version = ?4`

	// The version with every rule (NULLs for a tenant without rules), in
	// one statement, hence from one snapshot.
	q[polGet] = `SELECT v.version, r.rule_type, r.role, r.subject, r.section, r.action
		FROM guard_rbac_versions v LEFT JOIN guard_rbac_rules r ON r.tenant = v.tenant
		WHERE v.tenant = ?`
	q[polVersion] = `SELECT version FROM guard_rbac_versions WHERE tenant = ?`
	q[polRemove] = `DELETE FROM guard_rbac_rules
		WHERE tenant = ? AND rule_type = ? AND role = ? AND subject = ? AND section = ? AND action = ?`
	q[polAdd] = `INSERT INTO guard_rbac_rules (tenant, rule_type, role, subject, section, action)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	q[polSetVersion] = `INSERT INTO guard_rbac_versions (tenant, version) VALUES (?1, ?2)
		ON CONFLICT (tenant) DO UPDATE SET version = excluded.version`
	q[polLog] = `INSERT INTO guard_rbac_changes (tenant, version, remove_rules, add_rules) VALUES (?, ?, ?, ?)`
	q[polTrim] = `DELETE FROM guard_rbac_changes WHERE tenant = ?1 AND version IN (
		SELECT version FROM guard_rbac_changes WHERE tenant = ?1 AND version <= ?2 ORDER BY version LIMIT ?3)`
	// The version with every change above ?2 (NULLs when there is none),
	// from one snapshot, so that a change no longer held is seen.
	q[polChanges] = `SELECT v.version, c.version, c.remove_rules, c.add_rules
		FROM guard_rbac_versions v LEFT JOIN guard_rbac_changes c ON c.tenant = v.tenant AND c.version > ?2
		WHERE v.tenant = ?1
		ORDER BY c.version`
	q[apprCreate] = `INSERT INTO guard_rbac_approvals (` + approvalCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO NOTHING`
	q[apprGet] = `SELECT ` + approvalCols + ` FROM guard_rbac_approvals WHERE tenant = ? AND id = ?`
	q[apprDecide] = `UPDATE guard_rbac_approvals SET status = ?3, decider_kind = ?4, decider_id = ?5, decided_at = ?6
		WHERE tenant = ?1 AND id = ?2`
	q[apprConsume] = `UPDATE guard_rbac_approvals SET status = ?3, consumed_at = ?4 WHERE tenant = ?1 AND id = ?2`
	// ?2 is the status, ?3 the cursor, ?4 the limit: one statement per
	// combination of filters, each a range of an index read backwards.
	q[apprList] = `SELECT ` + approvalCols + ` FROM guard_rbac_approvals
		WHERE tenant = ?1 ORDER BY id DESC LIMIT ?4`
	// The status index by name: without statistics SQLite reads the
	// tenant's approvals through the primary key, every decided one
	// before the few pending.
	q[apprListStatus] = `SELECT ` + approvalCols + ` FROM guard_rbac_approvals INDEXED BY guard_rbac_approvals_status
		WHERE tenant = ?1 AND status = ?2 ORDER BY id DESC LIMIT ?4`
	q[apprListBefore] = `SELECT ` + approvalCols + ` FROM guard_rbac_approvals
		WHERE tenant = ?1 AND id < ?3 ORDER BY id DESC LIMIT ?4`
	q[apprListStatusBefore] = `SELECT ` + approvalCols + ` FROM guard_rbac_approvals INDEXED BY guard_rbac_approvals_status
		WHERE tenant = ?1 AND status = ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4`

	q[ssoPut] = `INSERT INTO guard_sso_connections (tenant, metadata_url, metadata_fetched_at, settings, metadata)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tenant) DO UPDATE SET metadata_url = excluded.metadata_url,
			metadata_fetched_at = excluded.metadata_fetched_at, settings = excluded.settings,
			metadata = excluded.metadata`
	q[ssoGet] = `SELECT tenant, metadata_url, metadata_fetched_at, settings, metadata
		FROM guard_sso_connections WHERE tenant = ?`
	q[ssoDelete] = `DELETE FROM guard_sso_connections WHERE tenant = ?`
	// Set if newer, and only from the stored URL.
	q[ssoUpdate] = `UPDATE guard_sso_connections SET metadata = ?3, metadata_fetched_at = ?4
		WHERE tenant = ?1 AND metadata_url = ?2 AND ?4 IS NOT NULL
			AND (metadata_fetched_at IS NULL OR metadata_fetched_at < ?4)`
	q[ssoExists] = `SELECT 1 FROM guard_sso_connections WHERE tenant = ?`
	q[reqRemember] = `INSERT INTO guard_sso_requests (tenant, id, kind, relay_state, return_to, binding, created_at, expires)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO NOTHING`
	q[reqConsume] = `DELETE FROM guard_sso_requests WHERE tenant = ? AND id = ?
		RETURNING tenant, id, kind, relay_state, return_to, binding, created_at, expires`
	q[reqSweep] = `DELETE FROM guard_sso_requests WHERE (tenant, id) IN (
		SELECT tenant, id FROM guard_sso_requests WHERE expires <= ?1 LIMIT ?2)`
	// New, or replacing a record that has run out (until at or before
	// ?4); a live record is left as it is and nothing changes.
	q[replayInsert] = `INSERT INTO guard_sso_replay (tenant, id, until) VALUES (?1, ?2, ?3)
		ON CONFLICT (tenant, id) DO UPDATE SET until = excluded.until WHERE until <= ?4`
	q[replaySweep] = `DELETE FROM guard_sso_replay WHERE (tenant, id) IN (
		SELECT tenant, id FROM guard_sso_replay WHERE until <= ?1 LIMIT ?2)`
	q[subjPut] = `INSERT INTO guard_sso_subjects (` + subjectCols + `) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, user_id) DO UPDATE SET idp = excluded.idp, name_id = excluded.name_id,
			name_id_format = excluded.name_id_format, session_index = excluded.session_index,
			expires = excluded.expires`
	// Live at ?3: ?3 before expires.
	q[subjGet] = `SELECT ` + subjectCols + ` FROM guard_sso_subjects
		WHERE tenant = ?1 AND user_id = ?2 AND expires > ?3`
	// = on TEXT is the BINARY collation: an exact match, and user_id in
	// byte order, as the index keeps it. The index is named: the planner,
	// which has no statistics, would rather read the tenant's every user
	// through the primary key.
	q[subjByNameID] = `SELECT ` + subjectCols + ` FROM guard_sso_subjects INDEXED BY guard_sso_subjects_idp_name_id
		WHERE tenant = ?1 AND idp = ?2 AND name_id = ?3 AND expires > ?4 ORDER BY user_id`
	q[subjSweep] = `DELETE FROM guard_sso_subjects WHERE (tenant, user_id) IN (
		SELECT tenant, user_id FROM guard_sso_subjects WHERE expires <= ?1 LIMIT ?2)`
	return q
}()

// preparer is a *sql.DB or a *sql.Conn.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// stmtSet holds statements prepared on one preparer, each on its first
// use: a Store that serves only some of its stores (a ring-fenced tenant's
// users and audit, say) prepares only what it runs. The set on the pool
// serves reads; the writer has its own.
type stmtSet struct {
	p      preparer
	mu     sync.Mutex // serialises preparing and closing
	list   [numStmts]atomic.Pointer[sql.Stmt]
	closed bool
}

func newStmtSet(p preparer) *stmtSet { return &stmtSet{p: p} }

// get returns statement id, preparing it if needed.
func (ss *stmtSet) get(ctx context.Context, id stmtID) (*sql.Stmt, error) {
	if s := ss.list[id].Load(); s != nil {
		return s, nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return nil, ErrClosed
	}
	if s := ss.list[id].Load(); s != nil {
		return s, nil
	}
	// A prepared statement outlives the call that needs it first.
	s, err := ss.p.PrepareContext(context.WithoutCancel(ctx), queries[id])
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: prepare %q: %w", queries[id], err)
	}
	ss.list[id].Store(s)
	return s, nil
}

func (ss *stmtSet) exec(ctx context.Context, id stmtID, args ...any) (sql.Result, error) {
	s, err := ss.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

func (ss *stmtSet) query(ctx context.Context, id stmtID, args ...any) (*sql.Rows, error) {
	s, err := ss.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// queryRow is QueryRowContext; a failure to prepare comes out of Scan.
func (ss *stmtSet) queryRow(ctx context.Context, id stmtID, args ...any) scanner {
	s, err := ss.get(ctx, id)
	if err != nil {
		return errRow{err}
	}
	return s.QueryRowContext(ctx, args...)
}

// queryAll runs statement id of ss and returns every row it gives, each
// read by scan, in order; nil when there is none.
func queryAll[T any](ctx context.Context, ss *stmtSet, id stmtID, scan func(scanner) (T, error), args ...any) ([]T, error) {
	rows, err := ss.query(ctx, id, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// errRow is a row whose query failed before it ran.
type errRow struct{ err error }

// Scan returns the error of the query.
func (r errRow) Scan(...any) error { return r.err }

// close closes every prepared statement; get fails afterwards.
func (ss *stmtSet) close() error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closed = true
	var errs []error
	for i := range ss.list {
		if s := ss.list[i].Swap(nil); s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}
