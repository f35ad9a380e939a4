package memstore_test

import (
	"testing"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/rbac/rbactest"
	"github.com/guardhq/guard/store/memstore"
)

var rbacStores = rbactest.Stores{
	Policies:  func(*testing.T) rbac.PolicyStore { return memstore.NewPolicies() },
	Approvals: func(*testing.T) rbac.ApprovalStore { return memstore.NewApprovals() },
}

func TestRBACStores(t *testing.T) { rbactest.Run(t, rbacStores) }

func TestRBACStoresConcurrent(t *testing.T) { rbactest.RunConcurrent(t, rbacStores) }
