package redisstore_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/internal/ssosite"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/memstore"
	"github.com/guardhq/guard/store/redisstore"
)

// TestFacadeSSOAcrossReplicas signs in through SAML with two Guard
// replicas behind one address (internal/ssosite), each with its own Redis
// client, sharing the tenant data (memstore here) and the Redis prefix:
// the login starts on one replica and the IdP's answer lands on the
// other, which finds the tracked request in Redis; the captured answer,
// posted again to the first replica, is refused; and an IdP-initiated
// answer posted concurrently to both replicas signs in exactly once,
// every other post refused by the replay cache in Redis.
func TestFacadeSSOAcrossReplicas(t *testing.T) {
	rs1, c, prefix := open(t)
	rs2, err := redisstore.New(t.Context(), newClient(t), redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	base := memstore.New().Stores()
	var stores [2]guard.Stores
	for i, rs := range []*redisstore.Store{rs1, rs2} {
		stores[i] = rs.Stores(base)
		if stores[i].SSO.Requests != rs || stores[i].SSO.Replay != rs || stores[i].SSO.Connections != base.SSO.Connections {
			t.Fatalf("Stores: SSO = %+v; want Requests and Replay in Redis, Connections from the base", stores[i].SSO)
		}
	}
	site := ssosite.New(t, stores, auditKey, sso.Connection{JIT: true, AllowedDomains: []string{"corp.example"}, IdPInitiated: true})
	site.IdPPut("/users/alice", `{"name":"alice","password":"correct horse","email":"alice@corp.example","common_name":"Alice"}`)

	br, action, fields := site.Answer("alice", "correct horse", func() {
		if got := keysOf(t, c, prefix+"sr:*"); len(got) != 1 {
			t.Fatalf("tracked requests in Redis after the login started: %q, want 1", got)
		}
	})
	for _, k := range keysOf(t, c, prefix+"sr:*") {
		if d, err := c.PTTL(ctx, k).Result(); err != nil || d <= 0 {
			t.Errorf("PTTL %s = %v, %v; want > 0", k, d, err)
		}
	}
	who := site.Body(br.PostForm(action, fields))
	if !strings.HasPrefix(who, "user ") || !strings.HasSuffix(who, "replica A") {
		t.Fatalf("after the ACS on replica B, /whoami on replica A says %q", who)
	}
	if a, b := site.Served[0].Load(), site.Served[1].Load(); a != 0 || b != 1 {
		t.Fatalf("answers handled by replicas A and B: %d and %d, want 0 and 1", a, b)
	}
	if got := keysOf(t, c, prefix+"sr:*"); len(got) != 0 {
		t.Errorf("tracked requests left in Redis after the ACS: %q", got)
	}
	replay := keysOf(t, c, prefix+"sa:*")
	if len(replay) != 1 {
		t.Fatalf("replay records in Redis after the ACS: %q, want 1", replay)
	}
	if d, err := c.PTTL(ctx, replay[0]).Result(); err != nil || d <= 0 || d > time.Hour {
		t.Errorf("PTTL %s = %v, %v; want > 0 and within the assertion's validity", replay[0], d, err)
	}

	if status := site.PostMany(1, action, fields); status[http.StatusForbidden] != 1 {
		t.Errorf("the replayed answer on the other replica: statuses %v, want 403", status)
	}
	if a := site.Served[0].Load(); a != 1 {
		t.Fatalf("answers handled by replica A: %d, want 1 (the replay)", a)
	}

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
	if got := keysOf(t, c, prefix+"sa:*"); len(got) != 2 {
		t.Errorf("replay records in Redis: %q, want 2", got)
	}
	page, err := site.Replicas[1].QueryAudit(ctx, guard.System("test"), ssosite.Tenant, audit.Query{Action: string(audit.SSOFailed), Limit: 1000})
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
}
