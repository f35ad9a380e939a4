// Package ssotest checks that a backend keeps the storage contracts of
// package sso: ConnectionStore, RequestStore, ReplayCache and
// SubjectStore. Every
// backend's tests call Run and RunConcurrent:
//
//	func TestSSO(t *testing.T) {
//		ssotest.Run(t, func(t *testing.T) sso.Stores { return memstore.NewSSO().Stores() })
//		ssotest.RunConcurrent(t, func(t *testing.T) sso.Stores { return memstore.NewSSO().Stores() })
//	}
//
// Each sentence of the interfaces' doc comments has a named subtest. Every
// subtest asks newStores for fresh, empty stores. A backend that
// implements only some roles leaves the others nil: their subtests are
// skipped (for example a Redis backend that keeps requests and the replay
// cache, with connections in PostgreSQL).
//
// The suite never reads the clock: records carry fixed times in the year
// 2099, so a store that drops expired records by its own clock (a Redis
// TTL) keeps them for the length of the test, and a store that judges
// expiry by its own clock instead of the now it is given fails. Times are
// given at microsecond precision and must come back as the same instant
// (time.Time.Equal); the location may differ. A nil and an empty slice or
// map are equal.
package ssotest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/sso"
)

// base is the suite's "now": fixed, to the microsecond, in the future.
var base = time.Date(2099, 1, 1, 9, 0, 0, 123456000, time.UTC)

type test struct {
	name string
	run  func(t *testing.T, st sso.Stores)
}

type group struct {
	name  string
	needs func(sso.Stores) bool
	tests []test
}

func hasConnections(s sso.Stores) bool { return s.Connections != nil }
func hasRequests(s sso.Stores) bool    { return s.Requests != nil }
func hasReplay(s sso.Stores) bool      { return s.Replay != nil }
func hasSubjects(s sso.Stores) bool    { return s.Subjects != nil }

var groups = []group{
	{"PutConnection", hasConnections, putTests},
	{"Connection", hasConnections, getTests},
	{"DeleteConnection", hasConnections, deleteTests},
	{"UpdateMetadata", hasConnections, updateTests},
	{"RememberRequest", hasRequests, rememberTests},
	{"ConsumeRequest", hasRequests, consumeTests},
	{"InsertID", hasReplay, insertTests},
	{"PutSubject", hasSubjects, putSubjectTests},
	{"Subject", hasSubjects, subjectTests},
	{"SubjectsByNameID", hasSubjects, byNameIDTests},
}

// Run runs the conformance tests of every role newStores provides, one
// fresh set of empty stores per subtest.
func Run(t *testing.T, newStores func(t *testing.T) sso.Stores) {
	t.Helper()
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					st := newStores(t)
					if !g.needs(st) {
						t.Skip("the backend does not implement this role")
					}
					tc.run(t, st)
				})
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Connections

// conn returns a connection of tenant with every field set.
func conn(tenant string) sso.Connection {
	return sso.Connection{
		Tenant:                      tenant,
		MetadataURL:                 "https://idp.example.com/" + tenant + "/metadata",
		Metadata:                    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.com/` + tenant + `">é ☃</md:EntityDescriptor>`,
		MetadataFetchedAt:           base.Add(-time.Hour),
		ExtraCertificates:           []string{"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "second"},
		MetadataSigningCertificates: []string{"-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n", "signer ☃"},
		ClockSkew:                   90*time.Second + 250*time.Millisecond,
		EmailAttribute:              "mail",
		NameAttribute:               "displayName",
		GroupsAttribute:             "groups",
		GroupRoles:                  map[string]string{"Admins": "admin", "Sales Team": "member", "Ünïcode": "reports-only"},
		DefaultRole:                 "member",
		SyncRoles:                   true,
		JIT:                         true,
		AllowedDomains:              []string{"example.com", "example.org"},
		MFAAuthnContexts:            []string{"http://schemas.microsoft.com/claims/multipleauthn", "https://refeds.org/profile/mfa ☃"},
		IdPInitiated:                true,
		AllowSHA1:                   true,
		AllowCBC:                    true,
		RequireValidCertificates:    true,
	}
}

// diffConn describes how got differs from want, or returns "".
func diffConn(got, want sso.Connection) string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s = %v, want %v", field, g, w)) }
	if got.Tenant != want.Tenant {
		add("Tenant", got.Tenant, want.Tenant)
	}
	if got.MetadataURL != want.MetadataURL {
		add("MetadataURL", got.MetadataURL, want.MetadataURL)
	}
	if got.Metadata != want.Metadata {
		add("Metadata", fmt.Sprintf("%d bytes", len(got.Metadata)), fmt.Sprintf("%d bytes", len(want.Metadata)))
	}
	if !got.MetadataFetchedAt.Equal(want.MetadataFetchedAt) {
		add("MetadataFetchedAt", got.MetadataFetchedAt, want.MetadataFetchedAt)
	}
	if !slices.Equal(got.ExtraCertificates, want.ExtraCertificates) {
		add("ExtraCertificates", got.ExtraCertificates, want.ExtraCertificates)
	}
	if !slices.Equal(got.MetadataSigningCertificates, want.MetadataSigningCertificates) {
		add("MetadataSigningCertificates", got.MetadataSigningCertificates, want.MetadataSigningCertificates)
	}
	if got.ClockSkew != want.ClockSkew {
		add("ClockSkew", got.ClockSkew, want.ClockSkew)
	}
	if got.EmailAttribute != want.EmailAttribute || got.NameAttribute != want.NameAttribute || got.GroupsAttribute != want.GroupsAttribute {
		add("attribute names", []string{got.EmailAttribute, got.NameAttribute, got.GroupsAttribute},
			[]string{want.EmailAttribute, want.NameAttribute, want.GroupsAttribute})
	}
	if !maps.Equal(got.GroupRoles, want.GroupRoles) {
		add("GroupRoles", got.GroupRoles, want.GroupRoles)
	}
	if got.DefaultRole != want.DefaultRole {
		add("DefaultRole", got.DefaultRole, want.DefaultRole)
	}
	if !slices.Equal(got.AllowedDomains, want.AllowedDomains) {
		add("AllowedDomains", got.AllowedDomains, want.AllowedDomains)
	}
	if !slices.Equal(got.MFAAuthnContexts, want.MFAAuthnContexts) {
		add("MFAAuthnContexts", got.MFAAuthnContexts, want.MFAAuthnContexts)
	}
	if got.SyncRoles != want.SyncRoles || got.JIT != want.JIT || got.IdPInitiated != want.IdPInitiated ||
		got.AllowSHA1 != want.AllowSHA1 || got.AllowCBC != want.AllowCBC || got.RequireValidCertificates != want.RequireValidCertificates {
		add("flags", []bool{got.SyncRoles, got.JIT, got.IdPInitiated, got.AllowSHA1, got.AllowCBC, got.RequireValidCertificates},
			[]bool{want.SyncRoles, want.JIT, want.IdPInitiated, want.AllowSHA1, want.AllowCBC, want.RequireValidCertificates})
	}
	return strings.Join(d, "; ")
}

func put(t *testing.T, st sso.Stores, c sso.Connection) {
	t.Helper()
	if err := st.Connections.PutConnection(t.Context(), c); err != nil {
		t.Fatalf("PutConnection(%s): %v", c.Tenant, err)
	}
}

func wantConn(t *testing.T, st sso.Stores, want sso.Connection) {
	t.Helper()
	got, err := st.Connections.Connection(t.Context(), want.Tenant)
	if err != nil {
		t.Errorf("Connection(%s): %v", want.Tenant, err)
		return
	}
	if d := diffConn(got, want); d != "" {
		t.Errorf("Connection(%s): %s", want.Tenant, d)
	}
}

func wantNoConn(t *testing.T, st sso.Stores, tenant string) {
	t.Helper()
	if c, err := st.Connections.Connection(t.Context(), tenant); !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("Connection(%s) = %+v, %v; want ErrNotFound", tenant, c.Tenant, err)
	}
}

var putTests = []test{
	{"RoundTripEveryField", func(t *testing.T, st sso.Stores) {
		// Times in another zone, to the microsecond; large metadata.
		c := conn("t1")
		c.MetadataFetchedAt = base.In(time.FixedZone("UTC+05:30", 5*3600+30*60)).Add(987 * time.Microsecond)
		c.Metadata = strings.Repeat("<x>ü</x>", 60_000) // 540 KB
		put(t, st, c)
		wantConn(t, st, c)
	}},
	{"ZeroValues", func(t *testing.T, st sso.Stores) {
		c := sso.Connection{Tenant: "t1", Metadata: "<m/>"}
		put(t, st, c)
		wantConn(t, st, c)
	}},
	{"ReplacesWhole", func(t *testing.T, st sso.Stores) {
		put(t, st, conn("t1"))
		c := sso.Connection{Tenant: "t1", Metadata: "<other/>", EmailAttribute: "email"}
		put(t, st, c)
		wantConn(t, st, c)
	}},
	{"OtherTenantsUntouched", func(t *testing.T, st sso.Stores) {
		a, b := conn("a"), conn("b")
		put(t, st, a)
		put(t, st, b)
		a2 := conn("a")
		a2.DefaultRole = "admin"
		put(t, st, a2)
		wantConn(t, st, a2)
		wantConn(t, st, b)
	}},
	{"KeepsOwnCopy", func(t *testing.T, st sso.Stores) {
		c := conn("t1")
		want := conn("t1")
		put(t, st, c)
		c.GroupRoles["Admins"] = "owner"
		c.ExtraCertificates[0] = "changed"
		c.MetadataSigningCertificates[0] = "changed"
		c.AllowedDomains[0] = "evil.test"
		c.MFAAuthnContexts[0] = "urn:evil"
		wantConn(t, st, want)
		got, err := st.Connections.Connection(t.Context(), "t1")
		if err != nil {
			t.Fatal(err)
		}
		got.GroupRoles["Admins"] = "owner"
		got.AllowedDomains[1] = "evil.test"
		got.MFAAuthnContexts[1] = "urn:evil"
		got.ExtraCertificates[1] = "changed"
		got.MetadataSigningCertificates[1] = "changed"
		wantConn(t, st, want)
	}},
}

var getTests = []test{
	{"MissingIsNotFound", func(t *testing.T, st sso.Stores) {
		wantNoConn(t, st, "t1")
		put(t, st, conn("t1"))
		wantNoConn(t, st, "t2")
		wantNoConn(t, st, "T1")
	}},
}

var deleteTests = []test{
	{"Removes", func(t *testing.T, st sso.Stores) {
		put(t, st, conn("a"))
		put(t, st, conn("b"))
		if err := st.Connections.DeleteConnection(t.Context(), "a"); err != nil {
			t.Fatalf("DeleteConnection: %v", err)
		}
		wantNoConn(t, st, "a")
		wantConn(t, st, conn("b"))
	}},
	{"MissingIsNotFound", func(t *testing.T, st sso.Stores) {
		if err := st.Connections.DeleteConnection(t.Context(), "a"); !errors.Is(err, sso.ErrNotFound) {
			t.Errorf("DeleteConnection of a missing tenant = %v, want ErrNotFound", err)
		}
		put(t, st, conn("a"))
		if err := st.Connections.DeleteConnection(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
		if err := st.Connections.DeleteConnection(t.Context(), "a"); !errors.Is(err, sso.ErrNotFound) {
			t.Errorf("second DeleteConnection = %v, want ErrNotFound", err)
		}
	}},
}

func update(t *testing.T, st sso.Stores, tenant, url, md string, at time.Time) bool {
	t.Helper()
	ok, err := st.Connections.UpdateMetadata(t.Context(), tenant, url, md, at)
	if err != nil {
		t.Fatalf("UpdateMetadata: %v", err)
	}
	return ok
}

var updateTests = []test{
	{"SetsOnlyMetadata", func(t *testing.T, st sso.Stores) {
		c := conn("t1")
		put(t, st, c)
		at := base.Add(987 * time.Microsecond)
		if !update(t, st, "t1", c.MetadataURL, "<new/>", at) {
			t.Errorf("UpdateMetadata with a newer time reported no change")
		}
		c.Metadata, c.MetadataFetchedAt = "<new/>", at
		wantConn(t, st, c)
	}},
	{"FirstFetch", func(t *testing.T, st sso.Stores) {
		// A connection never fetched has a zero MetadataFetchedAt, which
		// is before any time.
		c := conn("t1")
		c.Metadata, c.MetadataFetchedAt = "", time.Time{}
		put(t, st, c)
		if !update(t, st, "t1", c.MetadataURL, "<first/>", base) {
			t.Errorf("first UpdateMetadata reported no change")
		}
		c.Metadata, c.MetadataFetchedAt = "<first/>", base
		wantConn(t, st, c)
	}},
	{"OlderOrEqualChangesNothing", func(t *testing.T, st sso.Stores) {
		c := conn("t1")
		put(t, st, c)
		for _, at := range []time.Time{c.MetadataFetchedAt, c.MetadataFetchedAt.Add(-time.Microsecond), c.MetadataFetchedAt.Add(-time.Hour)} {
			if update(t, st, "t1", c.MetadataURL, "<old/>", at) {
				t.Errorf("UpdateMetadata at %v (stored %v) reported a change", at, c.MetadataFetchedAt)
			}
		}
		wantConn(t, st, c)
	}},
	{"OtherURLChangesNothing", func(t *testing.T, st sso.Stores) {
		c := conn("t1")
		put(t, st, c)
		for _, u := range []string{"https://old.example.com/metadata", "", strings.ToUpper(c.MetadataURL)} {
			if update(t, st, "t1", u, "<other/>", base.Add(time.Hour)) {
				t.Errorf("UpdateMetadata from URL %q (stored %q) reported a change", u, c.MetadataURL)
			}
		}
		wantConn(t, st, c)
	}},
	{"MissingIsNotFound", func(t *testing.T, st sso.Stores) {
		put(t, st, conn("a"))
		if _, err := st.Connections.UpdateMetadata(t.Context(), "b", conn("b").MetadataURL, "<m/>", base); !errors.Is(err, sso.ErrNotFound) {
			t.Errorf("UpdateMetadata of a tenant without a connection = %v, want ErrNotFound", err)
		}
		wantConn(t, st, conn("a"))
	}},
}

// ---------------------------------------------------------------------------
// Requests

func req(tenant, id string, expires time.Time) sso.Request {
	return sso.Request{
		Tenant:     tenant,
		ID:         id,
		Kind:       sso.KindLogin,
		RelayState: "relay-" + id,
		ReturnTo:   "/reports?q=ü&x=1#frag",
		Binding:    "b1946ac92492d2347c6235b4d2611184b1946ac92492d2347c6235b4d2611184",
		CreatedAt:  expires.Add(-10 * time.Minute),
		Expires:    expires,
	}
}

func diffReq(got, want sso.Request) string {
	if got.Tenant != want.Tenant || got.ID != want.ID || got.Kind != want.Kind || got.RelayState != want.RelayState ||
		got.ReturnTo != want.ReturnTo || got.Binding != want.Binding || !got.CreatedAt.Equal(want.CreatedAt) || !got.Expires.Equal(want.Expires) {
		return fmt.Sprintf("%+v, want %+v", got, want)
	}
	return ""
}

func remember(t *testing.T, st sso.Stores, r sso.Request) {
	t.Helper()
	if err := st.Requests.RememberRequest(t.Context(), r); err != nil {
		t.Fatalf("RememberRequest(%s/%s): %v", r.Tenant, r.ID, err)
	}
}

func wantConsume(t *testing.T, st sso.Stores, want sso.Request, now time.Time) {
	t.Helper()
	got, err := st.Requests.ConsumeRequest(t.Context(), want.Tenant, want.ID, now)
	if err != nil {
		t.Errorf("ConsumeRequest(%s/%s) at %v: %v", want.Tenant, want.ID, now, err)
		return
	}
	if d := diffReq(got, want); d != "" {
		t.Errorf("ConsumeRequest(%s/%s) = %s", want.Tenant, want.ID, d)
	}
}

func wantNoConsume(t *testing.T, st sso.Stores, tenant, id string, now time.Time) {
	t.Helper()
	if r, err := st.Requests.ConsumeRequest(t.Context(), tenant, id, now); !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("ConsumeRequest(%s/%s) at %v = %+v, %v; want ErrNotFound", tenant, id, now, r, err)
	}
}

var rememberTests = []test{
	{"RoundTripEveryField", func(t *testing.T, st sso.Stores) {
		r := req("t1", "id-0123456789abcdef0123456789abcdef01234567", base.Add(10*time.Minute+987*time.Microsecond))
		r.CreatedAt = base.In(time.FixedZone("UTC-03:00", -3*3600)).Add(3 * time.Microsecond)
		r.Kind = sso.KindLogout
		remember(t, st, r)
		wantConsume(t, st, r, base)
	}},
	{"ZeroValues", func(t *testing.T, st sso.Stores) {
		r := sso.Request{Tenant: "t1", ID: "id-1", Expires: base.Add(time.Minute)}
		remember(t, st, r)
		wantConsume(t, st, r, base)
	}},
	{"DuplicateChangesNothing", func(t *testing.T, st sso.Stores) {
		r := req("t1", "id-1", base.Add(10*time.Minute))
		remember(t, st, r)
		dup := req("t1", "id-1", base.Add(time.Hour))
		dup.ReturnTo = "/other"
		if err := st.Requests.RememberRequest(t.Context(), dup); !errors.Is(err, sso.ErrDuplicate) {
			t.Errorf("RememberRequest of an existing ID = %v, want ErrDuplicate", err)
		}
		wantConsume(t, st, r, base)
	}},
	{"TenantsIndependent", func(t *testing.T, st sso.Stores) {
		a := req("a", "id-1", base.Add(10*time.Minute))
		b := req("b", "id-1", base.Add(20*time.Minute))
		b.ReturnTo = "/b"
		remember(t, st, a)
		remember(t, st, b)
		wantNoConsume(t, st, "c", "id-1", base)
		wantConsume(t, st, b, base)
		wantConsume(t, st, a, base)
	}},
}

var consumeTests = []test{
	{"Once", func(t *testing.T, st sso.Stores) {
		r := req("t1", "id-1", base.Add(10*time.Minute))
		remember(t, st, r)
		wantConsume(t, st, r, base)
		wantNoConsume(t, st, "t1", "id-1", base)
	}},
	{"NeverStored", func(t *testing.T, st sso.Stores) {
		remember(t, st, req("t1", "id-1", base.Add(10*time.Minute)))
		wantNoConsume(t, st, "t1", "id-2", base)
		wantNoConsume(t, st, "t2", "id-1", base)
		wantNoConsume(t, st, "t1", "ID-1", base)
	}},
	{"ExpiredIsNotFound", func(t *testing.T, st sso.Stores) {
		exp := base.Add(10 * time.Minute)
		for i, now := range []time.Time{exp, exp.Add(time.Microsecond), exp.Add(24 * time.Hour)} {
			r := req("t1", fmt.Sprint("id-", i), exp)
			remember(t, st, r)
			wantNoConsume(t, st, "t1", r.ID, now)
		}
		r := req("t1", "id-live", exp)
		remember(t, st, r)
		wantConsume(t, st, r, exp.Add(-time.Microsecond))
	}},
	{"ExpiredConsumeLeavesOthers", func(t *testing.T, st sso.Stores) {
		a := req("t1", "id-a", base.Add(time.Minute))
		b := req("t1", "id-b", base.Add(time.Hour))
		remember(t, st, a)
		remember(t, st, b)
		wantNoConsume(t, st, "t1", "id-a", base.Add(2*time.Minute))
		wantConsume(t, st, b, base.Add(2*time.Minute))
	}},
}

// ---------------------------------------------------------------------------
// Replay cache

func insert(t *testing.T, st sso.Stores, tenant, id string, until, now time.Time) bool {
	t.Helper()
	ok, err := st.Replay.InsertID(t.Context(), tenant, id, until, now)
	if err != nil {
		t.Fatalf("InsertID(%s/%s): %v", tenant, id, err)
	}
	return ok
}

var insertTests = []test{
	{"FirstIsNew", func(t *testing.T, st sso.Stores) {
		if !insert(t, st, "t1", "id-a", base.Add(5*time.Minute), base) {
			t.Errorf("first InsertID was not new")
		}
		if !insert(t, st, "t1", "_0f3c\u00e9", base.Add(5*time.Minute), base) {
			t.Errorf("first InsertID of a second ID was not new")
		}
	}},
	{"SecondIsNotNew", func(t *testing.T, st sso.Stores) {
		until := base.Add(5 * time.Minute)
		insert(t, st, "t1", "id-a", until, base)
		for _, now := range []time.Time{base, base.Add(time.Minute), until.Add(-time.Microsecond)} {
			if insert(t, st, "t1", "id-a", until, now) {
				t.Errorf("InsertID of a recorded ID at %v (until %v) was new", now, until)
			}
		}
	}},
	{"SubMicrosecondUntilNotShortened", func(t *testing.T, st sso.Stores) {
		// An until between two microseconds (assertion times carry
		// nanoseconds) is kept to the next one, never the one before:
		// a record that ends early lets a replay in.
		until := base.Add(5*time.Minute + 900*time.Nanosecond)
		insert(t, st, "t1", "id-a", until, base)
		for _, now := range []time.Time{until.Add(-900 * time.Nanosecond), until.Add(-400 * time.Nanosecond)} {
			if insert(t, st, "t1", "id-a", until, now) {
				t.Errorf("InsertID of a recorded ID at %v, before its until %v, was new", now, until)
			}
		}
		if !insert(t, st, "t1", "id-a", until, until.Add(100*time.Nanosecond)) {
			t.Errorf("InsertID after the record's until was not new")
		}
	}},
	{"ExpiredCountsAsAbsent", func(t *testing.T, st sso.Stores) {
		until := base.Add(5 * time.Minute)
		insert(t, st, "t1", "id-a", until, base)
		until2 := until.Add(5 * time.Minute)
		if !insert(t, st, "t1", "id-a", until2, until) {
			t.Errorf("InsertID at the record's until was not new")
		}
		// The record was replaced: it now lasts until until2.
		if insert(t, st, "t1", "id-a", until2, until2.Add(-time.Microsecond)) {
			t.Errorf("InsertID before the replaced record's until was new")
		}
		if !insert(t, st, "t1", "id-a", until2, until2.Add(time.Hour)) {
			t.Errorf("InsertID long after until was not new")
		}
	}},
	{"NotNewChangesNothing", func(t *testing.T, st sso.Stores) {
		until := base.Add(5 * time.Minute)
		insert(t, st, "t1", "id-a", until, base)
		// A later until on a repeated insert does not extend the record.
		if insert(t, st, "t1", "id-a", until.Add(time.Hour), base.Add(time.Minute)) {
			t.Fatalf("repeated InsertID was new")
		}
		if !insert(t, st, "t1", "id-a", until.Add(2*time.Hour), until) {
			t.Errorf("InsertID at the first until was not new: a repeated insert extended the record")
		}
	}},
	{"TenantsIndependent", func(t *testing.T, st sso.Stores) {
		until := base.Add(5 * time.Minute)
		if !insert(t, st, "a", "id-x", until, base) || !insert(t, st, "b", "id-x", until, base) {
			t.Errorf("the same ID in two tenants was not new in both")
		}
		if insert(t, st, "a", "id-x", until, base) || insert(t, st, "b", "id-x", until, base) {
			t.Errorf("a repeated ID was new in one of the tenants")
		}
	}},
}

// ---------------------------------------------------------------------------
// Subjects

// The entity IDs of two IdPs: a tenant's, and the one that replaced it.
const (
	idpA = "https://idp-a.example/saml/metadata"
	idpB = "https://idp-b.example/saml/metadata"
)

// subject returns a subject of tenant's user, issued by idpA, with every
// field set.
func subject(tenant, user, nameID string, expires time.Time) sso.Subject {
	return sso.Subject{
		Tenant:       tenant,
		UserID:       user,
		IdP:          idpA,
		NameID:       nameID,
		NameIDFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
		SessionIndex: "_idx-" + user + "-" + nameID,
		Expires:      expires,
	}
}

func diffSubject(got, want sso.Subject) string {
	if !got.Expires.Equal(want.Expires) {
		return fmt.Sprintf("Expires = %v, want %v", got.Expires, want.Expires)
	}
	got.Expires, want.Expires = time.Time{}, time.Time{}
	if got != want {
		return fmt.Sprintf("got %+v, want %+v", got, want)
	}
	return ""
}

func putSubject(t *testing.T, st sso.Stores, s sso.Subject, now time.Time) {
	t.Helper()
	if err := st.Subjects.PutSubject(t.Context(), s, now); err != nil {
		t.Fatalf("PutSubject(%s/%s): %v", s.Tenant, s.UserID, err)
	}
}

func wantSubject(t *testing.T, st sso.Stores, want sso.Subject, now time.Time) {
	t.Helper()
	got, err := st.Subjects.Subject(t.Context(), want.Tenant, want.UserID, now)
	if err != nil {
		t.Fatalf("Subject(%s/%s) at %v: %v", want.Tenant, want.UserID, now, err)
	}
	if d := diffSubject(got, want); d != "" {
		t.Errorf("Subject(%s/%s): %s", want.Tenant, want.UserID, d)
	}
}

func wantNoSubject(t *testing.T, st sso.Stores, tenant, user string, now time.Time) {
	t.Helper()
	got, err := st.Subjects.Subject(t.Context(), tenant, user, now)
	if !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("Subject(%s/%s) at %v = %+v, %v; want ErrNotFound", tenant, user, now, got, err)
	}
}

// wantByNameID checks SubjectsByNameID against want, in order.
func wantByNameID(t *testing.T, st sso.Stores, tenant, idp, nameID string, now time.Time, want ...sso.Subject) {
	t.Helper()
	got, err := st.Subjects.SubjectsByNameID(t.Context(), tenant, idp, nameID, now)
	if err != nil {
		t.Fatalf("SubjectsByNameID(%s, %q, %q): %v", tenant, idp, nameID, err)
	}
	if len(got) != len(want) {
		t.Fatalf("SubjectsByNameID(%s, %q, %q) at %v = %+v, want %d subjects %+v", tenant, idp, nameID, now, got, len(want), want)
	}
	for i := range want {
		if d := diffSubject(got[i], want[i]); d != "" {
			t.Errorf("SubjectsByNameID(%s, %q, %q)[%d]: %s", tenant, idp, nameID, i, d)
		}
	}
}

var putSubjectTests = []test{
	{"RoundTripEveryField", func(t *testing.T, st sso.Stores) {
		s := subject("t1", "u1", "00u1a2b3C4d5E6f7g8h9", base.Add(24*time.Hour+987*time.Microsecond))
		s.Expires = s.Expires.In(time.FixedZone("UTC+05:30", 5*3600+1800))
		putSubject(t, st, s, base)
		wantSubject(t, st, s, base)
		wantByNameID(t, st, "t1", idpA, s.NameID, base, s)
	}},
	{"AnyText", func(t *testing.T, st sso.Stores) {
		// NameIDs are the IdP's: any XML text, long, with spaces, quotes,
		// and characters outside ASCII.
		s := subject("t1", "u1", "CN=Zoë O'Brien, OU=Ventes \"EU\", DC=exemple, DC=fr "+strings.Repeat("x", 400), base.Add(time.Hour))
		s.NameIDFormat = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
		s.SessionIndex = strings.Repeat("é", 100)
		// Entity IDs are URIs or any other name, up to MaxEntityIDBytes.
		s.IdP = "urn:Zoë:idp \"EU\" " + strings.Repeat("y", sso.MaxEntityIDBytes-len("urn:Zoë:idp \"EU\" "))
		putSubject(t, st, s, base)
		wantSubject(t, st, s, base)
		wantByNameID(t, st, s.Tenant, s.IdP, s.NameID, base, s)
	}},
	{"ZeroValues", func(t *testing.T, st sso.Stores) {
		// No IdP: a record kept before the IdP was; it belongs to none.
		s := sso.Subject{Tenant: "t1", UserID: "u1", NameID: "alice@example.com", Expires: base.Add(time.Hour)}
		putSubject(t, st, s, base)
		wantSubject(t, st, s, base)
		wantByNameID(t, st, "t1", "", "alice@example.com", base)
		wantByNameID(t, st, "t1", idpA, "alice@example.com", base)
	}},
	{"ReplacesWhole", func(t *testing.T, st sso.Stores) {
		old := subject("t1", "u1", "old-id", base.Add(48*time.Hour))
		putSubject(t, st, old, base)
		s := sso.Subject{Tenant: "t1", UserID: "u1", IdP: idpB, NameID: "new-id", Expires: base.Add(time.Hour)}
		putSubject(t, st, s, base)
		wantSubject(t, st, s, base)
		wantByNameID(t, st, "t1", idpA, "old-id", base)
		wantByNameID(t, st, "t1", idpA, "new-id", base)
		wantByNameID(t, st, "t1", idpB, "new-id", base, s)
		// Past the new Expires, the old record does not come back.
		wantNoSubject(t, st, "t1", "u1", base.Add(2*time.Hour))
		wantByNameID(t, st, "t1", idpA, "old-id", base.Add(2*time.Hour))
	}},
	{"ReplacesIdP", func(t *testing.T, st sso.Stores) {
		// The same NameID from the IdP that replaced the tenant's: the
		// user is found under the new IdP only.
		old := subject("t1", "u1", "n1", base.Add(time.Hour))
		putSubject(t, st, old, base)
		s := old
		s.IdP, s.SessionIndex = idpB, "_b"
		putSubject(t, st, s, base)
		wantSubject(t, st, s, base)
		wantByNameID(t, st, "t1", idpA, "n1", base)
		wantByNameID(t, st, "t1", idpB, "n1", base, s)
	}},
	{"IdPTooLong", func(t *testing.T, st sso.Stores) {
		// An IdP over MaxEntityIDBytes is bad input: an *InputError,
		// and the user's subject is left as it was.
		old := subject("t1", "u1", "n1", base.Add(time.Hour))
		putSubject(t, st, old, base)
		s := subject("t1", "u1", "n2", base.Add(2*time.Hour))
		s.IdP = "https://idp.example/" + strings.Repeat("x", sso.MaxEntityIDBytes)
		err := st.Subjects.PutSubject(t.Context(), s, base)
		var ie *sso.InputError
		if !errors.As(err, &ie) {
			t.Errorf("PutSubject with an IdP of %d bytes = %v, want an *sso.InputError", len(s.IdP), err)
		}
		wantSubject(t, st, old, base)
		wantByNameID(t, st, "t1", idpA, "n1", base, old)
		wantByNameID(t, st, "t1", s.IdP, "n2", base)
		fresh := subject("t1", "u2", "n3", base.Add(time.Hour))
		fresh.IdP = s.IdP
		if err := st.Subjects.PutSubject(t.Context(), fresh, base); !errors.As(err, &ie) {
			t.Errorf("PutSubject of a new user with an IdP of %d bytes = %v, want an *sso.InputError", len(s.IdP), err)
		}
		wantNoSubject(t, st, "t1", "u2", base)
	}},
	{"SameNameIDKeepsIndex", func(t *testing.T, st sso.Stores) {
		s := subject("t1", "u1", "n1", base.Add(time.Hour))
		putSubject(t, st, s, base)
		s.SessionIndex, s.Expires = "_second", base.Add(3*time.Hour)
		putSubject(t, st, s, base.Add(time.Minute))
		wantByNameID(t, st, "t1", idpA, "n1", base.Add(2*time.Hour), s)
	}},
	{"ReplacesExpired", func(t *testing.T, st sso.Stores) {
		old := subject("t1", "u1", "n1", base.Add(time.Minute))
		putSubject(t, st, old, base)
		s := subject("t1", "u1", "n2", base.Add(3*time.Hour))
		putSubject(t, st, s, base.Add(time.Hour))
		wantSubject(t, st, s, base.Add(time.Hour))
		wantByNameID(t, st, "t1", idpA, "n1", base)
	}},
	{"OthersUntouched", func(t *testing.T, st sso.Stores) {
		a := subject("t1", "u1", "n1", base.Add(time.Hour))
		b := subject("t1", "u2", "n2", base.Add(time.Hour))
		c := subject("t2", "u1", "n1", base.Add(time.Hour))
		for _, s := range []sso.Subject{a, b, c} {
			putSubject(t, st, s, base)
		}
		putSubject(t, st, subject("t1", "u1", "n3", base.Add(2*time.Hour)), base)
		wantSubject(t, st, b, base)
		wantSubject(t, st, c, base)
		wantByNameID(t, st, "t2", idpA, "n1", base, c)
	}},
}

var subjectTests = []test{
	{"NotFound", func(t *testing.T, st sso.Stores) {
		putSubject(t, st, subject("t1", "u1", "n1", base.Add(time.Hour)), base)
		wantNoSubject(t, st, "t1", "u2", base)
		wantNoSubject(t, st, "t2", "u1", base)
		wantNoSubject(t, st, "t1", "U1", base)
		wantNoSubject(t, st, "", "", base)
	}},
	{"ExpiredIsNotFound", func(t *testing.T, st sso.Stores) {
		exp := base.Add(time.Hour)
		s := subject("t1", "u1", "n1", exp)
		putSubject(t, st, s, base)
		wantSubject(t, st, s, exp.Add(-time.Microsecond))
		wantNoSubject(t, st, "t1", "u1", exp)
		wantNoSubject(t, st, "t1", "u1", exp.Add(time.Microsecond))
		wantNoSubject(t, st, "t1", "u1", exp.Add(30*24*time.Hour))
	}},
	{"ExpiredPutIsNotFound", func(t *testing.T, st sso.Stores) {
		// A record already expired when stored is never returned.
		putSubject(t, st, subject("t1", "u1", "n1", base), base.Add(time.Second))
		wantNoSubject(t, st, "t1", "u1", base.Add(time.Second))
		wantByNameID(t, st, "t1", idpA, "n1", base.Add(time.Second))
	}},
}

var byNameIDTests = []test{
	{"SortedByUserID", func(t *testing.T, st sso.Stores) {
		var want []sso.Subject
		for _, u := range []string{"u3", "u1", "u10", "u2"} {
			s := subject("t1", u, "shared", base.Add(time.Hour))
			putSubject(t, st, s, base)
			want = append(want, s)
		}
		slices.SortFunc(want, func(a, b sso.Subject) int { return strings.Compare(a.UserID, b.UserID) })
		putSubject(t, st, subject("t1", "u9", "other", base.Add(time.Hour)), base)
		putSubject(t, st, subject("t2", "u0", "shared", base.Add(time.Hour)), base)
		wantByNameID(t, st, "t1", idpA, "shared", base, want...)
	}},
	{"ExactMatch", func(t *testing.T, st sso.Stores) {
		s := subject("t1", "u1", "Alice@Example.com", base.Add(time.Hour))
		putSubject(t, st, s, base)
		wantByNameID(t, st, "t1", idpA, "Alice@Example.com", base, s)
		for _, other := range []string{"alice@example.com", "Alice@Example.com ", "Alice@Example", "", "%", "Alice@Example.co_"} {
			wantByNameID(t, st, "t1", idpA, other, base)
		}
	}},
	{"OnlyLive", func(t *testing.T, st sso.Stores) {
		a := subject("t1", "u1", "n", base.Add(time.Hour))
		b := subject("t1", "u2", "n", base.Add(2*time.Hour))
		putSubject(t, st, a, base)
		putSubject(t, st, b, base)
		wantByNameID(t, st, "t1", idpA, "n", base.Add(time.Hour-time.Microsecond), a, b)
		wantByNameID(t, st, "t1", idpA, "n", base.Add(time.Hour), b)
		wantByNameID(t, st, "t1", idpA, "n", base.Add(2*time.Hour))
	}},
	{"OnlyTheIdP", func(t *testing.T, st sso.Stores) {
		// One NameID from two IdPs is two identities: each IdP's
		// lookup finds its own subjects only, matched exactly.
		a := subject("t1", "u1", "00u1", base.Add(time.Hour))
		b := subject("t1", "u2", "00u1", base.Add(time.Hour))
		b.IdP = idpB
		putSubject(t, st, a, base)
		putSubject(t, st, b, base)
		wantByNameID(t, st, "t1", idpA, "00u1", base, a)
		wantByNameID(t, st, "t1", idpB, "00u1", base, b)
		for _, other := range []string{strings.ToUpper(idpA), idpA + " ", idpA[:len(idpA)-1], "https://idp-%.example/saml/metadata", "https://idp-_.example/saml/metadata"} {
			wantByNameID(t, st, "t1", other, "00u1", base)
		}
	}},
	{"EmptyIdPMatchesNothing", func(t *testing.T, st sso.Stores) {
		// Not even the subjects without an IdP.
		a := subject("t1", "u1", "n", base.Add(time.Hour))
		none := sso.Subject{Tenant: "t1", UserID: "u2", NameID: "n", Expires: base.Add(time.Hour)}
		putSubject(t, st, a, base)
		putSubject(t, st, none, base)
		wantByNameID(t, st, "t1", "", "n", base)
		wantByNameID(t, st, "t1", idpA, "n", base, a)
	}},
	{"TenantsIndependent", func(t *testing.T, st sso.Stores) {
		a := subject("a", "u1", "n", base.Add(time.Hour))
		putSubject(t, st, a, base)
		wantByNameID(t, st, "a", idpA, "n", base, a)
		wantByNameID(t, st, "b", idpA, "n", base)
		wantByNameID(t, st, "", idpA, "n", base)
	}},
}

// ---------------------------------------------------------------------------
// Concurrency

// RunConcurrent runs the concurrency tests of every role newStores
// provides: the atomic steps of the contracts hammered from 50
// goroutines. Run it with -race.
func RunConcurrent(t *testing.T, newStores func(t *testing.T) sso.Stores) {
	t.Helper()
	const n = 50
	run := func(name string, needs func(sso.Stores) bool, fn func(t *testing.T, st sso.Stores)) {
		t.Run(name, func(t *testing.T) {
			st := newStores(t)
			if !needs(st) {
				t.Skip("the backend does not implement this role")
			}
			fn(t, st)
		})
	}
	run("InsertSameID", hasReplay, func(t *testing.T, st sso.Stores) {
		for round := range 5 {
			id := fmt.Sprint("id-assertion-", round)
			var mu sync.Mutex
			var fresh, seen int
			parallel(n, func(int) {
				ok, err := st.Replay.InsertID(t.Context(), "t1", id, base.Add(5*time.Minute), base)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("InsertID: %v", err)
				case ok:
					fresh++
				default:
					seen++
				}
			})
			if fresh != 1 || seen != n-1 {
				t.Errorf("round %d: %d inserts were new and %d not, want 1 and %d", round, fresh, seen, n-1)
			}
		}
	})
	run("InsertSameExpiredID", hasReplay, func(t *testing.T, st sso.Stores) {
		insert(t, st, "t1", "id-a", base, base.Add(-time.Minute))
		var mu sync.Mutex
		var fresh int
		parallel(n, func(int) {
			ok, err := st.Replay.InsertID(t.Context(), "t1", "id-a", base.Add(5*time.Minute), base)
			if err != nil {
				t.Errorf("InsertID: %v", err)
			}
			if ok {
				mu.Lock()
				fresh++
				mu.Unlock()
			}
		})
		if fresh != 1 {
			t.Errorf("%d inserts replacing an expired record were new, want 1", fresh)
		}
	})
	run("InsertManyIDs", hasReplay, func(t *testing.T, st sso.Stores) {
		var mu sync.Mutex
		fresh := 0
		parallel(n, func(i int) {
			ok, err := st.Replay.InsertID(t.Context(), fmt.Sprint("t", i%3), fmt.Sprint("id-", i), base.Add(5*time.Minute), base)
			if err != nil {
				t.Errorf("InsertID: %v", err)
			}
			if ok {
				mu.Lock()
				fresh++
				mu.Unlock()
			}
		})
		if fresh != n {
			t.Errorf("%d of %d distinct inserts were new", fresh, n)
		}
	})
	run("ConsumeSameRequest", hasRequests, func(t *testing.T, st sso.Stores) {
		for round := range 5 {
			r := req("t1", fmt.Sprint("id-request-", round), base.Add(10*time.Minute))
			remember(t, st, r)
			var mu sync.Mutex
			var got, missing int
			parallel(n, func(int) {
				c, err := st.Requests.ConsumeRequest(t.Context(), "t1", r.ID, base)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					got++
					if d := diffReq(c, r); d != "" {
						t.Errorf("ConsumeRequest = %s", d)
					}
				case errors.Is(err, sso.ErrNotFound):
					missing++
				default:
					t.Errorf("ConsumeRequest: %v", err)
				}
			})
			if got != 1 || missing != n-1 {
				t.Errorf("round %d: %d consumes succeeded and %d found nothing, want 1 and %d", round, got, missing, n-1)
			}
		}
	})
	run("RememberSameRequest", hasRequests, func(t *testing.T, st sso.Stores) {
		var mu sync.Mutex
		var ok, dup int
		parallel(n, func(i int) {
			r := req("t1", "id-same", base.Add(10*time.Minute))
			r.ReturnTo = fmt.Sprint("/", i)
			err := st.Requests.RememberRequest(t.Context(), r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, sso.ErrDuplicate):
				dup++
			default:
				t.Errorf("RememberRequest: %v", err)
			}
		})
		if ok != 1 || dup != n-1 {
			t.Errorf("%d remembers succeeded and %d were duplicates, want 1 and %d", ok, dup, n-1)
		}
	})
	run("PutSameSubject", hasSubjects, func(t *testing.T, st sso.Stores) {
		// Sign-ins of one user racing on replicas: the user ends with one
		// whole subject, found under its own NameID and no other.
		for round := range 3 {
			parallel(n, func(i int) {
				s := subject("t1", "u1", fmt.Sprint("n-", round, "-", i), base.Add(time.Duration(i+1)*time.Minute))
				if err := st.Subjects.PutSubject(t.Context(), s, base); err != nil {
					t.Errorf("PutSubject: %v", err)
				}
			})
			got, err := st.Subjects.Subject(t.Context(), "t1", "u1", base)
			if err != nil {
				t.Fatalf("Subject: %v", err)
			}
			var i int
			if _, err := fmt.Sscanf(got.NameID, fmt.Sprint("n-", round, "-%d"), &i); err != nil {
				t.Fatalf("round %d: Subject = %+v, not one of the round's", round, got)
			}
			want := subject("t1", "u1", got.NameID, base.Add(time.Duration(i+1)*time.Minute))
			if d := diffSubject(got, want); d != "" {
				t.Errorf("round %d: a mix of two puts: %s", round, d)
			}
			for j := range n {
				nameID := fmt.Sprint("n-", round, "-", j)
				if nameID == got.NameID {
					wantByNameID(t, st, "t1", idpA, nameID, base, want)
				} else {
					wantByNameID(t, st, "t1", idpA, nameID, base)
				}
			}
		}
	})
	run("PutManySubjects", hasSubjects, func(t *testing.T, st sso.Stores) {
		parallel(n, func(i int) {
			s := subject("t1", fmt.Sprintf("u%02d", i), "shared", base.Add(time.Hour))
			if err := st.Subjects.PutSubject(t.Context(), s, base); err != nil {
				t.Errorf("PutSubject: %v", err)
			}
		})
		got, err := st.Subjects.SubjectsByNameID(t.Context(), "t1", idpA, "shared", base)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("SubjectsByNameID = %d subjects, want %d", len(got), n)
		}
		for i, s := range got {
			if s.UserID != fmt.Sprintf("u%02d", i) {
				t.Errorf("SubjectsByNameID[%d].UserID = %q, want u%02d", i, s.UserID, i)
			}
		}
	})
	run("UpdateMetadataNewestWins", hasConnections, func(t *testing.T, st sso.Stores) {
		c := conn("t1")
		put(t, st, c)
		parallel(n, func(i int) {
			at := c.MetadataFetchedAt.Add(time.Duration(i+1) * time.Second)
			if _, err := st.Connections.UpdateMetadata(t.Context(), "t1", c.MetadataURL, fmt.Sprint("<m", i, "/>"), at); err != nil {
				t.Errorf("UpdateMetadata: %v", err)
			}
		})
		c.Metadata = fmt.Sprint("<m", n-1, "/>")
		c.MetadataFetchedAt = c.MetadataFetchedAt.Add(n * time.Second)
		wantConn(t, st, c)
	})
	run("PutAndUpdate", hasConnections, func(t *testing.T, st sso.Stores) {
		// Administrators replacing the connection while a refresh lands:
		// each result is one whole connection, never a mix.
		put(t, st, conn("t1"))
		parallel(n, func(i int) {
			if i%2 == 0 {
				c := conn("t1")
				c.DefaultRole = fmt.Sprint("role-", i)
				if err := st.Connections.PutConnection(t.Context(), c); err != nil {
					t.Errorf("PutConnection: %v", err)
				}
				return
			}
			if _, err := st.Connections.UpdateMetadata(t.Context(), "t1", conn("t1").MetadataURL, "<refreshed/>", base.Add(time.Duration(i)*time.Second)); err != nil {
				t.Errorf("UpdateMetadata: %v", err)
			}
		})
		got, err := st.Connections.Connection(t.Context(), "t1")
		if err != nil {
			t.Fatal(err)
		}
		want := conn("t1")
		want.DefaultRole = got.DefaultRole
		if got.Metadata == "<refreshed/>" {
			want.Metadata, want.MetadataFetchedAt = got.Metadata, got.MetadataFetchedAt
		}
		if d := diffConn(got, want); d != "" {
			t.Errorf("after concurrent puts and updates: %s", d)
		}
	})
}

// parallel runs f(0..n-1) in n goroutines released together.
func parallel(n int, f func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			f(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}
