package memstore_test

import (
	"errors"
	"fmt"
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

// TestPoliciesHistoryBounded: the change log keeps between 1024 and 2048
// changes per tenant and reports older ones as gone.
func TestPoliciesHistoryBounded(t *testing.T) {
	st := memstore.NewPolicies()
	const n = 3000
	for i := range n {
		r := rbac.Rule{Type: rbac.RuleGrant, Role: "member", Subject: fmt.Sprint("user:u", i)}
		if err := st.Update(t.Context(), "acme", uint64(i), nil, []rbac.Rule{r}); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := st.Changes(t.Context(), "acme", n-1024)
	if err != nil || len(ch) != 1024 || ch[0].Version != n-1023 || ch[1023].Version != n {
		t.Fatalf("Changes(n-1024): %d changes, %v", len(ch), err)
	}
	if _, err := st.Changes(t.Context(), "acme", n-2049); !errors.Is(err, rbac.ErrHistoryGone) {
		t.Errorf("Changes older than 2048 back = %v, want ErrHistoryGone", err)
	}
	rules, v, _ := st.Policy(t.Context(), "acme")
	if len(rules) != n || v != n {
		t.Errorf("Policy: %d rules at version %d", len(rules), v)
	}
}
