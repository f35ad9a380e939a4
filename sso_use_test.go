package guard_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

// Who is on SSO is who signed in through the IdP: an existing password
// user who signs in by SSO counts from then on, an invitee without a
// password who never signed in does not, and a password user who has not
// signed in through the IdP for Policy.DormantAfter no longer does. The
// adoption counts, the access review and ListUserAccess agree, and
// Adoption.WouldNeedSSO lists exactly the active users not on SSO, the
// break-glass owner aside.
func TestSSOUseFollowsSignIns(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	mk := func(email, pw string, roles ...string) guard.User {
		t.Helper()
		u, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: email, Name: email, Password: pw, Roles: roles})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	owner := mk("owner@corp.example", ownerPW, rbac.Owner)
	pat := mk("pat@corp.example", ownerPW) // a password user who will sign in by SSO
	ivy := mk("ivy@corp.example", "")      // invited without a password, never signs in
	dan := mk("dan@corp.example", ownerPW) // signs in with a password only
	gone := mk("gone@corp.example", ownerPW)
	if err := s.g.DeactivateUser(ctx, sys, tenantID, gone.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: dan.Email, Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"}); err != nil {
		t.Fatal(err)
	}

	type want struct {
		sso         []string // IDs on SSO
		neither     int
		wouldNeed   []string // IDs of Adoption.WouldNeedSSO, in ID order
		wouldNeedOf int      // WouldNeedSSOTotal
	}
	check := func(step string, g *guard.Guard, w want) {
		t.Helper()
		ad, err := g.MFAAdoption(ctx, sys, tenantID)
		if err != nil {
			t.Fatalf("%s: MFAAdoption: %v", step, err)
		}
		if ad.WithSSO != len(w.sso) || ad.Neither != w.neither || ad.WithMFA != 0 {
			t.Errorf("%s: adoption WithSSO %d, Neither %d, WithMFA %d; want %d, %d, 0", step, ad.WithSSO, ad.Neither, ad.WithMFA, len(w.sso), w.neither)
		}
		var got []string
		for _, u := range ad.WouldNeedSSO {
			got = append(got, u.ID)
		}
		slices.Sort(w.wouldNeed)
		if !slices.Equal(got, w.wouldNeed) || ad.WouldNeedSSOTotal != w.wouldNeedOf {
			t.Errorf("%s: WouldNeedSSO %v (total %d), want %v (total %d)", step, got, ad.WouldNeedSSOTotal, w.wouldNeed, w.wouldNeedOf)
		}
		rv, err := g.AccessReview(ctx, sys, tenantID)
		if err != nil {
			t.Fatalf("%s: AccessReview: %v", step, err)
		}
		if rv.Totals.WithSSO != len(w.sso) || rv.Totals.Neither != w.neither {
			t.Errorf("%s: review WithSSO %d, Neither %d; want %d, %d", step, rv.Totals.WithSSO, rv.Totals.Neither, len(w.sso), w.neither)
		}
		rows, err := g.ListUserAccess(ctx, sys, tenantID, "", 100)
		if err != nil {
			t.Fatalf("%s: ListUserAccess: %v", step, err)
		}
		for i, r := range rv.Users {
			if on := slices.Contains(w.sso, r.ID); r.SSO != on || rows[i].ID != r.ID || rows[i].SSO != on {
				t.Errorf("%s: %s on SSO in the review %v, in ListUserAccess %v; want %v", step, r.Email, r.SSO, rows[i].SSO, on)
			}
		}
	}

	// Nobody signed in through the IdP yet: the invitee without a
	// password is not on SSO (nothing shows they can sign in there).
	check("before any SSO sign-in", s.g, want{neither: 5,
		wouldNeed: []string{owner.ID, pat.ID, ivy.ID, dan.ID}, wouldNeedOf: 4})

	// Pat, who has a password, signs in through the IdP (matched by
	// email); Alice is provisioned just in time.
	s.idpPut(t, "/users/pat", `{"name":"pat","password":"correct horse","email":"pat@corp.example","groups":["Staff"]}`)
	s.idpPut(t, "/users/alice", `{"name":"alice","password":"correct horse","email":"alice@corp.example","groups":["Staff"]}`)
	for _, who := range []string{"pat", "alice"} {
		_, _, _, resp := s.signIn(t, who, "correct horse")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s signing in by SSO: %s", who, resp.Status)
		}
	}
	p, err := s.g.User(ctx, sys, tenantID, pat.ID)
	if err != nil || p.LastSSOAt.IsZero() || !p.LastLoginAt.Equal(p.LastSSOAt) || !p.HasPassword {
		t.Fatalf("Pat after an SSO sign-in = %+v, %v; want LastSSOAt set, the password kept", p, err)
	}
	alice, err := s.g.UserByEmail(ctx, sys, tenantID, "alice@corp.example")
	if err != nil {
		t.Fatal(err)
	}
	check("after SSO sign-ins", s.g, want{sso: []string{pat.ID, alice.ID}, neither: 4,
		wouldNeed: []string{owner.ID, ivy.ID, dan.ID}, wouldNeedOf: 3})

	// A password sign-in does not take Pat off SSO.
	if _, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: pat.Email, Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"}); err != nil {
		t.Fatal(err)
	}
	if p2, err := s.g.User(ctx, sys, tenantID, pat.ID); err != nil || !p2.LastSSOAt.Equal(p.LastSSOAt) {
		t.Fatalf("Pat's LastSSOAt after a password sign-in = %v, %v; want %v", p2.LastSSOAt, err, p.LastSSOAt)
	}

	// With a break-glass owner named, the owner is not listed.
	tn, err := s.g.Tenant(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{BreakGlassUser: owner.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	check("with a break-glass owner", s.g, want{sso: []string{pat.ID, alice.ID}, neither: 4,
		wouldNeed: []string{ivy.ID, dan.ID}, wouldNeedOf: 2})

	// DormantAfter (30 days) later, on the same stores: Pat, who has a
	// password, is no longer on SSO; Alice, who has none, still is.
	later := time.Now().Add(31 * 24 * time.Hour)
	spKey, spCert := keyPair(t, "sp")
	g2, err := guard.New(guard.Config{Stores: s.stores, AuditKey: auditKey, Hasher: fastHasher, Now: func() time.Time { return later },
		SSO: &sso.Config{BaseURL: s.srv.URL, Key: spKey, Certificate: spCert, AllowInsecureMetadata: true}})
	if err != nil {
		t.Fatal(err)
	}
	check("DormantAfter later", g2, want{sso: []string{alice.ID}, neither: 5,
		wouldNeed: []string{ivy.ID, dan.ID, pat.ID}, wouldNeedOf: 3})
}

// failingSSOLogins is a user updater whose RecordSSOLogin fails.
type failingSSOLogins struct{ auth.UserUpdater }

func (failingSSOLogins) RecordSSOLogin(context.Context, string, string, time.Time) (auth.User, error) {
	return auth.User{}, errors.New("store down")
}

// An SSO sign-in records the login and the IdP sign-in (LastSSOAt) in the
// same store call that re-reads the user's status; when it fails, the
// sign-in fails (a store failure denies) and leaves no session.
func TestSSOSignInWhenLastSSOAtFails(t *testing.T) {
	st := newMem()
	st.UserUpdates = failingSSOLogins{st.UserUpdates}
	s := newSSOSiteOn(t, st)
	ctx := t.Context()
	sys := guard.System("test")
	pat, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "pat@corp.example", Password: ownerPW})
	if err != nil {
		t.Fatal(err)
	}
	s.idpPut(t, "/users/pat", `{"name":"pat","password":"correct horse","email":"pat@corp.example","groups":["Staff"]}`)
	_, _, _, resp := s.signIn(t, "pat", "correct horse")
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("SSO sign-in succeeded with the login record failing")
	}
	if ss, err := s.g.UserSessions(ctx, sys, tenantID, pat.ID); err != nil || len(ss) != 0 {
		t.Errorf("sessions %v, %v; want none left behind", ss, err)
	}
	if r := s.loginFailures(t); r[guard.ReasonUnavailable] != 1 {
		t.Errorf("login.failed reasons %v, want one %s", r, guard.ReasonUnavailable)
	}
	if u, err := s.g.User(ctx, sys, tenantID, pat.ID); err != nil || !u.LastSSOAt.IsZero() {
		t.Errorf("Pat = %+v, %v; want no LastSSOAt", u, err)
	}
}
