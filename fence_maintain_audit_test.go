package guard_test

// Audit of the ring-fenced tenants (fence.go) and of the scheduled chores
// (maintain.go, DeactivateDormant, the access review's schedule). Each
// test fails on the current code for the reason its comment gives.

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// ---- fence.go ----

// overlapWatch plays a host's OpenTenant over tenantDBs (fence_test.go)
// and notes every open of a tenant made while a handle it returned for
// that tenant is still open. Its User method blocks, once armed, so that a
// call of the armed tenant stays in flight.
type overlapWatch struct {
	dbs *tenantDBs

	mu       sync.Mutex
	live     map[string]int
	overlaps []string
	armed    string        // tenant whose next User call blocks
	entered  chan struct{} // closed when the blocked call is in the store
	release  chan struct{} // closed to let it go on
}

func (w *overlapWatch) Open(ctx context.Context, tenant string) (guard.Stores, io.Closer, error) {
	st, c, err := w.dbs.Open(ctx, tenant)
	if err != nil {
		return st, c, err
	}
	w.mu.Lock()
	if w.live[tenant] > 0 {
		w.overlaps = append(w.overlaps, tenant)
	}
	w.live[tenant]++
	w.mu.Unlock()
	st.Users = blockingUsers{UserStore: st.Users, w: w}
	return st, closeFunc(func() error {
		w.mu.Lock()
		w.live[tenant]--
		w.mu.Unlock()
		return c.Close()
	}), nil
}

type closeFunc func() error

func (f closeFunc) Close() error { return f() }

type blockingUsers struct {
	auth.UserStore
	w *overlapWatch
}

func (b blockingUsers) User(ctx context.Context, tenant, id string) (auth.User, error) {
	b.w.mu.Lock()
	block := b.w.armed == tenant
	if block {
		b.w.armed = ""
	}
	b.w.mu.Unlock()
	if block {
		close(b.w.entered)
		<-b.w.release
	}
	return b.UserStore.User(ctx, tenant, id)
}

// TenantOpener's contract: the opener is called "at most once at a time
// per tenant, and again after the tenant's stores were closed to respect
// MaxOpenTenants". A tenant evicted by the LRU while one of its calls is in
// flight leaves the fence's map but stays open until that call ends; the
// next call of the tenant does not find it and calls the opener again, so
// the host gets a second open of a tenant whose first is not closed (two
// pools on one SQLite file, two Watch connections, an opener that locks
// its file failing every request meanwhile). Correct: an evicted tenant
// still in use is taken back (put in the map again) rather than opened a
// second time.
func TestAuditFence_TenantOpenedAgainWhileItsStoresAreStillOpen(t *testing.T) {
	w := &overlapWatch{dbs: newTenantDBs(t), live: map[string]int{}}
	shared := memstore.New()
	g, err := guard.New(guard.Config{Stores: shared.Stores().Shared(), AuditKey: auditKey, Hasher: fastHasher,
		OpenTenant: w.Open, MaxOpenTenants: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ctx := context.Background()
	sys := guard.System("test")
	for _, tn := range []string{"acme", "globex"} {
		if _, err := g.CreateTenant(ctx, sys, tn, tn, guard.Policy{}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: "acme", Email: "ada@example.test", Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}

	// A call of acme stays in flight in acme's stores...
	w.mu.Lock()
	w.armed, w.entered, w.release = "acme", make(chan struct{}), make(chan struct{})
	w.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := g.User(ctx, sys, "acme", u.ID)
		done <- err
	}()
	<-w.entered
	// ...while a call of globex takes the one slot (acme evicted, in use)...
	if _, err := g.ListUsers(ctx, sys, "globex", "", 10); err != nil {
		t.Fatal(err)
	}
	// ...and another call of acme comes.
	_, err2 := g.User(ctx, sys, "acme", u.ID)
	close(w.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err2 != nil {
		t.Fatal(err2)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.overlaps) != 0 {
		t.Errorf("OpenTenant called for %v while stores it had returned for that tenant were still open; "+
			"want at most one open at a time per tenant, again only after the close", w.overlaps)
	}
}

// ---- DeactivateDormant (run by Maintain) ----

// afterList runs hook once, armed, after a ListUserSummaries returns: a
// change landing between DeactivateDormant's scan of the users and its
// deactivations (a run over a large tenant takes a while).
type afterList struct {
	auth.UserStore
	mu   sync.Mutex
	hook func()
}

func (a *afterList) ListUserSummaries(ctx context.Context, tenant, after string, limit int) ([]auth.UserSummary, error) {
	us, err := a.UserStore.ListUserSummaries(ctx, tenant, after, limit)
	a.mu.Lock()
	h := a.hook
	a.hook = nil
	a.mu.Unlock()
	if h != nil {
		h()
	}
	return us, err
}

func (a *afterList) arm(h func()) { a.mu.Lock(); a.hook = h; a.mu.Unlock() }

// dormantFixture returns a fixture whose tenant turned on
// AutoDeactivateDormant, with its user store hooked (afterList).
func dormantFixture(t *testing.T) (*fixture, *afterList) {
	t.Helper()
	var hooked *afterList
	f := newFixture(t, func(c *guard.Config) {
		hooked = &afterList{UserStore: c.Stores.Users}
		c.Stores.Users = hooked
	})
	tn, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	pol.AutoDeactivateDormant = true
	if _, err := f.g.SetPolicy(f.ctx, guard.System("admin"), tenantID, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	return f, hooked
}

// DeactivateDormant: "Holders of the owner role are never deactivated
// automatically". Owners are known from the roles read before the scan of
// the users, and never again: a user made owner after that read (an owner
// promoting them while the run goes through the tenant) is deactivated as
// dormant, sessions ended and keys revoked. setDeactivated reads the
// user's roles again (ownerStatus) but only counts the owners left; with
// another active owner the deactivation stands. Correct: an owner found at
// the deactivation is passed over (or the deactivation undone).
func TestAuditMaintain_DormantRunDeactivatesAUserMadeOwnerMeanwhile(t *testing.T) {
	f, hooked := dormantFixture(t)
	f.userWithRoles(t, "olga@example.test", rbac.Owner)
	mia, _ := f.userWithRoles(t, "mia@example.test", rbac.Member)
	f.clock.Advance(31 * 24 * time.Hour)
	hooked.arm(func() {
		if err := f.g.GrantRole(f.ctx, guard.System("owners"), tenantID, "user:"+mia.UserID, rbac.Owner); err != nil {
			t.Errorf("grant: %v", err)
		}
	})
	ids, err := f.g.DeactivateDormant(f.ctx, guard.System("cron"), tenantID)
	if err != nil {
		t.Fatal(err)
	}
	u, err := f.g.User(f.ctx, guard.System("test"), tenantID, mia.UserID)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := f.g.RolesOf(f.ctx, guard.System("test"), tenantID, "user:"+mia.UserID)
	if u.Status != auth.StatusActive {
		t.Errorf("DeactivateDormant deactivated %v; mia, holding roles %v when deactivated, is %s; want owners never deactivated automatically",
			ids, rs, u.Status)
	}
}

// DeactivateDormant deactivates "dormant users (active, no sign-in for
// Policy.DormantAfter)". Dormancy is judged from the scan of the users,
// and the deactivation writes the status without looking again: a user
// who signs in after the scan (while the run goes through the tenant) is
// deactivated as dormant moments after signing in, their new session
// ended, and the record says reason dormant. Correct: the user is read
// again at the deactivation (setDeactivated reads it anyway) and passed
// over if they signed in within DormantAfter.
func TestAuditMaintain_DormantRunDeactivatesAUserWhoJustSignedIn(t *testing.T) {
	f, hooked := dormantFixture(t)
	f.userWithRoles(t, "olga@example.test", rbac.Owner)
	dora := f.createUser(t, "dora@example.test", ownerPW)
	f.clock.Advance(31 * 24 * time.Hour)
	var tok string
	hooked.arm(func() {
		res, err := f.login("dora@example.test", ownerPW)
		if err != nil {
			t.Errorf("dora's sign-in: %v", err)
			return
		}
		tok = res.Token
	})
	f.clock.Advance(time.Second)
	if _, err := f.g.DeactivateDormant(f.ctx, guard.System("cron"), tenantID); err != nil {
		t.Fatal(err)
	}
	u, err := f.g.User(f.ctx, guard.System("test"), tenantID, dora.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, aerr := f.g.Authenticate(f.ctx, tok)
	if u.Status != auth.StatusActive || aerr != nil {
		t.Errorf("a user who signed in at %v (now %v): status %s, their new session: %v; want active and signed in",
			u.LastLoginAt, f.clock.Now(), u.Status, aerr)
	}
}

// ---- retention (Maintain's purge) ----

// SetPolicy records the change as tenant.policy_set with "the fields that
// differ between two policies" as metadata (policyChanges). AuditRetention,
// the field that makes Maintain delete the tenant's audit events, is not
// among them: an admin who shortens retention to the minimum leaves a
// record that does not say so. Correct: Meta audit_retention with the new
// value, as for every other field.
func TestAuditMaintain_RetentionChangeNotInThePolicyRecord(t *testing.T) {
	f := newFixture(t)
	tn, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	pol.AuditRetention = 30 * 24 * time.Hour
	if _, err := f.g.SetPolicy(f.ctx, guard.System("admin"), tenantID, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	evs := f.events(t, audit.TenantPolicySet)
	if len(evs) != 1 {
		t.Fatalf("%d tenant.policy_set events", len(evs))
	}
	if _, ok := evs[0].Meta["audit_retention"]; !ok {
		t.Errorf("tenant.policy_set of a retention change has Meta %v; want audit_retention", evs[0].Meta)
	}
}

// purgeHook runs hook once, armed, before a Purge reaches the store: the
// moment between audit.Log.Purge's walk and its write.
type purgeHook struct {
	audit.Store
	mu   sync.Mutex
	hook func()
}

func (p *purgeHook) Purge(ctx context.Context, tenant string, cp audit.Checkpoint) error {
	p.mu.Lock()
	h := p.hook
	p.hook = nil
	p.mu.Unlock()
	if h != nil {
		h()
	}
	return p.Store.Purge(ctx, tenant, cp)
}

// replicas returns two Guards over one memstore (two replicas), the first
// with its audit store hooked (purgeHook), sharing a clock, with the
// tenant's retention at 30 days, events of the tenant's first hour, one
// more an hour later, and the clock 30 days and 30 minutes on: the first
// hour's events are past retention.
func replicas(t *testing.T) (g1, g2 *guard.Guard, hook *purgeHook, c *clock) {
	t.Helper()
	mem := memstore.New()
	c = newClock()
	st := mem.Stores()
	hook = &purgeHook{Store: st.Audit}
	st1 := st
	st1.Audit = hook
	var err error
	if g1, err = guard.New(guard.Config{Stores: st1, AuditKey: auditKey, Hasher: fastHasher, Now: c.Now, Rand: rand.Reader}); err != nil {
		t.Fatal(err)
	}
	if g2, err = guard.New(guard.Config{Stores: st, AuditKey: auditKey, Hasher: fastHasher, Now: c.Now, Rand: rand.Reader}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sys := guard.System("admin")
	if _, err := g1.CreateTenant(ctx, sys, tenantID, "Acme", guard.Policy{AuditRetention: 30 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := g1.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "ada@example.test", Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)
	if _, err := g1.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "bob@example.test", Name: "Bob"}); err != nil {
		t.Fatal(err)
	}
	c.Advance(30*24*time.Hour - 30*time.Minute)
	return g1, g2, hook, c
}

// Maintain is for a host's job "on one replica or several: each chore is
// safe to repeat". The retention purge is not, when another replica
// purges further while this one is between its walk and its write (the
// next hourly run elsewhere, while this one verifies a long chain):
// audit.Log.Purge gets ErrConflict ("another replica purged further
// meanwhile"), PurgeAudit turns it into ErrUnavailable, and Maintain
// reports the tenant failed and skips the tenant's other chores (keys of
// deactivated users, their sessions, the session limit, the IdP
// metadata) for this run. Correct: a purge overtaken by a further one has
// nothing left to do; the run goes on without failing.
func TestAuditMaintain_PurgeOvertakenByAnotherReplicaFailsTheTenant(t *testing.T) {
	g1, g2, hook, c := replicas(t)
	ctx := context.Background()
	hook.mu.Lock()
	hook.hook = func() {
		// The other replica's purge reaches past the second hour's event.
		if _, err := g2.PurgeAudit(ctx, guard.System("cron"), tenantID, c.Now().Add(-30*24*time.Hour+2*time.Hour)); err != nil {
			t.Errorf("the other replica's purge: %v", err)
		}
	}
	hook.mu.Unlock()
	rep, err := g1.Maintain(ctx, guard.System("cron"), guard.MaintainOptions{})
	if err != nil || len(rep.Failed) != 0 {
		t.Errorf("Maintain while another replica purged further: %v (failed %v); want no failure", err, rep.Failed)
	}
}

// Two replicas running the same retention purge at once both report it
// done: the second store write finds the checkpoint at the same Seq
// (allowed), deletes nothing and replaces the checkpoint, and each
// replica records audit.purged with Meta events = every event the purge
// covered, and counts them in its report. The log then says twice as many
// events were purged as were. Correct: the replica whose purge deleted
// nothing records nothing (or events 0), as Maintain records nothing
// when there is nothing to purge.
func TestAuditMaintain_SamePurgeOnTwoReplicasRecordedTwice(t *testing.T) {
	g1, g2, hook, c := replicas(t)
	ctx := context.Background()
	sys := guard.System("cron")
	before, err := g2.QueryAudit(ctx, sys, tenantID, audit.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	hook.mu.Lock()
	hook.hook = func() {
		if _, err := g2.PurgeAudit(ctx, sys, tenantID, c.Now().Add(-30*24*time.Hour)); err != nil {
			t.Errorf("the other replica's purge: %v", err)
		}
	}
	hook.mu.Unlock()
	if _, err := g1.Maintain(ctx, sys, guard.MaintainOptions{}); err != nil {
		t.Fatal(err)
	}
	after, err := g2.QueryAudit(ctx, sys, tenantID, audit.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	claimed, purgeEvents := 0, 0
	for _, e := range after.Events {
		if e.Action == audit.AuditPurged {
			purgeEvents++
			n, _ := strconv.Atoi(e.Meta["events"])
			claimed += n
		}
	}
	// Events now = events before - deleted + the purge records.
	deleted := len(before.Events) - (len(after.Events) - purgeEvents)
	if claimed != deleted {
		t.Errorf("%d audit.purged events claim %d events purged; %d were", purgeEvents, claimed, deleted)
	}
}

// ---- the access review's schedule ----

// Review.LastReview "is when a review was last recorded (zero if never)"
// and Due is LastReview plus Every. Both come from the newest
// access_review.completed event in the audit log, which Maintain's
// retention purge deletes like any other: with reviews due every 60 days
// and events kept 30, a review done 35 days ago is forgotten, LastReview
// is zero and the review is reported overdue (due since creation + 60
// days) though the next is 25 days away. Correct: the last review
// survives retention (kept by the purge, or kept with the tenant).
func TestAuditReview_RetentionPurgeForgetsTheLastReview(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("admin")
	tn, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	pol.ReviewEvery, pol.AuditRetention = 60*24*time.Hour, 30*24*time.Hour
	if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(50 * 24 * time.Hour)
	if _, err := f.g.ApplyReview(f.ctx, sys, tenantID, nil); err != nil {
		t.Fatal(err)
	}
	reviewed := f.clock.Now()
	if rv, err := f.g.AccessReview(f.ctx, sys, tenantID); err != nil || rv.LastReview.IsZero() {
		t.Fatalf("the review just recorded: %+v, %v", rv.LastReview, err)
	}
	f.clock.Advance(35 * 24 * time.Hour)
	if _, err := f.g.Maintain(f.ctx, guard.System("cron"), guard.MaintainOptions{}); err != nil {
		t.Fatal(err)
	}
	rv, err := f.g.AccessReview(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if !rv.LastReview.Equal(reviewed) || rv.Overdue {
		t.Errorf("after the retention purge: LastReview %v, Due %v, Overdue %v; want the review of %v, due %v, not overdue",
			rv.LastReview, rv.Due, rv.Overdue, reviewed, reviewed.Add(60*24*time.Hour))
	}
}

// An OpenTenant that panics (a host bug, a driver panicking on a damaged
// file) fails the open as an error does. The call that needed the tenant
// gets ErrUnavailable naming the panic, and no panic: that call may be
// background work with no caller to recover it (see
// TestFencedOpenerPanicInBackgroundLookupKeepsProcess). The tenant is not
// left in the fence's map marked ready with no stores (every later call
// of it would dereference the nil stores): the next call opens it again.
func TestAuditFence_PanickingOpenerFailsOneOpen(t *testing.T) {
	dbs := newTenantDBs(t)
	var armed atomic.Bool
	open := func(ctx context.Context, tenant string) (guard.Stores, io.Closer, error) {
		if tenant == "acme" && armed.CompareAndSwap(true, false) {
			panic("opener bug")
		}
		return dbs.Open(ctx, tenant)
	}
	shared := memstore.New()
	g, err := guard.New(guard.Config{Stores: shared.Stores().Shared(), AuditKey: auditKey, Hasher: fastHasher, OpenTenant: open,
		MaxOpenTenants: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ctx := context.Background()
	sys := guard.System("test")
	call := func() (p any, err error) {
		defer func() { p = recover() }()
		_, err = g.ListUsers(ctx, sys, "acme", "", 10)
		return nil, err
	}
	if _, err := g.CreateTenant(ctx, sys, "acme", "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	// globex's open closes acme (one tenant open at a time): the next call
	// of acme opens it, and that open panics.
	if _, err := g.CreateTenant(ctx, sys, "globex", "Globex", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	p, err := call()
	switch {
	case p != nil:
		t.Errorf("a call whose open of the tenant panicked: panics %v; want ErrUnavailable", p)
	case !errors.Is(err, guard.ErrUnavailable) || !strings.Contains(err.Error(), "opener panicked: opener bug"):
		t.Errorf("a call whose open of the tenant panicked = %v; want ErrUnavailable naming the panic", err)
	}
	if armed.Load() {
		t.Fatal("the opener was not called: the scenario did not happen")
	}
	p, err = call()
	if p != nil {
		t.Errorf("a call after the opener panicked once (it works now): panics %v; want the tenant opened again", p)
	} else if err != nil {
		t.Errorf("a call after the opener panicked once (it works now): %v", err)
	}
}

// Maintain runs "on one replica or several: each chore is safe to
// repeat". Two replicas' DeactivateDormant over the same tenant at once
// both deactivate the same dormant user: the second writes the status
// again (SetStatus does not check the user is still active, though
// deactivate is told was = active) and records a second user.deactivated
// (reason dormant, sessions_ended 0), and both report the user. The same
// happens when an admin deactivates the user during the run. Correct: a
// user no longer active at the deactivation is passed over, one record.
func TestAuditMaintain_DormantUserDeactivatedTwiceByTwoReplicas(t *testing.T) {
	f, hooked := dormantFixture(t)
	f.userWithRoles(t, "olga@example.test", rbac.Owner)
	dora := f.createUser(t, "dora@example.test", ownerPW)
	g2, err := guard.New(guard.Config{Stores: f.mem.Stores(), AuditKey: auditKey, Hasher: fastHasher, Now: f.clock.Now, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(31 * 24 * time.Hour)
	hooked.arm(func() {
		if _, err := g2.DeactivateDormant(f.ctx, guard.System("cron"), tenantID); err != nil {
			t.Errorf("the other replica's run: %v", err)
		}
	})
	if _, err := f.g.DeactivateDormant(f.ctx, guard.System("cron"), tenantID); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range f.events(t, audit.UserDeactivated) {
		if e.Target == dora.ID && e.Outcome == audit.Success {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d user.deactivated records of one dormant user; want 1", n)
	}
}
