package guard_test

import (
	"errors"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// A malformed approval ID (not valid UTF-8, or longer than an audit field
// may be) is bad input: ApproveRequest, RejectRequest and ConsumeApproval
// answer with a typed *rbac.InputError and change nothing (DESIGN.md,
// failure rules), never ErrUnavailable, which would tell the host a store
// is down (as it did when the refusal was recorded with the raw ID as its
// target, which the audit log refuses).
func TestApprovalMalformedIDIsBadInput(t *testing.T) {
	f := newFixture(t)
	ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
	for name, id := range map[string]string{
		"invalid UTF-8": "\xff",
		"overlong":      strings.Repeat("a", 2000),
	} {
		calls := map[string]func() error{
			"ApproveRequest": func() error { _, err := f.g.ApproveRequest(f.ctx, ann, id); return err },
			"RejectRequest":  func() error { _, err := f.g.RejectRequest(f.ctx, ann, id); return err },
			"ConsumeApproval": func() error {
				_, err := f.g.ConsumeApproval(f.ctx, ann, id, "campaigns:send", "c1", []byte("p"))
				return err
			},
		}
		for call, do := range calls {
			err := do()
			var ie *rbac.InputError
			if errors.Is(err, guard.ErrUnavailable) || !errors.As(err, &ie) {
				t.Errorf("%s with an approval ID %s = %v; want an *rbac.InputError, not ErrUnavailable", call, name, err)
			}
		}
	}
}
