package pgstore_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/pgstore"
)

var t0 = time.Date(2099, 1, 1, 9, 0, 0, 123456000, time.UTC)

func throttleLen(t *testing.T, st *pgstore.Store) int {
	t.Helper()
	n, err := st.Throttle.Len(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Forgotten throttle records do not pile up: each Reserve deletes up to
// GCBatch of them once forgotten ThrottleGCGrace before its now, and
// never a record that is not forgotten, nor one forgotten more recently
// (a replica whose clock lags may still count on it).
func TestThrottleDropsForgottenRecords(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	lim := auth.Limit{Max: 3, ResetAfter: time.Minute, LockFor: time.Minute, MaxLockFor: time.Hour}
	perm := auth.Limit{Max: 1, ResetAfter: time.Minute, LockFor: time.Second, MaxLockFor: time.Second, PermanentAfter: 1}
	const keys = 40
	for i := range keys {
		if _, err := st.Throttle.Reserve(ctx, fmt.Sprint("ip:", i), t0, lim); err != nil {
			t.Fatal(err)
		}
	}
	// A permanently locked key, and a key locked for an hour: both kept.
	for _, at := range []time.Duration{0, time.Second} {
		if _, err := st.Throttle.Reserve(ctx, "perm", t0.Add(at), perm); err != nil {
			t.Fatal(err)
		}
	}
	long := auth.Limit{Max: 1, ResetAfter: time.Minute, LockFor: time.Hour, MaxLockFor: time.Hour}
	if _, err := st.Throttle.Reserve(ctx, "locked", t0, long); err != nil {
		t.Fatal(err)
	}
	if n := throttleLen(t, st); n != keys+2 {
		t.Fatalf("%d records, want %d", n, keys+2)
	}
	// Still remembered a second before ResetAfter: nothing is dropped.
	if _, err := st.Throttle.Reserve(ctx, "other", t0.Add(time.Minute-time.Second), lim); err != nil {
		t.Fatal(err)
	}
	if n := throttleLen(t, st); n != keys+3 {
		t.Fatalf("%d records after a Reserve with none forgotten, want %d", n, keys+3)
	}
	// Forgotten, but less than ThrottleGCGrace ago: nothing is dropped.
	within := t0.Add(time.Minute + pgstore.ThrottleGCGrace - time.Microsecond)
	if _, err := st.Throttle.Reserve(ctx, "other", within, lim); err != nil {
		t.Fatal(err)
	}
	if n := throttleLen(t, st); n != keys+3 {
		t.Fatalf("%d records after a Reserve within ThrottleGCGrace, want %d", n, keys+3)
	}
	// Once forgotten ThrottleGCGrace ago, each Reserve drops at most GCBatch.
	later := t0.Add(time.Minute + pgstore.ThrottleGCGrace)
	if _, err := st.Throttle.Reserve(ctx, "other", later, lim); err != nil {
		t.Fatal(err)
	}
	if n, want := throttleLen(t, st), keys+3-pgstore.GCBatch; n != want {
		t.Fatalf("%d records after one Reserve, want %d (GCBatch dropped)", n, want)
	}
	for range keys/pgstore.GCBatch + 1 {
		if _, err := st.Throttle.Reserve(ctx, "other", later, lim); err != nil {
			t.Fatal(err)
		}
	}
	// Left: "other" (live), "perm" (permanent), "locked" (locked an hour).
	if n := throttleLen(t, st); n != 3 {
		t.Fatalf("%d records left, want 3", n)
	}
	s, err := st.Throttle.Peek(ctx, "perm", later, perm)
	if err != nil || !s.Permanent {
		t.Errorf("Peek(perm) = %+v, %v; want a permanent lock", s, err)
	}
	s, err = st.Throttle.Peek(ctx, "locked", later, long)
	if err != nil || !s.Locked(later) {
		t.Errorf("Peek(locked) = %+v, %v; want locked", s, err)
	}
}

func TestSessionsDeleteExpired(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	mk := func(i int, created time.Time, idle, life time.Duration) session.Session {
		return session.Session{Hash: [32]byte{byte(i), 1}, Tenant: "acme", UserID: fmt.Sprint("u", i),
			CreatedAt: created, LastSeen: created, ExpiresAt: created.Add(life), IdleTimeout: idle}
	}
	for i := range 10 {
		// Sessions 0..3 end (idle) at t0+1h, 4..6 end (absolute) at
		// t0+2h, 7..9 are live for a day.
		var s session.Session
		switch {
		case i < 4:
			s = mk(i, t0, time.Hour, 7*24*time.Hour)
		case i < 7:
			s = mk(i, t0, 24*time.Hour, 2*time.Hour)
		default:
			s = mk(i, t0, 24*time.Hour, 7*24*time.Hour)
		}
		if _, err := st.Sessions.Create(ctx, s, session.Limit{}); err != nil {
			t.Fatal(err)
		}
	}
	// A touch keeps session 0 alive past its first idle end.
	if err := st.Sessions.Touch(ctx, [32]byte{0, 1}, t0.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		now         time.Time
		limit, want int
		left        int
	}{
		{t0.Add(time.Hour - time.Microsecond), 100, 0, 10},
		{t0.Add(time.Hour), 2, 2, 8},
		{t0.Add(time.Hour), 100, 1, 7},
		{t0.Add(2 * time.Hour), 0, 0, 7},
		{t0.Add(2 * time.Hour), 100, 4, 3},
	} {
		n, err := st.Sessions.DeleteExpired(ctx, tc.now, tc.limit)
		if err != nil || n != tc.want {
			t.Fatalf("DeleteExpired(+%v, %d) = %d, %v; want %d", tc.now.Sub(t0), tc.limit, n, err, tc.want)
		}
		if left, err := st.Sessions.Len(ctx); err != nil || left != tc.left {
			t.Fatalf("after DeleteExpired(+%v, %d): %d sessions, %v; want %d", tc.now.Sub(t0), tc.limit, left, err, tc.left)
		}
	}
	for i := 7; i < 10; i++ {
		if _, err := st.Sessions.Lookup(ctx, [32]byte{byte(i), 1}); err != nil {
			t.Errorf("live session %d: %v", i, err)
		}
	}
}

// Values PostgreSQL text cannot hold are refused with the typed input
// error of the interface's package, and nothing is stored.
func TestUnstorableText(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	good := auth.User{ID: "u1", Tenant: "acme", Email: "a@example.com", Name: "A", Status: auth.StatusActive, PasswordHash: "$argon2id$x"}
	for name, mutate := range map[string]func(*auth.User){
		"NULInName":        func(u *auth.User) { u.Name = "a\x00b" },
		"InvalidUTF8Email": func(u *auth.User) { u.Email = "\xffa@example.com" },
		"NULInID":          func(u *auth.User) { u.ID = "u\x001" },
		"NULInHistory":     func(u *auth.User) { u.PasswordHistory = []string{"h\x00"} },
	} {
		u := good
		mutate(&u)
		var ie *auth.InputError
		if err := st.Users.CreateUser(ctx, u); !errors.As(err, &ie) {
			t.Errorf("%s: CreateUser = %v, want *auth.InputError", name, err)
		}
	}
	if us, err := st.Users.ListUsers(ctx, "acme", "", 10); err != nil || len(us) != 0 {
		t.Errorf("ListUsers = %d users, %v; want none stored", len(us), err)
	}
	if err := st.Users.CreateUser(ctx, good); err != nil {
		t.Fatal(err)
	}
	var ie *auth.InputError
	if err := st.Users.SetPassword(ctx, "acme", "u1", "h\x00", t0, 3); !errors.As(err, &ie) {
		t.Errorf("SetPassword with a NUL = %v, want *auth.InputError", err)
	}
	if err := st.Users.ResetPassword(ctx, "acme", "u1", good, "h\x00", t0, 3); !errors.As(err, &ie) {
		t.Errorf("ResetPassword with a NUL = %v, want *auth.InputError", err)
	}
	// A user read with a field no stored one can hold matches nothing.
	for _, was := range []auth.User{{Email: "a\x00@example.com"}, {PasswordHash: "\xff"}, {Status: "\x00"}} {
		w := good
		w.Email, w.PasswordHash, w.Status = cmp.Or(was.Email, w.Email), cmp.Or(was.PasswordHash, w.PasswordHash), cmp.Or(was.Status, w.Status)
		if err := st.Users.ResetPassword(ctx, "acme", "u1", w, "h", t0, 3); !errors.Is(err, auth.ErrConflict) {
			t.Errorf("ResetPassword from a user read as %+v = %v, want ErrConflict", was, err)
		}
		if err := st.Users.ChangeEmail(ctx, "acme", "u1", w, "moved@example.com", false); !errors.Is(err, auth.ErrConflict) {
			t.Errorf("ChangeEmail from a user read as %+v = %v, want ErrConflict", was, err)
		}
	}
	for _, e := range []string{"a\x00@example.com", "\xffa@example.com"} {
		if err := st.Users.SetEmail(ctx, "acme", "u1", e, false); !errors.As(err, &ie) {
			t.Errorf("SetEmail(%q) = %v, want *auth.InputError", e, err)
		}
		if err := st.Users.ChangeEmail(ctx, "acme", "u1", good, e, false); !errors.As(err, &ie) {
			t.Errorf("ChangeEmail(%q) = %v, want *auth.InputError", e, err)
		}
	}
	if _, err := st.Users.User(ctx, "acme", "u\x001"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("User(id with NUL) = %v, want ErrNotFound", err)
	}
	if u, err := st.Users.User(ctx, "acme", "u1"); err != nil || u.PasswordHash != good.PasswordHash || u.Email != good.Email {
		t.Errorf("User after refused changes = %+v, %v", u, err)
	}

	key := auth.APIKey{Tenant: "acme", ID: "k1", Name: "ci", Hash: [32]byte{7}, CreatedAt: t0}
	for name, mutate := range map[string]func(*auth.APIKey){
		"NULInTenant":       func(k *auth.APIKey) { k.Tenant = "a\x00" },
		"NULInID":           func(k *auth.APIKey) { k.ID = "k\x001" },
		"InvalidUTF8Name":   func(k *auth.APIKey) { k.Name = "\xff" },
		"NULInPrefix":       func(k *auth.APIKey) { k.Prefix = "gk_\x00" },
		"InvalidUTF8Author": func(k *auth.APIKey) { k.CreatedBy = "u\xfe" },
	} {
		k := key
		mutate(&k)
		var ie *auth.InputError
		if err := st.APIKeys.CreateAPIKey(ctx, k, 0); !errors.As(err, &ie) {
			t.Errorf("%s: CreateAPIKey = %v, want *auth.InputError", name, err)
		}
	}
	if _, err := st.APIKeys.APIKeyByHash(ctx, key.Hash); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("APIKeyByHash after refused creations = %v, want ErrNotFound", err)
	}
	if ks, err := st.APIKeys.ListAPIKeys(ctx, "a\x00"); err != nil || len(ks) != 0 {
		t.Errorf("ListAPIKeys(tenant with a NUL) = %v, %v; want none", ks, err)
	}
	if err := st.APIKeys.RevokeAPIKey(ctx, "acme", "k\x001", t0); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("RevokeAPIKey(id with a NUL) = %v, want ErrNotFound", err)
	}
	for _, args := range [][2]string{{"a\x00", "u1"}, {"acme", "u\xfe"}} {
		if ks, err := st.APIKeys.RevokeByCreator(ctx, args[0], args[1], t0); err != nil || len(ks) != 0 {
			t.Errorf("RevokeByCreator(%q, %q) = %v, %v; want none", args[0], args[1], ks, err)
		}
	}

	f := mfa.Factor{Tenant: "acme", UserID: "u1", ID: "f1", Kind: mfa.KindTOTP, Label: "app", CreatedAt: t0}
	for name, mutate := range map[string]func(*mfa.Factor){
		"NULInTenant":        func(f *mfa.Factor) { f.Tenant = "a\x00" },
		"InvalidUTF8User":    func(f *mfa.Factor) { f.UserID = "\xff" },
		"NULInID":            func(f *mfa.Factor) { f.ID = "f\x00" },
		"NULInLabel":         func(f *mfa.Factor) { f.Label = "app\x00" },
		"InvalidUTF8Address": func(f *mfa.Factor) { f.Destination = "a\xfe@example.com" },
		"NULInKeyID":         func(f *mfa.Factor) { f.KeyID = "k\x00" },
	} {
		bad := f
		mutate(&bad)
		var me *mfa.InputError
		if err := st.MFA.CreateFactor(ctx, bad, 0); !errors.As(err, &me) {
			t.Errorf("%s: CreateFactor = %v, want *mfa.InputError", name, err)
		}
	}
	if fs, err := st.MFA.Factors(ctx, "acme", "u1"); err != nil || len(fs) != 0 {
		t.Errorf("Factors after refused creations = %d, %v; want none", len(fs), err)
	}
	if _, err := st.MFA.Factor(ctx, "acme", "u\x001", "f1"); !errors.Is(err, mfa.ErrNotFound) {
		t.Errorf("Factor(user with a NUL) = %v, want ErrNotFound", err)
	}
	if err := st.MFA.AdvanceStep(ctx, "acme\xff", "u1", "f1", 5); !errors.Is(err, mfa.ErrNotFound) {
		t.Errorf("AdvanceStep(invalid UTF-8 tenant) = %v, want ErrNotFound", err)
	}
	var me *mfa.InputError
	if err := st.MFA.ReplaceRecoveryCodes(ctx, "acme", "u\x00", []mfa.Hash{{1}}); !errors.As(err, &me) {
		t.Errorf("ReplaceRecoveryCodes(user with a NUL) = %v, want *mfa.InputError", err)
	}
	if _, err := st.MFA.Enrolments(ctx, "acme", "u\x00", 10); !errors.As(err, &me) {
		t.Errorf("Enrolments(after with a NUL) = %v, want *mfa.InputError", err)
	}

	var ge *guard.InputError
	if err := st.Tenants.CreateTenant(ctx, guard.Tenant{ID: "t\x00", Name: "x"}); !errors.As(err, &ge) {
		t.Errorf("CreateTenant with a NUL = %v, want *guard.InputError", err)
	}
	if ts, err := st.Tenants.ListTenants(ctx, "", 0); err != nil || len(ts) != 0 {
		t.Errorf("ListTenants = %d, %v; want none stored", len(ts), err)
	}

	var ae *audit.InputError
	e := audit.Event{ID: "e1", Tenant: "a\x00", Seq: 1, Action: "x", MAC: []byte{1}}
	if err := st.Audit.Append(ctx, "a\x00", []audit.Event{e}); !errors.As(err, &ae) {
		t.Errorf("Append to a tenant with a NUL = %v, want *audit.InputError", err)
	}
	e.Tenant = "other"
	if err := st.Audit.Append(ctx, "acme", []audit.Event{e}); !errors.As(err, &ae) {
		t.Errorf("Append of another tenant's event = %v, want *audit.InputError", err)
	}
	if h, err := st.Audit.Head(ctx, "acme"); err != nil || h.Seq != 0 {
		t.Errorf("Head = %+v, %v; want nothing stored", h, err)
	}
}

// Times come back in UTC, whatever location they went in with.
func TestTimesComeBackInUTC(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	zone := time.FixedZone("UTC+05:30", 5*3600+30*60)
	at := t0.In(zone)
	u := auth.User{ID: "u1", Tenant: "acme", Email: "a@example.com", Status: auth.StatusActive, CreatedAt: at, PasswordChangedAt: at}
	if err := st.Users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := st.Users.RecordLogin(ctx, "acme", "u1", at)
	if err != nil {
		t.Fatal(err)
	}
	for name, tm := range map[string]time.Time{"CreatedAt": got.CreatedAt, "PasswordChangedAt": got.PasswordChangedAt, "LastLoginAt": got.LastLoginAt} {
		if tm.Location() != time.UTC || !tm.Equal(at) {
			t.Errorf("%s = %v, want %v in UTC", name, tm, at.UTC())
		}
	}
	s := session.Session{Hash: [32]byte{9}, Tenant: "acme", UserID: "u1", CreatedAt: at, LastSeen: at, ExpiresAt: at.Add(time.Hour), IdleTimeout: time.Hour}
	if _, err := st.Sessions.Create(ctx, s, session.Limit{}); err != nil {
		t.Fatal(err)
	}
	gs, err := st.Sessions.Lookup(ctx, s.Hash)
	if err != nil {
		t.Fatal(err)
	}
	for name, tm := range map[string]time.Time{"CreatedAt": gs.CreatedAt, "LastSeen": gs.LastSeen, "ExpiresAt": gs.ExpiresAt} {
		if tm.Location() != time.UTC {
			t.Errorf("session %s = %v, want UTC", name, tm)
		}
	}
	if err := st.Tenants.CreateTenant(ctx, guard.Tenant{ID: "acme", Name: "Acme", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	tn, err := st.Tenants.Tenant(ctx, "acme")
	if err != nil || tn.CreatedAt.Location() != time.UTC || !tn.CreatedAt.Equal(at) {
		t.Errorf("tenant CreatedAt = %v, %v; want %v in UTC", tn.CreatedAt, err, at.UTC())
	}
}

// The policy is JSON: a field this code does not know (written by newer
// code) is ignored, and a field missing (written by older code) reads as
// zero. No migration is needed either way.
func TestPolicyJSONEvolves(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	if err := st.Tenants.CreateTenant(ctx, tenantFixture("acme")); err != nil {
		t.Fatal(err)
	}
	_, err := testPool(t).Exec(ctx, `UPDATE `+pgx.Identifier{st.Schema(), "tenants"}.Sanitize()+
		` SET policy = '{"session_limit": 3, "x_field_from_the_future": true, "x_list_from_the_future": ["10.0.0.0/8"]}' WHERE id = 'acme'`)
	if err != nil {
		t.Fatal(err)
	}
	tn, err := st.Tenants.Tenant(ctx, "acme")
	if err != nil {
		t.Fatalf("Tenant with fields unknown to this code: %v", err)
	}
	if want := (guard.Policy{SessionLimit: 3}); !reflect.DeepEqual(tn.Policy, want) {
		t.Errorf("Policy = %+v, want %+v", tn.Policy, want)
	}
	if v, err := st.Tenants.SetPolicy(ctx, "acme", guard.Policy{SessionLimit: 2, IdleTimeout: time.Hour}, tn.Version); err != nil || v != 2 {
		t.Fatalf("SetPolicy = %d, %v", v, err)
	}
	tn, err = st.Tenants.Tenant(ctx, "acme")
	if err != nil || tn.Policy != (guard.Policy{SessionLimit: 2, IdleTimeout: time.Hour}) {
		t.Errorf("Tenant after SetPolicy = %+v, %v", tn, err)
	}
}

// Store errors are returned, never swallowed or turned into "not found":
// with the database gone every method fails (and the facade denies).
func TestErrorsAreReturned(t *testing.T) {
	pool := ownPool(t, 2)
	st := newStoreOn(t, pool, "")
	pool.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	h := session.Hash{1}
	lim := auth.Limit{Max: 1, ResetAfter: time.Minute, LockFor: time.Minute, MaxLockFor: time.Minute}
	calls := map[string]func() error{
		"User":        func() error { _, err := st.Users.User(ctx, "t", "u"); return err },
		"UserByEmail": func() error { _, err := st.Users.UserByEmail(ctx, "t", "a@b"); return err },
		"CreateUser":  func() error { return st.Users.CreateUser(ctx, auth.User{ID: "u", Tenant: "t", Email: "a@b"}) },
		"RecordLogin": func() error { _, err := st.Users.RecordLogin(ctx, "t", "u", t0); return err },
		"Rehash":      func() error { return st.Users.RehashPassword(ctx, "t", "u", "a", "b") },
		"ResetPassword": func() error {
			return st.Users.ResetPassword(ctx, "t", "u", auth.User{Email: "a@b", PasswordHash: "a"}, "b", t0, 1)
		},
		"ChangeEmail": func() error {
			return st.Users.ChangeEmail(ctx, "t", "u", auth.User{Email: "a@b", PasswordHash: "a"}, "c@d", false)
		},
		"SetEmail":    func() error { return st.Users.SetEmail(ctx, "t", "u", "a@b", false) },
		"VerifyEmail": func() error { return st.Users.VerifyEmail(ctx, "t", "u", "a@b") },
		"Reserve":     func() error { _, err := st.Throttle.Reserve(ctx, "k", t0, lim); return err },
		"Peek":        func() error { _, err := st.Throttle.Peek(ctx, "k", t0, lim); return err },
		"Reset":       func() error { return st.Throttle.Reset(ctx, "k") },
		"Release":     func() error { return st.Throttle.Release(ctx, "k", auth.Reservation{Allowed: true, Failures: 1}) },
		"Create": func() error {
			_, err := st.Sessions.Create(ctx, session.Session{Hash: h, CreatedAt: t0, LastSeen: t0, ExpiresAt: t0.Add(time.Hour)}, session.Limit{Max: 1})
			return err
		},
		"Lookup":      func() error { _, err := st.Sessions.Lookup(ctx, h); return err },
		"LookupTouch": func() error { _, err := st.Sessions.LookupTouch(ctx, h, t0, time.Minute, time.Minute); return err },
		"Touch":       func() error { return st.Sessions.Touch(ctx, h, t0) },
		"Append": func() error {
			return st.Audit.Append(ctx, "t", []audit.Event{{Tenant: "t", Seq: 1, MAC: []byte{1}}})
		},
		"Head":      func() error { _, err := st.Audit.Head(ctx, "t"); return err },
		"Tenant":    func() error { _, err := st.Tenants.Tenant(ctx, "t"); return err },
		"SetPolicy": func() error { _, err := st.Tenants.SetPolicy(ctx, "t", guard.Policy{}, 1); return err },
		"CreateAPIKey": func() error {
			return st.APIKeys.CreateAPIKey(ctx, auth.APIKey{Tenant: "t", ID: "k", Hash: [32]byte{1}}, 0)
		},
		"APIKeyByHash": func() error { _, err := st.APIKeys.APIKeyByHash(ctx, [32]byte{1}); return err },
		"ListAPIKeys":  func() error { _, err := st.APIKeys.ListAPIKeys(ctx, "t"); return err },
		"RevokeAPIKey": func() error { return st.APIKeys.RevokeAPIKey(ctx, "t", "k", t0) },
		"TouchAPIKey":  func() error { return st.APIKeys.TouchAPIKey(ctx, "t", "k", t0) },
		"RevokeByCreator": func() error {
			_, err := st.APIKeys.RevokeByCreator(ctx, "t", "u", t0)
			return err
		},
		"Lists":   func() error { _, err := st.IPLists.Lists(ctx, "t"); return err },
		"Version": func() error { _, err := st.IPLists.Version(ctx, "t"); return err },
		"Replace": func() error {
			_, err := st.IPLists.Replace(ctx, "t", ipfilter.Users, ipfilter.Rules{Entries: []string{"10.0.0.0/8"}}, 0)
			return err
		},
		"CreateFactor":  func() error { return st.MFA.CreateFactor(ctx, mfa.Factor{Tenant: "t", UserID: "u", ID: "f"}, 1) },
		"Factor":        func() error { _, err := st.MFA.Factor(ctx, "t", "u", "f"); return err },
		"Factors":       func() error { _, err := st.MFA.Factors(ctx, "t", "u"); return err },
		"DeleteFactor":  func() error { _, err := st.MFA.DeleteFactor(ctx, "t", "u", "f"); return err },
		"ConfirmFactor": func() error { return st.MFA.ConfirmFactor(ctx, "t", "u", "f", t0, 1, 0) },
		"AdvanceStep":   func() error { return st.MFA.AdvanceStep(ctx, "t", "u", "f", 1) },
		"ResealSecret":  func() error { return st.MFA.ResealSecret(ctx, "t", "u", "f", nil, "k", nil) },
		"Enrolments":    func() error { _, err := st.MFA.Enrolments(ctx, "t", "", 10); return err },
		"ReplaceRecoveryCodes": func() error {
			return st.MFA.ReplaceRecoveryCodes(ctx, "t", "u", []mfa.Hash{{1}})
		},
		"UseRecoveryCode":    func() error { _, err := st.MFA.UseRecoveryCode(ctx, "t", "u", mfa.Hash{1}); return err },
		"RecoveryCodesLeft":  func() error { _, err := st.MFA.RecoveryCodesLeft(ctx, "t", "u"); return err },
		"PutCode":            func() error { return st.MFA.PutCode(ctx, mfa.Code{Tenant: "t", Txn: "x"}) },
		"CheckCode":          func() error { _, err := st.MFA.CheckCode(ctx, "t", "x", mfa.Hash{1}, t0); return err },
		"DeleteCode":         func() error { return st.MFA.DeleteCode(ctx, "t", "x") },
		"Hit":                func() error { _, err := st.MFA.Hit(ctx, "k", t0, time.Minute); return err },
		"Forget":             func() error { return st.MFA.Forget(ctx, "k", t0, time.Minute) },
		"CreateTransaction":  func() error { return st.MFA.CreateTransaction(ctx, mfa.Transaction{Hash: mfa.Hash{1}}) },
		"Transaction":        func() error { _, err := st.MFA.Transaction(ctx, mfa.Hash{1}); return err },
		"ConsumeTransaction": func() error { _, err := st.MFA.ConsumeTransaction(ctx, mfa.Hash{1}); return err },
		"Policy":             func() error { _, _, err := st.Policies.Policy(ctx, "t"); return err },
		"PolicyVersion":      func() error { _, err := st.Policies.Version(ctx, "t"); return err },
		"PolicyUpdate":       func() error { return st.Policies.Update(ctx, "t", 0, nil, nil) },
		"PolicyChanges":      func() error { _, err := st.Policies.Changes(ctx, "t", 0); return err },
		"CreateApproval":     func() error { return st.Approvals.CreateApproval(ctx, rbac.Approval{Tenant: "t", ID: "a"}) },
		"Approval":           func() error { _, err := st.Approvals.Approval(ctx, "t", "a"); return err },
		"DecideApproval": func() error {
			_, err := st.Approvals.DecideApproval(ctx, "t", "a", rbac.User("u"), rbac.StatusApproved, t0)
			return err
		},
		"ConsumeApproval":  func() error { _, err := st.Approvals.ConsumeApproval(ctx, "t", "a", rbac.Claim{}, t0); return err },
		"ListApprovals":    func() error { _, err := st.Approvals.ListApprovals(ctx, "t", rbac.ApprovalQuery{}); return err },
		"PutConnection":    func() error { return st.SSO.PutConnection(ctx, sso.Connection{Tenant: "t", Metadata: "<m/>"}) },
		"Connection":       func() error { _, err := st.SSO.Connection(ctx, "t"); return err },
		"DeleteConnection": func() error { return st.SSO.DeleteConnection(ctx, "t") },
		"UpdateMetadata": func() error {
			_, err := st.SSO.UpdateMetadata(ctx, "t", "https://idp.example.com/md", "<m/>", t0)
			return err
		},
		"RememberRequest": func() error {
			return st.SSO.RememberRequest(ctx, sso.Request{Tenant: "t", ID: "id-1", CreatedAt: t0, Expires: t0.Add(time.Minute)})
		},
		"ConsumeRequest": func() error { _, err := st.SSO.ConsumeRequest(ctx, "t", "id-1", t0); return err },
		"InsertID":       func() error { _, err := st.SSO.InsertID(ctx, "t", "_a", t0.Add(time.Minute), t0); return err },
		"PutSubject": func() error {
			return st.SSO.PutSubject(ctx, sso.Subject{Tenant: "t", UserID: "u", NameID: "n", Expires: t0.Add(time.Hour)}, t0)
		},
		"Subject":          func() error { _, err := st.SSO.Subject(ctx, "t", "u", t0); return err },
		"SubjectsByNameID": func() error { _, err := st.SSO.SubjectsByNameID(ctx, "t", "i", "n", t0); return err },
	}
	sentinels := []error{auth.ErrNotFound, auth.ErrConflict, auth.ErrDuplicateID, session.ErrNotFound, audit.ErrConflict,
		guard.ErrTenantNotFound, guard.ErrConflict, ipfilter.ErrConflict, mfa.ErrNotFound, mfa.ErrConflict, mfa.ErrReplay,
		mfa.ErrDuplicate, mfa.ErrLimit, mfa.ErrInvalidCode, mfa.ErrExpired, mfa.ErrTooManyTries, mfa.ErrFull,
		rbac.ErrConflict, rbac.ErrHistoryGone, rbac.ErrNotFound, rbac.ErrDuplicate, rbac.ErrSelfApproval, rbac.ErrNotPending,
		rbac.ErrExpired, rbac.ErrNotApproved, rbac.ErrConsumed, rbac.ErrMismatch, sso.ErrNotFound, sso.ErrDuplicate, sso.ErrFull}
	for name, call := range calls {
		err := call()
		if err == nil {
			t.Errorf("%s on a closed pool succeeded", name)
			continue
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				t.Errorf("%s on a closed pool = %v, a contract error", name, err)
			}
		}
	}
}

// Replace refuses a scope other than Users and APIKeys, and changes
// nothing.
func TestIPListsInvalidScope(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	for _, s := range []ipfilter.Scope{0, 3, 255} {
		v, err := st.IPLists.Replace(ctx, "acme", s, ipfilter.Rules{Entries: []string{"10.0.0.0/8"}}, 0)
		if err == nil || errors.Is(err, ipfilter.ErrConflict) {
			t.Errorf("Replace with scope %d = %d, %v; want an error", s, v, err)
		}
	}
	if v, err := st.IPLists.Version(ctx, "acme"); err != nil || v != 0 {
		t.Errorf("Version after refused Replaces = %d, %v; want 0", v, err)
	}
}
