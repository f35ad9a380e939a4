package pgstore_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/pgstore"
)

// errNotNew stands for InsertID reporting false, for onceOnReplicas.
var errNotNew = errors.New("not new")

// insertID runs st.SSO.InsertID and returns errNotNew when the id was not
// new.
func insertID(st *pgstore.Store, t *testing.T, tenant, id string, until, now time.Time) error {
	ok, err := st.SSO.InsertID(t.Context(), tenant, id, until, now)
	if err == nil && !ok {
		return errNotNew
	}
	return err
}

// samlRequest returns a tracked login request of tenant, valid for ten
// minutes from replicaNow.
func samlRequest(tenant, id string) sso.Request {
	return sso.Request{Tenant: tenant, ID: id, Kind: sso.KindLogin, RelayState: "relay-" + id, ReturnTo: "/home",
		Binding: strings.Repeat("ab", 32), CreatedAt: replicaNow, Expires: replicaNow.Add(10 * time.Minute)}
}

// primeSSO calls InsertID, ConsumeRequest and RememberRequest on every
// connection of each store's pool (6), so that pgx has prepared them
// everywhere: the calls that race next then reach the server together.
func primeSSO(t *testing.T, stores ...*pgstore.Store) {
	t.Helper()
	for k, st := range stores {
		parallel(6, func(i int) {
			id := fmt.Sprintf("prime-%d-%d", k, i)
			if err := insertID(st, t, "prime", id, replicaNow.Add(time.Minute), replicaNow); err != nil {
				t.Errorf("InsertID(%s): %v", id, err)
			}
			if _, err := st.SSO.ConsumeRequest(t.Context(), "prime", id, replicaNow); !errors.Is(err, sso.ErrNotFound) {
				t.Errorf("ConsumeRequest of a missing request = %v, want ErrNotFound", err)
			}
			if err := st.SSO.RememberRequest(t.Context(), samlRequest("prime", id)); err != nil {
				t.Errorf("RememberRequest(%s): %v", id, err)
			}
		})
	}
}

// An assertion ID is accepted once, whichever replica sees it: of 50
// InsertIDs at once on two pools exactly one is new, both for an ID never
// seen and for one whose record has expired (replaced once).
func TestReplicasSSOInsertID(t *testing.T) {
	a, b := twoReplicas(t)
	primeSSO(t, a, b)
	until := replicaNow.Add(5 * time.Minute)
	onceOnReplicas(t, a, b, "InsertID of a new ID", errNotNew, func(st *pgstore.Store) error {
		return insertID(st, t, "acme", "_assertion-1", until, replicaNow)
	})
	// At until the record counts as absent: one insert replaces it.
	onceOnReplicas(t, a, b, "InsertID of an expired ID", errNotNew, func(st *pgstore.Store) error {
		return insertID(st, t, "acme", "_assertion-1", until.Add(5*time.Minute), until)
	})
	// The replacement lasts until its own until, on both replicas.
	for _, st := range []*pgstore.Store{a, b} {
		if err := insertID(st, t, "acme", "_assertion-1", until, until.Add(5*time.Minute-time.Microsecond)); !errors.Is(err, errNotNew) {
			t.Errorf("InsertID before the replacement's until = %v, want not new", err)
		}
	}
}

// A tracked request is consumed once, whichever replica the answers
// reach; and of 50 RememberRequests of one ID one stores it.
func TestReplicasSSORequests(t *testing.T) {
	a, b := twoReplicas(t)
	primeSSO(t, a, b)
	r := samlRequest("acme", "id-0123456789abcdef0123456789abcdef01234567")
	if err := a.SSO.RememberRequest(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	onceOnReplicas(t, a, b, "ConsumeRequest", sso.ErrNotFound, func(st *pgstore.Store) error {
		got, err := st.SSO.ConsumeRequest(t.Context(), "acme", r.ID, replicaNow.Add(time.Minute))
		if err == nil && (got.RelayState != r.RelayState || got.Binding != r.Binding || !got.Expires.Equal(r.Expires)) {
			return fmt.Errorf("consumed %+v", got)
		}
		return err
	})
	var i atomic.Int32
	onceOnReplicas(t, a, b, "RememberRequest", sso.ErrDuplicate, func(st *pgstore.Store) error {
		dup := samlRequest("acme", "id-same")
		dup.ReturnTo = fmt.Sprint("/", i.Add(1))
		return st.SSO.RememberRequest(t.Context(), dup)
	})
}

// Metadata refreshed on two replicas at once: the newest fetch wins,
// whatever the order the updates land in.
func TestReplicasSSOUpdateMetadata(t *testing.T) {
	a, b := twoReplicas(t)
	c := sso.Connection{Tenant: "acme", MetadataURL: "https://idp.example.com/metadata", Metadata: "<old/>",
		MetadataFetchedAt: replicaNow, JIT: true}
	if err := a.SSO.PutConnection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	const n = 40
	parallel(n, func(i int) {
		st := a
		if i%2 == 1 {
			st = b
		}
		at := replicaNow.Add(time.Duration(i+1) * time.Second)
		if _, err := st.SSO.UpdateMetadata(t.Context(), "acme", c.MetadataURL, fmt.Sprint("<m", i, "/>"), at); err != nil {
			t.Errorf("UpdateMetadata %d: %v", i, err)
		}
	})
	got, err := b.SSO.Connection(t.Context(), "acme")
	want := fmt.Sprint("<m", n-1, "/>")
	if err != nil || got.Metadata != want || !got.MetadataFetchedAt.Equal(replicaNow.Add(n*time.Second)) || !got.JIT {
		t.Errorf("after the race: %q fetched at %v, %v; want %q at +%ds", got.Metadata, got.MetadataFetchedAt, err, want, n)
	}
}

// Expired requests, replay records and subjects do not pile up: each
// RememberRequest, InsertID and PutSubject deletes up to GCBatch of them,
// once they are SSOGCGrace past their expiry at the time the write is
// given, and never a live one, nor one within the grace.
func TestSSODropsExpiredRows(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	const old = 20
	exp := t0.Add(time.Minute) // when the old rows expire
	// Writes at these times: within the grace nothing is dropped, then
	// GCBatch per write until only the live rows are left.
	type step struct {
		at   time.Time
		left int
	}
	within, after := exp.Add(pgstore.SSOGCGrace-time.Microsecond), exp.Add(pgstore.SSOGCGrace)
	steps := []step{{within, old + 1}, {after, old + 2 - pgstore.GCBatch}, {after, old + 3 - 2*pgstore.GCBatch}, {after, 4}}

	remember := func(i int, at time.Time) error {
		r := sso.Request{Tenant: "acme", ID: fmt.Sprint("id-", i), Kind: sso.KindLogin, CreatedAt: at, Expires: at.Add(time.Hour)}
		if i < old {
			r.Expires = exp
		}
		return st.SSO.RememberRequest(ctx, r)
	}
	insert := func(i int, at time.Time) error {
		until := at.Add(time.Hour)
		if i < old {
			until = exp
		}
		ok, err := st.SSO.InsertID(ctx, "acme", fmt.Sprint("_a", i), until, at)
		if err == nil && !ok {
			err = fmt.Errorf("InsertID %d was not new", i)
		}
		return err
	}
	put := func(i int, at time.Time) error {
		s := sso.Subject{Tenant: "acme", UserID: fmt.Sprint("u", i), NameID: "n", Expires: at.Add(time.Hour)}
		if i < old {
			s.Expires = exp
		}
		return st.SSO.PutSubject(ctx, s, at)
	}
	for _, tc := range []struct {
		table string
		write func(int, time.Time) error
	}{{"sso_requests", remember}, {"sso_replay", insert}, {"sso_subjects", put}} {
		for i := range old {
			if err := tc.write(i, t0); err != nil {
				t.Fatal(err)
			}
		}
		for i, s := range steps {
			if err := tc.write(old+i, s.at); err != nil {
				t.Fatal(err)
			}
			if n := rowCount(t, st, tc.table); n != s.left {
				t.Fatalf("%s: %d rows after write %d at +%v, want %d", tc.table, n, i, s.at.Sub(t0), s.left)
			}
		}
	}
	// The live ones are all there.
	for i := old; i < old+len(steps); i++ {
		if _, err := st.SSO.ConsumeRequest(ctx, "acme", fmt.Sprint("id-", i), after); err != nil {
			t.Errorf("ConsumeRequest of live request %d after the GC: %v", i, err)
		}
		if ok, err := st.SSO.InsertID(ctx, "acme", fmt.Sprint("_a", i), after.Add(time.Hour), after); err != nil || ok {
			t.Errorf("InsertID of live record %d after the GC = %v, %v; want not new", i, ok, err)
		}
		if _, err := st.SSO.Subject(ctx, "acme", fmt.Sprint("u", i), after); err != nil {
			t.Errorf("Subject of live user %d after the GC: %v", i, err)
		}
	}
}

// A replay record is kept until its until, rounded up to the
// microsecond, and now is truncated: a record is never taken as absent
// before its until, whatever the nanoseconds.
func TestSSOReplaySubMicrosecond(t *testing.T) {
	st := newStore(t)
	until := t0.Add(500) // 500 ns past a microsecond
	if ok, err := st.SSO.InsertID(t.Context(), "acme", "_a", until, t0); err != nil || !ok {
		t.Fatalf("InsertID = %v, %v", ok, err)
	}
	if ok, err := st.SSO.InsertID(t.Context(), "acme", "_a", until, t0.Add(400)); err != nil || ok {
		t.Errorf("InsertID 100 ns before until = %v, %v; want not new", ok, err)
	}
	if ok, err := st.SSO.InsertID(t.Context(), "acme", "_a", until, t0.Add(time.Microsecond)); err != nil || !ok {
		t.Errorf("InsertID at the microsecond after until = %v, %v; want new", ok, err)
	}
}

// The bytea columns keep any bytes: tenants, IDs and every field of a
// request, the tenant, URL and metadata of a connection; tenants and IDs
// differing in one byte are distinct.
func TestSSOAnyBytes(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	odd := []string{"", "a\x00b", "\xff\xfe", "ünï", "a"}
	for i, s := range odd {
		r := sso.Request{Tenant: s, ID: s + "\x00", Kind: s, RelayState: "\x00" + s, ReturnTo: s + "\xff", Binding: s,
			CreatedAt: replicaNow, Expires: replicaNow.Add(time.Minute)}
		if err := st.SSO.RememberRequest(ctx, r); err != nil {
			t.Fatalf("%d: RememberRequest: %v", i, err)
		}
		if _, err := st.SSO.ConsumeRequest(ctx, s+"\x00", r.ID, replicaNow); !errors.Is(err, sso.ErrNotFound) {
			t.Errorf("%d: ConsumeRequest of another tenant = %v, want ErrNotFound", i, err)
		}
		got, err := st.SSO.ConsumeRequest(ctx, s, r.ID, replicaNow)
		if err != nil || got.Tenant != r.Tenant || got.ID != r.ID || got.Kind != r.Kind || got.RelayState != r.RelayState ||
			got.ReturnTo != r.ReturnTo || got.Binding != r.Binding {
			t.Errorf("%d: ConsumeRequest = %q, %v; want %q", i, got, err, r)
		}

		for _, id := range []string{s, s + "\x00"} {
			if ok, err := st.SSO.InsertID(ctx, s, id, replicaNow.Add(time.Minute), replicaNow); err != nil || !ok {
				t.Errorf("%d: InsertID(%q) = %v, %v; want new", i, id, ok, err)
			}
		}
		if ok, err := st.SSO.InsertID(ctx, s, s, replicaNow.Add(time.Minute), replicaNow); err != nil || ok {
			t.Errorf("%d: repeated InsertID = %v, %v; want not new", i, ok, err)
		}

		c := sso.Connection{Tenant: s, MetadataURL: "https://idp\x00/" + s, Metadata: "<m>\x00\xff" + s + "</m>"}
		if err := st.SSO.PutConnection(ctx, c); err != nil {
			t.Fatalf("%d: PutConnection: %v", i, err)
		}
		if changed, err := st.SSO.UpdateMetadata(ctx, s, c.MetadataURL, c.Metadata+"\x00", replicaNow); err != nil || !changed {
			t.Errorf("%d: UpdateMetadata = %v, %v; want a change", i, changed, err)
		}
		gc, err := st.SSO.Connection(ctx, s)
		if err != nil || gc.Tenant != s || gc.MetadataURL != c.MetadataURL || gc.Metadata != c.Metadata+"\x00" {
			t.Errorf("%d: Connection = %q, %q, %q, %v", i, gc.Tenant, gc.MetadataURL, gc.Metadata, err)
		}
		if _, err := st.SSO.Connection(ctx, s+"\x00"); !errors.Is(err, sso.ErrNotFound) {
			t.Errorf("%d: Connection of another tenant = %v, want ErrNotFound", i, err)
		}
	}
	if n := rowCount(t, st, "sso_connections"); n != len(odd) {
		t.Errorf("%d connections stored, want %d", n, len(odd))
	}
}

// Values the store cannot keep as given are refused with an
// *sso.InputError naming the field, and nothing is changed: a string of
// the JSON-kept fields of a connection that is not valid UTF-8 or holds a
// NUL byte, and times beyond what the columns hold.
func TestSSOUnstorable(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	good := sso.Connection{Tenant: "acme", MetadataURL: "https://idp.example.com/metadata", Metadata: "<m/>",
		MetadataFetchedAt: replicaNow, GroupRoles: map[string]string{"Staff": "member"}, DefaultRole: "member"}
	if err := st.SSO.PutConnection(ctx, good); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field  string
		mutate func(*sso.Connection)
	}{
		{"DefaultRole", func(c *sso.Connection) { c.DefaultRole = "a\x00" }},
		{"EmailAttribute", func(c *sso.Connection) { c.EmailAttribute = "\xff" }},
		{"GroupRoles", func(c *sso.Connection) { c.GroupRoles = map[string]string{"g\xfe": "member"} }},
		{"GroupRoles", func(c *sso.Connection) { c.GroupRoles = map[string]string{"g": "m\x00"} }},
		{"AllowedDomains", func(c *sso.Connection) { c.AllowedDomains = []string{"example.com", "\xffexample.com"} }},
		{"ExtraCertificates", func(c *sso.Connection) { c.ExtraCertificates = []string{"-----BEGIN CERTIFICATE-----\x00"} }},
		{"MFAAuthnContexts", func(c *sso.Connection) { c.MFAAuthnContexts = []string{"urn:mfa", "urn:\x00"} }},
		{"MetadataFetchedAt", func(c *sso.Connection) { c.MetadataFetchedAt = time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"MetadataFetchedAt", func(c *sso.Connection) { c.MetadataFetchedAt = time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC) }},
	} {
		c := good
		c.DefaultRole = "admin" // a change that must not land
		tc.mutate(&c)
		var ie *sso.InputError
		if err := st.SSO.PutConnection(ctx, c); !errors.As(err, &ie) || ie.Field != tc.field {
			t.Errorf("PutConnection with a bad %s = %v, want *sso.InputError for it", tc.field, err)
		}
	}
	got, err := st.SSO.Connection(ctx, "acme")
	if err != nil || got.DefaultRole != "member" || !maps.Equal(got.GroupRoles, good.GroupRoles) || !got.MetadataFetchedAt.Equal(replicaNow) {
		t.Errorf("Connection after refused puts = %+v, %v; want it unchanged", got, err)
	}
	var ie *sso.InputError
	if _, err := st.SSO.UpdateMetadata(ctx, "acme", good.MetadataURL, "<late/>", time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.As(err, &ie) {
		t.Errorf("UpdateMetadata at year 300000 = %v, want *sso.InputError", err)
	}
	// The extremes PostgreSQL holds are kept.
	for _, at := range []time.Time{time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC), time.Date(294276, 12, 31, 23, 59, 59, 999999000, time.UTC)} {
		c := good
		c.MetadataFetchedAt = at
		if err := st.SSO.PutConnection(ctx, c); err != nil {
			t.Errorf("PutConnection fetched at %v: %v", at, err)
		}
		if got, err := st.SSO.Connection(ctx, "acme"); err != nil || !got.MetadataFetchedAt.Equal(at) {
			t.Errorf("Connection fetched at %v = %v, %v", at, got.MetadataFetchedAt, err)
		}
	}

	far := time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, r := range map[string]sso.Request{
		"Request.Expires":   {Tenant: "acme", ID: "id-1", CreatedAt: replicaNow, Expires: far},
		"Request.CreatedAt": {Tenant: "acme", ID: "id-1", CreatedAt: far.AddDate(-600000, 0, 0), Expires: replicaNow},
	} {
		if err := st.SSO.RememberRequest(ctx, r); !errors.As(err, &ie) || ie.Field != name {
			t.Errorf("RememberRequest with a bad %s = %v, want *sso.InputError for it", name, err)
		}
	}
	if n := rowCount(t, st, "sso_requests"); n != 0 {
		t.Errorf("%d requests stored after refused ones", n)
	}
	if _, err := st.SSO.ConsumeRequest(ctx, "acme", "id-1", far); !errors.As(err, &ie) || ie.Field != "now" {
		t.Errorf("ConsumeRequest at year 300000 = %v, want *sso.InputError for now", err)
	}
	if _, err := st.SSO.InsertID(ctx, "acme", "_a", far, replicaNow); !errors.As(err, &ie) || ie.Field != "until" {
		t.Errorf("InsertID until year 300000 = %v, want *sso.InputError for until", err)
	}
	if _, err := st.SSO.InsertID(ctx, "acme", "_a", replicaNow, far); !errors.As(err, &ie) || ie.Field != "now" {
		t.Errorf("InsertID at year 300000 = %v, want *sso.InputError for now", err)
	}
	if n := rowCount(t, st, "sso_replay"); n != 0 {
		t.Errorf("%d replay records stored after refused ones", n)
	}

	subj := sso.Subject{Tenant: "acme", UserID: "u1", IdP: "https://idp.example/metadata", NameID: "alice@example.com", NameIDFormat: "f", SessionIndex: "_i",
		Expires: replicaNow.Add(time.Hour)}
	for _, tc := range []struct {
		field  string
		mutate func(*sso.Subject)
	}{
		{"Subject.Tenant", func(s *sso.Subject) { s.Tenant = "a\x00" }},
		{"Subject.UserID", func(s *sso.Subject) { s.UserID = "u\xff" }},
		{"Subject.IdP", func(s *sso.Subject) { s.IdP = "https://idp\x00.example" }},
		{"Subject.IdP", func(s *sso.Subject) { s.IdP = "https://idp.example/" + strings.Repeat("m", sso.MaxEntityIDBytes) }},
		{"Subject.NameID", func(s *sso.Subject) { s.NameID = "alice\x00@example.com" }},
		{"Subject.NameIDFormat", func(s *sso.Subject) { s.NameIDFormat = "\xfe" }},
		{"Subject.SessionIndex", func(s *sso.Subject) { s.SessionIndex = "_i\x00" }},
		{"Subject.Expires", func(s *sso.Subject) { s.Expires = far }},
	} {
		s := subj
		tc.mutate(&s)
		if err := st.SSO.PutSubject(ctx, s, replicaNow); !errors.As(err, &ie) || ie.Field != tc.field {
			t.Errorf("PutSubject with a bad %s = %v, want *sso.InputError for it", tc.field, err)
		}
	}
	if err := st.SSO.PutSubject(ctx, subj, far); !errors.As(err, &ie) || ie.Field != "now" {
		t.Errorf("PutSubject at year 300000 = %v, want *sso.InputError for now", err)
	}
	if n := rowCount(t, st, "sso_subjects"); n != 0 {
		t.Errorf("%d subjects stored after refused ones", n)
	}
	if _, err := st.SSO.Subject(ctx, "acme", "u1", far); !errors.As(err, &ie) || ie.Field != "now" {
		t.Errorf("Subject at year 300000 = %v, want *sso.InputError for now", err)
	}
	if _, err := st.SSO.SubjectsByNameID(ctx, "acme", subj.IdP, "n", far); !errors.As(err, &ie) || ie.Field != "now" {
		t.Errorf("SubjectsByNameID at year 300000 = %v, want *sso.InputError for now", err)
	}
	// What cannot be stored is not found.
	if _, err := st.SSO.Subject(ctx, "a\x00", "u\xff", replicaNow); !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("Subject of an unstorable user = %v, want ErrNotFound", err)
	}
	if got, err := st.SSO.SubjectsByNameID(ctx, "acme", subj.IdP, "alice\x00@example.com", replicaNow); err != nil || len(got) != 0 {
		t.Errorf("SubjectsByNameID of an unstorable NameID = %+v, %v; want none", got, err)
	}
	if got, err := st.SSO.SubjectsByNameID(ctx, "acme", "https://idp\x00.example", subj.NameID, replicaNow); err != nil || len(got) != 0 {
		t.Errorf("SubjectsByNameID of an unstorable IdP = %+v, %v; want none", got, err)
	}
}

// A subject is kept until its Expires, rounded up to the microsecond, and
// now is truncated: a subject is found at every now before its Expires,
// whatever the nanoseconds.
func TestSSOSubjectSubMicrosecond(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	exp := t0.Add(500) // 500 ns past a microsecond
	if err := st.SSO.PutSubject(ctx, sso.Subject{Tenant: "acme", UserID: "u1", IdP: "i", NameID: "n", Expires: exp}, t0); err != nil {
		t.Fatal(err)
	}
	got, err := st.SSO.Subject(ctx, "acme", "u1", t0.Add(400))
	if err != nil || !got.Expires.Equal(t0.Add(time.Microsecond)) || got.Expires.Location() != time.UTC {
		t.Errorf("Subject 100 ns before Expires = %+v, %v; want found, Expires rounded up, in UTC", got, err)
	}
	if subs, err := st.SSO.SubjectsByNameID(ctx, "acme", "i", "n", t0.Add(400)); err != nil || len(subs) != 1 {
		t.Errorf("SubjectsByNameID 100 ns before Expires = %+v, %v; want the subject", subs, err)
	}
	if _, err := st.SSO.Subject(ctx, "acme", "u1", t0.Add(time.Microsecond)); !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("Subject at the microsecond after Expires = %v, want ErrNotFound", err)
	}
}

// Subject IDs and NameIDs are text in the "C" collation: NameIDs match
// byte for byte (no case folding, no Unicode normalization), and
// SubjectsByNameID orders user IDs as strings.Compare does, not as a
// language would, whatever the database's default collation.
func TestSSOSubjectsByteOrder(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	rows, err := testPool(t).Query(ctx, `SELECT column_name::text FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = 'sso_subjects' AND collation_name = 'C' ORDER BY 1`, st.Schema())
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(cols, []string{"idp", "name_id", "tenant", "user_id"}) {
		t.Errorf("columns of sso_subjects in the C collation = %v, %v; want idp, name_id, tenant, user_id", cols, err)
	}
	users := []string{"b", "B", "a", "A", "é", "e\u0301", "z", "_", "10", "9", "ü", "\U0001F600", "a b", "ab"}
	for _, u := range users {
		if err := st.SSO.PutSubject(ctx, sso.Subject{Tenant: "acme", UserID: u, IdP: "Idp", NameID: "Zoë", Expires: t0.Add(time.Hour)}, t0); err != nil {
			t.Fatalf("PutSubject(%q): %v", u, err)
		}
	}
	got, err := st.SSO.SubjectsByNameID(ctx, "acme", "Idp", "Zoë", t0)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(got))
	for i, s := range got {
		ids[i] = s.UserID
	}
	want := slices.Clone(users)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("SubjectsByNameID user order = %q, want %q", ids, want)
	}
	for _, other := range []string{"zoë", "ZOË", "Zoe\u0308", "Zo", "Zoë\u200b"} {
		if got, err := st.SSO.SubjectsByNameID(ctx, "acme", "Idp", other, t0); err != nil || len(got) != 0 {
			t.Errorf("SubjectsByNameID(%q) = %d subjects, %v; want none", other, len(got), err)
		}
	}
	for _, other := range []string{"idp", "IDP", "Idp ", "Id"} {
		if got, err := st.SSO.SubjectsByNameID(ctx, "acme", other, "Zoë", t0); err != nil || len(got) != 0 {
			t.Errorf("SubjectsByNameID(%q, Zoë) = %d subjects, %v; want none", other, len(got), err)
		}
	}
	if _, err := st.SSO.Subject(ctx, "acme", "e\u0301", t0); err != nil {
		t.Errorf("Subject(e + combining acute): %v", err)
	}
	if _, err := st.SSO.Subject(ctx, "acme", "É", t0); !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("Subject(É) = %v, want ErrNotFound", err)
	}
}

// Sign-ins of one user on two replicas at once: the user ends with one
// whole subject, found under its own NameID only.
func TestReplicasSSOPutSubject(t *testing.T) {
	a, b := twoReplicas(t)
	const n = 50
	subject := func(i int) sso.Subject {
		return sso.Subject{Tenant: "acme", UserID: "u1", IdP: fmt.Sprint("i", i%2), NameID: fmt.Sprint("n", i), NameIDFormat: fmt.Sprint("f", i),
			SessionIndex: fmt.Sprint("_s", i), Expires: replicaNow.Add(time.Duration(i+1) * time.Minute)}
	}
	parallel(n, func(i int) {
		st := a
		if i%2 == 1 {
			st = b
		}
		if err := st.SSO.PutSubject(t.Context(), subject(i), replicaNow); err != nil {
			t.Errorf("PutSubject %d: %v", i, err)
		}
	})
	got, err := b.SSO.Subject(t.Context(), "acme", "u1", replicaNow)
	if err != nil {
		t.Fatal(err)
	}
	var i int
	if _, err := fmt.Sscanf(got.NameID, "n%d", &i); err != nil || i < 0 || i >= n {
		t.Fatalf("Subject = %+v, not one of the puts", got)
	}
	if want := subject(i); got.IdP != want.IdP || got.NameIDFormat != want.NameIDFormat || got.SessionIndex != want.SessionIndex || !got.Expires.Equal(want.Expires) {
		t.Errorf("Subject = %+v, a mix of puts; want %+v", got, want)
	}
	if n := rowCount(t, a, "sso_subjects"); n != 1 {
		t.Errorf("%d rows for one user, want 1", n)
	}
	for j := range n {
		subs, err := a.SSO.SubjectsByNameID(t.Context(), "acme", fmt.Sprint("i", j%2), fmt.Sprint("n", j), replicaNow)
		want := 0
		if j == i {
			want = 1
		}
		if err != nil || len(subs) != want {
			t.Errorf("SubjectsByNameID(n%d) = %+v, %v; want %d subjects", j, subs, err, want)
		}
	}
}

// Puts of a few users whose subjects expire as they are written race with
// each other's deletion of expired rows, on a pool of its own: no call
// fails (PostgreSQL reports a deadlock as an error), and the expired rows
// are still deleted afterwards.
func TestSSOSubjectsRaceGC(t *testing.T) {
	st := newStoreOn(t, ownPool(t, 16), "")
	ctx := t.Context()
	const users, goroutines, rounds = 6, 48, 20
	raceRounds(t, goroutines, rounds, func(i, r int) error {
		// Each put's now is past the grace of most rows written before,
		// so each deletes rows others are putting.
		now := t0.Add(time.Duration(r*goroutines+i) * time.Minute)
		s := sso.Subject{Tenant: "acme", UserID: fmt.Sprint("u", i%users), NameID: fmt.Sprint("n", i), Expires: now.Add(time.Microsecond)}
		return st.SSO.PutSubject(ctx, s, now)
	})
	// Every subject left has expired: one more put deletes them all.
	later := t0.Add(time.Duration(rounds*goroutines) * time.Minute).Add(pgstore.SSOGCGrace)
	if err := st.SSO.PutSubject(ctx, sso.Subject{Tenant: "acme", UserID: "last", Expires: later.Add(time.Hour)}, later); err != nil {
		t.Fatal(err)
	}
	if n := rowCount(t, st, "sso_subjects"); n != 1 {
		t.Errorf("%d rows after the race and one more put, want 1", n)
	}
}

// The connection's settings are JSON holding the fields that have no
// column of their own: a field this code does not know (written by newer
// code) is ignored, and a field missing (written by older code) reads as
// zero. No migration is needed either way.
func TestSSOConnectionJSONEvolves(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	c := sso.Connection{Tenant: "acme", MetadataURL: "https://idp.example.com/metadata", Metadata: "<m/>",
		MetadataFetchedAt: replicaNow, JIT: true, DefaultRole: "member", AllowedDomains: []string{"example.com"}}
	if err := st.SSO.PutConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	table := pgx.Identifier{st.Schema(), "sso_connections"}.Sanitize()
	var keys []string
	if err := testPool(t).QueryRow(ctx, `SELECT array_agg(k ORDER BY k) FROM `+table+`, jsonb_object_keys(settings) AS k`).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Tenant", "MetadataURL", "Metadata", "MetadataFetchedAt"} {
		if slices.Contains(keys, k) {
			t.Errorf("settings hold %s, which has a column: %v", k, keys)
		}
	}
	if !slices.Contains(keys, "DefaultRole") || !slices.Contains(keys, "JIT") {
		t.Errorf("settings keys = %v, want every field without a column", keys)
	}
	if _, err := testPool(t).Exec(ctx, `UPDATE `+table+` SET settings = '{"DefaultRole": "admin", "XFieldFromTheFuture": {"a": [1]}}'`); err != nil {
		t.Fatal(err)
	}
	got, err := st.SSO.Connection(ctx, "acme")
	want := sso.Connection{Tenant: "acme", MetadataURL: c.MetadataURL, Metadata: c.Metadata, MetadataFetchedAt: replicaNow, DefaultRole: "admin"}
	if err != nil || got.Tenant != want.Tenant || got.MetadataURL != want.MetadataURL || got.Metadata != want.Metadata ||
		!got.MetadataFetchedAt.Equal(want.MetadataFetchedAt) || got.DefaultRole != "admin" || got.JIT || got.AllowedDomains != nil {
		t.Errorf("Connection with fields unknown and missing = %+v, %v; want %+v", got, err, want)
	}
}

// Each SSO method is one statement, hence one round trip once prepared.
func TestSSORoundTrips(t *testing.T) {
	rt := new(roundTrips)
	st := newStoreOn(t, tracedPool(t, rt), "")
	ctx := t.Context()
	c := sso.Connection{Tenant: "acme", MetadataURL: "https://idp.example.com/metadata", Metadata: "<m/>"}
	calls := map[string]func(i int) error{
		"PutConnection": func(int) error { return st.SSO.PutConnection(ctx, c) },
		"Connection":    func(int) error { _, err := st.SSO.Connection(ctx, "acme"); return err },
		"UpdateMetadata": func(i int) error {
			_, err := st.SSO.UpdateMetadata(ctx, "acme", c.MetadataURL, "<m/>", replicaNow.Add(time.Duration(i)*time.Second))
			return err
		},
		"RememberRequest": func(i int) error { return st.SSO.RememberRequest(ctx, samlRequest("acme", fmt.Sprint("id-", i))) },
		"ConsumeRequest": func(i int) error {
			_, err := st.SSO.ConsumeRequest(ctx, "acme", fmt.Sprint("id-", i), replicaNow)
			return err
		},
		"InsertID": func(i int) error {
			_, err := st.SSO.InsertID(ctx, "acme", fmt.Sprint("_a", i), replicaNow.Add(time.Minute), replicaNow)
			return err
		},
		"DeleteConnection": func(int) error {
			if err := st.SSO.DeleteConnection(ctx, "acme"); err != nil {
				return err
			}
			return st.SSO.PutConnection(ctx, c)
		},
		"PutSubject": func(i int) error {
			return st.SSO.PutSubject(ctx, sso.Subject{Tenant: "acme", UserID: fmt.Sprint("u", i), NameID: "n",
				Expires: replicaNow.Add(time.Hour)}, replicaNow)
		},
		"Subject": func(i int) error { _, err := st.SSO.Subject(ctx, "acme", fmt.Sprint("u", i), replicaNow); return err },
		"SubjectsByNameID": func(int) error {
			_, err := st.SSO.SubjectsByNameID(ctx, "acme", "i", "n", replicaNow)
			return err
		},
	}
	order := []string{"PutConnection", "Connection", "UpdateMetadata", "RememberRequest", "ConsumeRequest", "InsertID", "DeleteConnection",
		"PutSubject", "Subject", "SubjectsByNameID"}
	for i := range 2 { // the first round prepares the statements
		for _, name := range order {
			rt.take()
			if err := calls[name](i); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want := 1
			if name == "DeleteConnection" {
				want = 2 // and the PutConnection after it
			}
			if got := rt.take(); i == 1 && len(got) != want {
				t.Errorf("%s took %d round trips (%v), want %d", name, len(got), got, want)
			}
		}
	}
}
