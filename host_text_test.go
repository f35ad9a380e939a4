package guard_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// A principal the host builds may carry a User-Agent and an IP that are
// not UTF-8 (taken from a request as they came): creating a tenant and
// setting its policy are still done and recorded, with the text made
// valid, as every other administrative action is (adminEvent), rather
// than failing with ErrUnavailable once the change is stored.
func TestTenantChangesRecordedWithInvalidClientText(t *testing.T) {
	f := newFixture(t)
	by := guard.System("provisioning")
	by.IP, by.UserAgent = "192.0.2.1\xff", "job (\xfe)"
	tn, err := f.g.CreateTenant(f.ctx, by, "globex", "Globex", guard.Policy{})
	if err != nil {
		t.Fatalf("CreateTenant = %v; want the tenant created and recorded", err)
	}
	if _, err := f.g.SetPolicy(f.ctx, by, tn.ID, guard.Policy{RequireMFA: false, SessionLimit: 2}, tn.Version); err != nil {
		t.Fatalf("SetPolicy = %v; want the policy set and recorded", err)
	}
	p, err := f.g.QueryAudit(f.ctx, guard.System("test"), tn.ID, audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[audit.Action]bool{}
	for _, e := range p.Events {
		got[e.Action] = true
		if !utf8.ValidString(e.UserAgent) || !utf8.ValidString(e.IP) || e.UserAgent == "" {
			t.Errorf("%s recorded with IP %q, User-Agent %q", e.Action, e.IP, e.UserAgent)
		}
	}
	if !got[audit.TenantCreated] || !got[audit.TenantPolicySet] {
		t.Errorf("recorded %v; want tenant.created and tenant.policy_changed", got)
	}
}

// The label of guard.System is the host's text too: one that is over long
// or not UTF-8 is recorded made valid and clipped (at most
// guard.MaxSystemLabelBytes), and the action is done, rather than every
// action of that principal failing with ErrUnavailable once done.
func TestSystemLabelRecordedValid(t *testing.T) {
	f := newFixture(t)
	by := guard.System(strings.Repeat("job-", 300) + "\xff")
	tn, err := f.g.CreateTenant(f.ctx, by, "globex", "Globex", guard.Policy{})
	if err != nil {
		t.Fatalf("CreateTenant = %v; want the tenant created and recorded", err)
	}
	p, err := f.g.QueryAudit(f.ctx, guard.System("test"), tn.ID, audit.Query{Action: string(audit.TenantCreated)})
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("tenant.created events %+v, %v; want one", p.Events, err)
	}
	id := p.Events[0].Actor.ID
	if !utf8.ValidString(id) || len(id) > guard.MaxSystemLabelBytes || !strings.HasPrefix(id, "job-job-") {
		t.Errorf("actor recorded as %q (%d bytes); want the label made valid, at most %d bytes", id, len(id), guard.MaxSystemLabelBytes)
	}
}
