package guard_test

import (
	"strings"
	"testing"

	"github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// SetSSOConnection records sso.configured with Meta mfa_authn_contexts: the
// list joined and clipped to 1000 bytes, with no count and no digest
// (unlike group_roles, allowed_domains' count, metadata_signers: listMeta).
// The list takes 20 entries of 256 bytes, so an administrator can list a
// password-only class (PasswordProtectedTransport) after four long entries:
// every password-only sign-in at the IdP then counts as multi-factor
// (FlagMFA, RequireMFA passes), and the record of the change does not show
// it, nor that anything was left out.
func TestRevSSOConfiguredRecordHidesAnMFAContext(t *testing.T) {
	s := newSSOSite(t)
	var refs []string
	for _, c := range "abcd" {
		refs = append(refs, "urn:example:filler:"+strings.Repeat(string(c), 230))
	}
	refs = append(refs, classPassword)
	s.setMFAContexts(t, refs...)
	c, err := s.g.SSOConnection(t.Context(), guard.System("test"), tenantID)
	if err != nil || len(c.MFAAuthnContexts) != 5 {
		t.Fatalf("SSOConnection = %v, %v; want the 5 contexts", c.MFAAuthnContexts, err)
	}
	p, err := s.g.QueryAudit(t.Context(), guard.System("test"), tenantID,
		audit.Query{Action: string(audit.SSOConfigured), Desc: true, Limit: 1})
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("QueryAudit = %+v, %v", p, err)
	}
	m := p.Events[0].Meta
	if !strings.Contains(m["mfa_authn_contexts"], classPassword) && m["mfa_authn_contexts_count"] != "5" {
		t.Errorf("sso.configured records mfa_authn_contexts of %d bytes without %s, and no count or digest "+
			"says that an entry is missing: Meta keys %v", len(m["mfa_authn_contexts"]), classPassword, metaKeys(m))
	}
}

func metaKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
