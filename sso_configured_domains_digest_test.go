package guard_test

import (
	"fmt"
	"testing"

	"github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/sso"
)

// sso.configured records allowed_domains clipped to 1000 bytes with a
// count: two lists of as many domains that differ only past the clip must
// still be told apart on the record (allowed_domains_sha256, as listMeta
// gives it).
func TestSSOConfiguredAllowedDomainsDigest(t *testing.T) {
	s := newSSOSite(t)
	last := func() map[string]string {
		t.Helper()
		p, err := s.g.QueryAudit(t.Context(), guard.System("test"), tenantID,
			audit.Query{Action: string(audit.SSOConfigured), Desc: true, Limit: 1})
		if err != nil || len(p.Events) != 1 {
			t.Fatalf("QueryAudit = %+v, %v", p, err)
		}
		return p.Events[0].Meta
	}
	domains := func(lastOne string) []string {
		var ds []string
		for i := range 99 {
			ds = append(ds, fmt.Sprintf("domain-%03d.example", i))
		}
		return append(ds, lastOne)
	}
	s.setConn(t, func(c *sso.Connection) { c.AllowedDomains = domains("zz-first.example") })
	first := last()
	s.setConn(t, func(c *sso.Connection) { c.AllowedDomains = domains("zz-other.example") })
	second := last()
	if first["allowed_domains_count"] != "100" || second["allowed_domains_count"] != "100" {
		t.Errorf("allowed_domains_count = %q, %q; want 100", first["allowed_domains_count"], second["allowed_domains_count"])
	}
	if len(second["allowed_domains"]) > 1000 {
		t.Errorf("allowed_domains of %d bytes", len(second["allowed_domains"]))
	}
	d1, d2 := first["allowed_domains_sha256"], second["allowed_domains_sha256"]
	if len(d1) != 64 || len(d2) != 64 || d1 == d2 {
		t.Errorf("allowed_domains_sha256 = %q then %q: two lists differing past the clip are recorded alike", d1, d2)
	}
}
