package guard_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// A key's roles are API-key data: RolesOf of a "key:" subject takes
// api-keys:read (the permission that lists the keys), not users:read, and
// a user's roles still take users:read. A refusal is recorded with the
// section it needed.
func TestRolesOfKeyTakesAPIKeysRead(t *testing.T) {
	f := newGrantableFixture(t)
	key, user := "key:"+f.reportsKey.KeyID, "user:"+f.member.UserID
	for _, tc := range []struct {
		name    string
		by      guard.Principal
		subject string
		want    []string     // nil: refused
		section rbac.Section // of the refusal
	}{
		{"key admin reads a key's roles", f.keyAdmin, key, []string{rbac.ReportsOnly}, ""},
		{"key admin reads a user's roles", f.keyAdmin, user, nil, rbac.Users},
		{"user admin reads a user's roles", f.userAdmin, user, []string{rbac.Member}, ""},
		{"user admin reads a key's roles", f.userAdmin, key, nil, rbac.APIKeys},
		{"member reads a key's roles", f.member, key, nil, rbac.APIKeys},
		{"owner reads a key's roles", f.owner, key, []string{rbac.ReportsOnly}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.events(t, audit.AccessDenied))
			rs, err := f.g.RolesOf(f.ctx, tc.by, tenantID, tc.subject)
			denied := f.events(t, audit.AccessDenied)[before:]
			if tc.want != nil {
				if err != nil || !slices.Equal(rs, tc.want) {
					t.Errorf("RolesOf(%s) = %v, %v; want %v", tc.subject, rs, err, tc.want)
				}
				if len(denied) != 0 {
					t.Errorf("recorded %d access.denied", len(denied))
				}
				return
			}
			if !errors.Is(err, guard.ErrForbidden) {
				t.Errorf("RolesOf(%s) = %v, %v; want ErrForbidden", tc.subject, rs, err)
			}
			if len(denied) != 1 || denied[0].Meta["section"] != string(tc.section) || denied[0].Meta["action"] != string(rbac.Read) {
				t.Errorf("access.denied recorded: %v, want one of %s:read", denied, tc.section)
			}
		})
	}
}
