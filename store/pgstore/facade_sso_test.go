package pgstore_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/internal/ssosite"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

// TestFacadeSSO signs in by SAML end to end on PostgreSQL, with crewjam's
// samlidp in process as the IdP and two Guard replicas, each on a pool of
// its own, sharing one schema behind one address (internal/ssosite): the
// connection (its metadata fetched from the IdP) is stored by one
// replica; a login starts on replica A and the IdP's answer lands on B,
// which finds the tracked request in PostgreSQL, provisions the user just
// in time with the mapped role, and signs them in; the captured answer
// posted again, by another client, is refused; and an IdP-initiated
// answer posted 20 times at once to both replicas signs in exactly once,
// the other 19 refused as replayed by the replay cache in PostgreSQL.
func TestFacadeSSO(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := t.Context()
	site := ssosite.New(t, [2]guard.Stores{a.Stores(), b.Stores()}, auditKey, sso.Connection{
		JIT: true, AllowedDomains: []string{"corp.example"}, GroupRoles: map[string]string{"Staff": rbac.Member}, IdPInitiated: true})
	gA, gB := site.Replicas[0], site.Replicas[1]
	sys := guard.System("test")
	stored, err := b.SSO.Connection(ctx, ssosite.Tenant)
	if err != nil || stored.Metadata == "" || stored.Metadata != site.Conn.Metadata || stored.MetadataFetchedAt.IsZero() ||
		stored.GroupRoles["Staff"] != rbac.Member || !stored.IdPInitiated {
		t.Fatalf("the connection in PostgreSQL = %d bytes of metadata fetched at %v, %+v, %v", len(stored.Metadata), stored.MetadataFetchedAt, stored.GroupRoles, err)
	}
	site.IdPPut("/users/alice", `{"name":"alice","password":"correct horse","email":"Alice@Corp.Example","common_name":"Alice","groups":["Staff"]}`)

	// Started on A, answered on B, the session checked on A.
	br, action, fields := site.Answer("alice", "correct horse", func() {
		if n := rowCount(t, a, "sso_requests"); n != 1 {
			t.Fatalf("%d tracked requests in PostgreSQL after the login started, want 1", n)
		}
	})
	who := site.Body(br.PostForm(action, fields))
	if !strings.HasPrefix(who, "user ") || !strings.HasSuffix(who, " sso yes replica A") {
		t.Fatalf("after the ACS on replica B, /whoami on replica A says %q", who)
	}
	if a, b := site.Served[0].Load(), site.Served[1].Load(); a != 0 || b != 1 {
		t.Fatalf("answers handled by replicas A and B: %d and %d, want 0 and 1", a, b)
	}
	if n := rowCount(t, a, "sso_requests"); n != 0 {
		t.Errorf("%d tracked requests left after the ACS, want 0", n)
	}
	var untilUS int64
	if err := testPool(t).QueryRow(ctx, `SELECT until_us FROM `+pgx.Identifier{a.Schema(), "sso_replay"}.Sanitize()).Scan(&untilUS); err != nil {
		t.Fatalf("the replay record of the accepted assertion: %v", err)
	}
	if until := time.UnixMicro(untilUS); !until.After(time.Now()) || until.After(time.Now().Add(time.Hour)) {
		t.Errorf("the replay record lasts until %v, want within the assertion's validity", until)
	}
	users, err := gB.ListUsers(ctx, sys, ssosite.Tenant, "", 10)
	if err != nil || len(users) != 1 || users[0].Email != "alice@corp.example" || users[0].HasPassword {
		t.Fatalf("just-in-time users = %+v, %v", users, err)
	}
	if !strings.HasPrefix(who, "user "+users[0].ID+" ") {
		t.Errorf("/whoami = %q, want user %s", who, users[0].ID)
	}
	if roles, err := gA.RolesOf(ctx, sys, ssosite.Tenant, "user:"+users[0].ID); err != nil || len(roles) != 1 || roles[0] != rbac.Member {
		t.Errorf("mapped roles = %v, %v; want member", roles, err)
	}

	// The captured answer posted again, by another client, on replica A:
	// refused (the tracked request is gone).
	if status := site.PostMany(1, action, fields); status[http.StatusForbidden] != 1 {
		t.Errorf("the replayed answer on the other replica: statuses %v, want 403", status)
	}
	if a := site.Served[0].Load(); a != 1 {
		t.Fatalf("answers handled by replica A: %d, want 1 (the replay)", a)
	}

	// An IdP-initiated answer (no InResponseTo: only the replay cache can
	// refuse it again), from the browser signed in at the IdP, posted 20
	// times at once to both replicas: one sign-in, 19 refusals as
	// replayed.
	site.IdPPut("/shortcuts/guard", `{"name":"guard","service_provider":"`+site.URL+`/saml/acme/metadata"}`)
	action, fields = ssosite.FormOf(t, site.Body(br.Get(site.IdPURL+"/login/guard")))
	if fields.Get("SAMLResponse") == "" || !strings.HasSuffix(action, "/saml/acme/acs") {
		t.Fatalf("IdP-initiated answer: form to %q with fields %v", action, fields)
	}
	if status := site.PostMany(20, action, fields); status[http.StatusSeeOther] != 1 || status[http.StatusForbidden] != 19 {
		t.Errorf("20 concurrent posts of one answer to two replicas: statuses %v, want one 303 and 19 403", status)
	}
	if a, b := site.Served[0].Load(), site.Served[1].Load(); a != 11 || b != 11 {
		t.Errorf("answers handled by replicas A and B: %d and %d, want 11 and 11", a, b)
	}
	if n := rowCount(t, a, "sso_replay"); n != 2 {
		t.Errorf("%d replay records, want 2", n)
	}
	page, err := gB.QueryAudit(ctx, sys, ssosite.Tenant, audit.Query{Action: string(audit.SSOFailed), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, e := range page.Events {
		reasons[e.Reason]++
	}
	if reasons[string(sso.ReasonReplayed)] != 19 || reasons[string(sso.ReasonRequestUnknown)] != 1 || len(page.Events) != 20 {
		t.Errorf("sso.failed reasons %v; want 19 %s and 1 %s", reasons, sso.ReasonReplayed, sso.ReasonRequestUnknown)
	}
	if ok, err := gA.QueryAudit(ctx, sys, ssosite.Tenant, audit.Query{Action: string(audit.SSOSucceeded)}); err != nil || len(ok.Events) != 2 {
		t.Errorf("%d sso.succeeded events, %v; want 2", len(ok.Events), err)
	}
	if rep, err := gA.VerifyAudit(ctx, sys, ssosite.Tenant); err != nil || !rep.OK {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
}
