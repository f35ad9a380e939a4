package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

// PurgeAudit of a tenant that does not exist (a typo in a host's retention
// job) answers 0, nil and records audit.purged in that tenant's chain,
// which it thereby creates: a phantom tenant with an audit log. QueryAudit,
// VerifyAudit and ExportAudit answer ErrTenantNotFound and leave no trace
// (TestAuditQ_ExportOfUnknownTenantStartsItsLog); PurgeAudit never checks.
func TestRevPurgeAuditOfUnknownTenantStartsItsLog(t *testing.T) {
	f := newFixture(t)
	const ghost = "globex"
	if _, err := f.g.Tenant(f.ctx, ghost); !errors.Is(err, guard.ErrTenantNotFound) {
		t.Fatalf("Tenant(%s) = %v, want ErrTenantNotFound", ghost, err)
	}
	n, err := f.g.PurgeAudit(f.ctx, guard.System("retention"), ghost, f.clock.Now().Add(-time.Hour))
	if !errors.Is(err, guard.ErrTenantNotFound) {
		t.Errorf("PurgeAudit of an unknown tenant = %d, %v; want ErrTenantNotFound", n, err)
	}
	if h, err := f.mem.Stores().Audit.Head(f.ctx, ghost); err != nil || h.Seq != 0 {
		t.Errorf("the unknown tenant now has an audit log: head %+v, %v", h, err)
	}
}
