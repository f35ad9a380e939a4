package sqlitestore_test

import (
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/audit/audittest"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/auth/authtest"
	"github.com/guardhq/guard/guardtest"
	"github.com/guardhq/guard/internal/sqlitetest"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/ipfilter/ipfiltertest"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/mfa/mfatest"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/rbac/rbactest"
	"github.com/guardhq/guard/session/sessiontest"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/sso/ssotest"
)

// openStore opens a fresh, empty, migrated database file in t's
// temporary directory, closed when t ends: a copy of one migrated once per
// test binary (sqlitetest.MigratedFile; openStore runs ~900 times in this
// package's tests), and Migrate runs on it again (finding nothing to do).
// openFile opens and migrates the database at path, closed when t ends.
var openStore, openFile = sqlitetest.Open, sqlitetest.OpenFile

// The sequential suites (Test<Store>, not Test<Store>Concurrent) run in
// parallel with each other (t.Parallel), after the package's other tests:
// each subtest has a database file of its own, and they are about half
// of the package's time under -race. This package is the last one that
// .ci/run's race stage starts, so its time is the end of that stage. The
// concurrent suites stay sequential, so that their goroutines hammer a
// store alone.

func newSessions(t *testing.T) sessiontest.Store { return openStore(t).Sessions }

func TestSessions(t *testing.T)           { t.Parallel(); sessiontest.Run(t, newSessions) }
func TestSessionsConcurrent(t *testing.T) { sessiontest.RunConcurrent(t, newSessions) }

func newAudit(t *testing.T) audit.Store { return openStore(t).Audit }

func TestAudit(t *testing.T)           { t.Parallel(); audittest.Run(t, newAudit) }
func TestAuditConcurrent(t *testing.T) { audittest.RunConcurrent(t, newAudit) }

func newTenants(t *testing.T) guard.TenantStore { return openStore(t).Tenants }

func TestTenants(t *testing.T)           { t.Parallel(); guardtest.Run(t, newTenants) }
func TestTenantsConcurrent(t *testing.T) { guardtest.RunConcurrent(t, newTenants) }

var authStores = authtest.Stores{
	Users:    func(t *testing.T) authtest.Users { return openStore(t).Users },
	Throttle: func(t *testing.T) auth.ThrottleStore { return openStore(t).Throttle },
	APIKeys:  func(t *testing.T) auth.APIKeyStore { return openStore(t).APIKeys },
}

func TestAuthStores(t *testing.T)           { t.Parallel(); authtest.Run(t, authStores) }
func TestAuthStoresConcurrent(t *testing.T) { authtest.RunConcurrent(t, authStores) }

func newMFA(t *testing.T) mfa.Stores { return openStore(t).MFA.Stores() }

func TestMFA(t *testing.T)           { t.Parallel(); mfatest.Run(t, newMFA) }
func TestMFAConcurrent(t *testing.T) { mfatest.RunConcurrent(t, newMFA) }

func newIPLists(t *testing.T) ipfilter.Store { return openStore(t).IPLists }

func TestIPLists(t *testing.T)           { t.Parallel(); ipfiltertest.Run(t, newIPLists) }
func TestIPListsConcurrent(t *testing.T) { ipfiltertest.RunConcurrent(t, newIPLists) }

var rbacStores = rbactest.Stores{
	Policies:  func(t *testing.T) rbac.PolicyStore { return openStore(t).Policies },
	Approvals: func(t *testing.T) rbac.ApprovalStore { return openStore(t).Approvals },
}

func TestRBACStores(t *testing.T)           { t.Parallel(); rbactest.Run(t, rbacStores) }
func TestRBACStoresConcurrent(t *testing.T) { rbactest.RunConcurrent(t, rbacStores) }

func newSSO(t *testing.T) sso.Stores { return openStore(t).SSO.Stores() }

func TestSSO(t *testing.T)           { t.Parallel(); ssotest.Run(t, newSSO) }
func TestSSOConcurrent(t *testing.T) { ssotest.RunConcurrent(t, newSSO) }
