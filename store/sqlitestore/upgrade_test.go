package sqlitestore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/sqlitestore"
)

// A database left at any older version by an earlier release migrates to
// the current schema with its data, and ends with the schema a new file
// gets.
func TestUpgradeFromEveryVersion(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh.db")
	closeAndSnapshot(t, openFile(t, fresh), fresh)
	want, _ := schemaOf(t, fresh)
	for v := 1; v < sqlitestore.SchemaVersion(); v++ {
		t.Run(fmt.Sprint("FromVersion", v), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(dir, fmt.Sprintf("v%d.db", v))
			old, err := sqlitestore.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			if err := sqlitestore.MigrateTo(ctx, old, v); err != nil {
				t.Fatalf("migrating to version %d: %v", v, err)
			}
			// Data of the first version, written as that release would.
			if _, err := old.DB().Exec(`INSERT INTO guard_tenants (id, name, policy, version, created_at) VALUES ('acme', 'Acme', '{}', 1, 0)`); err != nil {
				t.Fatal(err)
			}
			if err := old.Close(); err != nil {
				t.Fatal(err)
			}
			_, versions := schemaOf(t, path)
			wantVersions(t, versions, v)

			s, err := sqlitestore.Open(ctx, path)
			if err != nil {
				t.Fatalf("Open of a version %d database: %v", v, err)
			}
			defer s.Close()
			if _, err := s.Tenants.Tenant(ctx, "acme"); !errors.Is(err, sqlitestore.ErrNotMigrated) {
				t.Errorf("Tenant before Migrate: %v, want ErrNotMigrated", err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate from version %d: %v", v, err)
			}
			if tn, err := s.Tenants.Tenant(ctx, "acme"); err != nil || tn.Name != "Acme" || tn.Version != 1 {
				t.Errorf("Tenant after Migrate = %+v, %v", tn, err)
			}
			k := auth.APIKey{ID: "k1", Tenant: "acme", Hash: sha256.Sum256([]byte("k1"))}
			if err := s.APIKeys.CreateAPIKey(ctx, k, 0); err != nil {
				t.Errorf("CreateAPIKey after Migrate: %v", err)
			}
			got, versions := schemaOf(t, path)
			wantVersions(t, versions, sqlitestore.SchemaVersion())
			if got != want {
				t.Errorf("schema migrated from version %d:\n%s\nwant the schema of a new file:\n%s", v, got, want)
			}
		})
	}
}

// upgradedFrom returns a store on a new file that was at schema version v,
// where stmt (with args) wrote data as that release would, and that
// Migrate then brought to the current version.
func upgradedFrom(t *testing.T, v int, stmt string, args ...any) *sqlitestore.Store {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("v%d.db", v))
	old, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitestore.MigrateTo(ctx, old, v); err != nil {
		t.Fatal(err)
	}
	if _, err := old.DB().Exec(stmt, args...); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// A user written at schema version 10, as that release would, comes back
// after the upgrade to version 11 (auth.User.LastSSOAt) without an SSO
// sign-in, and RecordSSOLogin then records one.
func TestUpgradeKeepsUsersWithoutSSOSignIn(t *testing.T) {
	ctx := context.Background()
	s := upgradedFrom(t, 10, `INSERT INTO guard_users (tenant, id, email, name, status, password_hash, password_history,
		password_changed_at, created_at, last_login_at, password_expired) VALUES ('acme', 'u1', 'a@example.com', 'A', 'active', '', '[]',
		NULL, 1000, 2000, 0)`)
	u, err := s.Users.User(ctx, "acme", "u1")
	if err != nil || u.Email != "a@example.com" || u.LastLoginAt.UnixMicro() != 2000 || !u.LastSSOAt.IsZero() {
		t.Fatalf("user stored at version 10 = %+v, %v", u, err)
	}
	at := time.Date(2099, 1, 1, 0, 0, 0, 1000, time.UTC)
	if u, err = s.Users.RecordSSOLogin(ctx, "acme", "u1", at); err != nil || !u.LastSSOAt.Equal(at) || !u.LastLoginAt.Equal(at) {
		t.Errorf("RecordSSOLogin after the upgrade = %+v, %v", u, err)
	}
	sums, err := s.Users.ListUserSummaries(ctx, "acme", "", 10)
	if err != nil || len(sums) != 1 || !sums[0].LastSSOAt.Equal(at) {
		t.Errorf("ListUserSummaries after the upgrade = %+v, %v", sums, err)
	}
}

// A user written at schema version 11, as that release would, comes back
// after the upgrade to version 12 (auth.User.EmailUnverified) with a
// verified address, and SetEmail and VerifyEmail then keep the flag.
func TestUpgradeKeepsEmailsVerified(t *testing.T) {
	ctx := context.Background()
	s := upgradedFrom(t, 11, `INSERT INTO guard_users (tenant, id, email, name, status, password_hash, password_history,
		password_changed_at, created_at, last_login_at, password_expired, last_sso_at) VALUES ('acme', 'u1', 'a@example.com', 'A',
		'active', '', '[]', NULL, 1000, 2000, 0, 3000)`)
	u, err := s.Users.User(ctx, "acme", "u1")
	if err != nil || u.Email != "a@example.com" || u.EmailUnverified || u.LastSSOAt.UnixMicro() != 3000 {
		t.Fatalf("user stored at version 11 = %+v, %v", u, err)
	}
	if err := s.Users.SetEmail(ctx, "acme", "u1", "b@example.com", true); err != nil {
		t.Fatal(err)
	}
	sums, err := s.Users.ListUserSummaries(ctx, "acme", "", 10)
	if err != nil || len(sums) != 1 || !sums[0].EmailUnverified {
		t.Errorf("ListUserSummaries after SetEmail unverified = %+v, %v", sums, err)
	}
	if err := s.Users.VerifyEmail(ctx, "acme", "u1", "b@example.com"); err != nil {
		t.Fatal(err)
	}
	if u, err = s.Users.User(ctx, "acme", "u1"); err != nil || u.Email != "b@example.com" || u.EmailUnverified {
		t.Errorf("user after VerifyEmail = %+v, %v", u, err)
	}
}

// A subject written at schema version 12, as that release would, comes
// back after the upgrade to version 13 (sso.Subject.IdP) without an IdP,
// and so belongs to none: SubjectsByNameID finds it for no IdP, even
// the empty one. The user's next sign-in replaces it with one that the
// IdP's lookups find.
func TestUpgradeKeepsSubjectsWithoutIdP(t *testing.T) {
	ctx := context.Background()
	expires := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	s := upgradedFrom(t, 12, `INSERT INTO guard_sso_subjects (tenant, user_id, name_id, name_id_format, session_index, expires)
		VALUES ('acme', 'u1', '00u1', 'urn:f', '_s1', ?)`, expires.UnixMicro())
	now := expires.Add(-time.Hour)
	want := sso.Subject{Tenant: "acme", UserID: "u1", NameID: "00u1", NameIDFormat: "urn:f", SessionIndex: "_s1", Expires: expires}
	if got, err := s.SSO.Subject(ctx, "acme", "u1", now); err != nil || got.IdP != "" || !got.Expires.Equal(expires) {
		t.Fatalf("subject stored at version 12 = %+v, %v; want %+v", got, err, want)
	}
	for _, idp := range []string{"", "https://idp.example/metadata"} {
		if got, err := s.SSO.SubjectsByNameID(ctx, "acme", idp, "00u1", now); err != nil || len(got) != 0 {
			t.Errorf("SubjectsByNameID(%q) of a subject stored at version 12 = %+v, %v; want none", idp, got, err)
		}
	}
	want.IdP = "https://idp.example/metadata"
	if err := s.SSO.PutSubject(ctx, want, now); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SSO.SubjectsByNameID(ctx, "acme", want.IdP, "00u1", now); err != nil || len(got) != 1 || got[0].UserID != "u1" || got[0].IdP != want.IdP {
		t.Errorf("SubjectsByNameID after a new sign-in = %+v, %v; want u1 of %s", got, err, want.IdP)
	}
}

// A tenant written at schema version 14, as that release would, comes
// back after the upgrade to version 15 (guard.Tenant.IdPChangedAt) with
// no change of IdP, its last review kept, and MarkIdPChanged then
// records one.
func TestUpgradeKeepsTenantsWithoutIdPChange(t *testing.T) {
	ctx := context.Background()
	s := upgradedFrom(t, 14, `INSERT INTO guard_tenants (id, name, policy, version, created_at, last_review)
		VALUES ('acme', 'Acme', '{}', 3, 1000, 2000)`)
	tn, err := s.Tenants.Tenant(ctx, "acme")
	if err != nil || tn.Name != "Acme" || tn.Version != 3 || tn.LastReview.UnixMicro() != 2000 || !tn.IdPChangedAt.IsZero() {
		t.Fatalf("tenant stored at version 14 = %+v, %v", tn, err)
	}
	at := time.Date(2099, 1, 1, 0, 0, 0, 1000, time.UTC)
	if err := s.Tenants.MarkIdPChanged(ctx, "acme", at); err != nil {
		t.Fatal(err)
	}
	if tn, err = s.Tenants.Tenant(ctx, "acme"); err != nil || !tn.IdPChangedAt.Equal(at) || tn.Version != 3 {
		t.Errorf("tenant after MarkIdPChanged = %+v, %v", tn, err)
	}
}

// A user written at schema version 15, as that release would, comes back
// after the upgrade to version 16 (auth.User.ReactivatedAt) without a
// reactivation, idle by the last sign-in alone, and SetReactivatedAt then
// records one that DeactivateIdle and ListUserSummaries see.
func TestUpgradeKeepsUsersWithoutReactivation(t *testing.T) {
	ctx := context.Background()
	s := upgradedFrom(t, 15, `INSERT INTO guard_users (tenant, id, email, name, status, password_hash, password_history,
		password_changed_at, created_at, last_login_at, password_expired, last_sso_at, email_unverified) VALUES ('acme', 'u1',
		'a@example.com', 'A', 'active', '', '[]', NULL, 1000, 2000, 0, NULL, 0)`)
	u, err := s.Users.User(ctx, "acme", "u1")
	if err != nil || u.Email != "a@example.com" || u.LastLoginAt.UnixMicro() != 2000 || !u.ReactivatedAt.IsZero() {
		t.Fatalf("user stored at version 15 = %+v, %v", u, err)
	}
	at := time.Date(2099, 1, 1, 0, 0, 0, 1000, time.UTC)
	if err := s.Users.SetReactivatedAt(ctx, "acme", "u1", at); err != nil {
		t.Fatal(err)
	}
	if err := s.Users.DeactivateIdle(ctx, "acme", "u1", at.Add(-time.Second)); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("DeactivateIdle before the reactivation = %v, want ErrConflict", err)
	}
	sums, err := s.Users.ListUserSummaries(ctx, "acme", "", 10)
	if err != nil || len(sums) != 1 || !sums[0].ReactivatedAt.Equal(at) || sums[0].Status != auth.StatusActive {
		t.Errorf("ListUserSummaries after SetReactivatedAt = %+v, %v", sums, err)
	}
	if err := s.Users.DeactivateIdle(ctx, "acme", "u1", at); err != nil {
		t.Errorf("DeactivateIdle at the reactivation: %v", err)
	}
}

// The tombstone of an evicted session written at schema version 16, as
// that release would, is still an eviction's after the upgrade to version
// 17 (rotation tombstones), and a rotation then leaves one that names its
// successor.
func TestUpgradeKeepsEvictionTombstones(t *testing.T) {
	ctx := context.Background()
	h := sha256.Sum256([]byte("evicted"))
	end := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	s := upgradedFrom(t, 16, `INSERT INTO guard_session_evictions (hash, tenant, user_id, ends_at) VALUES (?, 't', 'u', ?)`,
		h[:], end.UnixMicro())
	_, err := s.Sessions.Lookup(ctx, h)
	var ev *session.EvictedError
	if !errors.As(err, &ev) || !ev.EndsAt.Equal(end) {
		t.Fatalf("Lookup of the tombstone stored at version 16 = %v, want an *EvictedError ending at %v", err, end)
	}
	a := session.Session{Hash: sha256.Sum256([]byte("a")), Tenant: "t", UserID: "u", CreatedAt: end.Add(-time.Hour),
		LastSeen: end.Add(-time.Hour), ExpiresAt: end.Add(time.Hour), IdleTimeout: time.Hour}
	if _, err := s.Sessions.Create(ctx, a, session.Limit{}); err != nil {
		t.Fatal(err)
	}
	b := a
	b.Hash = sha256.Sum256([]byte("b"))
	if err := s.Sessions.Rotate(ctx, a.Hash, b); err != nil {
		t.Fatal(err)
	}
	var re *session.RotatedError
	if _, err := s.Sessions.Lookup(ctx, a.Hash); !errors.As(err, &re) || re.Successor != b.Hash {
		t.Errorf("Lookup of the rotated session = %v, want a *RotatedError naming its successor", err)
	}
}
