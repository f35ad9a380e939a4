package guard_test

import (
	"slices"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// A grant of the role that lands after DefineRole began, but before the
// redefinition, gives its holder the role whose permissions then change:
// the session the holder started meanwhile ends (SE-3), as does a holder's
// of long standing. Here the grant (and the sign-in) lands just before
// the redefinition's write, which then meets a moved version and is
// planned again.
func TestDefineRoleEndsSessionsOfAGrantLandingMeanwhile(t *testing.T) {
	var pol *beforeUpdate
	f := newFixture(t, withBeforeUpdate(&pol))
	sys := guard.System("test")
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "helper", []string{"reports:read"}); err != nil {
		t.Fatal(err)
	}
	_, bobTok := f.userWithRoles(t, "bob@example.test", "helper") // a holder of long standing
	carl, _ := f.userWithRoles(t, "carl@example.test", rbac.Member)
	var carlTok string
	var hookErr error
	pol.arm(func() {
		if hookErr = f.g.GrantRole(f.ctx, sys, tenantID, rbac.User(carl.UserID).String(), "helper"); hookErr != nil {
			return
		}
		_, carlTok = f.signIn(t, "carl@example.test")
	})
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "helper", []string{"reports:read", "contacts:read"}); err != nil {
		t.Fatal(err)
	}
	if hookErr != nil || carlTok == "" {
		t.Fatalf("the grant meanwhile did not happen: %v", hookErr)
	}
	for name, tok := range map[string]string{"bob": bobTok, "carl": carlTok} {
		if _, err := f.g.Authenticate(f.ctx, tok); err == nil {
			t.Errorf("%s's session, started holding the role, outlives the change of its permissions", name)
		}
	}
}

// A redefinition that cannot be recorded puts back the role it replaced:
// the permissions as they were when it landed, not as read before. Here
// another DefineRole lands (recorded) just before the redefinition's
// write; the audit log then fails, and the role must keep the other
// definition.
func TestDefineRoleUndoPutsBackTheRoleItReplaced(t *testing.T) {
	var pol *beforeUpdate
	var fa *failingAudit
	f := newFixture(t, withFailingAudit(&fa), withBeforeUpdate(&pol))
	sys := guard.System("test")
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "support", []string{"reports:read"}); err != nil {
		t.Fatal(err)
	}
	var hookErr error
	pol.arm(func() {
		hookErr = f.g.DefineRole(f.ctx, sys, tenantID, "support", []string{"reports:read", "contacts:read"})
		fa.set(true)
	})
	err := f.g.DefineRole(f.ctx, sys, tenantID, "support", []string{"reports:read", "users:manage"})
	fa.set(false)
	if hookErr != nil {
		t.Fatalf("the definition meanwhile failed: %v", hookErr)
	}
	wantUnavailable(t, "DefineRole (replace)", err)
	roles, err := f.g.Roles(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"contacts:read", "reports:read"}
	i := slices.IndexFunc(roles, func(r rbac.RoleInfo) bool { return r.Name == "support" })
	if i < 0 {
		t.Fatal("role support is gone")
	}
	if got := permStrings(roles[i].Permissions); !slices.Equal(got, want) {
		t.Errorf("support has %v after the undone redefinition, want %v (the definition it replaced)", got, want)
	}
}

// permStrings returns ps in their string form, sorted.
func permStrings(ps []rbac.Permission) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

// A new role whose definition cannot be recorded is deleted again, with
// any grant of it made meanwhile: such a grant's holder loses the role,
// and the session the holder started while holding it ends. The loss is
// recorded as DeleteRole records it (a role.revoked, reason role_deleted)
// when the audit log takes it; when the log is still down, the sessions
// end all the same. Here the grant (and the sign-in) lands just before
// the undoing deletion's write.
func TestDefineRoleUndoOfANewRoleSignsOutItsGrants(t *testing.T) {
	for _, c := range []struct {
		name     string
		downThen bool // the audit log is down for the undo's records too
	}{{"audit log back", false}, {"audit log still down", true}} {
		t.Run(c.name, func(t *testing.T) {
			var pol *beforeUpdate
			var fa *failingAudit
			f := newFixture(t, withFailingAudit(&fa), withBeforeUpdate(&pol))
			sys := guard.System("test")
			carl, _ := f.userWithRoles(t, "carl@example.test", rbac.Member)
			var carlTok string
			var hookErr error
			// Before the definition's write: its record is to fail.
			pol.arm(func() {
				fa.set(true)
				pol.arm(func() { // before the undoing deletion's write
					fa.set(false)
					defer fa.set(c.downThen)
					if hookErr = f.g.GrantRole(f.ctx, sys, tenantID, rbac.User(carl.UserID).String(), "helper"); hookErr != nil {
						return
					}
					_, carlTok = f.signIn(t, "carl@example.test")
				})
			})
			err := f.g.DefineRole(f.ctx, sys, tenantID, "helper", []string{"reports:read"})
			fa.set(false)
			if hookErr != nil || carlTok == "" {
				t.Fatalf("the grant meanwhile did not happen: %v", hookErr)
			}
			wantUnavailable(t, "DefineRole (new)", err)
			if rs, err := f.g.RolesOf(f.ctx, sys, tenantID, rbac.User(carl.UserID).String()); err != nil || slices.Contains(rs, "helper") {
				t.Fatalf("carl's roles after the undone definition = %v, %v; want no helper", rs, err)
			}
			if _, err := f.g.Authenticate(f.ctx, carlTok); err == nil {
				t.Error("carl's session, started holding the role, outlives the role")
			}
			got := f.roleDeletedFor(t, "helper")
			want := 1
			if c.downThen {
				want = 0
			}
			if n := got[rbac.User(carl.UserID).String()]; n != want {
				t.Errorf("%d role.revoked (role_deleted) of carl, want %d (recorded: %v)", n, want, got)
			}
		})
	}
}

// A definition that cannot be recorded is undone only while the role is
// still as it left it: another definition landing after it, and
// recorded, stands (the undo must not write the role back over it, nor
// delete a new role that another admin has since defined on record).
// Here the other definition lands just before the undo's write.
func TestDefineRoleUndoKeepsALaterDefinition(t *testing.T) {
	for _, c := range []struct {
		name     string
		existing bool // the undone definition replaced a role (else it created one)
	}{{"replaced role", true}, {"new role", false}} {
		t.Run(c.name, func(t *testing.T) {
			var pol *beforeUpdate
			var fa *failingAudit
			f := newFixture(t, withFailingAudit(&fa), withBeforeUpdate(&pol))
			sys := guard.System("test")
			if c.existing {
				if err := f.g.DefineRole(f.ctx, sys, tenantID, "support", []string{"reports:read"}); err != nil {
					t.Fatal(err)
				}
			}
			later := []string{"contacts:read"}
			var hookErr error
			// Before the definition's write: its record is to fail.
			pol.arm(func() {
				fa.set(true)
				pol.arm(func() { // before the undo's write
					fa.set(false)
					defer fa.set(true)
					hookErr = f.g.DefineRole(f.ctx, sys, tenantID, "support", later)
				})
			})
			err := f.g.DefineRole(f.ctx, sys, tenantID, "support", []string{"reports:read", "users:manage"})
			fa.set(false)
			if hookErr != nil {
				t.Fatalf("the definition meanwhile failed: %v", hookErr)
			}
			wantUnavailable(t, "DefineRole", err)
			roles, err := f.g.Roles(f.ctx, sys, tenantID)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(roles, func(r rbac.RoleInfo) bool { return r.Name == "support" })
			if i < 0 {
				t.Fatal("role support is gone: the undo deleted a definition on record")
			}
			if got := permStrings(roles[i].Permissions); !slices.Equal(got, later) {
				t.Errorf("support has %v after the undo, want %v (the later definition, on record)", got, later)
			}
		})
	}
}
