package pgstore_test

import (
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
	"github.com/guardhq/guard/store/pgstore"
)

// Each conformance test hands every subtest an empty migrated schema of
// its own (recycled between subtests, see recycler).

func TestSessions(t *testing.T) {
	r := newRecycler(t)
	sessiontest.Run(t, func(t *testing.T) sessiontest.Store { return r.store(t).Sessions })
}

func TestSessionsConcurrent(t *testing.T) {
	r := newRecycler(t)
	sessiontest.RunConcurrent(t, func(t *testing.T) sessiontest.Store { return r.store(t).Sessions })
}

func TestAudit(t *testing.T) {
	r := newRecycler(t)
	audittest.Run(t, func(t *testing.T) audit.Store { return r.store(t).Audit })
}

func TestAuditConcurrent(t *testing.T) {
	r := newRecycler(t)
	audittest.RunConcurrent(t, func(t *testing.T) audit.Store { return r.store(t).Audit })
}

func TestTenants(t *testing.T) {
	r := newRecycler(t)
	guardtest.Run(t, func(t *testing.T) guard.TenantStore { return r.store(t).Tenants })
}

func TestTenantsConcurrent(t *testing.T) {
	r := newRecycler(t)
	guardtest.RunConcurrent(t, func(t *testing.T) guard.TenantStore { return r.store(t).Tenants })
}

func authStores(r *recycler) authtest.Stores {
	return authtest.Stores{
		Users:    func(t *testing.T) authtest.Users { return r.store(t).Users },
		Throttle: func(t *testing.T) auth.ThrottleStore { return r.store(t).Throttle },
		APIKeys:  func(t *testing.T) auth.APIKeyStore { return r.store(t).APIKeys },
	}
}

func TestAuthStores(t *testing.T)           { authtest.Run(t, authStores(newRecycler(t))) }
func TestAuthStoresConcurrent(t *testing.T) { authtest.RunConcurrent(t, authStores(newRecycler(t))) }

func TestIPLists(t *testing.T) {
	r := newRecycler(t)
	ipfiltertest.Run(t, func(t *testing.T) ipfilter.Store { return r.store(t).IPLists })
}

func TestIPListsConcurrent(t *testing.T) {
	r := newRecycler(t)
	ipfiltertest.RunConcurrent(t, func(t *testing.T) ipfilter.Store { return r.store(t).IPLists })
}

func TestMFA(t *testing.T) {
	r := newRecycler(t)
	mfatest.Run(t, func(t *testing.T) mfa.Stores { return r.store(t).MFA.Stores() })
}

func TestMFAConcurrent(t *testing.T) {
	r := newRecycler(t)
	mfatest.RunConcurrent(t, func(t *testing.T) mfa.Stores { return r.store(t).MFA.Stores() })
}

func rbacStores(r *recycler) rbactest.Stores {
	return rbactest.Stores{
		Policies:  func(t *testing.T) rbac.PolicyStore { return r.store(t).Policies },
		Approvals: func(t *testing.T) rbac.ApprovalStore { return r.store(t).Approvals },
	}
}

func TestRBACStores(t *testing.T)           { rbactest.Run(t, rbacStores(newRecycler(t))) }
func TestRBACStoresConcurrent(t *testing.T) { rbactest.RunConcurrent(t, rbacStores(newRecycler(t))) }

func TestSSO(t *testing.T) {
	r := newRecycler(t)
	ssotest.Run(t, func(t *testing.T) sso.Stores { return r.store(t).SSO.Stores() })
}

func TestSSOConcurrent(t *testing.T) {
	r := newRecycler(t)
	ssotest.RunConcurrent(t, func(t *testing.T) sso.Stores { return r.store(t).SSO.Stores() })
}

// Options.AuditAsyncCommit changes how an append commits, not what it
// stores: the same suites pass, and the setting does not outlive the
// append's own transaction.
func TestAuditAsyncCommit(t *testing.T) {
	async := func(t *testing.T) *pgstore.Store {
		st, err := pgstore.New(testPool(t), pgstore.Options{Schema: newSchemaName(t), AuditAsyncCommit: true})
		if err != nil {
			t.Fatal(err)
		}
		dropSchemaOnCleanup(t, st.Schema())
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return st
	}
	audittest.Run(t, func(t *testing.T) audit.Store { return async(t).Audit })
	audittest.RunConcurrent(t, func(t *testing.T) audit.Store { return async(t).Audit })

	t.Run("SettingStaysInTheAppend", func(t *testing.T) {
		pool := ownPool(t, 1)
		st, err := pgstore.New(pool, pgstore.Options{Schema: newSchemaName(t), AuditAsyncCommit: true})
		if err != nil {
			t.Fatal(err)
		}
		dropOnCleanup(t, pool, st.Schema())
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		l, err := audit.New(audit.Config{Store: st.Audit, Key: auditKey})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := l.Record(t.Context(), audit.Event{Tenant: "acme", Action: audit.LoginFailed, Outcome: audit.Failure}); err != nil {
				t.Fatal(err)
			}
		}
		var setting string
		if err := pool.QueryRow(t.Context(), `SHOW synchronous_commit`).Scan(&setting); err != nil || setting != "on" {
			t.Errorf("synchronous_commit on the pool's connection after appends = %q, %v; want on", setting, err)
		}
		if rep, err := l.Verify(t.Context(), "acme"); err != nil || !rep.OK || rep.Checked != 3 {
			t.Errorf("Verify = %+v, %v", rep, err)
		}
	})
}
