package pgstore_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/pgstore"
)

// signIn creates a user of facadeTenant holding roles (granted by the
// system) through g, signs them in and returns their principal and
// session token.
func signIn(t *testing.T, g *guard.Guard, email string, roles ...string) (guard.Principal, string) {
	t.Helper()
	ctx := t.Context()
	if _, err := g.CreateUser(ctx, guard.System("test"), guard.NewUser{Tenant: facadeTenant, Email: email, Password: facadePassword, Roles: roles}); err != nil {
		t.Fatal(err)
	}
	res, err := g.Login(ctx, guard.LoginRequest{Tenant: facadeTenant, Email: email, Password: facadePassword, IP: "203.0.113.5", UserAgent: "test"})
	if err != nil {
		t.Fatalf("Login(%s): %v", email, err)
	}
	p, err := g.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	return p, res.Token
}

// request runs one request with the session cookie through g's
// Middleware and Require(s, a) and returns the status code.
func request(g *guard.Guard, token string, s rbac.Section, a rbac.Action) int {
	h := g.Middleware(g.Require(s, a)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "203.0.113.5:4444"
	r.Header.Set("Cookie", "__Host-guard="+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// Roles through the facade on PostgreSQL, with two replicas (two Guards,
// each on its own pool, sharing one schema): a reports-only user reads
// reports and is denied contacts (and the denial is audited); a role
// revoked on one replica denies on the very next request on the other,
// and a grant on the other is in force on the next request on the first.
func TestFacadeRoles(t *testing.T) {
	a, b := twoReplicas(t)
	c := &clock{t: facadeNow}
	g1 := newFacade(t, a.Stores(), c)
	g2 := newFacade(t, b.Stores(), c)
	ctx := t.Context()

	rita, ritaTok := signIn(t, g1, "rita@example.com", rbac.ReportsOnly)
	for i, g := range []*guard.Guard{g1, g2} {
		if d, err := g.Authorize(ctx, rita, rbac.Reports, rbac.Read); err != nil || !d.Allowed {
			t.Errorf("replica %d: reports-only reading reports = %+v, %v; want allowed", i, d, err)
		}
		for _, act := range []rbac.Action{rbac.Read, rbac.Write} {
			if d, err := g.Authorize(ctx, rita, rbac.Contacts, act); !errors.Is(err, guard.ErrForbidden) || d.Allowed {
				t.Errorf("replica %d: reports-only on contacts:%s = %+v, %v; want ErrForbidden", i, act, d, err)
			}
		}
		if code := request(g, ritaTok, rbac.Contacts, rbac.Read); code != http.StatusForbidden {
			t.Errorf("replica %d: reports-only requesting contacts: %d, want 403", i, code)
		}
	}
	denied, err := a.Audit.Query(ctx, facadeTenant, audit.Query{Action: string(audit.AccessDenied)})
	if err != nil {
		t.Fatal(err)
	}
	if len(denied) != 6 || denied[0].Meta["section"] != string(rbac.Contacts) || denied[0].Meta["subject"] != "user:"+rita.UserID {
		t.Errorf("access.denied events: %d, first %+v; want 6 for rita on contacts", len(denied), denied)
	}

	mia, miaTok := signIn(t, g1, "mia@example.com", rbac.Member)
	for i, g := range []*guard.Guard{g1, g2} { // both replicas hold the tenant's table
		if code := request(g, miaTok, rbac.Contacts, rbac.Write); code != http.StatusNoContent {
			t.Fatalf("replica %d: member writing contacts: %d, want 204", i, code)
		}
	}
	if err := g1.RevokeRole(ctx, guard.System("test"), facadeTenant, "user:"+mia.UserID, rbac.Member); err != nil {
		t.Fatal(err)
	}
	// The session issued with the old roles is over on both replicas
	// (SECURITY-CHECKLIST SE-3); the decisions follow the new roles.
	for i, g := range []*guard.Guard{g2, g1} {
		if code := request(g, miaTok, rbac.Contacts, rbac.Write); code != http.StatusUnauthorized {
			t.Errorf("replica %d, the old session after the revocation: %d, want 401", 2-i, code)
		}
		if _, err := g.Authorize(ctx, mia, rbac.Contacts, rbac.Write); !errors.Is(err, guard.ErrForbidden) {
			t.Errorf("replica %d, Authorize after the revocation: %v, want ErrForbidden", 2-i, err)
		}
	}
	if err := g2.GrantRole(ctx, guard.System("test"), facadeTenant, "user:"+mia.UserID, rbac.Manager); err != nil {
		t.Fatal(err)
	}
	if d, err := g1.Authorize(ctx, mia, rbac.Contacts, rbac.Delete); err != nil || !d.Allowed {
		t.Errorf("the first replica, Authorize after a grant on the other: %+v, %v; want allowed", d, err)
	}
	res, err := g1.Login(ctx, guard.LoginRequest{Tenant: facadeTenant, Email: "mia@example.com", Password: facadePassword, IP: "203.0.113.5", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if code := request(g1, res.Token, rbac.Contacts, rbac.Delete); code != http.StatusNoContent {
		t.Errorf("the first replica, a new session after a grant on the other: %d, want 204", code)
	}
	// The policy moved once per change: two grants at creation, one
	// revocation, one grant.
	if v, err := b.Policies.Version(ctx, facadeTenant); err != nil || v != 4 {
		t.Errorf("policy version = %d, %v; want 4", v, err)
	}
}

// Four-eyes approval through the facade on two replicas: requested on
// one, approved on the other (never by the requester), consumed once for
// the same payload.
func TestFacadeFourEyes(t *testing.T) {
	a, b := twoReplicas(t)
	c := &clock{t: facadeNow}
	g1 := newFacade(t, a.Stores(), c)
	g2 := newFacade(t, b.Stores(), c)
	ctx := t.Context()
	if err := g1.SetApprovalRequired(ctx, guard.System("test"), facadeTenant, "campaigns:send", true); err != nil {
		t.Fatal(err)
	}
	rob, _ := signIn(t, g1, "rob@example.com", rbac.Manager)
	ann, _ := signIn(t, g2, "ann@example.com", rbac.Manager)
	d, err := g2.Authorize(ctx, rob, rbac.Campaigns, rbac.Send)
	if !errors.Is(err, guard.ErrApprovalRequired) || d.Allowed || !d.NeedsApproval {
		t.Fatalf("Authorize campaigns:send on the other replica = %+v, %v; want ErrApprovalRequired, needing approval", d, err)
	}
	payload := []byte(`{"campaign":"c1"}`)
	ap, err := g1.RequestApproval(ctx, rob, "campaigns:send", "c1", payload, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g2.ApproveRequest(ctx, rob, ap.ID); !errors.Is(err, rbac.ErrSelfApproval) {
		t.Errorf("self-approval = %v, want ErrSelfApproval", err)
	}
	if _, err := g1.ConsumeApproval(ctx, rob, ap.ID, "campaigns:send", "c1", payload); !errors.Is(err, rbac.ErrNotApproved) {
		t.Errorf("consume before approval = %v, want ErrNotApproved", err)
	}
	got, err := g2.ApproveRequest(ctx, ann, ap.ID)
	if err != nil || got.Status != rbac.StatusApproved || got.Decider != rbac.User(ann.UserID) {
		t.Fatalf("approval by another manager = %+v, %v", got, err)
	}
	if _, err := g1.ConsumeApproval(ctx, rob, ap.ID, "campaigns:send", "c1", []byte(`{"campaign":"c2"}`)); !errors.Is(err, rbac.ErrMismatch) {
		t.Errorf("consume for another payload = %v, want ErrMismatch", err)
	}
	if _, err := g1.ConsumeApproval(ctx, rob, ap.ID, "campaigns:send", "c1", payload); err != nil {
		t.Fatalf("consume: %v", err)
	}
	if _, err := g2.ConsumeApproval(ctx, rob, ap.ID, "campaigns:send", "c1", payload); !errors.Is(err, rbac.ErrConsumed) {
		t.Errorf("second consume, on the other replica = %v, want ErrConsumed", err)
	}
	stored, err := b.Approvals.Approval(ctx, facadeTenant, ap.ID)
	if err != nil || stored.Status != rbac.StatusConsumed || !stored.ConsumedAt.Equal(facadeNow) {
		t.Errorf("stored approval = %+v, %v; want consumed at %v", stored, err, facadeNow)
	}
	for _, st := range []*pgstore.Store{a, b} {
		if rep, err := st.Audit.Query(ctx, facadeTenant, audit.Query{Action: string(audit.ApprovalConsumed)}); err != nil || len(rep) == 0 {
			t.Errorf("approval.consumed events: %d, %v", len(rep), err)
		}
	}
}
