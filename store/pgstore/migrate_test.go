package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/memstore"
	"github.com/guardhq/guard/store/pgstore"
)

func TestNewValidatesSchema(t *testing.T) {
	// New does no I/O, so a pool on an address nobody listens on will do.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, bad := range []string{"Guard", "a-b", "1abc", `g"x`, "g x", "guard.x", strings.Repeat("a", 64), "ünï"} {
		_, err := pgstore.New(pool, pgstore.Options{Schema: bad})
		var oe *pgstore.OptionsError
		if !errors.As(err, &oe) || oe.Field != "Schema" {
			t.Errorf("New(Schema %q) = %v, want *OptionsError for Schema", bad, err)
		}
	}
	for _, good := range []string{"guard", "_g", "guard_2", strings.Repeat("a", 63)} {
		if _, err := pgstore.New(pool, pgstore.Options{Schema: good}); err != nil {
			t.Errorf("New(Schema %q): %v", good, err)
		}
	}
	st, err := pgstore.New(pool, pgstore.Options{})
	if err != nil || st.Schema() != pgstore.DefaultSchema {
		t.Errorf("New(Options{}) = schema %q, %v; want %q", st.Schema(), err, pgstore.DefaultSchema)
	}
	// Every store of the facade is filled, the rbac and SSO stores
	// included.
	for _, name := range nilFields(reflect.ValueOf(st.Stores()), "Stores()") {
		t.Errorf("%s is nil", name)
	}
	for _, name := range nilFields(reflect.ValueOf(st).Elem(), "Store") {
		t.Errorf("%s is nil", name)
	}
	var oe *pgstore.OptionsError
	if _, err := pgstore.New(nil, pgstore.Options{}); !errors.As(err, &oe) {
		t.Errorf("New(nil pool) = %v, want *OptionsError", err)
	}
}

// nilFields returns the names of the nil fields of the struct v, looking
// into fields that are structs themselves (guard.Stores.MFA).
func nilFields(v reflect.Value, name string) []string {
	var out []string
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		f, fname := v.Field(i), name+"."+sf.Name
		switch f.Kind() {
		case reflect.Struct:
			out = append(out, nilFields(f, fname)...)
		case reflect.Interface, reflect.Pointer, reflect.Func, reflect.Map, reflect.Slice:
			if f.IsNil() {
				out = append(out, fname)
			}
		}
	}
	return out
}

// tables returns the tables of schema, sorted.
func tables(t *testing.T, schema string) []string {
	t.Helper()
	rows, err := testPool(t).Query(context.Background(),
		`SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// versions returns the rows of schema's version table.
func versions(t *testing.T, schema string) []int {
	t.Helper()
	rows, err := testPool(t).Query(context.Background(),
		`SELECT version FROM `+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+` ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	v, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(v))
	for i := range v {
		out[i] = int(v[i])
	}
	return out
}

func wantVersions(t *testing.T, schema string) {
	t.Helper()
	got := versions(t, schema)
	if len(got) != pgstore.SchemaVersion {
		t.Fatalf("schema_migrations = %v, want versions 1..%d once each", got, pgstore.SchemaVersion)
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("schema_migrations = %v, want versions 1..%d once each", got, pgstore.SchemaVersion)
		}
	}
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	ctx := t.Context()
	schema := newSchemaName(t)
	dropSchemaOnCleanup(t, schema)
	st, err := pgstore.New(testPool(t), pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := st.Version(ctx); err != nil || v != 0 {
		t.Fatalf("Version before Migrate = %d, %v; want 0", v, err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("first Migrate: %v", err)
	}
	before := tables(t, schema)
	if err := st.Users.CreateUser(ctx, auth.User{ID: "u1", Tenant: "t", Email: "a@example.com", Status: auth.StatusActive}); err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if after := tables(t, schema); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("tables after the second Migrate = %v, want %v", after, before)
	}
	wantVersions(t, schema)
	if v, err := st.Version(ctx); err != nil || v != pgstore.SchemaVersion {
		t.Errorf("Version = %d, %v; want %d", v, err, pgstore.SchemaVersion)
	}
	if _, err := st.Users.User(ctx, "t", "u1"); err != nil {
		t.Errorf("user stored before the second Migrate: %v", err)
	}
}

// Replicas starting together: each has its own pool and runs Migrate on
// the same fresh schema at the same moment. All succeed; the migrations
// are applied once.
func TestMigrateConcurrently(t *testing.T) {
	schema := newSchemaName(t)
	dropSchemaOnCleanup(t, schema)
	const replicas = 4
	stores := make([]*pgstore.Store, replicas)
	for i := range stores {
		st, err := pgstore.New(ownPool(t, 2), pgstore.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = st
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Go(func() {
			<-start
			if err := st.Migrate(t.Context()); err != nil {
				t.Errorf("replica %d: Migrate: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	wantVersions(t, schema)
	if err := stores[0].Tenants.CreateTenant(t.Context(), tenantFixture("acme")); err != nil {
		t.Fatalf("the migrated schema is unusable: %v", err)
	}
}

// A schema migrated by newer code: Migrate refuses with ErrSchemaTooNew
// and changes nothing.
func TestMigrateSchemaTooNew(t *testing.T) {
	ctx := t.Context()
	t.Run("Migrated", func(t *testing.T) {
		st := newStore(t)
		if _, err := testPool(t).Exec(ctx, `INSERT INTO `+pgx.Identifier{st.Schema(), "schema_migrations"}.Sanitize()+
			` (version, name) VALUES ($1, 'from the future')`, pgstore.SchemaVersion+1); err != nil {
			t.Fatal(err)
		}
		before := tables(t, st.Schema())
		err := st.Migrate(ctx)
		if !errors.Is(err, pgstore.ErrSchemaTooNew) {
			t.Fatalf("Migrate = %v, want ErrSchemaTooNew", err)
		}
		if after := tables(t, st.Schema()); strings.Join(after, ",") != strings.Join(before, ",") {
			t.Errorf("tables changed: %v, was %v", after, before)
		}
		if v, err := st.Version(ctx); err != nil || v != pgstore.SchemaVersion+1 {
			t.Errorf("Version = %d, %v; want %d", v, err, pgstore.SchemaVersion+1)
		}
	})
	t.Run("OnlyTheVersionTable", func(t *testing.T) {
		// A newer version whose tables this code does not know: none of
		// this code's tables may be created.
		schema := newSchemaName(t)
		dropSchemaOnCleanup(t, schema)
		q := pgx.Identifier{schema}.Sanitize()
		for _, sql := range []string{
			`CREATE SCHEMA ` + q,
			`CREATE TABLE ` + q + `.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
			`INSERT INTO ` + q + `.schema_migrations (version, name) VALUES (1000, 'future')`,
		} {
			if _, err := testPool(t).Exec(ctx, sql); err != nil {
				t.Fatal(err)
			}
		}
		st, err := pgstore.New(testPool(t), pgstore.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Migrate(ctx); !errors.Is(err, pgstore.ErrSchemaTooNew) {
			t.Fatalf("Migrate = %v, want ErrSchemaTooNew", err)
		}
		if got := tables(t, schema); strings.Join(got, ",") != "schema_migrations" {
			t.Errorf("tables after a refused Migrate = %v, want only schema_migrations", got)
		}
	})
}

// A migration that fails part way leaves nothing behind: it runs in one
// transaction. Here a table in the way makes migration 1 fail after it has
// created several tables.
func TestMigrateFailureChangesNothing(t *testing.T) {
	ctx := t.Context()
	schema := newSchemaName(t)
	dropSchemaOnCleanup(t, schema)
	q := pgx.Identifier{schema}.Sanitize()
	for _, sql := range []string{`CREATE SCHEMA ` + q, `CREATE TABLE ` + q + `.audit_events (x int)`} {
		if _, err := testPool(t).Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	st, err := pgstore.New(testPool(t), pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	err = st.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "migration 1") {
		t.Fatalf("Migrate over a table in the way = %v, want the failure of migration 1", err)
	}
	if got := tables(t, schema); strings.Join(got, ",") != "audit_events" {
		t.Errorf("tables after a failed Migrate = %v, want only the one that was there", got)
	}
	if _, err := testPool(t).Exec(ctx, `DROP TABLE `+q+`.audit_events`); err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate once the way is clear: %v", err)
	}
	wantVersions(t, schema)
}

func TestMigrateUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	dsn := testPoolDSN(t)
	wrongDB := dsnWithDatabase(t, dsn, "guard_no_such_database")
	for _, tc := range []struct{ name, dsn, want string }{
		{"NothingListens", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", "127.0.0.1"},
		{"NoSuchDatabase", wrongDB, "guard_no_such_database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := pgxpool.New(ctx, tc.dsn)
			if err != nil {
				t.Fatalf("pgxpool.New: %v", err)
			}
			defer pool.Close()
			st, err := pgstore.New(pool, pgstore.Options{})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			err = st.Migrate(ctx)
			if err == nil || errors.Is(err, pgstore.ErrSchemaTooNew) {
				t.Fatalf("Migrate = %v, want a connection error", err)
			}
			t.Logf("Migrate: %v", err)
			if msg := err.Error(); !strings.HasPrefix(msg, "pgstore: migrate schema guard: connecting: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("Migrate error %q does not say clearly what failed", msg)
			}
			// The first use of a store fails the same way, wrapped.
			if _, err := st.Users.User(ctx, "t", "u"); err == nil || errors.Is(err, auth.ErrNotFound) || !strings.HasPrefix(err.Error(), "pgstore: ") {
				t.Errorf("User on an unreachable server = %v, want a pgstore: error", err)
			}
		})
	}
}

// A store used before Migrate fails with an error that says so.
func TestNotMigrated(t *testing.T) {
	schema := newSchemaName(t)
	st, err := pgstore.New(testPool(t), pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Sessions.Lookup(t.Context(), [32]byte{1})
	if err == nil || !strings.Contains(err.Error(), "has Migrate been run") {
		t.Errorf("Lookup before Migrate = %v, want an error naming Migrate", err)
	}
}

// A schema migrated by an older version of this package is upgraded in
// place: the data stays, and the stores added since work.
func TestMigrateUpgrades(t *testing.T) {
	for from := 1; from < pgstore.SchemaVersion; from++ {
		t.Run(fmt.Sprint("FromVersion", from), func(t *testing.T) {
			ctx := t.Context()
			schema := newSchemaName(t)
			dropSchemaOnCleanup(t, schema)
			st, err := pgstore.New(testPool(t), pgstore.Options{Schema: schema})
			if err != nil {
				t.Fatal(err)
			}
			if err := pgstore.MigrateTo(ctx, st, from); err != nil {
				t.Fatalf("migrating to version %d: %v", from, err)
			}
			if v, err := st.Version(ctx); err != nil || v != from {
				t.Fatalf("Version = %d, %v; want %d", v, err, from)
			}
			if from < 5 && slices.Contains(tables(t, schema), "rbac_versions") {
				t.Fatalf("rbac tables exist at version %d", from)
			}
			if from < 6 && slices.Contains(tables(t, schema), "sso_connections") {
				t.Fatalf("sso tables exist at version %d", from)
			}
			if from < 9 && slices.Contains(tables(t, schema), "sso_subjects") {
				t.Fatalf("sso_subjects exists at version %d", from)
			}
			subj := sso.Subject{Tenant: "acme", UserID: "u1", IdP: "https://idp.example/metadata", NameID: "alice@example.com",
				Expires: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)}
			subjAt := subj.Expires.Add(-time.Hour)
			if from < 16 {
				// Before the upgrade (to the subjects, then to their IdP)
				// the subjects fail with an error that names Migrate (the
				// facade denies), never a contract error.
				if err := st.SSO.PutSubject(ctx, subj, subjAt); err == nil || !strings.Contains(err.Error(), "has Migrate been run") {
					t.Errorf("PutSubject at version %d = %v, want an error naming Migrate", from, err)
				}
				if _, err := st.SSO.Subject(ctx, "acme", "u1", subjAt); err == nil || !strings.Contains(err.Error(), "has Migrate been run") {
					t.Errorf("Subject at version %d = %v, want an error naming Migrate", from, err)
				}
				if _, err := st.SSO.SubjectsByNameID(ctx, "acme", subj.IdP, subj.NameID, subjAt); err == nil || !strings.Contains(err.Error(), "has Migrate been run") {
					t.Errorf("SubjectsByNameID at version %d = %v, want an error naming Migrate", from, err)
				}
			}
			if from >= 9 {
				// A subject written as that release would: no IdP.
				if _, err := testPool(t).Exec(ctx, `INSERT INTO `+pgx.Identifier{st.Schema(), "sso_subjects"}.Sanitize()+`
					(tenant, user_id, name_id, name_id_format, session_index, expires_us) VALUES ('acme', 'u0', '00u0', 'urn:f', '_s0', $1)`,
					subj.Expires.UnixMicro()); err != nil {
					t.Fatal(err)
				}
			}
			// A user written as that release would: this code's user
			// store needs version 19 (and says so until Migrate).
			u := auth.User{ID: "u1", Tenant: "acme", Email: "a@example.com", Status: auth.StatusActive}
			if _, err := st.Users.User(ctx, "acme", "u1"); from < 19 && (err == nil || !strings.Contains(err.Error(), "has Migrate been run")) {
				t.Errorf("User at version %d = %v, want an error naming Migrate", from, err)
			}
			// DeleteFactorKeeping needs version 13.
			if _, err := st.MFA.DeleteFactorKeeping(ctx, "acme", "u1", "f1", 1); from < 13 && (err == nil || !strings.Contains(err.Error(), "has Migrate been run")) {
				t.Errorf("DeleteFactorKeeping at version %d = %v, want an error naming Migrate", from, err)
			}
			// Sessions.Rotate and Sessions.DeleteByUser need version 14.
			sess := session.Session{Hash: [32]byte{7}, Tenant: "acme", UserID: "u1", CreatedAt: subj.Expires.Add(-time.Hour),
				LastSeen: subj.Expires.Add(-time.Hour), ExpiresAt: subj.Expires, IdleTimeout: time.Hour}
			rotated := sess
			rotated.Hash = [32]byte{8}
			if err := st.Sessions.Rotate(ctx, sess.Hash, rotated); from < 14 && (err == nil || !strings.Contains(err.Error(), "has Migrate been run")) {
				t.Errorf("Sessions.Rotate at version %d = %v, want an error naming Migrate", from, err)
			}
			if _, err := st.Sessions.DeleteByUser(ctx, "acme", "u1", session.Hash{}); from < 14 && (err == nil || !strings.Contains(err.Error(), "has Migrate been run")) {
				t.Errorf("Sessions.DeleteByUser at version %d = %v, want an error naming Migrate", from, err)
			}
			if _, err := testPool(t).Exec(ctx, `INSERT INTO `+pgx.Identifier{st.Schema(), "users"}.Sanitize()+`
				(tenant, id, email, name, status, password_hash) VALUES ('acme', 'u1', 'a@example.com', '', 'active', '')`); err != nil {
				t.Fatal(err)
			}
			// As the code of that version wrote it (no last_review before
			// 17, no idp_changed_at before 18).
			if _, err := testPool(t).Exec(ctx, `INSERT INTO `+pgx.Identifier{st.Schema(), "tenants"}.Sanitize()+`
				(id, name, policy, version, created_at) VALUES ('acme', 'Tenant acme', '{}', 1, now())`); err != nil {
				t.Fatal(err)
			}
			// An eviction's tombstone, as that release wrote it (no
			// successor before 22), stays an eviction's.
			evictedHash := session.Hash{9}
			if from >= 11 {
				if _, err := testPool(t).Exec(ctx, `INSERT INTO `+pgx.Identifier{st.Schema(), "session_evictions"}.Sanitize()+`
					(hash, tenant, user_id, ends_us) VALUES ($1, 'acme', 'u1', $2)`, evictedHash[:], subj.Expires.UnixMicro()); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Migrate(ctx); err != nil {
				t.Fatalf("Migrate from version %d: %v", from, err)
			}
			wantVersions(t, schema)
			var ev *session.EvictedError
			if _, err := st.Sessions.Lookup(ctx, evictedHash); from >= 11 && (!errors.As(err, &ev) || !ev.EndsAt.Equal(subj.Expires)) {
				t.Errorf("Lookup of an eviction's tombstone from version %d = %v, want an *EvictedError", from, err)
			}
			// A rotation after the upgrade leaves a tombstone naming its
			// successor (version 22).
			rs := sess
			rs.Hash = session.Hash{10}
			if _, err := st.Sessions.Create(ctx, rs, session.Limit{}); err != nil {
				t.Errorf("Sessions.Create after the upgrade: %v", err)
			}
			rn := rs
			rn.Hash = session.Hash{11}
			var re *session.RotatedError
			if err := st.Sessions.Rotate(ctx, rs.Hash, rn); err != nil {
				t.Errorf("Sessions.Rotate after the upgrade: %v", err)
			} else if _, err := st.Sessions.Lookup(ctx, rs.Hash); !errors.As(err, &re) || re.Successor != rn.Hash {
				t.Errorf("Lookup of a session rotated after the upgrade = %v, want a *RotatedError", err)
			}
			if got, err := st.Users.User(ctx, "acme", "u1"); err != nil || got.Email != u.Email || got.PasswordExpired || !got.LastSSOAt.IsZero() ||
				got.EmailUnverified || !got.ReactivatedAt.IsZero() {
				t.Errorf("user stored at version %d = %+v, %v", from, got, err)
			}
			// No reactivation kept: the user is idle, and a reactivation
			// recorded now counts.
			reactivated := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
			if err := st.Users.SetReactivatedAt(ctx, "acme", "u1", reactivated); err != nil {
				t.Errorf("SetReactivatedAt after the upgrade: %v", err)
			} else if err := st.Users.DeactivateIdle(ctx, "acme", "u1", reactivated.Add(-time.Second)); !errors.Is(err, auth.ErrConflict) {
				t.Errorf("DeactivateIdle before the reactivation = %v, want ErrConflict", err)
			} else if sums, err := st.Users.ListUserSummaries(ctx, "acme", "", 10); err != nil || len(sums) != 1 || !sums[0].ReactivatedAt.Equal(reactivated) {
				t.Errorf("ListUserSummaries after SetReactivatedAt = %+v, %v", sums, err)
			}
			if _, err := st.Users.ExpirePassword(ctx, "acme", "u1"); err != nil {
				t.Errorf("ExpirePassword after the upgrade: %v", err)
			}
			ssoAt := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
			if got, err := st.Users.RecordSSOLogin(ctx, "acme", "u1", ssoAt); err != nil || !got.LastSSOAt.Equal(ssoAt) {
				t.Errorf("RecordSSOLogin after the upgrade = %+v, %v", got, err)
			}
			if err := st.Users.SetEmail(ctx, "acme", "u1", "b@example.com", true); err != nil {
				t.Errorf("SetEmail after the upgrade: %v", err)
			}
			if got, err := st.Users.User(ctx, "acme", "u1"); err != nil || got.Email != "b@example.com" || !got.EmailUnverified {
				t.Errorf("user after SetEmail unverified = %+v, %v", got, err)
			}
			if got, err := st.Tenants.Tenant(ctx, "acme"); err != nil || !got.LastReview.IsZero() || !got.IdPChangedAt.IsZero() {
				t.Errorf("tenant stored at version %d: %+v, %v; want no last review, no change of IdP", from, got, err)
			}
			idpChanged := time.Date(2099, 1, 3, 0, 0, 0, 0, time.UTC)
			if err := st.Tenants.MarkIdPChanged(ctx, "acme", idpChanged); err != nil {
				t.Errorf("MarkIdPChanged after the upgrade: %v", err)
			} else if got, err := st.Tenants.Tenant(ctx, "acme"); err != nil || !got.IdPChangedAt.Equal(idpChanged) {
				t.Errorf("tenant after MarkIdPChanged: %+v, %v", got, err)
			}
			reviewed := time.Date(2099, 1, 2, 0, 0, 0, 0, time.UTC)
			if err := st.Tenants.MarkReviewed(ctx, "acme", reviewed); err != nil {
				t.Errorf("MarkReviewed after the upgrade: %v", err)
			} else if got, err := st.Tenants.Tenant(ctx, "acme"); err != nil || !got.LastReview.Equal(reviewed) {
				t.Errorf("tenant after MarkReviewed: %+v, %v", got, err)
			}
			if err := st.APIKeys.CreateAPIKey(ctx, auth.APIKey{Tenant: "acme", ID: "k1", Hash: [32]byte{1}}, 0); err != nil {
				t.Errorf("CreateAPIKey after the upgrade: %v", err)
			}
			if _, err := st.IPLists.Replace(ctx, "acme", ipfilter.Users, ipfilter.Rules{Entries: []string{"10.0.0.0/8"}}, 0); err != nil {
				t.Errorf("IPLists.Replace after the upgrade: %v", err)
			}
			if err := st.MFA.CreateFactor(ctx, mfa.Factor{Tenant: "acme", UserID: "u1", ID: "f1", Kind: mfa.KindTOTP}, 1); err != nil {
				t.Errorf("CreateFactor after the upgrade: %v", err)
			}
			if _, err := st.MFA.DeleteFactorKeeping(ctx, "acme", "u1", "f1", 1); !errors.Is(err, mfa.ErrLastFactor) {
				t.Errorf("DeleteFactorKeeping after the upgrade = %v, want ErrLastFactor", err)
			}
			if _, err := st.Sessions.Create(ctx, sess, session.Limit{Max: 1}); err != nil {
				t.Errorf("Sessions.Create after the upgrade: %v", err)
			}
			if err := st.Sessions.Rotate(ctx, sess.Hash, rotated); err != nil {
				t.Errorf("Sessions.Rotate after the upgrade: %v", err)
			}
			if ended, err := st.Sessions.DeleteByUser(ctx, "acme", "u1", session.Hash{}); err != nil || len(ended) != 1 || ended[0].Hash != rotated.Hash {
				t.Errorf("Sessions.DeleteByUser after the upgrade = %d sessions, %v; want the rotated one", len(ended), err)
			}
			grant := rbac.Rule{Type: rbac.RuleGrant, Role: rbac.Owner, Subject: "user:u1"}
			if err := st.Policies.Update(ctx, "acme", 0, nil, []rbac.Rule{grant}); err != nil {
				t.Errorf("Policies.Update after the upgrade: %v", err)
			}
			if rules, v, err := st.Policies.Policy(ctx, "acme"); err != nil || v != 1 || len(rules) != 1 || rules[0] != grant {
				t.Errorf("Policy after the upgrade = %v at %d, %v", rules, v, err)
			}
			ap := rbac.Approval{ID: "0001", Tenant: "acme", Requester: rbac.User("u1"), Permission: rbac.P(rbac.Campaigns, rbac.Send),
				Target: "c1", Status: rbac.StatusPending, ExpiresAt: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)}
			if err := st.Approvals.CreateApproval(ctx, ap); err != nil {
				t.Errorf("CreateApproval after the upgrade: %v", err)
			}
			if _, err := st.Approvals.DecideApproval(ctx, "acme", ap.ID, rbac.User("u2"), rbac.StatusApproved, ap.ExpiresAt.Add(-time.Hour)); err != nil {
				t.Errorf("DecideApproval after the upgrade: %v", err)
			}
			if err := st.SSO.PutConnection(ctx, sso.Connection{Tenant: "acme", Metadata: "<m/>", JIT: true}); err != nil {
				t.Errorf("PutConnection after the upgrade: %v", err)
			}
			if ok, err := st.SSO.InsertID(ctx, "acme", "_a1", ap.ExpiresAt, ap.ExpiresAt.Add(-time.Hour)); err != nil || !ok {
				t.Errorf("InsertID after the upgrade = %v, %v; want new", ok, err)
			}
			if err := st.SSO.PutSubject(ctx, subj, subjAt); err != nil {
				t.Errorf("PutSubject after the upgrade: %v", err)
			}
			if got, err := st.SSO.SubjectsByNameID(ctx, "acme", subj.IdP, subj.NameID, subjAt); err != nil || len(got) != 1 || got[0] != subj {
				t.Errorf("SubjectsByNameID after the upgrade = %+v, %v; want %+v", got, err, subj)
			}
			if from >= 9 {
				// The subject kept before the upgrade has no IdP, and so
				// belongs to none: no IdP's lookup finds it.
				if got, err := st.SSO.Subject(ctx, "acme", "u0", subjAt); err != nil || got.IdP != "" || got.NameID != "00u0" || got.SessionIndex != "_s0" {
					t.Errorf("subject stored at version %d = %+v, %v; want it without an IdP", from, got, err)
				}
				for _, idp := range []string{"", subj.IdP} {
					if got, err := st.SSO.SubjectsByNameID(ctx, "acme", idp, "00u0", subjAt); err != nil || len(got) != 0 {
						t.Errorf("SubjectsByNameID(%q) of the subject stored at version %d = %+v, %v; want none", idp, from, got, err)
					}
				}
			}
		})
	}
}

// unboundedKeys creates keys without a bound of live keys (with one
// INSERT, which every schema version takes).
type unboundedKeys struct{ auth.APIKeyStore }

func (k unboundedKeys) CreateAPIKey(ctx context.Context, key auth.APIKey, _ int) error {
	return k.APIKeyStore.CreateAPIKey(ctx, key, 0)
}

// A deployment on schema version 4 ran the facade without roles (this
// package had no rbac stores, so every user administered their tenant).
// After the upgrade to version 5 its data is all there (the session still
// authenticates, the API key too, the audit chain verifies across the
// upgrade), the rbac stores work, and a user without a role is denied
// (fail closed) until the system grants one.
func TestMigrateUpgradeFromVersion4(t *testing.T) {
	ctx := t.Context()
	schema := newSchemaName(t)
	dropSchemaOnCleanup(t, schema)
	st, err := pgstore.New(testPool(t), pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := pgstore.MigrateTo(ctx, st, 4); err != nil {
		t.Fatal(err)
	}
	old := st.Stores()
	// Users and tenants are kept in memory, before and after: this code's
	// user store needs schema version 15, its tenant store 18, and what is
	// upgraded here is the rest. So are throttle counters before the
	// upgrade: this code's throttle store needs version 20.
	users, tenants := memstore.NewUsers(), memstore.NewTenants()
	old.Users, old.UserUpdates, old.Tenants = users, users, tenants
	old.Policies, old.Approvals = nil, nil // what version 4 offered
	// Nor the one-statement session check, which needs version 11.
	old.Throttle = memstore.NewThrottle(0)
	old.Sessions = struct{ session.Store }{st.Sessions}
	// Nor a bound of live API keys, which needs version 24: keys are
	// created as version 4 created them, with one INSERT.
	old.APIKeys = unboundedKeys{st.APIKeys}
	c := &clock{t: facadeNow}
	g4 := newFacade(t, old, c)
	res := login(t, g4)
	p, err := g4.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	key, k, err := g4.CreateAPIKey(ctx, p, guard.NewAPIKey{Tenant: facadeTenant, Name: "CI"})
	if err != nil {
		t.Fatalf("CreateAPIKey without roles at version 4: %v", err)
	}
	if slices.Contains(tables(t, schema), "rbac_versions") {
		t.Fatal("rbac tables exist at version 4")
	}

	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate from version 4: %v", err)
	}
	wantVersions(t, schema)
	now := st.Stores()
	now.Users, now.UserUpdates, now.Tenants = users, users, tenants
	g5 := newFacade(t, now, c)
	p5, err := g5.Authenticate(ctx, res.Token)
	if err != nil || p5.UserID != p.UserID {
		t.Fatalf("session of version 4 after the upgrade = %+v, %v", p5, err)
	}
	if kp, err := g5.AuthenticateAPIKey(ctx, key, netip.MustParseAddr("203.0.113.5")); err != nil || kp.KeyID != k.ID {
		t.Errorf("API key of version 4 after the upgrade = %+v, %v", kp, err)
	}
	if d, err := g5.Authorize(ctx, p5, rbac.Contacts, rbac.Read); !errors.Is(err, guard.ErrForbidden) || d.Allowed {
		t.Errorf("a user without a role after the upgrade = %+v, %v; want ErrForbidden", d, err)
	}
	if err := g5.GrantRole(ctx, guard.System("upgrade"), facadeTenant, "user:"+p.UserID, rbac.Owner); err != nil {
		t.Fatal(err)
	}
	if d, err := g5.Authorize(ctx, p5, rbac.Contacts, rbac.Read); err != nil || !d.Allowed {
		t.Errorf("the owner after the grant = %+v, %v; want allowed", d, err)
	}
	if rules, v, err := st.Policies.Policy(ctx, facadeTenant); err != nil || v != 1 || len(rules) != 1 {
		t.Errorf("Policy after the grant = %v at %d, %v; want one rule at version 1", rules, v, err)
	}
	rep, err := g5.VerifyAudit(ctx, guard.System("test"), facadeTenant)
	if err != nil || !rep.OK || rep.Checked < 4 {
		t.Errorf("VerifyAudit across the upgrade = %+v, %v", rep, err)
	}
}

// A deployment on schema version 5 ran the facade without SAML (this
// package had no SSO stores). After the upgrade to version 6 its data is
// all there (the session still authenticates, the audit chain verifies
// across the upgrade) and the SSO stores work. Before the upgrade they
// fail with an error that names Migrate (the facade denies), never with a
// contract error.
func TestMigrateUpgradeFromVersion5(t *testing.T) {
	ctx := t.Context()
	schema := newSchemaName(t)
	dropSchemaOnCleanup(t, schema)
	st, err := pgstore.New(testPool(t), pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := pgstore.MigrateTo(ctx, st, 5); err != nil {
		t.Fatal(err)
	}
	old := st.Stores()
	// Users and tenants are kept in memory, before and after: this code's
	// user store needs schema version 15, its tenant store 18, and what is
	// upgraded here is the rest. So are throttle counters before the
	// upgrade: this code's throttle store needs version 20.
	users, tenants := memstore.NewUsers(), memstore.NewTenants()
	old.Users, old.UserUpdates, old.Tenants = users, users, tenants
	old.SSO = sso.Stores{} // what version 5 offered
	// Nor the one-statement session check, which needs version 11.
	old.Throttle = memstore.NewThrottle(0)
	old.Sessions = struct{ session.Store }{st.Sessions}
	// Nor a bound of live API keys, which needs version 24: keys are
	// created as version 4 created them, with one INSERT.
	old.APIKeys = unboundedKeys{st.APIKeys}
	c := &clock{t: facadeNow}
	g5 := newFacade(t, old, c)
	res := login(t, g5)
	p, err := g5.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(tables(t, schema), "sso_connections") {
		t.Fatal("sso tables exist at version 5")
	}
	conn := sso.Connection{Tenant: facadeTenant, MetadataURL: "https://idp.example.com/metadata", Metadata: "<m/>",
		MetadataFetchedAt: facadeNow, GroupRoles: map[string]string{"Staff": rbac.Member}, JIT: true}
	for name, call := range map[string]func() error{
		"PutConnection":   func() error { return st.SSO.PutConnection(ctx, conn) },
		"RememberRequest": func() error { return st.SSO.RememberRequest(ctx, samlRequest(facadeTenant, "id-1")) },
		"InsertID": func() error {
			_, err := st.SSO.InsertID(ctx, facadeTenant, "_a1", facadeNow.Add(time.Minute), facadeNow)
			return err
		},
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "has Migrate been run") {
			t.Errorf("%s at version 5 = %v, want an error naming Migrate", name, err)
		}
	}

	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate from version 5: %v", err)
	}
	wantVersions(t, schema)
	now := st.Stores()
	now.Users, now.UserUpdates, now.Tenants = users, users, tenants
	g6 := newFacade(t, now, c)
	if p6, err := g6.Authenticate(ctx, res.Token); err != nil || p6.UserID != p.UserID {
		t.Fatalf("session of version 5 after the upgrade = %+v, %v", p6, err)
	}
	if err := st.SSO.PutConnection(ctx, conn); err != nil {
		t.Fatalf("PutConnection after the upgrade: %v", err)
	}
	if got, err := st.SSO.Connection(ctx, facadeTenant); err != nil || got.Metadata != conn.Metadata || got.GroupRoles["Staff"] != rbac.Member || !got.JIT {
		t.Errorf("Connection after the upgrade = %+v, %v", got, err)
	}
	if ok, err := st.SSO.UpdateMetadata(ctx, facadeTenant, conn.MetadataURL, "<new/>", facadeNow.Add(time.Hour)); err != nil || !ok {
		t.Errorf("UpdateMetadata after the upgrade = %v, %v; want a change", ok, err)
	}
	r := samlRequest(facadeTenant, "id-1")
	if err := st.SSO.RememberRequest(ctx, r); err != nil {
		t.Fatalf("RememberRequest after the upgrade: %v", err)
	}
	if got, err := st.SSO.ConsumeRequest(ctx, facadeTenant, r.ID, r.CreatedAt); err != nil || got.RelayState != r.RelayState {
		t.Errorf("ConsumeRequest after the upgrade = %+v, %v", got, err)
	}
	if ok, err := st.SSO.InsertID(ctx, facadeTenant, "_a1", facadeNow.Add(time.Minute), facadeNow); err != nil || !ok {
		t.Errorf("InsertID after the upgrade = %v, %v; want new", ok, err)
	}
	rep, err := g6.VerifyAudit(ctx, guard.System("test"), facadeTenant)
	if err != nil || !rep.OK || rep.Checked < 3 {
		t.Errorf("VerifyAudit across the upgrade = %+v, %v", rep, err)
	}
}

// The statements are written for READ COMMITTED (see the package doc,
// Concurrency): a pool whose transactions run at a stricter level (a DSN
// option, or the role's or database's default_transaction_isolation) is
// refused by Migrate with ErrIsolation, naming the level, before
// anything is created; READ COMMITTED named explicitly is accepted, and
// so is READ UNCOMMITTED, which PostgreSQL runs as READ COMMITTED.
func TestMigrateRefusesAnotherIsolation(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		level string
		ok    bool
	}{{"repeatable read", false}, {"serializable", false}, {"read committed", true}, {"read uncommitted", true}} {
		cfg, err := pgxpool.ParseConfig(testPoolDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		cfg.MaxConns = 2
		cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = tc.level
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		schema := newSchemaName(t)
		dropSchemaOnCleanup(t, schema)
		st, err := pgstore.New(pool, pgstore.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		err = st.Migrate(ctx)
		if tc.ok {
			if err != nil {
				t.Errorf("Migrate at %s: %v", tc.level, err)
			}
			continue
		}
		if !errors.Is(err, pgstore.ErrIsolation) || !strings.Contains(err.Error(), tc.level) {
			t.Errorf("Migrate at %s = %v, want ErrIsolation naming the level", tc.level, err)
		}
		var exists bool
		if err := testPool(t).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("Migrate at %s created schema %s", tc.level, schema)
		}
	}
}
