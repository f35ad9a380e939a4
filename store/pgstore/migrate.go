package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migration is one schema change. Migrations are applied in order, each
// exactly once per schema; the schema's version is the number of
// migrations applied. A released migration is never edited: changes go in
// a new one appended to the list.
type migration struct {
	name string
	sql  string // {s} stands for the quoted schema
}

// migrations is the ordered list; SchemaVersion is its length.
var migrations = [...]migration{
	{name: "initial tables", sql: migration1},
	{name: "api keys", sql: migration2},
	{name: "ip allow-lists", sql: migration3},
	{name: "mfa", sql: migration4},
	{name: "rbac", sql: migration5},
	{name: "sso", sql: migration6},
	{name: "version notifications", sql: migration7},
	{name: "throttle batches", sql: migration8},
	{name: "sso subjects", sql: migration9},
	{name: "expired passwords", sql: migration10},
	{name: "session evictions", sql: migration11},
	{name: "last sso sign-in", sql: migration12},
	{name: "mfa delete keeping", sql: migration13},
	{name: "session rotate and delete by user", sql: migration14},
	{name: "unverified emails", sql: migration15},
	{name: "sso subjects of an idp", sql: migration16},
	{name: "tenant last review", sql: migration17},
	{name: "tenant idp changed", sql: migration18},
	{name: "user reactivation", sql: migration19},
	{name: "throttle give-backs", sql: migration20},
	{name: "mfa confirm within the limit", sql: migration21},
	{name: "session rotation tombstones", sql: migration22},
	{name: "session delete by user keeping a lineage", sql: migration23},
	{name: "api keys within a bound", sql: migration24},
}

// SchemaVersion is the schema version this code creates and expects: the
// number of migrations it knows.
const SchemaVersion = len(migrations)

const migration1 = `
CREATE TABLE {s}.users (
	tenant              text COLLATE "C" NOT NULL,
	id                  text COLLATE "C" NOT NULL,
	email               text COLLATE "C" NOT NULL,
	name                text NOT NULL,
	status              text NOT NULL,
	password_hash       text NOT NULL,
	password_history    text[] NOT NULL DEFAULT '{}',
	password_changed_at timestamptz,
	created_at          timestamptz,
	last_login_at       timestamptz,
	CONSTRAINT users_pkey PRIMARY KEY (tenant, id),
	CONSTRAINT users_email_key UNIQUE (tenant, email)
);

-- Throttle records. Times are Unix microseconds (NULL: the zero time).
-- expires_us is when the record is forgotten under the limit of its last
-- Reserve (NULL: never, a permanent lock); res_* are the outcome of the
-- last Reserve, which RETURNING hands back.
CREATE TABLE {s}.throttle (
	key             bytea PRIMARY KEY,
	failures        integer NOT NULL,
	last_us         bigint,
	locked_until_us bigint,
	lockouts        integer NOT NULL,
	permanent       boolean NOT NULL,
	expires_us      bigint,
	res_allowed     boolean NOT NULL,
	res_failures    integer NOT NULL,
	res_locks       boolean NOT NULL
);
CREATE INDEX throttle_expires ON {s}.throttle (expires_us) WHERE expires_us IS NOT NULL;

-- throttle_apply is auth.Limit.Apply: given a stored record (p_found
-- false: none) it returns the record to store and the reservation. Times
-- are Unix microseconds; p_reset_us is ResetAfter rounded up to the
-- microsecond, p_lock_for_ns and p_max_lock_ns are LockFor and MaxLockFor
-- in nanoseconds, doubled here exactly as Limit.lockDuration does.
CREATE FUNCTION {s}.throttle_apply(
	p_found boolean, p_failures integer, p_last_us bigint, p_locked_until_us bigint,
	p_lockouts integer, p_permanent boolean,
	p_now_us bigint, p_max integer, p_reset_us bigint, p_lock_for_ns bigint,
	p_max_lock_ns bigint, p_permanent_after integer,
	OUT failures integer, OUT last_us bigint, OUT locked_until_us bigint,
	OUT lockouts integer, OUT permanent boolean, OUT expires_us bigint,
	OUT res_allowed boolean, OUT res_failures integer, OUT res_locks boolean)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
	d bigint;
	i integer;
BEGIN
	failures := p_failures; last_us := p_last_us; locked_until_us := p_locked_until_us;
	lockouts := p_lockouts; permanent := p_permanent;
	-- Record.Expired: forgotten, start again from the zero record.
	IF NOT p_found OR (NOT permanent
			AND (last_us IS NULL OR p_now_us >= last_us + p_reset_us)
			AND (locked_until_us IS NULL OR p_now_us >= locked_until_us)) THEN
		failures := 0; last_us := NULL; locked_until_us := NULL; lockouts := 0; permanent := false;
	END IF;
	res_allowed := false; res_failures := 0; res_locks := false;
	IF permanent THEN
		NULL; -- permanent lock in force: not counted
	ELSIF locked_until_us IS NOT NULL AND p_now_us < locked_until_us THEN
		NULL; -- temporary lock in force: not counted, never extended
	ELSE
		res_allowed := true;
		failures := failures + 1;
		last_us := p_now_us;
		res_failures := failures;
		IF failures >= p_max THEN
			failures := 0;
			lockouts := lockouts + 1;
			res_locks := true;
			IF p_permanent_after > 0 AND lockouts > p_permanent_after THEN
				permanent := true;
				locked_until_us := NULL;
			ELSE
				d := p_lock_for_ns;
				i := 1;
				WHILE i < lockouts AND d < p_max_lock_ns LOOP
					IF d > p_max_lock_ns / 2 THEN
						d := p_max_lock_ns;
						EXIT;
					END IF;
					d := d * 2;
					i := i + 1;
				END LOOP;
				d := LEAST(d, p_max_lock_ns);
				locked_until_us := p_now_us + d / 1000;
			END IF;
		END IF;
	END IF;
	-- Record.ExpiresAt (GREATEST ignores NULL).
	IF permanent THEN
		expires_us := NULL;
	ELSE
		expires_us := GREATEST(last_us + p_reset_us, locked_until_us);
	END IF;
END
$$;

-- Sessions. Tenant, user, IP and user agent are bytea: they are opaque
-- strings that may hold any byte, NUL included. Times are Unix
-- microseconds; idle_ns is the idle timeout in nanoseconds; ends_us is
-- when the session stops being live without a request (Session.EndsAt,
-- the idle timeout rounded up to the microsecond).
CREATE TABLE {s}.sessions (
	hash         bytea PRIMARY KEY,
	tenant       bytea NOT NULL,
	user_id      bytea NOT NULL,
	created_us   bigint NOT NULL,
	last_seen_us bigint NOT NULL,
	expires_us   bigint NOT NULL,
	idle_ns      bigint NOT NULL,
	ends_us      bigint NOT NULL GENERATED ALWAYS AS (LEAST(expires_us,
		last_seen_us + idle_ns / 1000 + CASE WHEN idle_ns % 1000 > 0 THEN 1 ELSE 0 END)) STORED,
	ip           bytea NOT NULL,
	user_agent   bytea NOT NULL,
	flags        bigint NOT NULL
);
CREATE INDEX sessions_user ON {s}.sessions (tenant, user_id, created_us, hash);
CREATE INDEX sessions_ends ON {s}.sessions (ends_us);

-- One row per user who ever had a session: session_create locks it so
-- that the Creates of one user run one at a time, on every replica.
CREATE TABLE {s}.session_users (
	tenant  bytea NOT NULL,
	user_id bytea NOT NULL,
	PRIMARY KEY (tenant, user_id)
);

-- session_create is session.Store.Create in one call: lock the user, drop
-- the user's sessions that are not live at p_created_us, then refuse
-- (SQLSTATE GD001) or evict the oldest live ones beyond p_max - 1, and
-- insert. It returns the evicted sessions, oldest first. Any error rolls
-- the whole call back.
CREATE FUNCTION {s}.session_create(
	p_hash bytea, p_tenant bytea, p_user bytea, p_created_us bigint, p_last_seen_us bigint,
	p_expires_us bigint, p_idle_ns bigint, p_ip bytea, p_user_agent bytea, p_flags bigint,
	p_max integer, p_refuse boolean)
RETURNS SETOF {s}.sessions
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	INSERT INTO {s}.session_users AS u (tenant, user_id) VALUES (p_tenant, p_user)
		ON CONFLICT (tenant, user_id) DO UPDATE SET tenant = u.tenant;
	IF EXISTS (SELECT 1 FROM {s}.sessions WHERE hash = p_hash) THEN
		RAISE EXCEPTION 'duplicate session hash' USING ERRCODE = 'unique_violation', CONSTRAINT = 'sessions_pkey';
	END IF;
	DELETE FROM {s}.sessions
		WHERE tenant = p_tenant AND user_id = p_user AND ends_us <= p_created_us;
	IF p_max > 0 THEN
		SELECT count(*) INTO n FROM {s}.sessions WHERE tenant = p_tenant AND user_id = p_user;
		IF n >= p_max THEN
			IF p_refuse THEN
				RAISE EXCEPTION 'session limit reached' USING ERRCODE = 'GD001';
			END IF;
			RETURN QUERY
				WITH d AS (
					DELETE FROM {s}.sessions WHERE hash IN (
						SELECT hash FROM {s}.sessions
						WHERE tenant = p_tenant AND user_id = p_user
						ORDER BY created_us, hash
						LIMIT n - p_max + 1)
					RETURNING *)
				SELECT * FROM d ORDER BY created_us, hash;
		END IF;
	END IF;
	INSERT INTO {s}.sessions (hash, tenant, user_id, created_us, last_seen_us, expires_us, idle_ns, ip, user_agent, flags)
		VALUES (p_hash, p_tenant, p_user, p_created_us, p_last_seen_us, p_expires_us, p_idle_ns, p_ip, p_user_agent, p_flags);
END
$$;

-- Audit chains. String fields are bytea: they round-trip any byte, NUL
-- included. meta is a JSON object (NULL when empty). audit_heads holds
-- the last link of each chain; Append moves it with a compare-and-set.
CREATE TABLE {s}.audit_heads (
	tenant text COLLATE "C" PRIMARY KEY,
	seq    bigint NOT NULL,
	mac    bytea NOT NULL
);
CREATE TABLE {s}.audit_events (
	tenant      text COLLATE "C" NOT NULL,
	seq         bigint NOT NULL,
	id          bytea NOT NULL,
	time        timestamptz,
	actor_kind  bytea NOT NULL,
	actor_id    bytea NOT NULL,
	actor_email bytea NOT NULL,
	action      bytea NOT NULL,
	target      bytea NOT NULL,
	ip          bytea NOT NULL,
	user_agent  bytea NOT NULL,
	outcome     bytea NOT NULL,
	reason      bytea NOT NULL,
	meta        text,
	prev_mac    bytea NOT NULL,
	mac         bytea NOT NULL,
	PRIMARY KEY (tenant, seq)
);
CREATE INDEX audit_events_time ON {s}.audit_events (tenant, time);
CREATE INDEX audit_events_actor_id ON {s}.audit_events (tenant, actor_id, seq);
CREATE INDEX audit_events_actor_email ON {s}.audit_events (tenant, actor_email, seq);
CREATE INDEX audit_events_action ON {s}.audit_events (tenant, action, seq);
CREATE TABLE {s}.audit_checkpoints (
	tenant         text COLLATE "C" PRIMARY KEY,
	seq            bigint NOT NULL,
	mac            bytea NOT NULL,
	at             timestamptz,
	checkpoint_mac bytea NOT NULL
);

-- Tenants. policy is guard.Policy as JSON, so that new Policy fields need
-- no migration.
CREATE TABLE {s}.tenants (
	id         text COLLATE "C" PRIMARY KEY,
	name       text NOT NULL,
	policy     jsonb NOT NULL,
	version    bigint NOT NULL,
	created_at timestamptz
);
`

// migration2 adds API keys. Tenant and id are text in byte order, like
// the users table; the hash is unique across tenants. Times are
// timestamptz (NULL: the zero time).
const migration2 = `
CREATE TABLE {s}.api_keys (
	tenant       text COLLATE "C" NOT NULL,
	id           text COLLATE "C" NOT NULL,
	hash         bytea NOT NULL CHECK (octet_length(hash) = 32),
	name         text NOT NULL,
	prefix       text NOT NULL,
	created_by   text NOT NULL,
	created_at   timestamptz,
	expires_at   timestamptz,
	last_used_at timestamptz,
	revoked_at   timestamptz,
	CONSTRAINT api_keys_pkey PRIMARY KEY (tenant, id),
	CONSTRAINT api_keys_hash_key UNIQUE (hash)
);
CREATE INDEX api_keys_list ON {s}.api_keys (tenant, created_at NULLS FIRST, id);
`

// migration3 adds the IP allow-lists: one row per tenant with both scopes
// and the version, so one row read is one consistent version. Entries are
// bytea arrays, kept byte for byte (never an inet, which would rewrite
// them); the tenant is bytea like the sessions' tenant. Large arrays are
// TOASTed, so reading the version alone does not read them.
const migration3 = `
CREATE TABLE {s}.ip_lists (
	tenant               bytea PRIMARY KEY,
	version              bigint NOT NULL CHECK (version > 0),
	users_entries        bytea[] NOT NULL,
	users_report_only    boolean NOT NULL,
	api_keys_entries     bytea[] NOT NULL,
	api_keys_report_only boolean NOT NULL
);
`

// migration4 adds the second factors. Factors and recovery codes are
// tenant data, kept like users: text in byte order, timestamptz times.
// One-time codes, send rates and pending logins live minutes and are kept
// like sessions: opaque strings as bytea, times as Unix microseconds, and
// an index on the expiry so that writes delete expired rows a few at a
// time.
const migration4 = `
-- Second factors. confirmed_at NULL: pending. secret is the sealed TOTP
-- secret ('\x' for none).
CREATE TABLE {s}.mfa_factors (
	tenant       text COLLATE "C" NOT NULL,
	user_id      text COLLATE "C" NOT NULL,
	id           text COLLATE "C" NOT NULL,
	kind         text COLLATE "C" NOT NULL,
	label        text NOT NULL,
	destination  text NOT NULL,
	key_id       text NOT NULL,
	secret       bytea NOT NULL,
	created_at   timestamptz,
	confirmed_at timestamptz,
	last_step    bigint NOT NULL,
	CONSTRAINT mfa_factors_pkey PRIMARY KEY (tenant, user_id, id)
);
-- Serves EnrolmentIndex.Enrolments (users in order, kinds in order) and
-- the count of confirmed factors in mfa_create_factor.
CREATE INDEX mfa_factors_enrolled ON {s}.mfa_factors (tenant, user_id, kind) WHERE confirmed_at IS NOT NULL;

-- One row per user who ever enrolled a factor: mfa_create_factor locks
-- it, so that the CreateFactor calls of one user run one at a time, on
-- every replica.
CREATE TABLE {s}.mfa_users (
	tenant  text COLLATE "C" NOT NULL,
	user_id text COLLATE "C" NOT NULL,
	PRIMARY KEY (tenant, user_id)
);

-- mfa_create_factor is mfa.FactorStore.CreateFactor in one call: lock the
-- user, refuse a used id (unique_violation) or a user with p_max or more
-- confirmed factors (SQLSTATE GD002), delete the user's pending factors
-- of the kind, insert. Any error rolls the whole call back.
CREATE FUNCTION {s}.mfa_create_factor(
	p_tenant text, p_user text, p_id text, p_kind text, p_label text, p_destination text,
	p_key_id text, p_secret bytea, p_created_at timestamptz, p_confirmed_at timestamptz,
	p_last_step bigint, p_max integer)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO {s}.mfa_users AS u (tenant, user_id) VALUES (p_tenant, p_user)
		ON CONFLICT (tenant, user_id) DO UPDATE SET tenant = u.tenant;
	IF EXISTS (SELECT 1 FROM {s}.mfa_factors WHERE tenant = p_tenant AND user_id = p_user AND id = p_id) THEN
		RAISE EXCEPTION 'duplicate factor id' USING ERRCODE = 'unique_violation', CONSTRAINT = 'mfa_factors_pkey';
	END IF;
	IF p_max > 0 AND (SELECT count(*) FROM {s}.mfa_factors
			WHERE tenant = p_tenant AND user_id = p_user AND confirmed_at IS NOT NULL) >= p_max THEN
		RAISE EXCEPTION 'factor limit reached' USING ERRCODE = 'GD002';
	END IF;
	DELETE FROM {s}.mfa_factors
		WHERE tenant = p_tenant AND user_id = p_user AND kind = p_kind AND confirmed_at IS NULL;
	INSERT INTO {s}.mfa_factors (tenant, user_id, id, kind, label, destination, key_id, secret,
			created_at, confirmed_at, last_step)
		VALUES (p_tenant, p_user, p_id, p_kind, p_label, p_destination, p_key_id, p_secret,
			p_created_at, p_confirmed_at, p_last_step);
END
$$;

-- Recovery codes: each user's set of SHA-256 hashes, one row per user, so
-- that replacing the set and using one code are one-row statements.
CREATE TABLE {s}.mfa_recovery (
	tenant  text COLLATE "C" NOT NULL,
	user_id text COLLATE "C" NOT NULL,
	hashes  bytea[] NOT NULL,
	PRIMARY KEY (tenant, user_id)
);

-- One-time codes, at most one per transaction (tenant, txn).
CREATE TABLE {s}.mfa_codes (
	tenant     bytea NOT NULL,
	txn        bytea NOT NULL,
	user_id    bytea NOT NULL,
	factor_id  bytea NOT NULL,
	kind       bytea NOT NULL,
	hash       bytea NOT NULL,
	created_us bigint NOT NULL,
	expires_us bigint NOT NULL,
	tries_left integer NOT NULL,
	PRIMARY KEY (tenant, txn)
);
CREATE INDEX mfa_codes_expires ON {s}.mfa_codes (expires_us);

-- mfa_check_code is mfa.CodeStore.CheckCode, the rule of mfa.Code.Attempt,
-- on the code's row locked FOR UPDATE. r_status: 0 right (removed),
-- 1 no code, 2 expired (removed), 3 no tries left (kept as it is), 4 wrong
-- (one try used). The other columns are the code after the attempt.
CREATE FUNCTION {s}.mfa_check_code(p_tenant bytea, p_txn bytea, p_hash bytea, p_now_us bigint,
	OUT r_status integer, OUT r_user_id bytea, OUT r_factor_id bytea, OUT r_kind bytea, OUT r_hash bytea,
	OUT r_created_us bigint, OUT r_expires_us bigint, OUT r_tries_left integer)
LANGUAGE plpgsql AS $$
DECLARE
	c {s}.mfa_codes;
BEGIN
	SELECT * INTO c FROM {s}.mfa_codes WHERE tenant = p_tenant AND txn = p_txn FOR UPDATE;
	IF NOT FOUND THEN
		r_status := 1;
		RETURN;
	END IF;
	IF p_now_us >= c.expires_us THEN
		r_status := 2;
		DELETE FROM {s}.mfa_codes WHERE tenant = p_tenant AND txn = p_txn;
	ELSIF c.tries_left <= 0 THEN
		r_status := 3;
	ELSIF c.hash <> p_hash THEN
		r_status := 4;
		c.tries_left := c.tries_left - 1;
		UPDATE {s}.mfa_codes SET tries_left = c.tries_left WHERE tenant = p_tenant AND txn = p_txn;
	ELSE
		r_status := 0;
		DELETE FROM {s}.mfa_codes WHERE tenant = p_tenant AND txn = p_txn;
	END IF;
	r_user_id := c.user_id; r_factor_id := c.factor_id; r_kind := c.kind; r_hash := c.hash;
	r_created_us := c.created_us; r_expires_us := c.expires_us; r_tries_left := c.tries_left;
END
$$;

-- Send-rate windows: the count of the window that ends at ends_us.
CREATE TABLE {s}.mfa_rates (
	key     bytea PRIMARY KEY,
	count   bigint NOT NULL,
	ends_us bigint NOT NULL
);
CREATE INDEX mfa_rates_ends ON {s}.mfa_rates (ends_us);

-- Pending logins, by the hash of their token.
CREATE TABLE {s}.mfa_transactions (
	hash       bytea PRIMARY KEY,
	tenant     bytea NOT NULL,
	user_id    bytea NOT NULL,
	binding    bytea NOT NULL,
	purpose    bytea NOT NULL,
	flags      bigint NOT NULL,
	created_us bigint NOT NULL,
	expires_us bigint NOT NULL
);
CREATE INDEX mfa_transactions_expires ON {s}.mfa_transactions (expires_us);
`

// migration5 adds the rbac stores. A PolicyStore holds rules as given and
// an ApprovalStore approvals as given, so every string is bytea: it
// round-trips byte for byte, NUL included, and orders byte by byte (as Go
// compares strings). Approval times are timestamptz (NULL: the zero time),
// like the other tenant data.
const migration5 = `
-- One row per tenant whose policy was ever updated, holding its version:
-- Version reads this row only. rbac_update locks it, so the updates of a
-- tenant run one at a time, on every replica.
CREATE TABLE {s}.rbac_versions (
	tenant  bytea PRIMARY KEY,
	version bigint NOT NULL CHECK (version > 0)
);

-- Each tenant's rules: a set, by the primary key.
CREATE TABLE {s}.rbac_rules (
	tenant    bytea NOT NULL,
	rule_type bytea NOT NULL,
	role      bytea NOT NULL,
	subject   bytea NOT NULL,
	section   bytea NOT NULL,
	action    bytea NOT NULL,
	PRIMARY KEY (tenant, rule_type, role, subject, section, action)
);

-- The change log: the rules each update removed and added, as given and
-- in order, five elements per rule (type, role, subject, section, action)
-- of a flat array. rbac_update keeps the latest p_keep changes of a
-- tenant.
CREATE TABLE {s}.rbac_changes (
	tenant       bytea NOT NULL,
	version      bigint NOT NULL,
	remove_rules bytea[] NOT NULL,
	add_rules    bytea[] NOT NULL,
	PRIMARY KEY (tenant, version)
);

-- rbac_update is rbac.PolicyStore.Update in one call: move the tenant's
-- version from p_expect to p_expect + 1 (insert it for p_expect 0), which
-- locks the tenant's row; if the version was not p_expect, return false
-- and change nothing. Then, with the row held (each statement sees every
-- update committed before), remove the rules of p_remove, add those of
-- p_add, log the change, and delete up to p_batch changes older than the
-- latest p_keep. Any error rolls the whole call back.
CREATE FUNCTION {s}.rbac_update(p_tenant bytea, p_expect bigint, p_remove bytea[], p_add bytea[],
	p_keep bigint, p_batch integer)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	IF p_expect = 0 THEN
		INSERT INTO {s}.rbac_versions (tenant, version) VALUES (p_tenant, 1) ON CONFLICT (tenant) DO NOTHING;
	ELSE
		UPDATE {s}.rbac_versions SET version = version + 1 WHERE tenant = p_tenant AND version = p_expect;
	END IF;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	DELETE FROM {s}.rbac_rules r
		USING (SELECT p_remove[i], p_remove[i+1], p_remove[i+2], p_remove[i+3], p_remove[i+4]
			FROM generate_series(1, cardinality(p_remove) - 4, 5) AS i) AS d (rule_type, role, subject, section, action)
		WHERE r.tenant = p_tenant AND r.rule_type = d.rule_type AND r.role = d.role AND r.subject = d.subject
			AND r.section = d.section AND r.action = d.action;
	INSERT INTO {s}.rbac_rules (tenant, rule_type, role, subject, section, action)
		SELECT p_tenant, p_add[i], p_add[i+1], p_add[i+2], p_add[i+3], p_add[i+4]
		FROM generate_series(1, cardinality(p_add) - 4, 5) AS i
		ON CONFLICT DO NOTHING;
	INSERT INTO {s}.rbac_changes (tenant, version, remove_rules, add_rules)
		VALUES (p_tenant, p_expect + 1, p_remove, p_add);
	DELETE FROM {s}.rbac_changes WHERE tenant = p_tenant AND version IN (
		SELECT version FROM {s}.rbac_changes
		WHERE tenant = p_tenant AND version <= p_expect + 1 - p_keep
		ORDER BY version
		LIMIT p_batch);
	RETURN true;
END
$$;

-- Four-eyes approvals. Subjects are a kind (rbac.SubjectKind; 0 with an
-- empty id for none) and an id.
CREATE TABLE {s}.rbac_approvals (
	tenant         bytea NOT NULL,
	id             bytea NOT NULL,
	requester_kind smallint NOT NULL,
	requester_id   bytea NOT NULL,
	section        bytea NOT NULL,
	action         bytea NOT NULL,
	target         bytea NOT NULL,
	payload_hash   bytea NOT NULL CHECK (octet_length(payload_hash) = 32),
	created_at     timestamptz,
	expires_at     timestamptz,
	status         bytea NOT NULL,
	decider_kind   smallint NOT NULL,
	decider_id     bytea NOT NULL,
	decided_at     timestamptz,
	consumed_at    timestamptz,
	PRIMARY KEY (tenant, id)
);
-- Serves ListApprovals with a status (the primary key serves it without).
CREATE INDEX rbac_approvals_status ON {s}.rbac_approvals (tenant, status, id);

-- rbac_decide_approval is rbac.ApprovalStore.DecideApproval on the
-- approval's row locked FOR UPDATE. r_status: 0 decided (r_approval is
-- the approval afterwards), 1 no such approval, 2 p_by is the requester,
-- 3 not pending, 4 expired (p_at not before expires_at; NULL is the zero
-- time); nothing is changed unless 0.
CREATE FUNCTION {s}.rbac_decide_approval(p_tenant bytea, p_id bytea, p_by_kind smallint, p_by_id bytea,
	p_status bytea, p_at timestamptz, OUT r_status integer, OUT r_approval {s}.rbac_approvals)
LANGUAGE plpgsql AS $$
BEGIN
	SELECT * INTO r_approval FROM {s}.rbac_approvals WHERE tenant = p_tenant AND id = p_id FOR UPDATE;
	IF NOT FOUND THEN
		r_status := 1;
	ELSIF r_approval.requester_kind = p_by_kind AND r_approval.requester_id = p_by_id THEN
		r_status := 2;
	ELSIF r_approval.status <> 'pending'::bytea THEN
		r_status := 3;
	ELSIF COALESCE(p_at, '-infinity') >= COALESCE(r_approval.expires_at, '-infinity') THEN
		r_status := 4;
	ELSE
		r_status := 0;
		UPDATE {s}.rbac_approvals SET status = p_status, decider_kind = p_by_kind, decider_id = p_by_id, decided_at = p_at
			WHERE tenant = p_tenant AND id = p_id
			RETURNING * INTO r_approval;
	END IF;
END
$$;

-- rbac_consume_approval is rbac.ApprovalStore.ConsumeApproval on the
-- approval's row locked FOR UPDATE. r_status: 0 consumed (r_approval is
-- the approval afterwards), 1 no such approval, 2 the claim differs,
-- 3 already consumed, 4 not approved, 5 expired; nothing is changed
-- unless 0.
CREATE FUNCTION {s}.rbac_consume_approval(p_tenant bytea, p_id bytea, p_kind smallint, p_requester bytea,
	p_section bytea, p_action bytea, p_target bytea, p_hash bytea, p_at timestamptz,
	OUT r_status integer, OUT r_approval {s}.rbac_approvals)
LANGUAGE plpgsql AS $$
BEGIN
	SELECT * INTO r_approval FROM {s}.rbac_approvals WHERE tenant = p_tenant AND id = p_id FOR UPDATE;
	IF NOT FOUND THEN
		r_status := 1;
	ELSIF r_approval.requester_kind <> p_kind OR r_approval.requester_id <> p_requester
			OR r_approval.section <> p_section OR r_approval.action <> p_action
			OR r_approval.target <> p_target OR r_approval.payload_hash <> p_hash THEN
		r_status := 2;
	ELSIF r_approval.status = 'consumed'::bytea THEN
		r_status := 3;
	ELSIF r_approval.status <> 'approved'::bytea THEN
		r_status := 4;
	ELSIF COALESCE(p_at, '-infinity') >= COALESCE(r_approval.expires_at, '-infinity') THEN
		r_status := 5;
	ELSE
		r_status := 0;
		UPDATE {s}.rbac_approvals SET status = 'consumed'::bytea, consumed_at = p_at
			WHERE tenant = p_tenant AND id = p_id
			RETURNING * INTO r_approval;
	END IF;
END
$$;
`

// migration6 adds the sso stores. Every string is bytea (any byte, NUL
// included, round-trips) but the connection's settings, which are JSON so
// that new sso.Connection fields need no migration. A connection's fetch
// time is timestamptz (NULL: the zero time), like the other tenant data;
// the short-lived requests and replay records keep Unix microseconds, like
// the sessions and one-time codes.
const migration6 = `
-- One row per tenant with an IdP connection. The columns hold what
-- UpdateMetadata reads and writes (the metadata URL, the metadata, which
-- may be large, and when it was fetched); settings holds the other
-- fields of the sso.Connection but the tenant (the key), as encoding/json
-- writes them.
CREATE TABLE {s}.sso_connections (
	tenant       bytea PRIMARY KEY,
	metadata_url bytea NOT NULL,
	metadata     bytea NOT NULL,
	fetched_at   timestamptz,
	settings     jsonb NOT NULL
);

-- Tracked AuthnRequests and LogoutRequests, until consumed (or deleted
-- once expired).
CREATE TABLE {s}.sso_requests (
	tenant      bytea NOT NULL,
	id          bytea NOT NULL,
	kind        bytea NOT NULL,
	relay_state bytea NOT NULL,
	return_to   bytea NOT NULL,
	binding     bytea NOT NULL,
	created_us  bigint NOT NULL,
	expires_us  bigint NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX sso_requests_expires ON {s}.sso_requests (expires_us);

-- The assertion replay cache: each accepted ID, until until_us.
CREATE TABLE {s}.sso_replay (
	tenant   bytea NOT NULL,
	id       bytea NOT NULL,
	until_us bigint NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX sso_replay_until ON {s}.sso_replay (until_us);
`

// migration7 makes every change of a tenant's IP allow-lists or rbac
// policy version notify the schema's channel (see Store.Watch), in the
// transaction that makes it, whoever makes it. The channel is
// "guard_v_" and the first 32 hex digits of the SHA-256 of the schema
// name (watchChannel); the payload is 'i' (allow-lists) or 'r' (rbac)
// and the tenant in hex, or the kind and '*' for a tenant too long for a
// payload.
const migration7 = `
CREATE FUNCTION {s}.guard_notify_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	t bytea;
	p text;
BEGIN
	IF TG_OP = 'DELETE' THEN t := OLD.tenant; ELSE t := NEW.tenant; END IF;
	IF octet_length(t) <= 3000 THEN p := TG_ARGV[0] || encode(t, 'hex'); ELSE p := TG_ARGV[0] || '*'; END IF;
	PERFORM pg_notify('guard_v_' || left(encode(sha256(convert_to(TG_TABLE_SCHEMA, 'UTF8')), 'hex'), 32), p);
	RETURN NULL;
END $$;

CREATE TRIGGER ip_lists_notify AFTER INSERT OR UPDATE OR DELETE ON {s}.ip_lists
	FOR EACH ROW EXECUTE FUNCTION {s}.guard_notify_version('i');
CREATE TRIGGER rbac_versions_notify AFTER INSERT OR UPDATE OR DELETE ON {s}.rbac_versions
	FOR EACH ROW EXECUTE FUNCTION {s}.guard_notify_version('r');
`

// migration8 adds the functions of Throttle.ReserveAll and Throttle.Settle,
// which do several keys in one call. Each locks its keys' rows in the
// order given and holds them to the end of the transaction.
const migration8 = `
-- throttle_reserve reserves p_keys[1], p_keys[2], … in order, each under
-- the limit at the same index of the other arrays (as throttle_apply
-- takes them), with one INSERT … ON CONFLICT DO UPDATE each, and returns
-- the reservation of each key up to and including the first refused one.
-- Then it deletes up to p_gc records forgotten at p_now_us, other than the
-- call's keys, skipping rows other transactions hold. Callers list their
-- shared keys in the same order; a deadlock PostgreSQL still finds (under
-- heavy churn of forgotten records) is retried by the Go code.
CREATE FUNCTION {s}.throttle_reserve(
	p_keys bytea[], p_now_us bigint, p_max integer[], p_reset_us bigint[],
	p_lock_for_ns bigint[], p_max_lock_ns bigint[], p_permanent_after integer[], p_gc integer)
RETURNS TABLE (r_allowed boolean, r_failures integer, r_locks boolean, r_locked_until_us bigint,
	r_permanent boolean, r_lockouts integer)
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
		INSERT INTO {s}.throttle AS t (key, failures, last_us, locked_until_us, lockouts, permanent, expires_us,
			res_allowed, res_failures, res_locks)
		SELECT p_keys[i], a.* FROM {s}.throttle_apply(false, 0, NULL, NULL, 0, false,
			p_now_us, p_max[i], p_reset_us[i], p_lock_for_ns[i], p_max_lock_ns[i], p_permanent_after[i]) a
		ON CONFLICT (key) DO UPDATE SET (failures, last_us, locked_until_us, lockouts, permanent, expires_us,
			res_allowed, res_failures, res_locks) = (
			SELECT a.* FROM {s}.throttle_apply(true, t.failures, t.last_us, t.locked_until_us, t.lockouts, t.permanent,
				p_now_us, p_max[i], p_reset_us[i], p_lock_for_ns[i], p_max_lock_ns[i], p_permanent_after[i]) a)
		RETURNING t.res_allowed, t.res_failures, t.res_locks, t.locked_until_us, t.permanent, t.lockouts
		INTO r_allowed, r_failures, r_locks, r_locked_until_us, r_permanent, r_lockouts;
		RETURN NEXT;
		EXIT WHEN NOT r_allowed;
	END LOOP;
	-- By ctid: exactly the row versions locked here.
	DELETE FROM {s}.throttle WHERE ctid = ANY (ARRAY(
		SELECT g.ctid FROM {s}.throttle g
		WHERE g.expires_us <= p_now_us AND g.key <> ALL (p_keys)
		ORDER BY g.expires_us
		LIMIT p_gc
		FOR UPDATE SKIP LOCKED));
END
$$;

-- throttle_settle settles p_keys[1], p_keys[2], … in order: it deletes the
-- record when p_reset at the same index is true (Reset), and otherwise
-- takes one off its failures, never below zero (Release).
CREATE FUNCTION {s}.throttle_settle(p_keys bytea[], p_reset boolean[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
		IF p_reset[i] THEN
			DELETE FROM {s}.throttle WHERE key = p_keys[i];
		ELSE
			UPDATE {s}.throttle SET failures = failures - 1 WHERE key = p_keys[i] AND failures > 0;
		END IF;
	END LOOP;
END
$$;
`

// migration9 adds the sso subjects: who each user is at the IdP, for
// single logout. They are tenant data keyed by user, kept like the users
// and MFA factors: text with the "C" collation, so that equality is exact
// (case included) and ORDER BY user_id is byte order, as Go compares
// strings. They live as long as the session of a sign-in, and are kept
// like the SAML requests and replay records: the expiry in Unix
// microseconds, with an index on it so that each PutSubject deletes a
// few expired rows.
const migration9 = `
-- At most one subject per user: the one of the user's last SSO sign-in.
CREATE TABLE {s}.sso_subjects (
	tenant         text COLLATE "C" NOT NULL,
	user_id        text COLLATE "C" NOT NULL,
	name_id        text COLLATE "C" NOT NULL,
	name_id_format text NOT NULL,
	session_index  text NOT NULL,
	expires_us     bigint NOT NULL,
	PRIMARY KEY (tenant, user_id)
);
-- Serves SubjectsByNameID: one tenant's subjects of one NameID, in user order.
CREATE INDEX sso_subjects_name_id ON {s}.sso_subjects (tenant, name_id, user_id);
CREATE INDEX sso_subjects_expires ON {s}.sso_subjects (expires_us);
`

const migration10 = `
-- True when an administrator marked the user's password as one to change
-- at the next sign-in (auth.User.PasswordExpired).
ALTER TABLE {s}.users ADD COLUMN password_expired boolean NOT NULL DEFAULT false;
`

// migration11 keeps a tombstone of every session that session_create
// evicts, until the session would have ended anyway (its ends_us), so that
// its token is refused as evicted ("signed in elsewhere") rather than as
// unknown. session_create is replaced: it refuses a tombstone's hash, drops
// the user's ended tombstones with the user's dead sessions, and writes the
// tombstones in the statement that evicts.
const migration11 = `
CREATE TABLE {s}.session_evictions (
	hash    bytea PRIMARY KEY,
	tenant  bytea NOT NULL,
	user_id bytea NOT NULL,
	ends_us bigint NOT NULL
);
CREATE INDEX session_evictions_user ON {s}.session_evictions (tenant, user_id, ends_us);
CREATE INDEX session_evictions_ends ON {s}.session_evictions (ends_us);

CREATE OR REPLACE FUNCTION {s}.session_create(
	p_hash bytea, p_tenant bytea, p_user bytea, p_created_us bigint, p_last_seen_us bigint,
	p_expires_us bigint, p_idle_ns bigint, p_ip bytea, p_user_agent bytea, p_flags bigint,
	p_max integer, p_refuse boolean)
RETURNS SETOF {s}.sessions
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	INSERT INTO {s}.session_users AS u (tenant, user_id) VALUES (p_tenant, p_user)
		ON CONFLICT (tenant, user_id) DO UPDATE SET tenant = u.tenant;
	IF EXISTS (SELECT 1 FROM {s}.sessions WHERE hash = p_hash)
			OR EXISTS (SELECT 1 FROM {s}.session_evictions WHERE hash = p_hash) THEN
		RAISE EXCEPTION 'duplicate session hash' USING ERRCODE = 'unique_violation', CONSTRAINT = 'sessions_pkey';
	END IF;
	DELETE FROM {s}.sessions
		WHERE tenant = p_tenant AND user_id = p_user AND ends_us <= p_created_us;
	DELETE FROM {s}.session_evictions
		WHERE tenant = p_tenant AND user_id = p_user AND ends_us <= p_created_us;
	IF p_max > 0 THEN
		SELECT count(*) INTO n FROM {s}.sessions WHERE tenant = p_tenant AND user_id = p_user;
		IF n >= p_max THEN
			IF p_refuse THEN
				RAISE EXCEPTION 'session limit reached' USING ERRCODE = 'GD001';
			END IF;
			RETURN QUERY
				WITH d AS (
					DELETE FROM {s}.sessions WHERE hash IN (
						SELECT hash FROM {s}.sessions
						WHERE tenant = p_tenant AND user_id = p_user
						ORDER BY created_us, hash
						LIMIT n - p_max + 1)
					RETURNING *),
				t AS (
					INSERT INTO {s}.session_evictions (hash, tenant, user_id, ends_us)
					SELECT hash, tenant, user_id, ends_us FROM d)
				SELECT * FROM d ORDER BY created_us, hash;
		END IF;
	END IF;
	INSERT INTO {s}.sessions (hash, tenant, user_id, created_us, last_seen_us, expires_us, idle_ns, ip, user_agent, flags)
		VALUES (p_hash, p_tenant, p_user, p_created_us, p_last_seen_us, p_expires_us, p_idle_ns, p_ip, p_user_agent, p_flags);
END
$$;
`

// migration12 adds the user's last sign-in through single sign-on
// (auth.User.LastSSOAt), NULL if never.
const migration12 = `
ALTER TABLE {s}.users ADD COLUMN last_sso_at timestamptz;
`

// migration13 adds mfa_delete_factor_keeping, the one call of
// MFA.DeleteFactorKeeping.
const migration13 = `
-- mfa_delete_factor_keeping is mfa.FactorStore.DeleteFactorKeeping in one
-- call. It locks the user's confirmed factors (in id order, so that two
-- calls never wait for each other in a cycle): a concurrent deletion of
-- any of them waits until this call commits, and this call waits for one
-- in progress. Then, with the rows held (each statement sees every change
-- committed before), it returns no row if the user has no factor p_id,
-- refuses (SQLSTATE GD003) if the user has fewer than p_keep confirmed
-- factors besides it, and otherwise deletes it and returns it.
CREATE FUNCTION {s}.mfa_delete_factor_keeping(p_tenant text, p_user text, p_id text, p_keep integer)
RETURNS SETOF {s}.mfa_factors
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM {s}.mfa_factors
		WHERE tenant = p_tenant AND user_id = p_user AND confirmed_at IS NOT NULL
		ORDER BY id FOR UPDATE;
	IF NOT EXISTS (SELECT 1 FROM {s}.mfa_factors WHERE tenant = p_tenant AND user_id = p_user AND id = p_id) THEN
		RETURN;
	END IF;
	IF (SELECT count(*) FROM {s}.mfa_factors
			WHERE tenant = p_tenant AND user_id = p_user AND confirmed_at IS NOT NULL AND id <> p_id) < p_keep THEN
		RAISE EXCEPTION 'the user must keep a confirmed factor' USING ERRCODE = 'GD003';
	END IF;
	RETURN QUERY WITH d AS (
			DELETE FROM {s}.mfa_factors WHERE tenant = p_tenant AND user_id = p_user AND id = p_id RETURNING *)
		SELECT * FROM d;
END
$$;
`

// migration14 adds session_rotate and session_delete_by_user, the one call
// each of Sessions.Rotate and Sessions.DeleteByUser. Both take the user's
// row in session_users, as session_create does, before they touch the
// user's sessions: a rotation, an "end every session" and a sign-in of
// one user run one at a time, on every replica. (Before, at READ
// COMMITTED, a DELETE by user that waited for a rotation's delete of the
// old row skipped it and never saw the new one, so the rotated session
// survived; and session_create at the limit could count and evict
// without seeing a rotation's new row, leaving the user over the limit.)
const migration14 = `
-- session_rotate is session.Store.Rotate (old and new hashes differ) in
-- one call: it locks the users of session p_old and of the new session,
-- in (tenant, user_id) order, as session_create locks one, then, each
-- statement seeing every change committed before the locks, deletes
-- p_old and inserts the new session. It returns false, and changes
-- nothing, if p_old is no session or p_hash is a tombstone's; a p_hash
-- that is a session's fails with unique_violation and changes nothing.
CREATE FUNCTION {s}.session_rotate(
	p_old bytea, p_hash bytea, p_tenant bytea, p_user bytea, p_created_us bigint, p_last_seen_us bigint,
	p_expires_us bigint, p_idle_ns bigint, p_ip bytea, p_user_agent bytea, p_flags bigint)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	o_tenant bytea;
	o_user bytea;
BEGIN
	-- A session's user never changes, so reading it unlocked is safe: if
	-- p_old goes meanwhile, the DELETE below finds nothing.
	SELECT tenant, user_id INTO o_tenant, o_user FROM {s}.sessions WHERE hash = p_old;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	-- One row per user, inserted in (tenant, user_id) order: two
	-- rotations across the same two users never wait for each other in a
	-- cycle, and session_create and session_delete_by_user lock one user.
	INSERT INTO {s}.session_users AS u (tenant, user_id)
		SELECT DISTINCT v.tenant, v.user_id FROM (VALUES (o_tenant, o_user), (p_tenant, p_user)) v (tenant, user_id)
		ORDER BY v.tenant, v.user_id
		ON CONFLICT (tenant, user_id) DO UPDATE SET tenant = u.tenant;
	DELETE FROM {s}.sessions WHERE hash = p_old
		AND NOT EXISTS (SELECT 1 FROM {s}.session_evictions WHERE hash = p_hash);
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	INSERT INTO {s}.sessions (hash, tenant, user_id, created_us, last_seen_us, expires_us, idle_ns, ip, user_agent, flags)
		VALUES (p_hash, p_tenant, p_user, p_created_us, p_last_seen_us, p_expires_us, p_idle_ns, p_ip, p_user_agent, p_flags);
	RETURN true;
END
$$;

-- session_delete_by_user is session.UserIndex.DeleteByUser in one call: it
-- locks the user's row in session_users, as session_create does, then,
-- seeing every change committed before the lock (a rotation's new
-- session, a sign-in's evictions and their tombstones), deletes the
-- user's sessions but p_except (NULL: none) and all the user's
-- tombstones. It returns the deleted sessions, oldest first.
CREATE FUNCTION {s}.session_delete_by_user(p_tenant bytea, p_user bytea, p_except bytea)
RETURNS SETOF {s}.sessions
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO {s}.session_users AS u (tenant, user_id) VALUES (p_tenant, p_user)
		ON CONFLICT (tenant, user_id) DO UPDATE SET tenant = u.tenant;
	RETURN QUERY
		WITH d AS (
			DELETE FROM {s}.sessions WHERE tenant = p_tenant AND user_id = p_user AND (p_except IS NULL OR hash <> p_except)
			RETURNING *),
		t AS (
			DELETE FROM {s}.session_evictions WHERE tenant = p_tenant AND user_id = p_user)
		SELECT * FROM d ORDER BY created_us, hash;
END
$$;
`

// migration15 adds whether the user's email is unverified
// (auth.User.EmailUnverified): set by the user's own change of address,
// cleared when they prove the mailbox. Every existing user keeps a
// verified address, as before.
const migration15 = `
ALTER TABLE {s}.users ADD COLUMN email_unverified boolean NOT NULL DEFAULT false;
`

// migration16 adds the entity ID of the IdP that issued each subject's
// NameID (sso.Subject.IdP), and indexes the subjects by IdP and NameID. A
// row written before has an empty IdP: it belongs to none, so no IdP's
// LogoutRequest finds it and it is named to none, until it expires with
// the session of its sign-in.
const migration16 = `
ALTER TABLE {s}.sso_subjects ADD COLUMN idp text COLLATE "C" NOT NULL DEFAULT '';
DROP INDEX {s}.sso_subjects_name_id;
-- Serves SubjectsByNameID: one tenant's subjects of one IdP's NameID, in user order.
CREATE INDEX sso_subjects_idp_name_id ON {s}.sso_subjects (tenant, idp, name_id, user_id);
`

// migration17 adds when an access review of the tenant was last recorded
// (guard.Tenant.LastReview), NULL if none since: the review schedule then
// follows the audit log's record, as before.
const migration17 = `
ALTER TABLE {s}.tenants ADD COLUMN last_review timestamptz;
`

// migration18 adds when the tenant's IdP was last replaced or removed
// (guard.Tenant.IdPChangedAt), NULL if never since: the session check
// then ends no single sign-on session for it, as before.
const migration18 = `
ALTER TABLE {s}.tenants ADD COLUMN idp_changed_at timestamptz;
`

// migration19 adds when an administrator last reactivated the user
// (auth.User.ReactivatedAt), NULL if never since: the dormancy rule then
// counts the last sign-in alone, as before.
const migration19 = `
ALTER TABLE {s}.users ADD COLUMN reactivated_at timestamptz;
`

// migration20 lets a reservation be given back exactly
// (auth.Record.GiveBack): the throttle row keeps the last_us it had
// before its last Reserve (res_prev_last_us, which RETURNING hands back
// with last_us), throttle_reserve2 is throttle_reserve returning both,
// throttle_give_back is Release and throttle_settle2 is Settle taking the
// reservations given back. throttle_apply counts a negative failures (a
// give-back during a lock) as zero. The functions of migration 8 stay, for
// code of an earlier version running beside this one.
const migration20 = `
ALTER TABLE {s}.throttle ADD COLUMN res_prev_last_us bigint;

-- throttle_apply as in migration 1, failures below zero counted as zero.
CREATE OR REPLACE FUNCTION {s}.throttle_apply(
	p_found boolean, p_failures integer, p_last_us bigint, p_locked_until_us bigint,
	p_lockouts integer, p_permanent boolean,
	p_now_us bigint, p_max integer, p_reset_us bigint, p_lock_for_ns bigint,
	p_max_lock_ns bigint, p_permanent_after integer,
	OUT failures integer, OUT last_us bigint, OUT locked_until_us bigint,
	OUT lockouts integer, OUT permanent boolean, OUT expires_us bigint,
	OUT res_allowed boolean, OUT res_failures integer, OUT res_locks boolean)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
	d bigint;
	i integer;
BEGIN
	failures := p_failures; last_us := p_last_us; locked_until_us := p_locked_until_us;
	lockouts := p_lockouts; permanent := p_permanent;
	-- Record.Expired: forgotten, start again from the zero record.
	IF NOT p_found OR (NOT permanent
			AND (last_us IS NULL OR p_now_us >= last_us + p_reset_us)
			AND (locked_until_us IS NULL OR p_now_us >= locked_until_us)) THEN
		failures := 0; last_us := NULL; locked_until_us := NULL; lockouts := 0; permanent := false;
	END IF;
	res_allowed := false; res_failures := 0; res_locks := false;
	IF permanent THEN
		NULL; -- permanent lock in force: not counted
	ELSIF locked_until_us IS NOT NULL AND p_now_us < locked_until_us THEN
		NULL; -- temporary lock in force: not counted, never extended
	ELSE
		res_allowed := true;
		failures := GREATEST(failures, 0) + 1; -- below zero only while locked (throttle_give_back)
		last_us := p_now_us;
		res_failures := failures;
		IF failures >= p_max THEN
			failures := 0;
			lockouts := lockouts + 1;
			res_locks := true;
			IF p_permanent_after > 0 AND lockouts > p_permanent_after THEN
				permanent := true;
				locked_until_us := NULL;
			ELSE
				d := p_lock_for_ns;
				i := 1;
				WHILE i < lockouts AND d < p_max_lock_ns LOOP
					IF d > p_max_lock_ns / 2 THEN
						d := p_max_lock_ns;
						EXIT;
					END IF;
					d := d * 2;
					i := i + 1;
				END LOOP;
				d := LEAST(d, p_max_lock_ns);
				locked_until_us := p_now_us + d / 1000;
			END IF;
		END IF;
	END IF;
	-- Record.ExpiresAt (GREATEST ignores NULL).
	IF permanent THEN
		expires_us := NULL;
	ELSE
		expires_us := GREATEST(last_us + p_reset_us, locked_until_us);
	END IF;
END
$$;

-- throttle_reserve2 is throttle_reserve (migration 8), each row also
-- keeping the last_us it had before (res_prev_last_us), and returning
-- the row's last_us and res_prev_last_us with each reservation.
CREATE FUNCTION {s}.throttle_reserve2(
	p_keys bytea[], p_now_us bigint, p_max integer[], p_reset_us bigint[],
	p_lock_for_ns bigint[], p_max_lock_ns bigint[], p_permanent_after integer[], p_gc integer)
RETURNS TABLE (r_allowed boolean, r_failures integer, r_locks boolean, r_locked_until_us bigint,
	r_permanent boolean, r_lockouts integer, r_last_us bigint, r_prev_last_us bigint)
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
		INSERT INTO {s}.throttle AS t (key, failures, last_us, locked_until_us, lockouts, permanent, expires_us,
			res_allowed, res_failures, res_locks)
		SELECT p_keys[i], a.* FROM {s}.throttle_apply(false, 0, NULL, NULL, 0, false,
			p_now_us, p_max[i], p_reset_us[i], p_lock_for_ns[i], p_max_lock_ns[i], p_permanent_after[i]) a
		ON CONFLICT (key) DO UPDATE SET (failures, last_us, locked_until_us, lockouts, permanent, expires_us,
			res_allowed, res_failures, res_locks) = (
			SELECT a.* FROM {s}.throttle_apply(true, t.failures, t.last_us, t.locked_until_us, t.lockouts, t.permanent,
				p_now_us, p_max[i], p_reset_us[i], p_lock_for_ns[i], p_max_lock_ns[i], p_permanent_after[i]) a),
			res_prev_last_us = t.last_us
		RETURNING t.res_allowed, t.res_failures, t.res_locks, t.locked_until_us, t.permanent, t.lockouts,
			t.last_us, t.res_prev_last_us
		INTO r_allowed, r_failures, r_locks, r_locked_until_us, r_permanent, r_lockouts, r_last_us, r_prev_last_us;
		RETURN NEXT;
		EXIT WHEN NOT r_allowed;
	END LOOP;
	-- By ctid: exactly the row versions locked here.
	DELETE FROM {s}.throttle WHERE ctid = ANY (ARRAY(
		SELECT g.ctid FROM {s}.throttle g
		WHERE g.expires_us <= p_now_us AND g.key <> ALL (p_keys)
		ORDER BY g.expires_us
		LIMIT p_gc
		FOR UPDATE SKIP LOCKED));
END
$$;

-- throttle_give_back is auth.Record.GiveBack of the reservation p_* on
-- the record of p_key, which it locks: an absent record stays absent,
-- and expires_us stays as the last Reserve set it (GiveBack never makes a
-- record forgotten later; a permanent lock lifted leaves it NULL until
-- the key's next Reserve or Reset). Times are Unix microseconds, NULL the
-- zero time.
CREATE FUNCTION {s}.throttle_give_back(p_key bytea, p_allowed boolean, p_failures integer, p_locks boolean,
	p_lockouts integer, p_locked_until_us bigint, p_permanent boolean, p_last_us bigint, p_prev_last_us bigint)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	f integer;
	l bigint;
	lu bigint;
	n integer;
	p boolean;
BEGIN
	IF NOT p_allowed THEN
		RETURN;
	END IF;
	SELECT failures, last_us, locked_until_us, lockouts, permanent INTO f, l, lu, n, p
		FROM {s}.throttle WHERE key = p_key FOR UPDATE;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	IF p_locks THEN
		-- Only the lock this reservation started, with nothing counted since.
		IF n <> p_lockouts OR p <> p_permanent OR lu IS DISTINCT FROM p_locked_until_us
				OR l IS DISTINCT FROM p_last_us OR f > 0 THEN
			RETURN;
		END IF;
		f := GREATEST(f + p_failures - 1, 0);
		n := n - 1;
		p := false;
		lu := NULL;
		IF p_prev_last_us IS NULL OR p_prev_last_us <= l THEN
			l := p_prev_last_us;
		END IF;
	ELSIF n = p_lockouts THEN
		IF f = p_failures AND l IS NOT DISTINCT FROM p_last_us AND (p_prev_last_us IS NULL OR p_prev_last_us <= l) THEN
			l := p_prev_last_us;
		END IF;
		f := GREATEST(f - 1, 0);
	ELSIF n = p_lockouts + 1 AND f <= 0 THEN
		f := f - 1; -- counted before a lock still current
	ELSE
		RETURN;
	END IF;
	UPDATE {s}.throttle SET failures = f, last_us = l, locked_until_us = lu, lockouts = n, permanent = p
		WHERE key = p_key;
END
$$;

-- throttle_settle2 settles p_keys[1], p_keys[2], … in order: it deletes the
-- record when p_reset at the same index is true (Reset), and otherwise
-- gives back the reservation at the same index of the other arrays
-- (throttle_give_back, Release).
CREATE FUNCTION {s}.throttle_settle2(p_keys bytea[], p_reset boolean[], p_allowed boolean[], p_failures integer[],
	p_locks boolean[], p_lockouts integer[], p_locked_until_us bigint[], p_permanent boolean[],
	p_last_us bigint[], p_prev_last_us bigint[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
		IF p_reset[i] THEN
			DELETE FROM {s}.throttle WHERE key = p_keys[i];
		ELSE
			PERFORM {s}.throttle_give_back(p_keys[i], p_allowed[i], p_failures[i], p_locks[i], p_lockouts[i],
				p_locked_until_us[i], p_permanent[i], p_last_us[i], p_prev_last_us[i]);
		END IF;
	END LOOP;
END
$$;
`

// Migrate creates the schema or brings it up to SchemaVersion. It is the
// only method that changes the schema, and it is never called implicitly:
// the host runs it at start-up or from a deployment step.
//
// Every pending migration runs in one transaction that first takes a
// transaction-scoped advisory lock derived from the schema name, so
// replicas that start together migrate once, one after the other, and a
// failure leaves the schema as it was, never half migrated. Migrating a
// schema that is up to date changes nothing. Migrate creates the schema
// only when it does not exist, so a role without CREATE on the database
// may migrate a schema made for it (it needs CREATE and USAGE on the
// schema, and rights on its tables). A schema whose version is
// above SchemaVersion gives ErrSchemaTooNew and is left untouched. A pool
// whose transactions do not run at READ COMMITTED gives ErrIsolation,
// before anything is created (the check is of Migrate's connection: a
// host that migrates from a deploy step with a pool of its own checks
// that pool, not the application's). An unreachable server or a wrong
// DSN gives the connection error, wrapped.
func (s *Store) Migrate(ctx context.Context) error { return s.migrateTo(ctx, len(migrations)) }

// migrateTo is Migrate up to version target (for tests of upgrades).
func (s *Store) migrateTo(ctx context.Context, target int) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate schema %s: connecting: %w", s.schema, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op after Commit
	if err := s.migrate(ctx, tx, target); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate schema %s: commit: %w", s.schema, err)
	}
	return nil
}

func (s *Store) migrate(ctx context.Context, tx pgx.Tx, target int) error {
	fail := func(step string, err error) error {
		return fmt.Errorf("pgstore: migrate schema %s: %s: %w", s.schema, step, err)
	}
	// The level of this transaction is the pool's default (a plain BEGIN).
	// PostgreSQL runs READ UNCOMMITTED as READ COMMITTED.
	var level string
	if err := tx.QueryRow(ctx, `SELECT current_setting('transaction_isolation')`).Scan(&level); err != nil {
		return fail("read the isolation level", err)
	}
	if level != "read committed" && level != "read uncommitted" {
		return fmt.Errorf("%w: the pool's transactions run at %s (default_transaction_isolation of the DSN, role or database); "+
			"set it to read committed for Guard's connections", ErrIsolation, level)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('github.com/guardhq/guard/store/pgstore:' || $1, 0))`, s.schema); err != nil {
		return fail("lock", err)
	}
	// CREATE SCHEMA IF NOT EXISTS checks the database's CREATE privilege
	// before it looks for the schema, so a role that owns its schema but
	// may not create schemas (the usual least-privilege grant) could not
	// migrate at all. The look-up is under the lock: a replica that waited
	// for another's migration sees the schema that one committed.
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)`, s.schema).Scan(&exists); err != nil {
		return fail("look up schema", err)
	}
	if !exists {
		if _, err := tx.Exec(ctx, schemaSQL(s.q, `CREATE SCHEMA IF NOT EXISTS {s}`)); err != nil {
			return fail("create schema", err)
		}
	}
	if _, err := tx.Exec(ctx, schemaSQL(s.q, `CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`)); err != nil {
		return fail("create version table", err)
	}
	var version int
	if err := tx.QueryRow(ctx, schemaSQL(s.q, `SELECT COALESCE(max(version), 0) FROM {s}.schema_migrations`)).Scan(&version); err != nil {
		return fail("read version", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("%w: schema %s is at version %d, this code knows %d", ErrSchemaTooNew, s.schema, version, len(migrations))
	}
	for i := version; i < target; i++ {
		m := migrations[i]
		if _, err := tx.Exec(ctx, schemaSQL(s.q, m.sql)); err != nil {
			return fail(fmt.Sprintf("migration %d (%s)", i+1, m.name), err)
		}
		if _, err := tx.Exec(ctx, schemaSQL(s.q, `INSERT INTO {s}.schema_migrations (version, name) VALUES ($1, $2)`), i+1, m.name); err != nil {
			return fail(fmt.Sprintf("record migration %d", i+1), err)
		}
	}
	return nil
}

// Version returns the schema's current version: 0 if it has never been
// migrated, SchemaVersion once Migrate has run with this code, more if a
// newer version of this package has migrated it.
func (s *Store) Version(ctx context.Context) (int, error) {
	var version int
	err := s.pool.QueryRow(ctx, schemaSQL(s.q, `SELECT COALESCE(max(version), 0) FROM {s}.schema_migrations`)).Scan(&version)
	if code, _ := pgCode(err); code == codeUndefinedTable {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pgstore: schema %s: read version: %w", s.schema, err)
	}
	return version, nil
}

// migration21 adds mfa_confirm_factor, the one call of MFA.ConfirmFactor:
// the limit of confirmed factors (mfa.Config.MaxFactors) is counted when a
// factor is confirmed too, under the user's lock that mfa_create_factor
// takes, so that confirming several pending factors cannot go past it.
const migration21 = `
-- mfa_confirm_factor is mfa.FactorUpdater.ConfirmFactor in one call. With
-- p_max above zero it first locks the user's row in mfa_users, as
-- mfa_create_factor does: confirmations and creations of one user's
-- factors run one at a time, and each statement after the lock sees every
-- change committed before it. It confirms the pending factor p_id unless
-- the user has p_max or more confirmed factors; o_updated tells whether it
-- did, o_exists whether the factor exists. A pending factor left pending
-- by the limit raises SQLSTATE GD002, as mfa_create_factor does.
CREATE FUNCTION {s}.mfa_confirm_factor(p_tenant text, p_user text, p_id text, p_at timestamptz,
	p_step bigint, p_max integer, OUT o_updated boolean, OUT o_exists boolean)
LANGUAGE plpgsql AS $$
DECLARE
	v_pending boolean;
BEGIN
	IF p_max > 0 THEN
		INSERT INTO {s}.mfa_users AS u (tenant, user_id) VALUES (p_tenant, p_user)
			ON CONFLICT (tenant, user_id) DO UPDATE SET tenant = u.tenant;
	END IF;
	UPDATE {s}.mfa_factors SET confirmed_at = p_at, last_step = p_step
		WHERE tenant = p_tenant AND user_id = p_user AND id = p_id AND confirmed_at IS NULL
		AND (p_max <= 0 OR (SELECT count(*) FROM {s}.mfa_factors
			WHERE tenant = p_tenant AND user_id = p_user AND confirmed_at IS NOT NULL) < p_max);
	o_updated := FOUND;
	IF o_updated THEN
		o_exists := true;
		RETURN;
	END IF;
	SELECT confirmed_at IS NULL INTO v_pending FROM {s}.mfa_factors
		WHERE tenant = p_tenant AND user_id = p_user AND id = p_id;
	o_exists := FOUND;
	IF o_exists AND v_pending THEN
		RAISE EXCEPTION 'factor limit reached' USING ERRCODE = 'GD002';
	END IF;
END
$$;
`

// migration22 keeps a tombstone of every session that session_rotate
// replaces, in session_evictions with the new column successor (the hash
// of the session that replaced it; NULL, as in every existing row, for an
// eviction's), its user and the successor's expires_us as its end, so
// that signing out with the old token can end the session it became
// (session.RotatedError). session_rotate is replaced, with the same
// arguments and result, so that replicas not yet upgraded keep calling it:
// it writes the tombstone in the statement that deletes the old session.
const migration22 = `
ALTER TABLE {s}.session_evictions ADD COLUMN successor bytea;

CREATE OR REPLACE FUNCTION {s}.session_rotate(
	p_old bytea, p_hash bytea, p_tenant bytea, p_user bytea, p_created_us bigint, p_last_seen_us bigint,
	p_expires_us bigint, p_idle_ns bigint, p_ip bytea, p_user_agent bytea, p_flags bigint)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	o_tenant bytea;
	o_user bytea;
BEGIN
	SELECT tenant, user_id INTO o_tenant, o_user FROM {s}.sessions WHERE hash = p_old;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	INSERT INTO {s}.session_users AS u (tenant, user_id)
		SELECT DISTINCT v.tenant, v.user_id FROM (VALUES (o_tenant, o_user), (p_tenant, p_user)) v (tenant, user_id)
		ORDER BY v.tenant, v.user_id
		ON CONFLICT (tenant, user_id) DO UPDATE SET tenant = u.tenant;
	WITH d AS (
		DELETE FROM {s}.sessions WHERE hash = p_old
			AND NOT EXISTS (SELECT 1 FROM {s}.session_evictions WHERE hash = p_hash)
		RETURNING hash, tenant, user_id)
	INSERT INTO {s}.session_evictions (hash, tenant, user_id, ends_us, successor)
		SELECT hash, tenant, user_id, p_expires_us, p_hash FROM d;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	INSERT INTO {s}.sessions (hash, tenant, user_id, created_us, last_seen_us, expires_us, idle_ns, ip, user_agent, flags)
		VALUES (p_hash, p_tenant, p_user, p_created_us, p_last_seen_us, p_expires_us, p_idle_ns, p_ip, p_user_agent, p_flags);
	RETURN true;
END
$$;
`

// migration23 adds session_delete_by_user2, session_delete_by_user that
// keeps the rotation tombstones leading to the session it spares, at most
// p_hops rotations back (session.MaxLineageHops, which Go passes), so
// that after "end my other sessions" an older token of the current
// session still names it (session.UserIndex.DeleteByUser). The function
// of migration 14 stays, for code of an earlier version running beside
// this one.
const migration23 = `
-- session_delete_by_user2 is session.UserIndex.DeleteByUser in one call:
-- it locks the user's row in session_users, as session_create does, then,
-- seeing every change committed before the lock (a rotation's new
-- session and tombstone, a sign-in's evictions and their tombstones),
-- deletes the user's sessions but p_except (NULL: none) and the user's
-- tombstones but those that lead to p_except when it is a session of the
-- user: each whose successor is p_except or another kept one, at most
-- p_hops rotations back. It returns the deleted sessions, oldest first.
CREATE FUNCTION {s}.session_delete_by_user2(p_tenant bytea, p_user bytea, p_except bytea, p_hops integer)
RETURNS SETOF {s}.sessions
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO {s}.session_users AS u (tenant, user_id) VALUES (p_tenant, p_user)
		ON CONFLICT (tenant, user_id) DO UPDATE SET tenant = u.tenant;
	RETURN QUERY
		WITH RECURSIVE keep (hash, hops) AS (
			SELECT s.hash, 0 FROM {s}.sessions s
				WHERE s.hash = p_except AND s.tenant = p_tenant AND s.user_id = p_user
			UNION ALL
			SELECT e.hash, k.hops + 1 FROM {s}.session_evictions e JOIN keep k ON e.successor = k.hash
				WHERE e.tenant = p_tenant AND e.user_id = p_user AND k.hops < p_hops
		), d AS (
			DELETE FROM {s}.sessions WHERE tenant = p_tenant AND user_id = p_user AND (p_except IS NULL OR hash <> p_except)
			RETURNING *
		), t AS (
			DELETE FROM {s}.session_evictions WHERE tenant = p_tenant AND user_id = p_user
				AND hash NOT IN (SELECT keep.hash FROM keep)
		)
		SELECT * FROM d ORDER BY created_us, hash;
END
$$;
`

// migration24 bounds a tenant's live API keys (auth.APIKeyStore's
// CreateAPIKey with maxLive above zero): api_key_create locks the
// tenant's row in api_key_tenants, as session_create locks a user's row
// in session_users, so that the bounded creations of one tenant run one
// at a time on every replica, each counting the keys the ones before it
// committed. A creation without a bound stays one INSERT.
const migration24 = `
-- One row per tenant that ever created a key under a bound: api_key_create
-- locks it.
CREATE TABLE {s}.api_key_tenants (
	tenant text COLLATE "C" PRIMARY KEY
);

-- api_key_create is auth.APIKeyStore.CreateAPIKey with a bound in one
-- call: lock the tenant, then store the key unless the tenant has p_max
-- or more keys usable at p_created_at (not revoked, and without an expiry
-- or one after p_created_at; a NULL p_created_at, Go's zero time, comes
-- before every expiry). It returns whether it stored the key; a used
-- (tenant, id) or hash raises unique_violation.
CREATE FUNCTION {s}.api_key_create(p_tenant text, p_id text, p_hash bytea, p_name text, p_prefix text,
	p_created_by text, p_created_at timestamptz, p_expires_at timestamptz, p_last_used_at timestamptz,
	p_revoked_at timestamptz, p_max integer)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO {s}.api_key_tenants AS t (tenant) VALUES (p_tenant)
		ON CONFLICT (tenant) DO UPDATE SET tenant = t.tenant;
	INSERT INTO {s}.api_keys (tenant, id, hash, name, prefix, created_by, created_at, expires_at,
			last_used_at, revoked_at)
		SELECT p_tenant, p_id, p_hash, p_name, p_prefix, p_created_by, p_created_at, p_expires_at,
			p_last_used_at, p_revoked_at
		WHERE (SELECT count(*) FROM {s}.api_keys
			WHERE tenant = p_tenant AND revoked_at IS NULL
			AND (expires_at IS NULL OR p_created_at IS NULL OR expires_at > p_created_at)) < p_max;
	RETURN FOUND;
END
$$;
`
