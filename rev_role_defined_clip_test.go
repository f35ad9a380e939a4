package guard_test

import (
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// DefineRole records role.defined with Meta permissions: the caller's raw
// strings joined and clipped to 1000 bytes, while each is parsed after
// strings.TrimSpace. A permission padded with spaces (or simply listed after
// enough others) is granted to the role but falls off the record: an
// administrator can give a role users:manage and leave a record saying it
// holds reports:read only. The record should list the parsed permissions
// (canonical "section:action"), all of them, or refuse the definition.
func TestRevRoleDefinedRecordHidesAPermission(t *testing.T) {
	f := newFixture(t)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	perms := []string{"reports:read", strings.Repeat(" ", 990) + "users:manage"}
	if err := f.g.DefineRole(f.ctx, admin, tenantID, "helper", perms); err != nil {
		t.Fatal(err)
	}
	// The role does hold users:manage.
	holder, _ := f.userWithRoles(t, "hal@example.test", "helper")
	if d, err := f.g.Authorize(f.ctx, holder, rbac.Users, rbac.Manage); err != nil || !d.Allowed {
		t.Fatalf("the role's holder on users:manage: %+v, %v; want allowed", d, err)
	}
	p, err := f.g.QueryAudit(f.ctx, guard.System("test"), tenantID, audit.Query{Action: string(audit.RoleDefined), Desc: true, Limit: 1})
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("QueryAudit = %+v, %v", p, err)
	}
	if got := p.Events[0].Meta["permissions"]; !strings.Contains(got, "users:manage") {
		t.Errorf("role.defined Meta permissions = %q (%d bytes): users:manage, which the role holds, is not on record",
			strings.TrimSpace(got), len(got))
	}
}
