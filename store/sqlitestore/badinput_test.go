package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/sqlitestore"
)

// Bad input gives a typed error and changes nothing.

func TestReserveInvalidLimit(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	for _, lim := range []auth.Limit{
		{},
		{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Second},
		{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour, PermanentAfter: -1},
	} {
		_, err := s.Throttle.Reserve(ctx, "k", t0, lim)
		var ie *auth.InvalidLimitError
		if !errors.As(err, &ie) {
			t.Errorf("Reserve with %+v: %v, want *auth.InvalidLimitError", lim, err)
		}
	}
	n, err := s.Throttle.Len(ctx)
	mustLen(t, "Len after refused Reserves", n, err, 0)
}

func TestAppendOtherTenantsEvent(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	e := audit.Event{ID: "e1", Tenant: "globex", Seq: 1, Time: t0, Action: audit.LoginFailed, Outcome: audit.Failure, MAC: []byte{1}}
	err := s.Audit.Append(ctx, "acme", []audit.Event{e})
	var ie *audit.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("Append of a globex event to acme: %v, want *audit.InputError", err)
	}
	for _, tenant := range []string{"acme", "globex"} {
		if h, err := s.Audit.Head(ctx, tenant); err != nil || h.Seq != 0 {
			t.Errorf("Head(%s) after a refused Append = %+v, %v", tenant, h, err)
		}
	}
}

func TestNewNeedsTwoConnections(t *testing.T) {
	db, err := sql.Open("sqlite", sqlitestore.DSN(filepath.Join(t.TempDir(), "one.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if s, err := sqlitestore.New(db); err == nil {
		s.Close()
		t.Fatal("New accepted a pool of one connection, which its writer would hold")
	}
}

// Writes cut short by their context at any point leave no transaction
// open and nothing half done: later writes, from this Store and another,
// go through and the invariants hold.
func TestCancelledWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	s := openFile(t, path)
	var wg sync.WaitGroup
	var mu sync.Mutex
	cancelled, done := 0, 0
	for i := range 200 {
		wg.Go(func() {
			// Every tenth write has all the time it needs; the others
			// end anywhere from before they start to well inside.
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%40)*500*time.Microsecond)
			if i%10 == 9 {
				ctx, cancel = context.WithCancel(context.Background())
			}
			defer cancel()
			now := t0.Add(time.Duration(i) * time.Microsecond)
			_, err1 := s.Throttle.Reserve(ctx, "k", now, hammerLimit)
			_, err2 := s.Sessions.Create(ctx, session.Session{Hash: session.Hash{byte(i), byte(i >> 8), 1}, Tenant: "t", UserID: "u",
				CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour), IdleTimeout: time.Hour}, session.Limit{Max: 2})
			mu.Lock()
			defer mu.Unlock()
			for _, err := range []error{err1, err2} {
				switch {
				case err == nil:
					done++
				case errors.Is(err, context.DeadlineExceeded):
					cancelled++
				default:
					t.Errorf("a write failed with %v, not its context's error", err)
				}
			}
		})
	}
	wg.Wait()
	if cancelled == 0 || done == 0 {
		t.Fatalf("%d writes cancelled, %d done: the test needs both", cancelled, done)
	}
	ctx := context.Background()
	other := openFile(t, path)
	for _, st := range []*sqlitestore.Store{s, other} {
		if _, err := st.Throttle.Reserve(ctx, "after", t0, hammerLimit); err != nil {
			t.Fatalf("Reserve after cancelled writes: %v", err)
		}
	}
	list, err := s.Sessions.ListByUser(ctx, "t", "u")
	if err != nil || len(list) > 2 {
		t.Fatalf("ListByUser = %d sessions, %v; want at most the limit of 2", len(list), err)
	}
	st, err := s.Throttle.Peek(ctx, "k", t0.Add(time.Second), hammerLimit)
	if err != nil || st.Failures > hammerLimit.Max {
		t.Fatalf("Peek = %+v, %v", st, err)
	}
}

// A panic inside a write transaction rolls it back and releases the write
// lock before it goes on up the stack.
func TestPanicInWriteRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	s, other := openFile(t, path), openFile(t, path)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		sqlitestore.WriteThenPanic(context.Background(), s, "k")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, st := range []*sqlitestore.Store{other, s} {
		if _, err := st.Throttle.Reserve(ctx, "after", t0, hammerLimit); err != nil {
			t.Fatalf("Reserve after the panic: %v", err)
		}
		if state, err := st.Throttle.Peek(ctx, "k", t0, hammerLimit); err != nil || state.Failures != 0 {
			t.Fatalf("the panicking transaction's record: %+v, %v", state, err)
		}
	}
}

func TestReplaceInvalidScope(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	for _, scope := range []ipfilter.Scope{0, 3, 255} {
		_, err := s.IPLists.Replace(ctx, "acme", scope, ipfilter.Rules{Entries: []string{"10.0.0.0/8"}}, 0)
		var ie *ipfilter.InputError
		if !errors.As(err, &ie) {
			t.Errorf("Replace with scope %d: %v, want *ipfilter.InputError", scope, err)
		}
	}
	if l, err := s.IPLists.Lists(ctx, "acme"); err != nil || l.Version != 0 || len(l.Users.Entries)+len(l.APIKeys.Entries) != 0 {
		t.Errorf("Lists after refused Replaces = %+v, %v; want nothing stored", l, err)
	}
}

// Entries are opaque bytes to the store, not only text: invalid UTF-8, NUL
// and every byte value come back as they went in.
func TestIPListEntriesByteForByte(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	entries := []string{"\xff\xfe", "", "a\x00b", string(all), "\xc3", "10.0.0.0/8", ""}
	if _, err := s.IPLists.Replace(ctx, "acme", ipfilter.APIKeys, ipfilter.Rules{Entries: entries}, 0); err != nil {
		t.Fatal(err)
	}
	l, err := s.IPLists.Lists(ctx, "acme")
	if err != nil || !slices.Equal(l.APIKeys.Entries, entries) || len(l.Users.Entries) != 0 {
		t.Fatalf("Lists = %q, %v; want %q", l.APIKeys.Entries, err, entries)
	}
}

func TestDecideApprovalInvalidStatus(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	a := rbac.Approval{ID: "a1", Tenant: "acme", Requester: rbac.User("alice"), Permission: rbac.P(rbac.Campaigns, rbac.Send),
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), Status: rbac.StatusPending}
	if err := s.Approvals.CreateApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, status := range []rbac.Status{"", rbac.StatusPending, rbac.StatusConsumed, rbac.StatusExpired, "APPROVED"} {
		_, err := s.Approvals.DecideApproval(ctx, "acme", "a1", rbac.User("bob"), status, t0)
		var ie *rbac.InputError
		if !errors.As(err, &ie) {
			t.Errorf("DecideApproval with status %q: %v, want *rbac.InputError", status, err)
		}
	}
	if got, err := s.Approvals.Approval(ctx, "acme", "a1"); err != nil || got.Status != rbac.StatusPending || !got.DecidedAt.IsZero() {
		t.Errorf("approval after refused decisions = %+v, %v; want it pending", got, err)
	}
}

// Rules are stored as given, byte for byte, in the policy and in its
// changes.
func TestPolicyRulesByteForByte(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	odd := []rbac.Rule{
		{Type: rbac.RuleGrant, Role: "\xff\xfe", Subject: "user:\x00"},
		{Type: "other", Role: "ü", Section: "a\x00b", Action: "\xc3"},
	}
	if err := s.Policies.Update(ctx, "acme", 0, []rbac.Rule{{Type: "\x80"}}, odd); err != nil {
		t.Fatal(err)
	}
	rules, v, err := s.Policies.Policy(ctx, "acme")
	if err != nil || v != 1 || len(rules) != 2 || !slices.Contains(rules, odd[0]) || !slices.Contains(rules, odd[1]) {
		t.Fatalf("Policy = %q at %d, %v; want %q", rules, v, err, odd)
	}
	ch, err := s.Policies.Changes(ctx, "acme", 0)
	if err != nil || len(ch) != 1 || !slices.Equal(ch[0].Add, odd) || !slices.Equal(ch[0].Remove, []rbac.Rule{{Type: "\x80"}}) {
		t.Fatalf("Changes = %+v, %v", ch, err)
	}
}

func TestConfirmFactorAtZeroTime(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	f := mfa.Factor{ID: "f", Tenant: "acme", UserID: "u", Kind: mfa.KindTOTP, Secret: []byte("sealed"), CreatedAt: t0}
	if err := s.MFA.CreateFactor(ctx, f, 0); err != nil {
		t.Fatal(err)
	}
	var ie *mfa.InputError
	if err := s.MFA.ConfirmFactor(ctx, "acme", "u", "f", time.Time{}, 5, 0); !errors.As(err, &ie) {
		t.Fatalf("ConfirmFactor at the zero time: %v, want *mfa.InputError", err)
	}
	if got, err := s.MFA.Factor(ctx, "acme", "u", "f"); err != nil || got.Confirmed() || got.LastStep != 0 {
		t.Errorf("factor after a refused confirmation = %+v, %v; want it pending", got, err)
	}
}

// A connection field kept as JSON that is not UTF-8 is refused rather than
// rewritten; the metadata source is kept byte for byte.
func TestPutConnectionNotUTF8(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	for name, c := range map[string]sso.Connection{
		"EmailAttribute":    {Tenant: "acme", Metadata: "<m/>", EmailAttribute: "mail\xff"},
		"GroupRoles key":    {Tenant: "acme", Metadata: "<m/>", GroupRoles: map[string]string{"\xc3": "admin"}},
		"GroupRoles value":  {Tenant: "acme", Metadata: "<m/>", GroupRoles: map[string]string{"Admins": "\x80"}},
		"AllowedDomains":    {Tenant: "acme", Metadata: "<m/>", AllowedDomains: []string{"example.com", "\xfe"}},
		"ExtraCertificates": {Tenant: "acme", Metadata: "<m/>", ExtraCertificates: []string{"\xff"}},
		"MFAAuthnContexts":  {Tenant: "acme", Metadata: "<m/>", MFAAuthnContexts: []string{"urn:mfa", "urn:\xfe"}},
	} {
		var ie *sso.InputError
		if err := s.SSO.PutConnection(ctx, c); !errors.As(err, &ie) {
			t.Errorf("PutConnection with %s not UTF-8: %v, want *sso.InputError", name, err)
		}
	}
	if _, err := s.SSO.Connection(ctx, "acme"); !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("Connection after refused puts: %v, want ErrNotFound", err)
	}
	c := sso.Connection{Tenant: "t\xff", MetadataURL: "https://idp.example/\xfe", Metadata: "<m>\x00\xff</m>"}
	if err := s.SSO.PutConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SSO.Connection(ctx, c.Tenant); err != nil || got.MetadataURL != c.MetadataURL || got.Metadata != c.Metadata {
		t.Errorf("Connection = %q %q, %v; want the metadata source byte for byte", got.MetadataURL, got.Metadata, err)
	}
}

// A subject is kept byte for byte, like the tenant and ID of a request:
// strings that are not UTF-8 or hold NUL come back as they were put, and
// SubjectsByNameID matches them exactly.
func TestSubjectBytes(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	sub := sso.Subject{Tenant: "t\xff", UserID: "u\x00\xfe", IdP: "i\x00\xfd", NameID: "a\x00b\xc3", NameIDFormat: "\x80", SessionIndex: "\x00", Expires: t0.Add(time.Hour)}
	if err := s.SSO.PutSubject(ctx, sub, t0); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SSO.Subject(ctx, sub.Tenant, sub.UserID, t0); err != nil || got != sub {
		t.Errorf("Subject = %+q, %v; want %+q", got, err, sub)
	}
	if _, err := s.SSO.Subject(ctx, sub.Tenant, "u", t0); !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("Subject of the user ID cut at its NUL: %v, want ErrNotFound", err)
	}
	for _, nameID := range []string{"a", "a\x00", "a\x00b", "a\x00b\xc3\x00", "A\x00B\xc3"} {
		if got, err := s.SSO.SubjectsByNameID(ctx, sub.Tenant, sub.IdP, nameID, t0); err != nil || len(got) != 0 {
			t.Errorf("SubjectsByNameID(%q) = %+q, %v; want none", nameID, got, err)
		}
	}
	for _, idp := range []string{"i", "i\x00", "i\x00\xfd\x00", "I\x00\xfd"} {
		if got, err := s.SSO.SubjectsByNameID(ctx, sub.Tenant, idp, sub.NameID, t0); err != nil || len(got) != 0 {
			t.Errorf("SubjectsByNameID(%q, %q) = %+q, %v; want none", idp, sub.NameID, got, err)
		}
	}
	if got, err := s.SSO.SubjectsByNameID(ctx, sub.Tenant, sub.IdP, sub.NameID, t0); err != nil || len(got) != 1 || got[0] != sub {
		t.Errorf("SubjectsByNameID(%q) = %+q, %v; want %+q", sub.NameID, got, err, sub)
	}
}
