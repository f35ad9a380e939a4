package guard_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// A request filed through an API key counts as filed by the key's creator
// too: the creator cannot approve (or reject) it, the refusal is on
// record, and another user can. An API key never approves.
func TestApprovalOfOwnKeysRequest(t *testing.T) {
	f := newFixture(t)
	creator, _ := f.userWithRoles(t, "kim@example.test", rbac.Owner)
	other, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
	key, _, err := f.g.CreateAPIKey(f.ctx, creator, guard.NewAPIKey{Tenant: tenantID, Name: "sender", Roles: []string{rbac.Manager}})
	if err != nil {
		t.Fatal(err)
	}
	// A key of the system's, to show that a key never approves whoever
	// created it.
	sysKey, _, err := f.g.CreateAPIKey(f.ctx, guard.System("test"), guard.NewAPIKey{Tenant: tenantID, Name: "approver", Roles: []string{rbac.Manager}})
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("203.0.113.9")
	kp, err := f.g.AuthenticateAPIKey(f.ctx, key, addr)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := f.g.AuthenticateAPIKey(f.ctx, sysKey, addr)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"campaign":"c1"}`)
	ap, err := f.g.RequestApproval(f.ctx, kp, "campaigns:send", "c1", payload, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := f.g.ApproveRequest(f.ctx, creator, ap.ID); !errors.Is(err, rbac.ErrSelfApproval) {
		t.Errorf("approval by the key's creator: %v, want ErrSelfApproval", err)
	}
	if _, err := f.g.RejectRequest(f.ctx, creator, ap.ID); !errors.Is(err, rbac.ErrSelfApproval) {
		t.Errorf("rejection by the key's creator: %v, want ErrSelfApproval", err)
	}
	for name, p := range map[string]guard.Principal{"the requesting key": kp, "another key": sp} {
		if _, err := f.g.ApproveRequest(f.ctx, p, ap.ID); !errors.Is(err, guard.ErrForbidden) {
			t.Errorf("approval by %s: %v, want ErrForbidden", name, err)
		}
	}
	if got, err := f.g.Approvals(f.ctx, creator, rbac.ApprovalQuery{Status: rbac.StatusPending}); err != nil || len(got) != 1 || got[0].ID != ap.ID {
		t.Fatalf("pending approvals after the refusals: %v, %v; want the request, still pending", got, err)
	}
	if r := reasons(f.events(t, audit.ApprovalApproved)); r["self_approval"] != 1 || r["no_permission"] != 2 {
		t.Errorf("approval.approved refusals %v, want one self_approval and two no_permission", r)
	}
	if r := reasons(f.events(t, audit.ApprovalRejected)); r["self_approval"] != 1 {
		t.Errorf("approval.rejected refusals %v, want one self_approval", r)
	}
	for _, e := range f.events(t, audit.ApprovalApproved) {
		if e.Reason == "self_approval" && (e.Actor != audit.Actor{Kind: audit.ActorUser, ID: creator.UserID} || e.Target != ap.ID) {
			t.Errorf("self_approval refusal %+v: want the creator as actor and the request as target", e)
		}
	}

	got, err := f.g.ApproveRequest(f.ctx, other, ap.ID)
	if err != nil || got.Decider != rbac.User(other.UserID) {
		t.Fatalf("approval by another user: %+v, %v", got, err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, kp, ap.ID, "campaigns:send", "c1", payload); err != nil {
		t.Errorf("the key consuming its approved request: %v", err)
	}

	// A request filed through a key the system created is anyone's to
	// approve (the creator's is the only extra pair of eyes ruled out).
	ap2, err := f.g.RequestApproval(f.ctx, sp, "campaigns:send", "c2", payload, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ApproveRequest(f.ctx, creator, ap2.ID); err != nil {
		t.Errorf("approval of a system key's request by a user: %v", err)
	}
}

// gatedStatus holds deactivations (SetStatus to deactivated) at the
// points the test chooses: before, then after, the write.
type gatedStatus struct {
	auth.UserUpdater
	before, after func()
}

func (s *gatedStatus) SetStatus(ctx context.Context, tenant, id string, st auth.Status) error {
	if st != auth.StatusDeactivated {
		return s.UserUpdater.SetStatus(ctx, tenant, id, st)
	}
	if s.before != nil {
		s.before()
	}
	err := s.UserUpdater.SetStatus(ctx, tenant, id, st)
	if s.after != nil {
		s.after()
	}
	return err
}

// Deactivate is a deactivation's status write, held as SetStatus to
// deactivated is.
func (s *gatedStatus) Deactivate(ctx context.Context, tenant, id string) (bool, error) {
	if s.before != nil {
		s.before()
	}
	changed, err := s.UserUpdater.Deactivate(ctx, tenant, id)
	if s.after != nil {
		s.after()
	}
	return changed, err
}

// holdFirst holds the first call of wait until release is closed, and
// closes arrived when it comes; later calls pass.
type holdFirst struct {
	mu               sync.Mutex
	n                int
	arrived, release chan struct{}
}

func newHoldFirst() *holdFirst {
	return &holdFirst{arrived: make(chan struct{}), release: make(chan struct{})}
}

func (h *holdFirst) wait() {
	h.mu.Lock()
	h.n++
	first := h.n == 1
	h.mu.Unlock()
	if first {
		close(h.arrived)
		<-h.release
	}
}

// barrier lets its first n calls of wait through together, once all have
// come (or once quit is closed: a racer that ended without coming).
type barrier struct {
	mu   sync.Mutex
	n    int
	all  chan struct{}
	quit <-chan struct{}
}

func newBarrier(n int, quit <-chan struct{}) *barrier {
	return &barrier{n: n, all: make(chan struct{}), quit: quit}
}

func (b *barrier) wait() {
	b.mu.Lock()
	if b.n--; b.n == 0 {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-b.quit:
	}
}

// ownersFixture is a tenant with two owners, signed in, whose
// deactivations pass through status.
type ownersFixture struct {
	*fixture
	status         *gatedStatus
	o1, o2         guard.Principal
	o1Tok, o2Tok   string
	o1User, o2User string
}

func newOwnersFixture(t *testing.T, mutate ...func(*guard.Config)) *ownersFixture {
	t.Helper()
	of := &ownersFixture{}
	of.fixture = newFixture(t, append(mutate, func(c *guard.Config) {
		of.status = &gatedStatus{UserUpdater: c.Stores.UserUpdates}
		c.Stores.UserUpdates = of.status
	})...)
	of.o1, of.o1Tok = of.userWithRoles(t, "olga@example.test", rbac.Owner)
	of.o2, of.o2Tok = of.userWithRoles(t, "otto@example.test", rbac.Owner)
	of.o1User, of.o2User = of.o1.UserID, of.o2.UserID
	return of
}

// activeOwners returns the IDs of the tenant's active owners.
func (of *ownersFixture) activeOwners(t *testing.T) []string {
	t.Helper()
	sys := guard.System("test")
	var out []string
	for _, id := range []string{of.o1User, of.o2User} {
		u, err := of.g.User(of.ctx, sys, tenantID, id)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := of.g.RolesOf(of.ctx, sys, tenantID, "user:"+id)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r == rbac.Owner && u.Status == auth.StatusActive {
				out = append(out, id)
			}
		}
	}
	return out
}

// lastOwnerRefusals counts the events of action refused for last_owner.
func (of *ownersFixture) lastOwnerRefusals(t *testing.T, action audit.Action) int {
	t.Helper()
	n := 0
	for _, e := range of.events(t, action) {
		if e.Outcome == audit.Failure && e.Reason == "last_owner" {
			n++
		}
	}
	return n
}

// Two owners each review the other out at the same moment: both reviews
// are planned while both owners are active, then both deactivations are
// applied. At least one owner stays active.
func TestRacingReviewsKeepAnActiveOwner(t *testing.T) {
	t.Run("one after the other's plan", func(t *testing.T) {
		// The first review's deactivation is held until the second review
		// has run (planned and applied); the first then finds no other
		// active owner, undoes its deactivation and fails.
		of := newOwnersFixture(t)
		h := newHoldFirst()
		of.status.before = h.wait
		var err1 error
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err1 = of.g.ApplyReview(of.ctx, of.o1, tenantID, []guard.Decision{{UserID: of.o2User, Deactivate: true}})
		}()
		<-h.arrived // the first review has planned, and is about to write
		_, err2 := of.g.ApplyReview(of.ctx, of.o2, tenantID, []guard.Decision{{UserID: of.o1User, Deactivate: true}})
		close(h.release)
		<-done
		if !errors.Is(err1, rbac.ErrLastOwner) || err2 != nil {
			t.Fatalf("racing reviews: %v / %v; want ErrLastOwner for the first, and the second to succeed", err1, err2)
		}
		if got := of.activeOwners(t); len(got) != 1 || got[0] != of.o2User {
			t.Errorf("active owners %v, want the one the refused review decided on", got)
		}
		// Undone before the sessions end: the kept owner is still signed in.
		if _, err := of.g.Authenticate(of.ctx, of.o2Tok); err != nil {
			t.Errorf("the kept owner's session after the refused deactivation: %v", err)
		}
		if n := of.lastOwnerRefusals(t, audit.UserDeactivated); n != 1 {
			t.Errorf("%d user.deactivated refusals for last_owner, want 1", n)
		}
		if n := len(of.events(t, audit.ReviewCompleted)); n != 1 {
			t.Errorf("%d access_review.completed events, want 1 (the refused review is not done)", n)
		}
	})
	t.Run("both written before either checks", func(t *testing.T) {
		// Both deactivations are written before either counts the owners:
		// the first to count finds none and undoes its deactivation; the
		// other, counting after that undo, may find that owner again and
		// go ahead, or find none either and be refused too.
		of := newOwnersFixture(t)
		quit := make(chan struct{})
		var once sync.Once
		before, after := newBarrier(2, quit), newBarrier(2, quit)
		of.status.before, of.status.after = before.wait, after.wait
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, d := range []struct {
			by     guard.Principal
			target string
		}{{of.o1, of.o2User}, {of.o2, of.o1User}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer once.Do(func() { close(quit) })
				_, errs[i] = of.g.ApplyReview(of.ctx, d.by, tenantID, []guard.Decision{{UserID: d.target, Deactivate: true}})
			}()
		}
		wg.Wait()
		refused := 0
		for _, err := range errs {
			switch {
			case errors.Is(err, rbac.ErrLastOwner):
				refused++
			case err != nil:
				t.Fatalf("overlapping reviews: %v", err)
			}
		}
		if refused == 0 {
			t.Fatal("overlapping reviews both went ahead")
		}
		if got := of.activeOwners(t); len(got) != refused {
			t.Errorf("active owners %v with %d reviews refused, want %d", got, refused, refused)
		}
		if n := of.lastOwnerRefusals(t, audit.UserDeactivated); n != refused {
			t.Errorf("%d user.deactivated refusals for last_owner, want %d", n, refused)
		}
	})
	t.Run("one after the other", func(t *testing.T) {
		// Unchanged: the second review is refused when it is planned,
		// before it changes anything, the refusal on record.
		of := newOwnersFixture(t)
		if _, err := of.g.ApplyReview(of.ctx, of.o1, tenantID, []guard.Decision{{UserID: of.o2User, Deactivate: true}}); err != nil {
			t.Fatal(err)
		}
		if _, err := of.g.ApplyReview(of.ctx, of.o1, tenantID, []guard.Decision{{UserID: of.o2User, Deactivate: true}}); err != nil {
			t.Errorf("deactivating a deactivated owner again: %v", err)
		}
		_, err := of.g.ApplyReview(of.ctx, of.o2, tenantID, []guard.Decision{{UserID: of.o1User, Deactivate: true}})
		if !errors.Is(err, rbac.ErrLastOwner) {
			t.Errorf("the second review: %v, want ErrLastOwner", err)
		}
		if got := of.activeOwners(t); len(got) != 1 || got[0] != of.o1User {
			t.Errorf("active owners %v, want the first reviewer", got)
		}
		if n := of.lastOwnerRefusals(t, audit.UserDeactivated); n != 1 {
			t.Errorf("%d user.deactivated refusals, want 1 (refused while planned, on record)", n)
		}
	})
}

// gatedPolicies holds the first policy update that takes the owner role
// from a user.
type gatedPolicies struct {
	rbac.PolicyStore
	hold *holdFirst
}

func (p *gatedPolicies) Update(ctx context.Context, tenant string, expect uint64, remove, add []rbac.Rule) error {
	for _, r := range remove {
		if r.Type == rbac.RuleGrant && r.Role == rbac.Owner {
			p.hold.wait()
			break
		}
	}
	return p.PolicyStore.Update(ctx, tenant, expect, remove, add)
}

// A review takes the owner role from one owner while the other is
// deactivated: the removal, held until the deactivation is done, finds no
// active owner left, and the role is given back.
func TestRacingOwnerRoleRemovalKeepsAnActiveOwner(t *testing.T) {
	h := newHoldFirst()
	of := newOwnersFixture(t, func(c *guard.Config) {
		c.Stores.Policies = &gatedPolicies{PolicyStore: c.Stores.Policies, hold: h}
	})
	var err1 error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err1 = of.g.ApplyReview(of.ctx, of.o1, tenantID, []guard.Decision{{UserID: of.o2User, RevokeRoles: []string{rbac.Owner}}})
	}()
	<-h.arrived
	err2 := of.g.DeactivateUser(of.ctx, of.o2, tenantID, of.o1User)
	close(h.release)
	<-done
	if !errors.Is(err1, rbac.ErrLastOwner) || err2 != nil {
		t.Fatalf("review revoking owner / DeactivateUser: %v / %v; want ErrLastOwner, nil", err1, err2)
	}
	if got := of.activeOwners(t); len(got) != 1 || got[0] != of.o2User {
		t.Errorf("active owners %v, want the user whose owner role the review took", got)
	}
	if n := of.lastOwnerRefusals(t, audit.RoleRevoked); n != 1 {
		t.Errorf("%d role.revoked refusals for last_owner, want 1", n)
	}
	for _, e := range of.events(t, audit.RoleRevoked) {
		if e.Outcome == audit.Success {
			t.Errorf("role.revoked recorded as done: %+v", e)
		}
	}
}

// DeactivateUser, DeleteUser and RevokeRole refuse to take the tenant's
// last active owner away, on record and changing nothing; with another
// active owner they go ahead.
func TestLastActiveOwnerIsKept(t *testing.T) {
	of := newOwnersFixture(t)
	sys := guard.System("test")
	admin, _ := of.userWithRoles(t, "adam@example.test", rbac.Admin)
	key, _, err := of.g.CreateAPIKey(of.ctx, of.o1, guard.NewAPIKey{Tenant: tenantID, Name: "o1's key"})
	if err != nil {
		t.Fatal(err)
	}
	// o2 is deactivated: o1 is the one active owner, o2 still holds the
	// role.
	if err := of.g.DeactivateUser(of.ctx, sys, tenantID, of.o2User); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"DeactivateUser": func() error { return of.g.DeactivateUser(of.ctx, sys, tenantID, of.o1User) },
		"DeleteUser":     func() error { return of.g.DeleteUser(of.ctx, sys, tenantID, of.o1User) },
		"RevokeRole":     func() error { return of.g.RevokeRole(of.ctx, sys, tenantID, "user:"+of.o1User, rbac.Owner) },
		"ApplyReview": func() error {
			// By the system: an admin may not deactivate an owner at all
			// (ErrForbidden, escalation), last or not.
			_, err := of.g.ApplyReview(of.ctx, sys, tenantID, []guard.Decision{{UserID: of.o1User, Deactivate: true}})
			return err
		},
	} {
		if err := f(); !errors.Is(err, rbac.ErrLastOwner) {
			t.Errorf("%s of the last active owner: %v, want ErrLastOwner", name, err)
		}
	}
	if got := of.activeOwners(t); len(got) != 1 || got[0] != of.o1User {
		t.Fatalf("active owners %v, want o1", got)
	}
	if _, err := of.g.Authenticate(of.ctx, of.o1Tok); err != nil {
		t.Errorf("the last owner's session after the refusals: %v", err)
	}
	if _, err := of.g.AuthenticateAPIKey(of.ctx, key, netip.MustParseAddr("203.0.113.9")); err != nil {
		t.Errorf("the last owner's API key after the refusals: %v", err)
	}
	// The review is refused while planned, before any change, and
	// recorded as DeactivateUser records it.
	for action, want := range map[audit.Action]int{audit.UserDeactivated: 2, audit.UserDeleted: 1, audit.RoleRevoked: 1} {
		if n := of.lastOwnerRefusals(t, action); n != want {
			t.Errorf("%d %s refusals for last_owner, want %d", n, action, want)
		}
	}
	// A deactivated owner is no active owner to keep: o2 can be deleted.
	if err := of.g.DeleteUser(of.ctx, sys, tenantID, of.o2User); err != nil {
		t.Errorf("deleting a deactivated owner: %v", err)
	}
	// With another active owner, o1 can go.
	if err := of.g.GrantRole(of.ctx, sys, tenantID, "user:"+admin.UserID, rbac.Owner); err != nil {
		t.Fatal(err)
	}
	if err := of.g.DeactivateUser(of.ctx, sys, tenantID, of.o1User); err != nil {
		t.Errorf("deactivating an owner while another is active: %v", err)
	}
	if err := of.g.DeleteUser(of.ctx, sys, tenantID, of.o1User); err != nil {
		t.Errorf("deleting a deactivated owner: %v", err)
	}
}

// Two callers deactivate the last active owner at once: whatever the
// interleaving, neither reports a deactivation that does not hold. The
// owner stays active and signed in, no user.deactivated of theirs is
// recorded as done, and each refusal is on record.
func TestRacingDeactivationsOfTheLastOwner(t *testing.T) {
	for _, tc := range []struct {
		name     string
		race     func(of *ownersFixture, deactivate func() error) (errA, errB error)
		wantB    error
		conflict int
	}{{
		// B has written and not yet counted when A comes: A finds the
		// owner deactivated, a state B is about to undo.
		name: "the second finds the first's write",
		race: func(of *ownersFixture, deactivate func() error) (errA, errB error) {
			hB := newHoldFirst()
			of.status.after = hB.wait
			done := make(chan struct{})
			go func() { defer close(done); errB = deactivate() }()
			<-hB.arrived
			errA = deactivate()
			close(hB.release)
			<-done
			return errA, errB
		},
		wantB: rbac.ErrLastOwner,
	}, {
		// Both read the owner active; B writes, then A's write finds the
		// owner deactivated and changes nothing: A counts no owner and
		// is refused, undoing nothing (it reactivates only a status it
		// changed); B then counts none and undoes its own write.
		name: "the first writes after the second",
		race: func(of *ownersFixture, deactivate func() error) (errA, errB error) {
			hA, hB := newHoldFirst(), newHoldFirst()
			of.status.before, of.status.after = hA.wait, hB.wait
			doneA, doneB := make(chan struct{}), make(chan struct{})
			go func() { defer close(doneA); errA = deactivate() }()
			<-hA.arrived
			go func() { defer close(doneB); errB = deactivate() }()
			<-hB.arrived
			close(hA.release)
			<-doneA
			close(hB.release)
			<-doneB
			return errA, errB
		},
		wantB: rbac.ErrLastOwner,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			of := newOwnersFixture(t)
			sys := guard.System("test")
			if err := of.g.DeactivateUser(of.ctx, sys, tenantID, of.o2User); err != nil {
				t.Fatal(err)
			}
			errA, errB := tc.race(of, func() error { return of.g.DeactivateUser(of.ctx, sys, tenantID, of.o1User) })
			if !errors.Is(errA, rbac.ErrLastOwner) || !errors.Is(errB, tc.wantB) {
				t.Fatalf("racing deactivations: %v / %v; want ErrLastOwner, %v", errA, errB, tc.wantB)
			}
			if got := of.activeOwners(t); len(got) != 1 || got[0] != of.o1User {
				t.Errorf("active owners %v, want o1", got)
			}
			if _, err := of.g.Authenticate(of.ctx, of.o1Tok); err != nil {
				t.Errorf("o1's session after the refusals: %v", err)
			}
			conflicts, lastOwner := 0, 0
			for _, e := range of.events(t, audit.UserDeactivated) {
				switch {
				case e.Target == of.o1User && e.Outcome == audit.Success:
					t.Errorf("o1's deactivation recorded as done: %+v", e)
				case e.Reason == "conflict":
					conflicts++
				case e.Reason == "last_owner":
					lastOwner++
				}
			}
			if conflicts != tc.conflict || lastOwner != 2-tc.conflict {
				t.Errorf("user.deactivated refusals: %d conflict, %d last_owner; want %d, %d", conflicts, lastOwner, tc.conflict, 2-tc.conflict)
			}
		})
	}
}

// regrantingPolicies puts back the first owner grant taken away, right
// after it is gone: another caller's undo, coming between a revocation's
// write and its count.
type regrantingPolicies struct {
	rbac.PolicyStore
	once sync.Once
}

func (p *regrantingPolicies) Update(ctx context.Context, tenant string, expect uint64, remove, add []rbac.Rule) error {
	if err := p.PolicyStore.Update(ctx, tenant, expect, remove, add); err != nil {
		return err
	}
	for _, r := range remove {
		if r.Type == rbac.RuleGrant && r.Role == rbac.Owner {
			var err error
			p.once.Do(func() { err = p.PolicyStore.Update(ctx, tenant, expect+1, nil, remove) })
			return err
		}
	}
	return nil
}

// RevokeRole taking the owner role from an active owner, whose grant is
// put back before it counts the owners, reports ErrConflict, not done.
func TestOwnerRoleRevocationUndoneMeanwhile(t *testing.T) {
	of := newOwnersFixture(t, func(c *guard.Config) {
		c.Stores.Policies = &regrantingPolicies{PolicyStore: c.Stores.Policies}
	})
	err := of.g.RevokeRole(of.ctx, guard.System("test"), tenantID, "user:"+of.o1User, rbac.Owner)
	if !errors.Is(err, guard.ErrConflict) {
		t.Fatalf("RevokeRole undone meanwhile: %v, want ErrConflict", err)
	}
	if got := of.activeOwners(t); len(got) != 2 {
		t.Errorf("active owners %v, want both", got)
	}
	for _, e := range of.events(t, audit.RoleRevoked) {
		if e.Outcome == audit.Success || e.Reason != "conflict" {
			t.Errorf("role.revoked %+v, want one refusal for conflict", e)
		}
	}
}
