package rbactest

import (
	"testing"

	"github.com/guardhq/guard/rbac"
)

// runParityAudit runs the cases the store-parity audit added: points on
// which the backends were found to answer differently.
func runParityAudit(t *testing.T, s Stores) {
	t.Helper()
	if s.Approvals != nil {
		t.Run("AuditParity", func(t *testing.T) { runGroups(t, s.Approvals, parityApprovalGroups) })
	}
}

var parityApprovalGroups = []group[rbac.ApprovalStore]{
	{"ListApprovals", []test[rbac.ApprovalStore]{
		// ListApprovals returns "min(q.Limit, 1000) of them": for a
		// negative Limit that is none. Whatever a backend makes of it, it
		// must not crash the process (memstore slices out[:limit]) nor
		// answer with a default page (pgstore takes it as 0, 100).
		{"NegativeLimitListsNone", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			for n := 1; n <= 3; n++ {
				c.create(mkApproval("acme", n))
			}
			var got []rbac.Approval
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("ListApprovals(Limit: -1) panicked: %v", r)
					}
				}()
				got, err = st.ListApprovals(t.Context(), "acme", rbac.ApprovalQuery{Limit: -1})
			}()
			if err == nil && len(got) != 0 {
				t.Errorf("ListApprovals(Limit: -1) = %d approvals, want none (min(-1, 1000) of them)", len(got))
			}
		}},
	}},
}
