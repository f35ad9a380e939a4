package guard_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// userWithRoles creates a user holding roles (granted by the system) and
// returns a signed-in principal and session token for them.
func (f *fixture) userWithRoles(t testing.TB, email string, roles ...string) (guard.Principal, string) {
	t.Helper()
	if _, err := f.g.CreateUser(f.ctx, guard.System("test"), guard.NewUser{Tenant: tenantID, Email: email, Name: "U", Password: ownerPW, Roles: roles}); err != nil {
		t.Fatal(err)
	}
	p, token := f.signIn(t, email)
	p.Addr, p.IP, p.UserAgent = netip.MustParseAddr("203.0.113.5"), "203.0.113.5", "test"
	return p, token
}

// signIn signs the user with email (and password ownerPW) in and returns
// the new session's principal, authenticated now (a recent
// authentication, for the calls that need one), and its token.
func (f *fixture) signIn(t testing.TB, email string) (guard.Principal, string) {
	t.Helper()
	res, err := f.login(email, ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	return p, res.Token
}

// withMember returns a fixture that allows three sessions per user, with
// an admin signed in and a member (bob@example.test) signed in twice: the
// principals and the session tokens.
func withMember(t *testing.T) (f *fixture, admin guard.Principal, adminTok string, bob guard.Principal, bobToks []string) {
	t.Helper()
	f = newFixture(t, func(c *guard.Config) { c.Defaults = guard.Policy{SessionLimit: 3} })
	admin, adminTok = f.userWithRoles(t, "adam@example.test", rbac.Admin)
	bob, tok := f.userWithRoles(t, "bob@example.test", rbac.Member)
	second, err := f.login("bob@example.test", ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	return f, admin, adminTok, bob, []string{tok, second.Token}
}

// serve runs one request with a session cookie through Middleware and
// Require(section, action) from client (RemoteAddr) and returns the code.
func serve(g *guard.Guard, token, remote string, s rbac.Section, a rbac.Action, header ...string) int {
	h := g.Middleware(g.Require(s, a)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })))
	return serveHandler(h, "/", token, remote, header...).Code
}

// serveHandler sends h a GET of path from remote, with the session token
// (if any) in Guard's cookie and the header pairs given.
func serveHandler(h http.Handler, path, token, remote string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = remote
	if token != "" {
		r.Header.Set("Cookie", "__Host-guard="+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

const client = "203.0.113.5:4444"

func TestReportsOnlyCannotSeeContacts(t *testing.T) {
	f := newFixture(t)
	p, tok := f.userWithRoles(t, "rita@example.test", rbac.ReportsOnly)
	if code := serve(f.g, tok, client, rbac.Reports, rbac.Read); code != 204 {
		t.Errorf("reports-only reading reports: %d, want 204", code)
	}
	for _, s := range []rbac.Section{rbac.Contacts, rbac.Campaigns, rbac.Settings, rbac.Users, rbac.Billing} {
		if code := serve(f.g, tok, client, s, rbac.Read); code != 403 {
			t.Errorf("reports-only reading %s: %d, want 403", s, code)
		}
	}
	if code := serve(f.g, tok, client, rbac.Reports, rbac.Write); code != 403 {
		t.Errorf("reports-only writing reports: %d, want 403", code)
	}
	if _, err := f.g.ListUsers(f.ctx, p, tenantID, "", 10); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("reports-only listing users: %v, want ErrForbidden", err)
	}
	denied := f.events(t, audit.AccessDenied)
	if len(denied) != 7 || denied[0].Meta["section"] != "contacts" || denied[0].Meta["subject"] != "user:"+p.UserID || denied[0].Tenant != tenantID {
		t.Errorf("access.denied events: %d, first %+v", len(denied), denied)
	}
}

func TestGrantInOneTenantMeansNothingInAnother(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	if _, err := f.g.CreateTenant(f.ctx, sys, "globex", "Globex", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	p, _ := f.userWithRoles(t, "ada@example.test", rbac.Owner)
	// GrantRole gives roles only to users of the tenant: a globex user
	// with the same ID as an acme user (written to the store, as no
	// facade call chooses an ID).
	twin := func(id, email string) {
		t.Helper()
		if err := f.mem.Users.CreateUser(f.ctx, auth.User{ID: id, Tenant: "globex", Email: email, Status: auth.StatusActive}); err != nil {
			t.Fatal(err)
		}
	}
	twin(p.UserID, "ada@example.test")
	// The same user ID given owner in globex by the system grants nothing in acme…
	if err := f.g.GrantRole(f.ctx, sys, "globex", "user:"+p.UserID, rbac.Owner); err != nil {
		t.Fatal(err)
	}
	// …and an acme owner reaches nothing of globex.
	for name, call := range map[string]func() error{
		"ListUsers":  func() error { _, err := f.g.ListUsers(f.ctx, p, "globex", "", 10); return err },
		"GrantRole":  func() error { return f.g.GrantRole(f.ctx, p, "globex", "user:"+p.UserID, rbac.Admin) },
		"QueryAudit": func() error { _, err := f.g.QueryAudit(f.ctx, p, "globex", audit.Query{}); return err },
		"Roles":      func() error { _, err := f.g.Roles(f.ctx, p, "globex"); return err },
	} {
		if err := call(); !errors.Is(err, guard.ErrForbidden) {
			t.Errorf("%s in globex by an acme owner: %v, want ErrForbidden", name, err)
		}
	}
	// The decision's tenant is the principal's: the principal says acme.
	d, err := f.g.Authorize(f.ctx, p, rbac.Billing, rbac.Manage)
	if err != nil || !d.Allowed {
		t.Errorf("acme owner on acme billing: %+v %v", d, err)
	}
	other, _ := f.userWithRoles(t, "bob@example.test")
	twin(other.UserID, "bob@example.test")
	if err := f.g.GrantRole(f.ctx, sys, "globex", "user:"+other.UserID, rbac.Owner); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Authorize(f.ctx, other, rbac.Contacts, rbac.Read); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("user with a globex grant reading acme contacts: %v, want ErrForbidden", err)
	}
}

// SECURITY-CHECKLIST RB-4.
func TestRevocationInForceOnNextRequest(t *testing.T) {
	mem := memstore.New()
	a := newFixture(t, func(c *guard.Config) { c.Stores = mem.Stores() })
	// A second replica sharing the stores (no tenant created twice).
	b, err := guard.New(guard.Config{Stores: mem.Stores(), AuditKey: auditKey, Hasher: fastHasher, Now: a.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	p, tok := a.userWithRoles(t, "mia@example.test", rbac.Member)
	for _, g := range []*guard.Guard{a.g, b} {
		if code := serve(g, tok, client, rbac.Contacts, rbac.Write); code != 204 {
			t.Fatalf("member writing contacts: %d", code)
		}
	}
	if err := a.g.RevokeRole(a.ctx, guard.System("test"), tenantID, "user:"+p.UserID, rbac.Member); err != nil {
		t.Fatal(err)
	}
	// The session issued with the old roles is over on every replica
	// (SE-3), and the user's decisions follow the new roles at once.
	for i, g := range []*guard.Guard{a.g, b} {
		if code := serve(g, tok, client, rbac.Contacts, rbac.Write); code != 401 {
			t.Errorf("replica %d: the old session after the revocation: %d, want 401", i, code)
		}
		if _, err := g.Authorize(a.ctx, p, rbac.Contacts, rbac.Write); !errors.Is(err, guard.ErrForbidden) {
			t.Errorf("replica %d: the next decision after the revocation: %v, want ErrForbidden", i, err)
		}
	}
	if err := b.GrantRole(a.ctx, guard.System("test"), tenantID, "user:"+p.UserID, rbac.Manager); err != nil {
		t.Fatal(err)
	}
	if d, err := a.g.Authorize(a.ctx, p, rbac.Contacts, rbac.Delete); err != nil || !d.Allowed {
		t.Errorf("the next decision after a grant on the other replica: %+v, %v; want allowed", d, err)
	}
	res, err := a.login("mia@example.test", ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	if code := serve(a.g, res.Token, client, rbac.Contacts, rbac.Delete); code != 204 {
		t.Errorf("a new session after the grant: %d, want 204", code)
	}
}

func TestNoPrivilegeEscalation(t *testing.T) {
	f := newFixture(t)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	target, _ := f.userWithRoles(t, "tess@example.test")
	if err := f.g.GrantRole(f.ctx, admin, tenantID, "user:"+target.UserID, rbac.Owner); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("admin granting owner: %v, want ErrForbidden", err)
	}
	if err := f.g.GrantRole(f.ctx, admin, tenantID, "user:"+target.UserID, rbac.Manager); err != nil {
		t.Errorf("admin granting manager: %v", err)
	}
	if err := f.g.DefineRole(f.ctx, admin, tenantID, "payer", []string{"billing:manage"}); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("admin defining a role with billing: %v, want ErrForbidden", err)
	}
	if err := f.g.DefineRole(f.ctx, admin, tenantID, "support", []string{"contacts:read", "reports:read"}); err != nil {
		t.Errorf("admin defining a role within their permissions: %v", err)
	}
	for _, bad := range []string{"a,b", "role*", "r:x", "r\n", "Owner", " x", "owner"} {
		if err := f.g.DefineRole(f.ctx, admin, tenantID, bad, []string{"reports:read"}); err == nil {
			t.Errorf("role name %q accepted", bad)
		}
	}
	var w *rbac.AdminWarning
	w, err := f.g.AdminWarning(f.ctx, guard.System("t"), tenantID)
	if err != nil || w != nil {
		t.Errorf("one admin: warning %+v, %v; want none", w, err)
	}
	if err := f.g.GrantRole(f.ctx, guard.System("t"), tenantID, "user:"+target.UserID, rbac.Owner); err != nil {
		t.Fatal(err)
	}
	if w, err = f.g.AdminWarning(f.ctx, guard.System("t"), tenantID); err != nil || w == nil || w.Count() != 2 {
		t.Errorf("two admins: warning %+v, %v", w, err)
	}
	// A deactivated owner still holds the role but is not counted: listed
	// apart, and one active admin is within the recommendation. The admin
	// becomes an owner first (still two owners and admins): the tenant's
	// last active owner cannot be deactivated.
	if err := f.g.GrantRole(f.ctx, guard.System("t"), tenantID, "user:"+admin.UserID, rbac.Owner); err != nil {
		t.Fatal(err)
	}
	if err := f.g.DeactivateUser(f.ctx, guard.System("t"), tenantID, target.UserID); err != nil {
		t.Fatal(err)
	}
	if w, err = f.g.AdminWarning(f.ctx, guard.System("t"), tenantID); err != nil || w != nil {
		t.Errorf("one active admin and a deactivated owner: warning %+v, %v; want none", w, err)
	}
	third, _ := f.userWithRoles(t, "thea@example.test")
	if err := f.g.GrantRole(f.ctx, guard.System("t"), tenantID, "user:"+third.UserID, rbac.Admin); err != nil {
		t.Fatal(err)
	}
	w, err = f.g.AdminWarning(f.ctx, guard.System("t"), tenantID)
	if err != nil || w == nil || w.Count() != 2 || len(w.Excluded) != 1 || w.Excluded[0] != rbac.User(target.UserID) ||
		!strings.HasPrefix(w.Message, "2 owners and admins") {
		t.Errorf("two active admins and a deactivated owner: warning %+v, %v; want 2 counted, the owner excluded", w, err)
	}
	if evs := f.events(t, audit.RoleGranted); len(evs) < 3 {
		t.Errorf("%d role.granted events", len(evs))
	}
}

func TestFourEyesApproval(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("t")
	req, tokReq := f.userWithRoles(t, "rob@example.test", rbac.Manager)
	appr, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
	member, _ := f.userWithRoles(t, "max@example.test", rbac.Member)
	if err := f.g.SetApprovalRequired(f.ctx, sys, tenantID, "campaigns:send", true); err != nil {
		t.Fatal(err)
	}
	// RequireApprovable lets the request through but marks it.
	var marked, reached bool
	h := f.g.Middleware(f.g.RequireApprovable(rbac.Campaigns, rbac.Send)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		marked = guard.NeedsApproval(r.Context())
	})))
	r := httptest.NewRequest("POST", "/send", nil)
	r.RemoteAddr = client
	r.Header.Set("Cookie", "__Host-guard="+tokReq)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if !marked {
		t.Error("RequireApprovable did not report that campaigns:send needs approval")
	}
	// Require, on a route whose handler knows nothing of approvals,
	// refuses it: the handler never acts without one.
	plain := f.g.Middleware(f.g.Require(rbac.Campaigns, rbac.Send)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
	})))
	w := httptest.NewRecorder()
	plain.ServeHTTP(w, r)
	if reached || w.Code != http.StatusForbidden || w.Header().Get(guard.ReasonHeader) != guard.ReasonApprovalRequired {
		t.Errorf("Require on an action under approval: reached %v, %d, reason %q; want 403, %q", reached, w.Code,
			w.Header().Get(guard.ReasonHeader), guard.ReasonApprovalRequired)
	}
	if r := reasons(f.events(t, audit.AccessDenied)); r[guard.ReasonApprovalRequired] != 1 {
		t.Errorf("access.denied reasons %v, want one %q", r, guard.ReasonApprovalRequired)
	}
	// Authorize fails closed as well: a caller who checks only the error
	// never acts unapproved. It records nothing (the caller may go on to
	// take an approval); a reports-only user, whose roles do not allow the
	// action at all, gets a plain ErrForbidden.
	denied := len(f.events(t, audit.AccessDenied))
	d, err := f.g.Authorize(f.ctx, req, rbac.Campaigns, rbac.Send)
	if !errors.Is(err, guard.ErrApprovalRequired) || !errors.Is(err, guard.ErrForbidden) || d.Allowed || !d.NeedsApproval {
		t.Errorf("Authorize of an action under approval = %+v, %v; want not Allowed, NeedsApproval, ErrApprovalRequired", d, err)
	}
	if n := len(f.events(t, audit.AccessDenied)); n != denied {
		t.Errorf("Authorize of an action under approval recorded %d access.denied events, want none", n-denied)
	}
	reader, _ := f.userWithRoles(t, "rea@example.test", rbac.ReportsOnly)
	if d, err := f.g.Authorize(f.ctx, reader, rbac.Campaigns, rbac.Send); errors.Is(err, guard.ErrApprovalRequired) || !errors.Is(err, guard.ErrForbidden) || d.Allowed || d.NeedsApproval {
		t.Errorf("Authorize for a reports-only user = %+v, %v; want a plain ErrForbidden", d, err)
	}
	if d, err := f.g.Authorize(f.ctx, req, rbac.Campaigns, rbac.Read); err != nil || !d.Allowed || d.NeedsApproval {
		t.Errorf("Authorize of campaigns:read = %+v, %v; want allowed", d, err)
	}
	// An action not under approval goes through Require as before.
	w = httptest.NewRecorder()
	r = httptest.NewRequest("GET", "/campaigns", nil)
	r.RemoteAddr = client
	r.Header.Set("Cookie", "__Host-guard="+tokReq)
	f.g.Middleware(f.g.Require(rbac.Campaigns, rbac.Read)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))).ServeHTTP(w, r)
	if w.Code != http.StatusNoContent {
		t.Errorf("Require on campaigns:read: %d, want 204", w.Code)
	}

	payload := []byte(`{"campaign":"c1","list":"all"}`)
	ap, err := f.g.RequestApproval(f.ctx, req, "campaigns:send", "c1", payload, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ApproveRequest(f.ctx, req, ap.ID); !errors.Is(err, rbac.ErrSelfApproval) {
		t.Errorf("self-approval: %v, want ErrSelfApproval", err)
	}
	if _, err := f.g.ApproveRequest(f.ctx, member, ap.ID); !errors.Is(err, guard.ErrForbidden) && !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("approval by a member without campaigns:approve: %v", err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, req, ap.ID, "campaigns:send", "c1", payload); !errors.Is(err, rbac.ErrNotApproved) {
		t.Errorf("consume before approval: %v, want ErrNotApproved", err)
	}
	if _, err := f.g.ApproveRequest(f.ctx, appr, ap.ID); err != nil {
		t.Fatalf("approval by another manager: %v", err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, req, ap.ID, "campaigns:send", "c1", []byte(`{"campaign":"c1","list":"everyone"}`)); !errors.Is(err, rbac.ErrMismatch) {
		t.Errorf("consume for another payload: %v, want ErrMismatch", err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, req, ap.ID, "campaigns:send", "c1", payload); err != nil {
		t.Fatalf("consume: %v", err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, req, ap.ID, "campaigns:send", "c1", payload); !errors.Is(err, rbac.ErrConsumed) {
		t.Errorf("second consume: %v, want ErrConsumed", err)
	}
	for _, a := range []audit.Action{audit.ApprovalRequested, audit.ApprovalApproved, audit.ApprovalConsumed} {
		if len(f.events(t, a)) == 0 {
			t.Errorf("no %s event", a)
		}
	}
	if r := reasons(f.events(t, audit.ApprovalApproved)); r["self_approval"] != 1 {
		t.Errorf("approval.approved reasons %v, want a self_approval refusal", r)
	}
}

func TestIPAllowListPerRequest(t *testing.T) {
	f := newFixture(t)
	admin, tok := f.userWithRoles(t, "ada@example.test", rbac.Owner)
	lists, err := f.g.IPAllowLists(f.ctx, admin, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	// A list that leaves out the admin's own address is refused…
	_, err = f.g.SetIPAllowList(f.ctx, admin, tenantID, guard.IPListChange{Scope: ipfilter.Users, Entries: []string{"198.51.100.0/24"}, Version: lists.Version})
	if !errors.Is(err, ipfilter.ErrSelfLockout) {
		t.Fatalf("self-lockout: %v, want ErrSelfLockout", err)
	}
	var pe *ipfilter.ParseError
	if _, err := f.g.SetIPAllowList(f.ctx, admin, tenantID, guard.IPListChange{Scope: ipfilter.Users, Entries: []string{"203.0.113.0/24", "010.0.0.1"}, Version: lists.Version}); !errors.As(err, &pe) {
		t.Errorf("leading zeros: %v, want a ParseError", err)
	}
	ap, err := f.g.SetIPAllowList(f.ctx, admin, tenantID, guard.IPListChange{Scope: ipfilter.Users, Entries: []string{"203.0.113.0/24", "2001:db8::/48"}, Version: lists.Version})
	if err != nil {
		t.Fatal(err)
	}
	if code := serve(f.g, tok, client, rbac.Reports, rbac.Read); code != 204 {
		t.Errorf("allowed address: %d", code)
	}
	if code := serve(f.g, tok, "[::ffff:203.0.113.77]:1", rbac.Reports, rbac.Read); code != 204 {
		t.Errorf("allowed IPv4-mapped address: %d", code)
	}
	if code := serve(f.g, tok, "198.51.100.7:1", rbac.Reports, rbac.Read); code != 403 {
		t.Errorf("address outside the list: %d, want 403", code)
	}
	// Refused again within the minute: refused, not recorded again (one
	// event a minute for the user and address).
	if code := serve(f.g, tok, "198.51.100.7:1", rbac.Reports, rbac.Read); code != 403 {
		t.Errorf("address outside the list, again: %d, want 403", code)
	}
	if n := len(f.events(t, audit.IPDenied)); n != 1 {
		t.Errorf("%d ip.denied events after two refusals in a minute, want 1", n)
	}
	f.clock.Advance(time.Minute)
	// A spoofed X-Forwarded-For from an untrusted peer changes nothing.
	if code := serve(f.g, tok, "198.51.100.7:1", rbac.Reports, rbac.Read, "X-Forwarded-For", "203.0.113.5"); code != 403 {
		t.Errorf("spoofed X-Forwarded-For: %d, want 403", code)
	}
	evs := f.events(t, audit.IPDenied)
	if len(evs) != 2 || evs[0].IP != "198.51.100.7" {
		t.Errorf("ip.denied events: %+v", evs)
	}
	// Login from outside the list is refused too.
	if _, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "ada@example.test", Password: ownerPW, IP: "198.51.100.7"}); !errors.Is(err, guard.ErrIPNotAllowed) {
		t.Errorf("login from outside the list: %v, want ErrIPNotAllowed", err)
	}
	// Lifting the list is in force on the next request.
	if _, err := f.g.SetIPAllowList(f.ctx, admin, tenantID, guard.IPListChange{Scope: ipfilter.Users, Version: ap.Version}); err != nil {
		t.Fatal(err)
	}
	if code := serve(f.g, tok, "198.51.100.7:1", rbac.Reports, rbac.Read); code != 204 {
		t.Errorf("after lifting the list: %d", code)
	}
}

func TestTrustedProxy(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) {
		c.Proxies = ipfilter.ResolverConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	})
	admin, tok := f.userWithRoles(t, "ada@example.test", rbac.Owner)
	if _, err := f.g.SetIPAllowList(f.ctx, admin, tenantID, guard.IPListChange{Scope: ipfilter.Users, Entries: []string{"203.0.113.0/24"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote, xff string
		want              int
	}{
		{"ThroughProxy", "10.1.1.1:1", "198.51.100.1, 203.0.113.5", 204},
		{"RightmostIsTheClient", "10.1.1.1:1", "203.0.113.5, 198.51.100.1", 403},
		{"InvalidWhereTheClientShouldBe", "10.1.1.1:1", "203.0.113.5, 010.0.0.1", 403},
		{"Unknown", "10.1.1.1:1", "unknown", 403},
		{"NoHeaderFromProxy", "10.1.1.1:1", "", 403},
		{"UntrustedPeerHeaderIgnored", "198.51.100.1:1", "203.0.113.5", 403},
		{"LoopbackPeerNotTrusted", "127.0.0.1:1", "203.0.113.5", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.xff != "" {
				hdr = []string{"X-Forwarded-For", tc.xff}
			}
			if code := serve(f.g, tok, tc.remote, rbac.Reports, rbac.Read, hdr...); code != tc.want {
				t.Errorf("%d, want %d", code, tc.want)
			}
		})
	}
}

// SECURITY-CHECKLIST AK-1, AK-2.
func TestAPIKeys(t *testing.T) {
	f := newFixture(t)
	admin, _ := f.userWithRoles(t, "ada@example.test", rbac.Owner)
	key, k, err := f.g.CreateAPIKey(f.ctx, admin, guard.NewAPIKey{Tenant: tenantID, Name: "reporting", Roles: []string{rbac.ReportsOnly}})
	if err != nil {
		t.Fatal(err)
	}
	if k.Hash != ([32]byte{}) || k.Prefix != key[:11] {
		t.Errorf("CreateAPIKey returned hash %x prefix %q", k.Hash, k.Prefix)
	}
	call := func(remote string, s rbac.Section, hdr ...string) int {
		return serve(f.g, "", remote, s, rbac.Read, hdr...)
	}
	bearer := "Bearer " + key
	if code := call(client, rbac.Reports, "Authorization", bearer); code != 204 {
		t.Fatalf("key reading reports: %d", code)
	}
	if code := call(client, rbac.Contacts, "Authorization", bearer); code != 403 {
		t.Errorf("reports-only key reading contacts: %d, want 403", code)
	}
	// Only the Authorization header carries a key.
	h := f.g.Middleware(f.g.Require(rbac.Reports, rbac.Read)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })))
	for _, r := range []*http.Request{httptest.NewRequest("GET", "/?api_key="+key, nil), httptest.NewRequest("GET", "/", nil)} {
		if r.URL.RawQuery == "" {
			r.Header.Set("Cookie", "api_key="+key+"; __Host-guard="+key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 401 {
			t.Errorf("key outside the Authorization header: %d, want 401", w.Code)
		}
	}
	// The API-key allow-list applies to keys, and not to people.
	lists, _ := f.g.IPAllowLists(f.ctx, admin, tenantID)
	if _, err := f.g.SetIPAllowList(f.ctx, admin, tenantID, guard.IPListChange{Scope: ipfilter.APIKeys, Entries: []string{"198.51.100.7"}, Version: lists.Version}); err != nil {
		t.Fatal(err)
	}
	if code := call("198.51.100.7:1", rbac.Reports, "Authorization", bearer); code != 204 {
		t.Errorf("key from its allowed address: %d", code)
	}
	if code := call("198.51.100.8:1", rbac.Reports, "Authorization", bearer); code != 403 {
		t.Errorf("key from another address: %d, want 403", code)
	}
	if code := call("198.51.100.8:1", rbac.Reports, "Authorization", bearer, "X-Forwarded-For", "198.51.100.7"); code != 403 {
		t.Errorf("key with a spoofed X-Forwarded-For: %d, want 403", code)
	}
	// Revocation is in force on the next request.
	if err := f.g.RevokeAPIKey(f.ctx, admin, tenantID, k.ID); err != nil {
		t.Fatal(err)
	}
	if code := call("198.51.100.7:1", rbac.Reports, "Authorization", bearer); code != 401 {
		t.Errorf("revoked key: %d, want 401", code)
	}
	ks, _ := f.g.ListAPIKeys(f.ctx, admin, tenantID)
	if len(ks) != 1 || ks[0].RevokedAt.IsZero() || ks[0].Hash != ([32]byte{}) {
		t.Errorf("ListAPIKeys = %+v", ks)
	}
	// Invalid keys are throttled per client IP (SECURITY-CHECKLIST AK-6,
	// the throttle; 1,000 random keys: TestAPIKeyFloodThrottled).
	codes := map[int]int{}
	for range 25 {
		codes[call("192.0.2.66:1", rbac.Reports, "Authorization", "Bearer gk_nope")]++
	}
	if codes[401] != 20 || codes[429] != 5 {
		t.Errorf("25 bad keys from one IP: %v, want 20×401 then 429", codes)
	}
	for _, a := range []audit.Action{audit.APIKeyCreated, audit.APIKeyRevoked, audit.APIKeyDenied} {
		if len(f.events(t, a)) == 0 {
			t.Errorf("no %s event", a)
		}
	}
}

// TestAPIKeyFloodThrottled: 1,000 random well-formed keys that no tenant
// issued, from one client IP, are refused as bad keys up to the
// threshold (20) and then as too many attempts, while another IP is not
// held back. SECURITY-CHECKLIST AK-6, in part: the item also wants the
// flood audited in aggregate, and Guard records it nowhere by design (a
// key of no tenant belongs to no tenant's log; AuthenticateAPIKey), which
// this test checks: the tenant's log gains no event.
func TestAPIKeyFloodThrottled(t *testing.T) {
	f := newFixture(t)
	before := len(f.events(t, ""))
	flood, other := netip.MustParseAddr("192.0.2.66"), netip.MustParseAddr("192.0.2.67")
	var bad, locked int
	for i := range 1000 {
		var raw [32]byte
		rand.Read(raw[:])
		key := auth.APIKeyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
		_, err := f.g.AuthenticateAPIKey(f.ctx, key, flood)
		switch {
		case errors.Is(err, guard.ErrUnauthenticated) && locked == 0:
			bad++
		case errors.Is(err, guard.ErrTooManyAttempts):
			locked++
		default:
			t.Fatalf("random key %d from one IP: %v (after %d refused and %d locked out)", i, err, bad, locked)
		}
	}
	if bad != 20 || locked != 980 {
		t.Errorf("1,000 random keys from one IP: %d refused as bad, %d as too many attempts; want 20 then 980", bad, locked)
	}
	if _, err := f.g.AuthenticateAPIKey(f.ctx, auth.APIKeyPrefix+strings.Repeat("A", 43), other); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("a bad key from another IP during the flood: %v, want ErrUnauthenticated", err)
	}
	if n := len(f.events(t, "")) - before; n != 0 {
		t.Errorf("the flood wrote %d events to the tenant's log, want none (no tenant issued the keys)", n)
	}
}

// SECURITY-CHECKLIST RB-8.
func TestAuthorizeFailsClosed(t *testing.T) {
	mem := memstore.New()
	f := newFixture(t, func(c *guard.Config) {
		c.Stores = mem.Stores()
		c.Stores.Policies = brokenPolicies{mem.Policies}
	})
	p, _ := f.userWithRoles(t, "ada@example.test")
	if _, err := f.g.Authorize(context.Background(), p, rbac.Reports, rbac.Read); !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("Authorize with the policy store down: %v, want ErrUnavailable", err)
	}
}

type brokenPolicies struct{ *memstore.Policies }

func (brokenPolicies) Version(context.Context, string) (uint64, error) { return 0, errDown }

// AU-13: a role change that cannot be recorded is undone: nobody holds
// (or loses) a role unaudited.
func TestRoleChangeUnrecordedIsUndone(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, func(c *guard.Config) {
		fa = &failingAudit{Audit: c.Stores.Audit.(*memstore.Audit)}
		c.Stores.Audit = fa
	})
	sys := guard.System("test")
	u := f.createUser(t, adaEmail, ownerPW)
	subject := "user:" + u.ID
	roles := func() []string {
		t.Helper()
		rs, err := f.g.RolesOf(f.ctx, sys, tenantID, subject)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	before := roles()

	// The owner role too: the tenant has no owner, and the undo of this
	// grant is no revocation of the last owner's role.
	fa.set(true)
	for _, role := range []string{rbac.Admin, rbac.Owner} {
		if err := f.g.GrantRole(f.ctx, sys, tenantID, subject, role); !errors.Is(err, guard.ErrUnavailable) {
			t.Fatalf("GrantRole(%s) with the audit log down = %v, want ErrUnavailable", role, err)
		}
	}
	fa.set(false)
	if rs := roles(); slices.Contains(rs, rbac.Admin) || slices.Contains(rs, rbac.Owner) {
		t.Errorf("roles after unrecorded grants: %v, want them undone", rs)
	}

	if err := f.g.GrantRole(f.ctx, sys, tenantID, subject, rbac.Admin); err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	if err := f.g.RevokeRole(f.ctx, sys, tenantID, subject, rbac.Admin); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("RevokeRole with the audit log down = %v, want ErrUnavailable", err)
	}
	// Granting a role already held changes nothing: nothing to record
	// (so the audit log being down does not matter) and nothing undone.
	if err := f.g.GrantRole(f.ctx, sys, tenantID, subject, rbac.Admin); err != nil {
		t.Fatalf("GrantRole of a role held, with the audit log down = %v, want nil (nothing to record)", err)
	}
	fa.set(false)
	if rs := roles(); !slices.Contains(rs, rbac.Admin) {
		t.Errorf("roles after an unrecorded revoke: %v, want the admin role kept", rs)
	}
	for _, r := range before {
		if !slices.Contains(roles(), r) {
			t.Errorf("role %s held before was lost", r)
		}
	}
}
