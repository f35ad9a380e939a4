package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// ApprovalRules: any user or key of the tenant reads them without a
// permission; a session whose password must be changed and a user of
// another tenant are refused, on record.
func TestApprovalRulesRefusals(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	if err := f.g.SetApprovalRequired(f.ctx, sys, tenantID, "campaigns:send", true); err != nil {
		t.Fatal(err)
	}
	rita, _ := f.userWithRoles(t, "rita@example.test", rbac.ReportsOnly)
	if rules, err := f.g.ApprovalRules(f.ctx, rita, tenantID); err != nil || len(rules) != 1 {
		t.Errorf("ApprovalRules by a reports-only user = %v, %v", rules, err)
	}
	expired := rita
	expired.Flags |= guard.FlagPasswordExpired
	if _, err := f.g.ApprovalRules(f.ctx, expired, tenantID); !errors.Is(err, guard.ErrPasswordChangeRequired) {
		t.Errorf("ApprovalRules by a session whose password must be changed: %v", err)
	}
	if _, err := f.g.ApprovalRules(f.ctx, rita, "other"); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("ApprovalRules of another tenant: %v", err)
	}
	if r := reasons(f.events(t, audit.AccessDenied)); r[guard.ReasonPasswordExpired] != 1 || r["other_tenant"] != 1 {
		t.Errorf("access.denied reasons %v", r)
	}
}
