package guard_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/memstore"
)

// deleteRecordFails fails the Append of a user.deleted record only.
type deleteRecordFails struct {
	*memstore.Audit
	on *atomic.Bool
}

func (a deleteRecordFails) Append(ctx context.Context, tenant string, evs []audit.Event) error {
	for _, e := range evs {
		if a.on.Load() && e.Action == audit.UserDeleted {
			return errors.New("audit store down")
		}
	}
	return a.Audit.Append(ctx, tenant, evs)
}

// TestListUserAccessPastFactorsLeftBehind: DeleteUser documents that when the
// user.deleted record fails, the user stays deleted and "the rest" (second
// factors) is left behind. ListUserAccess then pages enrolments with the
// same (after, limit) window as users, so the deleted user's leftover
// enrolment pushes a real user's enrolment out of the window: that user is
// shown without MFA, while AccessReview shows them with it.
// A deletion whose record fails leaves the user's factors behind (see
// DeleteUser). They must not push a real user's factors out of the page
// ListUserAccess reads: u3 has an app, as AccessReview says.
func TestListUserAccessPastFactorsLeftBehind(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	f := newMFAFixture(t, func(c *guard.Config) {
		c.Stores.Audit = deleteRecordFails{c.Stores.Audit.(*memstore.Audit), &failing}
	})
	st := f.mem.Stores()
	now := f.clock.Now()
	sys := guard.System("test")
	for _, id := range []string{"u1", "u2", "u3"} {
		u := auth.User{ID: id, Tenant: tenantID, Email: id + "@example.test", Name: "U", Status: auth.StatusActive,
			PasswordHash: "$argon2id$stand-in", CreatedAt: now}
		if err := st.Users.CreateUser(f.ctx, u); err != nil {
			t.Fatal(err)
		}
		fa := mfa.Factor{ID: id + "-totp", Tenant: tenantID, UserID: id, Kind: mfa.KindTOTP, Label: "x",
			KeyID: "k1", Secret: []byte("sealed"), CreatedAt: now}
		if err := st.MFA.Factors.CreateFactor(f.ctx, fa, 10); err != nil {
			t.Fatal(err)
		}
		if err := st.MFA.FactorUpdates.ConfirmFactor(f.ctx, tenantID, id, fa.ID, now, 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Deleting u2: its record fails, the user is gone, its factor stays.
	err := f.g.DeleteUser(f.ctx, sys, tenantID, "u2")
	t.Logf("DeleteUser(u2) = %v", err)
	if _, err := st.Users.User(f.ctx, tenantID, "u2"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("u2 not deleted: %v", err)
	}
	// The audit store is back; calling DeleteUser again does not clear
	// the leftover factor (the user is gone).
	failing.Store(false)
	t.Logf("DeleteUser(u2) again = %v", f.g.DeleteUser(f.ctx, sys, tenantID, "u2"))
	rv, err := f.g.AccessReview(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rv.Users {
		if !r.MFAOK {
			t.Fatalf("AccessReview: %s without MFA", r.ID)
		}
	}
	rows, err := f.g.ListUserAccess(f.ctx, sys, tenantID, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if !r.MFAOK || len(r.MFA) == 0 {
			t.Errorf("ListUserAccess row %s: MFA %v, MFAOK %v; AccessReview shows TOTP (MFAOK true)", r.ID, r.MFA, r.MFAOK)
		}
	}
}
