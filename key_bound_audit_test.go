package guard_test

// Review of the changes of 3 December (faf2744..HEAD): each test failed on
// the code as it was because of the defect it names.

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// "A key created by a user never does more than that user may do now"
// (doc.go), and RequestApproval's requester "must hold the permission".
// ConsumeApproval and Authorize bound a key by its creator, but
// RequestApproval asks rbac.Approvals.Request, which decides on the key's
// own roles: the key of an admin demoted to reports-only still files a
// four-eyes request for contacts:delete, which approvers are then asked to
// decide, though neither the key (Authorize) nor its creator may do it.
func TestAuditKeyBound_RequestApprovalIgnoresTheCreatorsPermissions(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	adam, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	key, _, err := f.g.CreateAPIKey(f.ctx, adam, guard.NewAPIKey{Tenant: tenantID, Name: "ops", Roles: []string{rbac.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := f.g.AuthenticateAPIKey(f.ctx, key, netip.MustParseAddr("203.0.113.5"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.GrantRole(f.ctx, owner, tenantID, "user:"+adam.UserID, rbac.ReportsOnly); err != nil {
		t.Fatal(err)
	}
	if err := f.g.RevokeRole(f.ctx, owner, tenantID, "user:"+adam.UserID, rbac.Admin); err != nil {
		t.Fatal(err)
	}
	// The bound is in force for the key's decisions.
	if _, err := f.g.Authorize(f.ctx, kp, rbac.Contacts, rbac.Delete); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("Authorize contacts:delete by the key of a demoted admin: %v, want ErrForbidden", err)
	}
	ap, err := f.g.RequestApproval(f.ctx, kp, "contacts:delete", "all-contacts", []byte("p"), time.Hour)
	if !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("RequestApproval contacts:delete by the key of a demoted admin: %+v, %v; want ErrForbidden", ap, err)
	}
}

// "A key created by a user never does more than that user may do now"
// (doc.go). The owner-only calls (DeleteSSOConnection, SetSSOConnection)
// check the owner role with rbac.RolesOf on the principal's own subject
// (requireOwner): for an API key that is the key's roles, not bounded by
// its creator. An owner who made a key with the owner role and was then
// demoted to admin is refused DeleteSSOConnection themselves (owner_only),
// but removes the tenant's IdP with the key.
func TestAuditKeyBound_OwnerOnlyCallsTakeTheKeysOwnRole(t *testing.T) {
	s := newSSOSite(t)
	ctx, sys := t.Context(), guard.System("test")
	signIn := func(email string) guard.Principal {
		t.Helper()
		res, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.g.Authenticate(ctx, res.Token)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, email := range []string{"olga@example.test", "otto@example.test"} {
		if _, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: email, Name: "U", Password: ownerPW, Roles: []string{rbac.Owner}}); err != nil {
			t.Fatal(err)
		}
	}
	olga, otto := signIn("olga@example.test"), signIn("otto@example.test")
	key, _, err := s.g.CreateAPIKey(ctx, otto, guard.NewAPIKey{Tenant: tenantID, Name: "ops", Roles: []string{rbac.Owner}})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := s.g.AuthenticateAPIKey(ctx, key, netip.MustParseAddr("203.0.113.5"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.g.GrantRole(ctx, olga, tenantID, "user:"+otto.UserID, rbac.Admin); err != nil {
		t.Fatal(err)
	}
	if err := s.g.RevokeRole(ctx, olga, tenantID, "user:"+otto.UserID, rbac.Owner); err != nil {
		t.Fatal(err)
	}
	otto = signIn("otto@example.test")
	if err := s.g.DeleteSSOConnection(ctx, otto, tenantID); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("DeleteSSOConnection by the demoted owner: %v, want ErrForbidden", err)
	}
	err = s.g.DeleteSSOConnection(ctx, kp, tenantID)
	if _, cerr := s.g.SSOConnection(ctx, sys, tenantID); err == nil || cerr != nil {
		t.Errorf("DeleteSSOConnection by the owner key of the demoted owner: %v (connection now: %v); want ErrForbidden, the IdP kept", err, cerr)
	}
}

// keyBound takes the creator from the Principal that AuthenticateAPIKey
// made, "else from one read of the tenant's keys", and takes "" for "not
// known". A key the host created as System("") has CreatedBy "": every
// decision for it (Require's Authorize, on every request) reads the
// tenant's whole key list (ListAPIKeys), though AuthenticateAPIKey had the
// key in hand. DecideWithin costs "no more store reads" than Decide; the
// facade adds one that grows with the tenant's keys.
func TestAuditKeyBound_HostKeyWithoutLabelReadsEveryKeyPerDecision(t *testing.T) {
	c := &faultCounter{}
	f := newFixture(t, func(cfg *guard.Config) { cfg.Stores = wrapStores(cfg.Stores, c) })
	key, _, err := f.g.CreateAPIKey(f.ctx, guard.System(""), guard.NewAPIKey{Tenant: tenantID, Name: "host", Roles: []string{rbac.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := f.g.AuthenticateAPIKey(f.ctx, key, netip.MustParseAddr("203.0.113.5"))
	if err != nil {
		t.Fatal(err)
	}
	c.arm(0)
	_, err = f.g.Authorize(f.ctx, kp, rbac.Contacts, rbac.Read)
	calls, _ := c.disarm()
	if err != nil {
		t.Fatalf("Authorize by the host's key: %v", err)
	}
	for _, name := range calls {
		if name == "APIKeys.ListAPIKeys" {
			t.Errorf("Authorize by a key AuthenticateAPIKey made read the tenant's key list (calls %v); want no API-key store call", calls)
			break
		}
	}
}
