package guard_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// raceUpdates runs hook once, armed, before the first write it names (a
// SetStatus to status, or ExpirePassword when status is ""): a change
// landing between a call's checks and its write. failUndo fails every
// SetStatus to active and every ClearPasswordExpired after the hook ran.
type raceUpdates struct {
	auth.UserUpdater
	mu       sync.Mutex
	status   auth.Status
	hook     func(id string)
	failUndo bool
	ran      bool
}

func (u *raceUpdates) arm(status auth.Status, hook func(id string)) {
	u.mu.Lock()
	u.status, u.hook, u.ran = status, hook, false
	u.mu.Unlock()
}

func (u *raceUpdates) take(status auth.Status) func(string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.hook == nil || status != u.status {
		return nil
	}
	h := u.hook
	u.hook, u.ran = nil, true
	return h
}

func (u *raceUpdates) SetStatus(ctx context.Context, tenant, id string, s auth.Status) error {
	u.mu.Lock()
	fail := u.failUndo && u.ran && s == auth.StatusActive
	u.mu.Unlock()
	if fail {
		return errDown
	}
	if h := u.take(s); h != nil {
		h(id)
	}
	return u.UserUpdater.SetStatus(ctx, tenant, id, s)
}

// Deactivate is the status write of a deactivation: armed for one, it
// runs the hook as SetStatus does.
func (u *raceUpdates) Deactivate(ctx context.Context, tenant, id string) (bool, error) {
	if h := u.take(auth.StatusDeactivated); h != nil {
		h(id)
	}
	return u.UserUpdater.Deactivate(ctx, tenant, id)
}

// DeactivateIdle is the status write of DeactivateDormant: armed for a
// deactivation, it runs the hook as SetStatus does.
func (u *raceUpdates) DeactivateIdle(ctx context.Context, tenant, id string, idleSince time.Time) error {
	if h := u.take(auth.StatusDeactivated); h != nil {
		h(id)
	}
	return u.UserUpdater.DeactivateIdle(ctx, tenant, id, idleSince)
}

func (u *raceUpdates) ExpirePassword(ctx context.Context, tenant, id string) (bool, error) {
	if h := u.take(""); h != nil {
		h(id)
	}
	return u.UserUpdater.ExpirePassword(ctx, tenant, id)
}

// ClearPasswordExpired is the undo of ExpirePassword: failUndo fails it
// once the hook ran.
func (u *raceUpdates) ClearPasswordExpired(ctx context.Context, tenant, id string) error {
	u.mu.Lock()
	fail := u.failUndo && u.ran
	u.mu.Unlock()
	if fail {
		return errDown
	}
	return u.UserUpdater.ClearPasswordExpired(ctx, tenant, id)
}

// raceFixture has an owner (olga), a member (mia) and an admin; the user
// updates behind a raceUpdates.
type raceFixture struct {
	*fixture
	up               *raceUpdates
	olga, mia, admin guard.Principal
}

func newRaceFixture(t *testing.T, mutate ...func(*guard.Config)) *raceFixture {
	t.Helper()
	rf := &raceFixture{}
	rf.fixture = newFixture(t, append(mutate, func(c *guard.Config) {
		rf.up = &raceUpdates{UserUpdater: c.Stores.UserUpdates}
		c.Stores.UserUpdates = rf.up
	})...)
	rf.olga, _ = rf.userWithRoles(t, "olga@example.test", rbac.Owner)
	rf.mia, _ = rf.userWithRoles(t, "mia@example.test", rbac.Member)
	rf.admin, _ = rf.userWithRoles(t, "adam@example.test", rbac.Admin)
	return rf
}

// promote returns a hook by which the owner makes the user an owner.
func (rf *raceFixture) promote(t *testing.T) func(id string) {
	return func(id string) {
		if err := rf.g.GrantRole(rf.ctx, rf.olga, tenantID, "user:"+id, rbac.Owner); err != nil {
			t.Errorf("the owner's grant: %v", err)
		}
	}
}

// wantRefused checks that err is ErrForbidden, that the last action
// event on mia is a failure with reason escalation naming the owner
// role, and that mia's status is want.
func (rf *raceFixture) wantRefused(t *testing.T, err error, action audit.Action, want auth.Status) {
	t.Helper()
	if !errors.Is(err, guard.ErrForbidden) || !errors.Is(err, rbac.ErrEscalation) {
		t.Errorf("%s of a user made owner meanwhile: %v, want ErrForbidden", action, err)
	}
	evs := rf.events(t, action)
	if n := len(evs); n == 0 || evs[n-1].Outcome != audit.Failure || evs[n-1].Reason != "escalation" ||
		evs[n-1].Meta["role"] != rbac.Owner || evs[n-1].Target != rf.mia.UserID {
		t.Errorf("%s events %+v; want the last a failure on mia, reason escalation, Meta role owner", action, evs)
	}
	for _, e := range evs {
		if e.Outcome == audit.Success && e.Target == rf.mia.UserID {
			t.Errorf("%s recorded done: %+v", action, e)
		}
	}
	if u, err := rf.g.User(rf.ctx, guard.System("test"), tenantID, rf.mia.UserID); err != nil || u.Status != want {
		t.Errorf("mia after the refusal: %+v, %v; want %s", u, err, want)
	}
}

// A deactivation of a user made owner between the check and the write is
// undone and refused (see "Acting on a more privileged user").
func TestDeactivateUserRacingAGrantRefused(t *testing.T) {
	rf := newRaceFixture(t)
	rf.up.arm(auth.StatusDeactivated, rf.promote(t))
	err := rf.g.DeactivateUser(rf.ctx, rf.admin, tenantID, rf.mia.UserID)
	rf.wantRefused(t, err, audit.UserDeactivated, auth.StatusActive)
	// The owner, who outranks her, still may.
	if err := rf.g.DeactivateUser(rf.ctx, rf.olga, tenantID, rf.mia.UserID); err != nil {
		t.Errorf("the owner's deactivation: %v", err)
	}
}

// So is an access review's deactivation: the review ends with the error.
func TestApplyReviewDeactivationRacingAGrantRefused(t *testing.T) {
	rf := newRaceFixture(t)
	rf.up.arm(auth.StatusDeactivated, rf.promote(t))
	res, err := rf.g.ApplyReview(rf.ctx, rf.admin, tenantID, []guard.Decision{{UserID: rf.mia.UserID, Deactivate: true}})
	rf.wantRefused(t, err, audit.UserDeactivated, auth.StatusActive)
	if res.Deactivated != 0 {
		t.Errorf("review result %+v: counts a refused deactivation", res)
	}
	if evs := rf.events(t, audit.ReviewCompleted); len(evs) != 0 {
		t.Errorf("the review recorded as done: %+v", evs)
	}
}

// allDormant turns on the tenant's AutoDeactivateDormant (after 30 days)
// and moves the clock 31 days on: every user is dormant.
func (f *fixture) allDormant(t *testing.T) {
	t.Helper()
	tn, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	pol.AutoDeactivateDormant, pol.DormantAfter = true, 30*24*time.Hour
	if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(31 * 24 * time.Hour)
}

// DeactivateDormant passes over a user made owner meanwhile (undone, on
// record) and goes on with the others.
func TestDeactivateDormantRacingAGrantPassesOver(t *testing.T) {
	rf := newRaceFixture(t)
	bob, _ := rf.userWithRoles(t, "bob@example.test", rbac.Member)
	rf.allDormant(t)
	// The owner's grant needs a recent authentication: she signs in again.
	rf.olga, _ = rf.signIn(t, "olga@example.test")
	first, other := rf.mia.UserID, bob.UserID
	if other < first {
		first, other = other, first
	}
	rf.up.arm(auth.StatusDeactivated, rf.promote(t))
	got, err := rf.g.DeactivateDormant(rf.ctx, rf.admin, tenantID)
	if err != nil || len(got) != 1 || got[0] != other {
		t.Fatalf("DeactivateDormant = %v, %v; want only %s (the other made owner meanwhile)", got, err, other)
	}
	if u, err := rf.g.User(rf.ctx, guard.System("test"), tenantID, first); err != nil || u.Status != auth.StatusActive {
		t.Errorf("the user made owner: %+v, %v; want active", u, err)
	}
}

// So does the system's run: a user made owner between the check of the
// roles and the write is set back to active, the undone deactivation on
// record (a failed user.deactivated, reason owner), and the run goes on.
func TestDeactivateDormantBySystemRacingAnOwnerGrantPassesOver(t *testing.T) {
	rf := newRaceFixture(t)
	rf.allDormant(t)
	// The owner's grant needs a recent authentication: she signs in again.
	rf.olga, _ = rf.signIn(t, "olga@example.test")
	var promoted string
	rf.up.arm(auth.StatusDeactivated, func(id string) { promoted = id; rf.promote(t)(id) })
	got, err := rf.g.DeactivateDormant(rf.ctx, guard.System("cron"), tenantID)
	if err != nil || slices.Contains(got, promoted) || len(got) != 1 {
		t.Fatalf("DeactivateDormant = %v, %v; want the admin or mia, not %s (made owner meanwhile)", got, err, promoted)
	}
	if u, err := rf.g.User(rf.ctx, guard.System("test"), tenantID, promoted); err != nil || u.Status != auth.StatusActive {
		t.Errorf("the user made owner: %+v, %v; want active", u, err)
	}
	var refused, done int
	for _, e := range rf.events(t, audit.UserDeactivated) {
		switch {
		case e.Target != promoted:
		case e.Outcome == audit.Failure && e.Reason == "owner" && e.Meta["reason"] == "dormant":
			refused++
		case e.Outcome == audit.Success:
			done++
		}
	}
	if refused != 1 || done != 0 {
		t.Errorf("user.deactivated of the user made owner: %d refused (reason owner), %d done; want 1 and 0", refused, done)
	}
}

// A reactivation of a user made owner between the check and the write is
// undone and refused: the user stays deactivated.
func TestReactivateUserRacingAGrantRefused(t *testing.T) {
	rf := newRaceFixture(t)
	if err := rf.g.DeactivateUser(rf.ctx, rf.olga, tenantID, rf.mia.UserID); err != nil {
		t.Fatal(err)
	}
	rf.up.arm(auth.StatusActive, rf.promote(t))
	err := rf.g.ReactivateUser(rf.ctx, rf.admin, tenantID, rf.mia.UserID)
	rf.wantRefused(t, err, audit.UserReactivated, auth.StatusDeactivated)
}

// ExpirePassword on a user made owner between the check and the mark is
// refused, and the mark is taken back: the admin does not make an owner
// change their password. A mark there before the call, or set by
// another (the owner) after the call read the user, is not the call's to
// take back: it stays.
func TestExpirePasswordRacingAGrantRefused(t *testing.T) {
	for _, marked := range []string{"unmarked", "marked before", "marked meanwhile"} {
		t.Run(marked, func(t *testing.T) {
			rf := newRaceFixture(t)
			mark := func() {
				if _, err := rf.up.UserUpdater.ExpirePassword(rf.ctx, tenantID, rf.mia.UserID); err != nil {
					t.Fatal(err)
				}
			}
			hook := rf.promote(t)
			switch marked {
			case "marked before":
				mark()
			case "marked meanwhile":
				promote := hook
				hook = func(id string) { mark(); promote(id) }
			}
			rf.up.arm("", hook)
			err := rf.g.ExpirePassword(rf.ctx, rf.admin, tenantID, rf.mia.UserID)
			rf.wantRefused(t, err, audit.PasswordExpired, auth.StatusActive)
			rf.wantExpired(t, marked != "unmarked")
		})
	}
}

// A mark that cannot be taken back returns ErrUnavailable: it stays,
// unrecorded as done.
func TestExpirePasswordRacingAGrantUndoFails(t *testing.T) {
	rf := newRaceFixture(t)
	rf.up.mu.Lock()
	rf.up.failUndo = true
	rf.up.mu.Unlock()
	rf.up.arm("", rf.promote(t))
	err := rf.g.ExpirePassword(rf.ctx, rf.admin, tenantID, rf.mia.UserID)
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("ExpirePassword with the undo failing: %v, want ErrUnavailable", err)
	}
	rf.wantExpired(t, true)
	for _, e := range rf.events(t, audit.PasswordExpired) {
		if e.Outcome == audit.Success {
			t.Errorf("recorded done: %+v", e)
		}
	}
}

// wantExpired checks that mia's password is marked for change or not.
func (rf *raceFixture) wantExpired(t *testing.T, want bool) {
	t.Helper()
	if u, err := rf.g.User(rf.ctx, guard.System("test"), tenantID, rf.mia.UserID); err != nil || u.PasswordExpired != want {
		t.Errorf("mia: %+v, %v; want PasswordExpired %v", u, err, want)
	}
}

// An undo that fails returns ErrUnavailable and the deactivation stands
// (the safer state), unrecorded as done.
func TestDeactivateUserRacingAGrantUndoFails(t *testing.T) {
	rf := newRaceFixture(t)
	rf.up.mu.Lock()
	rf.up.failUndo = true
	rf.up.mu.Unlock()
	rf.up.arm(auth.StatusDeactivated, rf.promote(t))
	err := rf.g.DeactivateUser(rf.ctx, rf.admin, tenantID, rf.mia.UserID)
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("DeactivateUser with the undo failing: %v, want ErrUnavailable", err)
	}
	if u, err := rf.g.User(rf.ctx, guard.System("test"), tenantID, rf.mia.UserID); err != nil || u.Status != auth.StatusDeactivated {
		t.Errorf("mia: %+v, %v; want deactivated (the undo failed)", u, err)
	}
	for _, e := range rf.events(t, audit.UserDeactivated) {
		if e.Outcome == audit.Success {
			t.Errorf("recorded done: %+v", e)
		}
	}
}

// Unable to read the roles again after the write, the deactivation is
// undone and ErrUnavailable returned: the rule is not left unchecked.
func TestDeactivateUserRecheckFailsClosed(t *testing.T) {
	var down *versionDownAfter
	rf := newRaceFixture(t, func(c *guard.Config) {
		down = &versionDownAfter{PolicyStore: c.Stores.Policies}
		c.Stores.Policies = down
	})
	rf.up.arm(auth.StatusDeactivated, func(string) {
		down.mu.Lock()
		down.armed, down.ok = true, 0
		down.mu.Unlock()
	})
	err := rf.g.DeactivateUser(rf.ctx, rf.admin, tenantID, rf.mia.UserID)
	down.mu.Lock()
	down.armed = false
	down.mu.Unlock()
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("DeactivateUser with the roles unreadable after the write: %v, want ErrUnavailable", err)
	}
	if u, err := rf.g.User(rf.ctx, guard.System("test"), tenantID, rf.mia.UserID); err != nil || u.Status != auth.StatusActive {
		t.Errorf("mia: %+v, %v; want active (undone)", u, err)
	}
}

// RemoveFactor of the factor of a user made owner between the check and
// the removal is refused, and the factor put back: the admin does not
// lower an owner's protection.
func TestRemoveFactorRacingAGrantRefused(t *testing.T) {
	var fs *hookedFactorDelete
	f := newMFAFixture(t, func(c *guard.Config) {
		fs = &hookedFactorDelete{FactorStore: c.Stores.MFA.Factors}
		c.Stores.MFA.Factors = fs
	})
	sys := guard.System("test")
	olga, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	mia, _ := f.userWithRoles(t, "mia@example.test", rbac.Member)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	_, p := f.signIn(t, "mia@example.test", ownerPW)
	f.enrolTOTP(t, p)
	before, err := f.g.Factors(f.ctx, sys, tenantID, mia.UserID)
	if err != nil || len(before) != 1 {
		t.Fatalf("mia's factors %+v, %v", before, err)
	}
	fs.hook = func() {
		if err := f.g.GrantRole(f.ctx, olga, tenantID, "user:"+mia.UserID, rbac.Owner); err != nil {
			t.Errorf("the owner's grant: %v", err)
		}
	}
	err = f.g.RemoveFactor(f.ctx, admin, tenantID, mia.UserID, before[0].ID)
	if !errors.Is(err, guard.ErrForbidden) || !errors.Is(err, rbac.ErrEscalation) {
		t.Errorf("RemoveFactor of a user made owner meanwhile: %v, want ErrForbidden", err)
	}
	if after, err := f.g.Factors(f.ctx, sys, tenantID, mia.UserID); err != nil || len(after) != 1 ||
		after[0].ID != before[0].ID || !after[0].Confirmed() {
		t.Errorf("mia's factors after the refusal: %+v, %v; want her app back", after, err)
	}
	evs := f.events(t, audit.MFARemoved)
	if n := len(evs); n != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != "escalation" ||
		evs[0].Meta["role"] != rbac.Owner || evs[0].Target != mia.UserID || evs[0].Actor.ID != admin.UserID {
		t.Errorf("mfa.removed events %+v; want one failure on mia, reason escalation, Meta role owner", evs)
	}
}
