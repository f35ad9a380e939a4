package sqlitestore_test

import (
	"context"
	"path/filepath"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/audit/audittest"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/auth/authtest"
	"github.com/guardhq/guard/guardtest"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/ipfilter/ipfiltertest"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/mfa/mfatest"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/rbac/rbactest"
	"github.com/guardhq/guard/session/sessiontest"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/sso/ssotest"
	"github.com/guardhq/guard/store/sqlitestore"
)

// openStore opens and migrates a fresh database file in t's temporary
// directory, closed when t ends.
func openStore(t testing.TB) *sqlitestore.Store {
	t.Helper()
	return openFile(t, filepath.Join(t.TempDir(), "guard.db"))
}

// openFile opens and migrates the database at path, closed when t ends.
func openFile(t testing.TB, path string) *sqlitestore.Store {
	t.Helper()
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func newSessions(t *testing.T) sessiontest.Store { return openStore(t).Sessions }

func TestSessions(t *testing.T)           { sessiontest.Run(t, newSessions) }
func TestSessionsConcurrent(t *testing.T) { sessiontest.RunConcurrent(t, newSessions) }

func newAudit(t *testing.T) audit.Store { return openStore(t).Audit }

func TestAudit(t *testing.T)           { audittest.Run(t, newAudit) }
func TestAuditConcurrent(t *testing.T) { audittest.RunConcurrent(t, newAudit) }

func newTenants(t *testing.T) guard.TenantStore { return openStore(t).Tenants }

func TestTenants(t *testing.T)           { guardtest.Run(t, newTenants) }
func TestTenantsConcurrent(t *testing.T) { guardtest.RunConcurrent(t, newTenants) }

var authStores = authtest.Stores{
	Users:    func(t *testing.T) authtest.Users { return openStore(t).Users },
	Throttle: func(t *testing.T) auth.ThrottleStore { return openStore(t).Throttle },
	APIKeys:  func(t *testing.T) auth.APIKeyStore { return openStore(t).APIKeys },
}

func TestAuthStores(t *testing.T)           { authtest.Run(t, authStores) }
func TestAuthStoresConcurrent(t *testing.T) { authtest.RunConcurrent(t, authStores) }

func newMFA(t *testing.T) mfa.Stores { return openStore(t).MFA.Stores() }

func TestMFA(t *testing.T)           { mfatest.Run(t, newMFA) }
func TestMFAConcurrent(t *testing.T) { mfatest.RunConcurrent(t, newMFA) }

func newIPLists(t *testing.T) ipfilter.Store { return openStore(t).IPLists }

func TestIPLists(t *testing.T)           { ipfiltertest.Run(t, newIPLists) }
func TestIPListsConcurrent(t *testing.T) { ipfiltertest.RunConcurrent(t, newIPLists) }

var rbacStores = rbactest.Stores{
	Policies:  func(t *testing.T) rbac.PolicyStore { return openStore(t).Policies },
	Approvals: func(t *testing.T) rbac.ApprovalStore { return openStore(t).Approvals },
}

func TestRBACStores(t *testing.T)           { rbactest.Run(t, rbacStores) }
func TestRBACStoresConcurrent(t *testing.T) { rbactest.RunConcurrent(t, rbacStores) }

func newSSO(t *testing.T) sso.Stores { return openStore(t).SSO.Stores() }

func TestSSO(t *testing.T)           { ssotest.Run(t, newSSO) }
func TestSSOConcurrent(t *testing.T) { ssotest.RunConcurrent(t, newSSO) }
