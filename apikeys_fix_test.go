package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

// A key the host creates records its System label as CreatedBy as the
// audit log records the actor: valid UTF-8, clipped; a label with a NUL
// byte, which not every backend can keep, is refused on every backend.
func TestAPIKeySystemLabelCreatedBy(t *testing.T) {
	f := newFixture(t)
	_, k, err := f.g.CreateAPIKey(f.ctx, guard.System("nightly \xff"), guard.NewAPIKey{Tenant: tenantID, Name: "host"})
	if err != nil {
		t.Fatal(err)
	}
	evs := f.events(t, audit.APIKeyCreated)
	if len(evs) != 1 || k.CreatedBy != "nightly \uFFFD" || evs[0].Actor.ID != k.CreatedBy {
		t.Errorf("CreatedBy %q, events %+v: want %q, the actor of apikey.created", k.CreatedBy, evs, "nightly \uFFFD")
	}
	var ie *guard.InputError
	if _, _, err := f.g.CreateAPIKey(f.ctx, guard.System("nightly\x00"), guard.NewAPIKey{Tenant: tenantID, Name: "host"}); !errors.As(err, &ie) {
		t.Errorf("CreateAPIKey by a System label with a NUL byte: %v, want an *InputError", err)
	}
	if n := len(f.events(t, audit.APIKeyCreated)); n != 1 {
		t.Errorf("%d apikey.created events, want 1", n)
	}
}

// An API key never passes a step-up check, whatever its roles: every
// step-up-gated call refuses it with ErrForbidden, recorded as
// access.denied with reason api_key (APIKEY-3).
func TestAPIKeyRefusedStepUp(t *testing.T) {
	f := newMFAFixture(t).fixture
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	adam, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	key, k := f.newKey(t, owner, "owner automation", rbac.Owner)
	p, err := f.g.AuthenticateAPIKey(f.ctx, key, apikeyAuditAddr)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"CreateAPIKey": func() error {
			_, _, err := f.g.CreateAPIKey(f.ctx, p, guard.NewAPIKey{Tenant: tenantID, Name: "more"})
			return err
		},
		"SetIPAllowList": func() error {
			_, err := f.g.SetIPAllowList(f.ctx, p, tenantID, guard.IPListChange{Scope: ipfilter.APIKeys, Entries: []string{"203.0.113.0/24"}})
			return err
		},
		"SetPolicy": func() error {
			_, err := f.g.SetPolicy(f.ctx, p, tenantID, guard.Policy{}, 0)
			return err
		},
		"RemoveFactor":       func() error { return f.g.RemoveFactor(f.ctx, p, tenantID, adam.UserID, "f") },
		"ChangeEmail":        func() error { return f.g.ChangeEmail(f.ctx, p, "key@example.test") },
		"RequestEmailChange": func() error { return f.g.RequestEmailChange(f.ctx, p, "key@example.test") },
		"BeginOOB": func() error {
			_, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, "key@example.test", "key")
			return err
		},
		"BeginTOTP": func() error {
			_, err := f.g.BeginTOTP(f.ctx, p, "key")
			return err
		},
		"RegenerateRecoveryCodes": func() error {
			_, err := f.g.RegenerateRecoveryCodes(f.ctx, p)
			return err
		},
	}
	for name, call := range calls {
		before := len(f.events(t, audit.AccessDenied))
		if err := call(); !errors.Is(err, guard.ErrForbidden) {
			t.Errorf("%s by an owner API key: %v, want ErrForbidden", name, err)
			continue
		}
		evs := f.events(t, audit.AccessDenied)
		if len(evs) != before+1 {
			t.Errorf("%s by an owner API key: %d access.denied events, want %d", name, len(evs), before+1)
			continue
		}
		if e := evs[len(evs)-1]; e.Actor.Kind != audit.ActorAPIKey || e.Actor.ID != k.ID || e.Reason != "api_key" || e.IP != apikeyAuditAddr.String() {
			t.Errorf("%s by an owner API key recorded %+v, want actor the key, reason api_key, its IP", name, e)
		}
	}
}

// RevokeAPIKey follows "Acting on a more privileged user" (APIKEY-2): an
// admin cannot revoke an owner's key, nor can a key with api-keys:manage,
// the refusal recorded as a failed apikey.revoked (escalation, Meta role);
// the key's creator, demoted since, and the key itself still may; an
// access review refuses such a key decision before applying any.
func TestAPIKeyRevokeOutranks(t *testing.T) {
	f := newMFAFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	_, _ = f.userWithRoles(t, "oscar@example.test", rbac.Owner)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	ownerKey, ok := f.newKey(t, owner, "owner automation", rbac.Owner)
	adminKey, _ := f.newKey(t, owner, "admin automation", rbac.Admin)
	kp, err := f.g.AuthenticateAPIKey(f.ctx, adminKey, apikeyAuditAddr)
	if err != nil {
		t.Fatal(err)
	}
	for name, by := range map[string]guard.Principal{"admin": admin, "admin key": kp} {
		if err := f.g.RevokeAPIKey(f.ctx, by, tenantID, ok.ID); !errors.Is(err, guard.ErrForbidden) || !errors.Is(err, rbac.ErrEscalation) {
			t.Errorf("RevokeAPIKey of the owner key by the %s: %v, want ErrForbidden (rbac.ErrEscalation)", name, err)
		}
	}
	evs := f.events(t, audit.APIKeyRevoked)
	if len(evs) != 2 {
		t.Fatalf("apikey.revoked events %+v, want the two refusals", evs)
	}
	for _, e := range evs {
		if e.Outcome != audit.Failure || e.Reason != "escalation" || e.Meta["role"] != rbac.Owner || e.Target != ok.ID {
			t.Errorf("refusal recorded as %+v, want a failed apikey.revoked of the key, reason escalation, Meta role owner", e)
		}
	}
	_, err = f.g.ApplyReview(f.ctx, admin, tenantID, []guard.Decision{{KeyID: ok.ID}})
	if !errors.Is(err, rbac.ErrEscalation) {
		t.Errorf("ApplyReview revoking the owner key by an admin: %v, want ErrForbidden (rbac.ErrEscalation)", err)
	}
	if _, err := f.g.AuthenticateAPIKey(f.ctx, ownerKey, apikeyAuditAddr); err != nil {
		t.Fatalf("the owner key after the refusals: %v", err)
	}
	// An admin revokes an admin's key, as before.
	_, other := f.newKey(t, owner, "reports", rbac.ReportsOnly)
	if err := f.g.RevokeAPIKey(f.ctx, admin, tenantID, other.ID); err != nil {
		t.Errorf("an admin revoking a reports-only key: %v", err)
	}
	// The key itself may revoke itself; its creator, demoted, their own.
	if err := f.g.RevokeAPIKey(f.ctx, kp, tenantID, kp.KeyID); err != nil {
		t.Errorf("a key revoking itself: %v", err)
	}
	if err := f.g.GrantRole(f.ctx, guard.System("test"), tenantID, "user:"+owner.UserID, rbac.Admin); err != nil {
		t.Fatal(err)
	}
	if err := f.g.RevokeRole(f.ctx, guard.System("test"), tenantID, "user:"+owner.UserID, rbac.Owner); err != nil {
		t.Fatal(err)
	}
	_, demoted := f.signIn(t, "olga@example.test", ownerPW)
	if err := f.g.RevokeAPIKey(f.ctx, demoted, tenantID, ok.ID); err != nil {
		t.Errorf("the creator, demoted to admin, revoking their own owner key: %v", err)
	}
}

// A key is bound to its creator's present standing (APIKEY-1): while the
// creator's password is marked compromised, the key authenticates and is
// refused every permission as the creator's sessions are
// (ErrPasswordChangeRequired, access.denied with reason password_expired,
// the key as actor), also through a Principal the host made and through
// Can; once the creator chooses a new password it works again.
func TestAPIKeySuspendedWhileCreatorsPasswordExpired(t *testing.T) {
	f := newMFAFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	adam, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	key, k := f.newKey(t, adam, "sync", rbac.Admin)
	hostKey, _ := f.newKey(t, guard.System("provisioning"), "host", rbac.Admin)
	if err := f.g.ExpirePassword(f.ctx, owner, tenantID, adam.UserID); err != nil {
		t.Fatal(err)
	}
	p, err := f.g.AuthenticateAPIKey(f.ctx, key, apikeyAuditAddr)
	if err != nil {
		t.Fatalf("the key of a creator whose password is expired: %v, want it authenticated (and refused)", err)
	}
	made := guard.Principal{Kind: guard.KindAPIKey, Tenant: tenantID, KeyID: k.ID}
	for name, by := range map[string]guard.Principal{"authenticated": p, "host-made": made} {
		before := len(f.events(t, audit.AccessDenied))
		if _, err := f.g.Authorize(f.ctx, by, rbac.Reports, rbac.Read); !errors.Is(err, guard.ErrPasswordChangeRequired) {
			t.Errorf("%s principal: Authorize = %v, want ErrPasswordChangeRequired", name, err)
		}
		if _, err := f.g.ListUsers(f.ctx, by, tenantID, "", 10); !errors.Is(err, guard.ErrPasswordChangeRequired) {
			t.Errorf("%s principal: ListUsers = %v, want ErrPasswordChangeRequired", name, err)
		}
		if ok, err := f.g.Can(f.ctx, by, rbac.Reports, rbac.Read); ok || !errors.Is(err, guard.ErrPasswordChangeRequired) {
			t.Errorf("%s principal: Can = %v, %v, want false, ErrPasswordChangeRequired", name, ok, err)
		}
		evs := f.events(t, audit.AccessDenied)
		if len(evs) != before+2 {
			t.Fatalf("%s principal: %d access.denied events, want %d", name, len(evs), before+2)
		}
		if e := evs[len(evs)-1]; e.Actor.ID != k.ID || e.Reason != guard.ReasonPasswordExpired {
			t.Errorf("%s principal: refusal recorded as %+v, want the key refused with reason password_expired", name, e)
		}
	}
	if code := serve(f.g, "", client, rbac.Reports, rbac.Read, "Authorization", "Bearer "+key); code != 403 {
		t.Errorf("a request with the key: %d, want 403", code)
	}
	// Another key, the host's, is not the creator's.
	if code := serve(f.g, "", client, rbac.Reports, rbac.Read, "Authorization", "Bearer "+hostKey); code != 204 {
		t.Errorf("a request with the host's key: %d, want 204", code)
	}
	_, ap := f.signIn(t, "adam@example.test", ownerPW)
	if err := f.g.ChangePassword(f.ctx, ap, guard.PasswordChange{Current: ownerPW, New: "a brand new passphrase"}); err != nil {
		t.Fatal(err)
	}
	if code := serve(f.g, "", client, rbac.Reports, rbac.Read, "Authorization", "Bearer "+key); code != 204 {
		t.Errorf("a request with the key once its creator chose a new password: %d, want 204", code)
	}
}

// The creator's standing is read with the key: a store failure refuses it
// (ErrUnavailable), never lets it through.
func TestAPIKeyCreatorStandingFailsClosed(t *testing.T) {
	fx := newFaultFix(t, false)
	adam, _ := fx.user(t, "adam@example.test", rbac.Owner)
	key, _ := fx.newKey(t, adam, "sync", rbac.Admin)
	fx.failing(t, "Users.User", func() error {
		_, err := fx.g.AuthenticateAPIKey(fx.ctx, key, apikeyAuditAddr)
		return err
	})
}
