package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// MFAAdoption lists users (IDs, emails, names, status, last sign-in) in
// WouldEnrol and WouldNeedSSO, yet asks only for settings:read. A principal
// refused the user list everywhere else (AccessReview, ListUserAccess,
// ListUsers need users:read) must not read it through the adoption counts:
// it gets the counts without the lists.
func TestAdoptionListsUsersOnlyWithUsersRead(t *testing.T) {
	f := newMFAFixture(t)
	sys := guard.System("test")
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "policy-viewer", []string{"settings:read"}); err != nil {
		t.Fatal(err)
	}
	f.userWithRoles(t, "secret.person@example.test", rbac.Member)
	viewer, _ := f.userWithRoles(t, "viewer@example.test", "policy-viewer")

	if _, err := f.g.ListUsers(f.ctx, viewer, tenantID, "", 10); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("precondition: ListUsers by a settings:read-only principal = %v, want ErrForbidden", err)
	}
	ad, err := f.g.MFAAdoption(f.ctx, viewer, tenantID)
	if err != nil {
		t.Fatalf("MFAAdoption by a settings:read principal: %v", err)
	}
	var leaked []string
	for _, u := range append(ad.WouldEnrol, ad.WouldNeedSSO...) {
		leaked = append(leaked, u.Email)
	}
	if len(leaked) > 0 {
		t.Errorf("MFAAdoption by a principal without users:read listed users %q; want the counts alone", leaked)
	}
	if ad.WouldEnrolTotal == 0 || ad.WouldNeedSSOTotal == 0 {
		t.Errorf("MFAAdoption by a settings:read principal: WouldEnrolTotal %d, WouldNeedSSOTotal %d; want the counts kept", ad.WouldEnrolTotal, ad.WouldNeedSSOTotal)
	}

	// One who may read the users sees them listed.
	if ad, err = f.g.MFAAdoption(f.ctx, sys, tenantID); err != nil {
		t.Fatal(err)
	}
	if len(ad.WouldEnrol) != ad.WouldEnrolTotal || len(ad.WouldNeedSSO) != ad.WouldNeedSSOTotal {
		t.Errorf("MFAAdoption by the system: %d of %d would enrol, %d of %d would need SSO listed; want all", len(ad.WouldEnrol), ad.WouldEnrolTotal, len(ad.WouldNeedSSO), ad.WouldNeedSSOTotal)
	}
}
