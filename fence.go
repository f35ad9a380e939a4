package guard

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

// TenantOpener opens the stores that keep one tenant's data when tenants
// are ring-fenced (Config.OpenTenant): typically the tenant's own SQLite
// file or its own PostgreSQL database or schema, migrated and ready. Of the
// returned Stores only the tenant-data fields are used, and they must
// include what the Guard's Config uses (a backend's Stores() has them
// all):
//   - Users, UserUpdates and Audit, always;
//   - MFA.Factors, MFA.FactorUpdates, MFA.Enrolments and MFA.Recovery
//     when Config.MFA is set (an open without them fails);
//   - Policies and Approvals: ring-fenced tenants always have roles, and
//     without them every permission check of the tenant's users and API
//     keys fails (ErrRolesNotConfigured), never allows;
//   - SSO.Connections when Config.SSO is set (without it the tenant has
//     no single sign-on, as on a Guard without Config.SSO: no IdP, a
//     policy requiring SSO is a *PolicyError, and the single sign-on
//     calls are ErrSSONotConfigured, but for SSOMetadata and
//     SSOServiceProvider, which read no store);
//   - IPLists (nil: the tenant has no IP allow-lists; IPAllowLists gives
//     them empty, and SetIPAllowList is ErrIPListsNotConfigured, as on a
//     Guard without Stores.IPLists).
//
// The Closer releases them (a pool, a file); it may be nil.
//
// Two tenants must never share stores: the tenant ID must map to the file,
// database or schema one-to-one. A tenant ID (CheckTenantID) is a valid
// SQLite file name as it is ("tenant-" + id + ".db") and a valid
// PostgreSQL database name once quoted, but a pgstore schema name
// (pgstore.Options.Schema: lower-case letters, digits and '_', at most 63
// bytes) cannot hold every tenant ID one-to-one: replacing '-' by '_' or
// by "__", or clipping to 63 bytes, gives two tenants the same schema
// ("a-b", "a_b" and "a__b"). Escape instead, with '_' as the escape
// character: "t_" + the ID with each '_' written "_0" and each '-' "_1"
// ("a-b" is t_a_1b, "a_b" t_a_0b), which fits tenant IDs of up to 30
// bytes (refuse longer ones before CreateTenant), or keep a table of your
// own from tenant ID to a schema name you allocate ("t_" and a sequence
// number).
//
// The opener is called only for tenants that exist in the registry
// (Config.Stores.Tenants), at most once at a time per tenant, and again
// after the tenant's stores were closed to respect MaxOpenTenants.
//
// The opener runs apart from the call that needed the tenant: its context
// carries that call's values but neither its cancellation nor its
// deadline, since other calls for the tenant wait for the same open; it
// ends when the opener returns, or after TenantOpenTimeout. Each call
// waits for the open only until its own context ends (its error is then
// the context's), and the open goes on: the stores it returns are kept
// for the next calls (or closed, if the tenant was closed to respect
// MaxOpenTenants meanwhile). Until the opener returns, every call of the
// tenant waits for it, up to the call's deadline (calls that undo a
// change do so without the caller's deadline, so up to the open's): an
// opener should honour its context, connecting and migrating under it.
// Anything that outlives the open (pgstore's Watch) takes a context of
// its own, ended by the returned Closer. Schema migrations that may take
// longer than TenantOpenTimeout are run ahead, not in the opener.
//
// An opener that panics fails the open as an error does: every call
// waiting for it gets ErrUnavailable ("fence: opener panicked: " and the
// panic's value and place), and the next call opens again. The panic goes
// no further, since the call that needed the tenant may be background work
// with no caller to recover it (ForgotPassword's look-up).
type TenantOpener func(ctx context.Context, tenant string) (Stores, io.Closer, error)

// DefaultMaxOpenTenants is the default of Config.MaxOpenTenants.
const DefaultMaxOpenTenants = 64

// TenantOpenTimeout bounds an open of a ring-fenced tenant's stores: the
// context given to the TenantOpener ends after it, and the calls waiting
// for the tenant then get ErrUnavailable (the next call opens again).
const TenantOpenTimeout = time.Minute

// errClosed is the cause of the ErrUnavailable that a call of a
// ring-fenced tenant gets after Guard.Close.
var errClosed = errors.New("guard: closed")

// tenantData is one ring-fenced tenant's open stores.
type tenantData struct {
	tenant  string
	stores  Stores
	closer  io.Closer
	ready   chan struct{} // closed once opened (or failed: err)
	err     error
	refs    int  // acquisitions not yet released
	evicted bool // out of the fence's map; closed when refs reaches 0
	elem    *list.Element
	closed  chan struct{} // closed once the stores are closed (evicted, refs 0)
}

// fence keeps the open stores of ring-fenced tenants: at most max of them
// open at once (least recently used closed first, once nobody uses them).
//
// A tenant evicted while calls still use it waits in out until the last
// of them releases it and its stores are closed: an acquire meanwhile
// takes it back into the map (or, once its close has begun, waits for the
// close to end), so the opener never runs for a tenant whose stores are
// still open.
type fence struct {
	open        TenantOpener
	openTimeout time.Duration
	max         int
	needMFA     bool // the tenant stores must include the MFA tenant-data stores
	exists      func(ctx context.Context, tenant string) error

	stop  context.Context    // ended by closeAll: opens in flight end
	abort context.CancelFunc // ends stop
	opens sync.WaitGroup     // opens in flight

	mu     sync.Mutex
	closed bool // closeAll began: nothing is opened any more
	m      map[string]*tenantData
	out    map[string]*tenantData // evicted, not yet closed
	lru    *list.List             // of *tenantData in m, most recent first
}

func newFence(open TenantOpener, max int, exists func(context.Context, string) error) *fence {
	stop, abort := context.WithCancel(context.Background())
	return &fence{open: open, openTimeout: TenantOpenTimeout, max: max, exists: exists, stop: stop, abort: abort,
		m: make(map[string]*tenantData), out: make(map[string]*tenantData), lru: list.New()}
}

// refuseClosed returns the error of a call after closeAll began (nil
// before).
func (f *fence) refuseClosed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return unavailable("tenant stores", errClosed)
	}
	return nil
}

// acquire returns tenant's stores, opening them if needed. The tenant must
// exist in the registry (an error matching ErrTenantNotFound otherwise).
// After closeAll it opens nothing and fails with ErrUnavailable. The
// caller must call release(d) when done.
func (f *fence) acquire(ctx context.Context, tenant string) (*tenantData, error) {
	if err := f.refuseClosed(); err != nil {
		return nil, err
	}
	if err := f.exists(ctx, tenant); err != nil {
		return nil, err
	}
	f.mu.Lock()
	var d *tenantData
	ok, back := false, false
	for {
		if f.closed {
			f.mu.Unlock()
			return nil, unavailable("tenant stores", errClosed)
		}
		if d, ok = f.m[tenant]; ok {
			break
		}
		e, isOut := f.out[tenant]
		if !isOut {
			break
		}
		if e.refs > 0 {
			// Evicted but still in use, so still open: take it back.
			delete(f.out, tenant)
			e.evicted = false
			e.elem = f.lru.PushFront(e)
			f.m[tenant] = e
			d, ok, back = e, true, true
			break
		}
		// Being closed: open again only once the close is done.
		f.mu.Unlock()
		select {
		case <-e.closed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		f.mu.Lock()
	}
	if !ok {
		d = &tenantData{tenant: tenant, ready: make(chan struct{}), closed: make(chan struct{})}
		d.elem = f.lru.PushFront(d)
		f.m[tenant] = d
		d.refs++ // the open's own, released when it ends
		f.opens.Add(1)
	} else {
		f.lru.MoveToFront(d.elem)
	}
	d.refs++
	f.mu.Unlock()
	if back {
		f.evict()
	}
	if !ok {
		go f.fill(context.WithoutCancel(ctx), d)
	}

	// The call that started the open waits for it as any other: until its
	// own context ends.
	select {
	case <-d.ready:
	case <-ctx.Done():
		f.release(d)
		return nil, ctx.Err()
	}
	if d.err != nil {
		f.release(d)
		return nil, d.err
	}
	return d, nil
}

// fill opens d's stores, then, before any caller goes on (so that a call
// returns with the fence within MaxOpenTenants unless other calls still
// use the tenants beyond it): closes the idle tenants that this open
// pushes beyond the cap, lets go of the open's own acquisition of d (so
// that stores opened after every caller gave up are kept in the map, or
// closed if d was evicted meanwhile), and marks d ready. On failure d
// leaves the map so that the next acquire tries again. An opener that
// panics fails the open the same way, and the panic stops here: those
// waiting for the open, the call that started it included, get the error
// (openerPanicked). The panic is not raised again in the call that started
// the open: that call may be background work (ForgotPassword's look-up, a
// notice, an access review's loads), a goroutine with no caller to recover
// it, where it would end the process. ctx is the starting call's, without
// its cancellation; the open's ends at the timeout or when closeAll
// begins.
func (f *fence) fill(ctx context.Context, d *tenantData) {
	defer func() {
		if p := recover(); p != nil {
			f.failed(d, openerPanicked(p))
		}
		f.evict()
		f.release(d)
		close(d.ready)
		f.opens.Done()
	}()
	ctx, cancel := context.WithTimeout(ctx, f.openTimeout)
	defer cancel()
	defer context.AfterFunc(f.stop, cancel)()
	st, closer, err := f.open(ctx, d.tenant)
	if err == nil {
		switch {
		case st.Users == nil:
			err = &PolicyError{Field: "OpenTenant", Reason: "returned no Users store"}
		case st.UserUpdates == nil:
			err = &PolicyError{Field: "OpenTenant", Reason: "returned no UserUpdates store"}
		case st.Audit == nil:
			err = &PolicyError{Field: "OpenTenant", Reason: "returned no Audit store"}
		case f.needMFA && (st.MFA.Factors == nil || st.MFA.FactorUpdates == nil || st.MFA.Enrolments == nil || st.MFA.Recovery == nil):
			err = &PolicyError{Field: "OpenTenant", Reason: "returned no MFA factor, enrolment or recovery store"}
		}
	}
	if err != nil {
		if closer != nil {
			_ = closer.Close()
		}
		f.failed(d, err)
		return
	}
	d.stores, d.closer = st, closer
}

// openerPanicked is the error of an open whose TenantOpener panicked with
// p: the panic's value and where the opener panicked (the first frame
// outside package runtime below the panic), in place of the stack the
// runtime would have printed (the Guard has no logger). It is called in
// fill's deferred recover, on the panicking goroutine's stack.
func openerPanicked(p any) error {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	panicking := false
	for {
		fr, more := frames.Next()
		switch {
		case fr.Function == "runtime.gopanic":
			panicking = true
		case panicking && !strings.HasPrefix(fr.Function, "runtime."):
			return fmt.Errorf("fence: opener panicked: %v (at %s, %s:%d)", p, fr.Function, fr.File, fr.Line)
		}
		if !more {
			return fmt.Errorf("fence: opener panicked: %v", p)
		}
	}
}

// failed records that d's open failed with err and takes d out of the map
// (it has nothing to close).
func (f *fence) failed(d *tenantData, err error) {
	f.mu.Lock()
	d.err = unavailable("open tenant stores", err)
	if f.m[d.tenant] == d {
		delete(f.m, d.tenant)
		f.lru.Remove(d.elem)
	}
	if f.out[d.tenant] == d {
		delete(f.out, d.tenant)
	}
	d.evicted = true
	f.mu.Unlock()
}

// evict takes the least recently used tenants out of the map until at most
// max remain; each is closed once its last user releases it.
func (f *fence) evict() {
	var closeNow []*tenantData
	f.mu.Lock()
	for len(f.m) > f.max {
		e := f.lru.Back()
		d := e.Value.(*tenantData)
		f.lru.Remove(e)
		delete(f.m, d.tenant)
		if f.putOut(d) {
			closeNow = append(closeNow, d)
		}
	}
	f.mu.Unlock()
	for _, d := range closeNow {
		f.close(d)
	}
}

// putOut marks d, just taken out of the map, evicted and keeps it in out
// until it is closed. It reports whether d is unused, to be closed now.
// f.mu must be held.
func (f *fence) putOut(d *tenantData) bool {
	d.evicted = true
	if d.err == nil {
		f.out[d.tenant] = d
	}
	return d.refs == 0
}

func (f *fence) release(d *tenantData) {
	f.mu.Lock()
	d.refs--
	last := d.refs == 0 && d.evicted
	f.mu.Unlock()
	if last {
		f.close(d)
	}
}

// close closes the stores of d (evicted, unused), then lets an acquire
// waiting for the close open the tenant again.
func (f *fence) close(d *tenantData) {
	defer func() {
		f.mu.Lock()
		if f.out[d.tenant] == d {
			delete(f.out, d.tenant)
		}
		f.mu.Unlock()
		close(d.closed)
	}()
	if d.closer != nil {
		_ = d.closer.Close()
	}
}

// Len returns the number of tenants whose stores are open.
func (f *fence) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m) + len(f.out)
}

// closeAll closes every open tenant's stores (Guard.Close): from now on
// nothing is opened, the opens in flight are ended (their contexts) and
// waited for, then every tenant's stores are closed, those in use once
// their last call releases them. It waits for the openers only until ctx
// ends, and then returns ctx's error: an opener that ignores its context
// holds no Shutdown beyond its deadline. The stores of an open still in
// flight are closed all the same, once it ends and its calls release
// them.
func (f *fence) closeAll(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.abort()
	_, err := waitUntil(ctx, f.opens.Wait)
	f.closeOpen()
	return err
}

// waitUntil calls wait, which returns once some work has ended, and waits
// for it only until ctx ends: it returns a channel closed once wait
// returns, and ctx's error if ctx ended first (nil if wait had returned
// by then all the same).
func waitUntil(ctx context.Context, wait func()) (<-chan struct{}, error) {
	waited := make(chan struct{})
	if ctx.Done() == nil {
		wait()
		close(waited)
		return waited, nil
	}
	go func() {
		wait()
		close(waited)
	}()
	select {
	case <-waited:
		return waited, nil
	case <-ctx.Done():
		select {
		case <-waited: // ended by then all the same
			return waited, nil
		default:
			return waited, ctx.Err()
		}
	}
}

// closeOpen takes every tenant out of the map and closes its stores, those
// in use once their last call releases them: a tenant whose open is still
// in flight (closeAll's ctx ended first) holds the open's own acquisition,
// so its stores, if the open succeeds, are closed once the open and the
// calls waiting for it release it.
func (f *fence) closeOpen() {
	f.mu.Lock()
	var closeNow []*tenantData
	for t, d := range f.m {
		delete(f.m, t)
		f.lru.Remove(d.elem)
		if f.putOut(d) {
			closeNow = append(closeNow, d)
		}
	}
	f.mu.Unlock()
	for _, d := range closeNow {
		f.close(d)
	}
}

// Close waits for background work (reset emails, security notices, those
// queued behind others to the same address included) and closes the
// stores of ring-fenced tenants that the Guard opened. The Config's own
// Stores are the host's to close. It is Shutdown with a context that
// never ends: with a slow or hanging mail server it may wait minutes
// (each send is given a minute, and up to MaxQueuedNotices notices may
// queue behind a send to one address); a host that must stop within a
// bound (a graceful shutdown's grace period) calls Shutdown instead.
//
// No notice or email caused before Close returns is sent after it
// returns. The calls waiting for
// a background slot when Close begins give up at once: a security notice
// is dropped, with those queued behind it to the same address, and
// counted in DroppedNotices, as one that found no slot in NoticeSlotWait;
// a ForgotPassword is ErrUnavailable, nothing done, as one whose context
// ended. So is the work caused while Close runs. Work already running
// when Close begins (a send, a ForgotPassword's look-up and its email)
// is waited for, as are the notices queued behind a send that runs.
//
// Ring-fenced, Close ends the opens of tenant stores in flight (the
// contexts given to the TenantOpener) and waits for their openers to
// return; the stores of a tenant that calls still use are closed when the
// last of them ends. After Close, a call that needs a ring-fenced
// tenant's stores opens nothing and fails with ErrUnavailable ("guard:
// closed"): Close the Guard when it is no longer used. Close may be
// called more than once, and before or after Shutdown. It returns nil.
func (g *Guard) Close() error {
	_ = g.Shutdown(context.Background())
	return nil
}

// Shutdown is Close bounded by ctx, as net/http's Server.Shutdown is to
// its Close: it does what Close does, waiting for background work until
// ctx ends. When ctx ends first, the work is cut short: the security
// notices queued behind a send (MaxNoticesPerRecipient) are dropped
// without being sent, and the contexts of the work running are ended
// (the sends to the mail server, ForgotPassword's look-ups, and the
// work a notice does before its send). A notice or reset email whose
// send then fails (the sender returns an error once its context ended)
// is counted dropped too, in DroppedNotices or DroppedResetMails; one
// the sender reports sent is not. A ForgotPassword's look-up cut short
// mails nothing, and hands no email on: an email it would hand on once
// ctx ended is dropped and counted, its link never made, and the request
// recorded as for an email that found no slot (MaxBackgroundResets),
// under a context of its own (at most 5 s, which Shutdown waits for).
// Shutdown then waits for the work to return (the senders of package mfa
// return once their context ends; a Sender that ignores its context
// holds Shutdown until it returns), closes the ring-fenced tenants'
// stores as Close does (waiting for the TenantOpeners in flight, whose
// contexts it ends, only until ctx ends: an opener that ignores its
// context holds Shutdown no longer, and the stores it returns later are
// closed once it does and the calls using them end), and
// returns ctx's error. It returns nil when the work ended first. As for
// Close, no notice or email caused before Shutdown returns is sent after
// it returns.
//
// When Shutdowns (and Closes) run at once, the first ctx to end cuts
// the work short for all of them. Shutdown may be called more than once,
// and before or after Close.
func (g *Guard) Shutdown(ctx context.Context) error {
	g.closeMu.Lock()
	if g.closers == 0 {
		close(g.closing)
	}
	g.closers++
	_, stop := g.abortLocked()
	g.closeMu.Unlock()

	waited, err := waitUntil(ctx, g.bg.Wait)
	if err != nil {
		stop()
		<-waited
	}
	if g.fence != nil {
		if ferr := g.fence.closeAll(ctx); err == nil {
			err = ferr
		}
	}

	g.closeMu.Lock()
	g.closers--
	if g.closers == 0 {
		g.closing = make(chan struct{})
		stop() // nothing left that it could end
		g.abort, g.stopWork = nil, nil
	}
	g.closeMu.Unlock()
	return err
}

// abortLocked returns the context that ends the background work (its
// contexts: workContext) when a Shutdown's context ends first, and the
// function that ends it; made when first needed, and anew once no Close
// runs any more. g.closeMu is held.
func (g *Guard) abortLocked() (context.Context, context.CancelFunc) {
	if g.abort == nil {
		g.abort, g.stopWork = context.WithCancel(context.Background())
	}
	return g.abort, g.stopWork
}

// enterBackground counts, in what Close waits for, background work about
// to start or to wait for a slot, unless a Close runs: it returns the
// channel that the next Close closes, to end the wait for a slot, the
// context that ends when a Shutdown's context ends first (to end the
// work: workContext), and false while a Close runs (nothing counted).
// The caller calls g.bg.Done once the work ends, or gives up.
func (g *Guard) enterBackground() (closing <-chan struct{}, abort context.Context, ok bool) {
	g.closeMu.Lock()
	defer g.closeMu.Unlock()
	if g.closers > 0 {
		return nil, nil, false
	}
	g.bg.Add(1)
	abort, _ = g.abortLocked()
	return g.closing, abort, true
}

// currentAbort returns the context that ends background work when a
// Shutdown's context ends first (see enterBackground), for work started
// from within background work (g.bg not zero: no Close can end meanwhile).
func (g *Guard) currentAbort() context.Context {
	g.closeMu.Lock()
	defer g.closeMu.Unlock()
	abort, _ := g.abortLocked()
	return abort
}

// workContext returns the context of background work caused by a call
// with context ctx: ctx's values, never its end (the client of the
// request must not be able to cancel the work), a minute to do it, and
// ended with abort (a Shutdown whose context ended first). The caller
// calls the returned function once the work returns.
func workContext(ctx, abort context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	unhook := context.AfterFunc(abort, cancel)
	return wctx, func() {
		unhook()
		cancel()
	}
}

// OpenTenants returns the number of ring-fenced tenants whose stores are
// open (0 without Config.OpenTenant).
func (g *Guard) OpenTenants() int {
	if g.fence == nil {
		return 0
	}
	return g.fence.len()
}

// The routed stores below stand in for Stores.Users, Stores.UserUpdates
// and Stores.Audit when tenants are ring-fenced: each call goes to the
// stores of the tenant it names, so no call can reach another tenant's
// database.

type routedUsers struct{ f *fence }

var (
	_ auth.UserStore   = routedUsers{}
	_ auth.UserUpdater = routedUsers{}
	_ audit.Store      = routedAudit{}
)

// with runs fn on tenant's stores.
func with[T any](ctx context.Context, f *fence, tenant string, fn func(Stores) (T, error)) (T, error) {
	d, err := f.acquire(ctx, tenant)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.release(d)
	return fn(d.stores)
}

func (r routedUsers) CreateUser(ctx context.Context, u auth.User) error {
	_, err := with(ctx, r.f, u.Tenant, func(s Stores) (struct{}, error) { return struct{}{}, s.Users.CreateUser(ctx, u) })
	return err
}

func (r routedUsers) User(ctx context.Context, tenant, id string) (auth.User, error) {
	return with(ctx, r.f, tenant, func(s Stores) (auth.User, error) { return s.Users.User(ctx, tenant, id) })
}

func (r routedUsers) UserByEmail(ctx context.Context, tenant, email string) (auth.User, error) {
	return with(ctx, r.f, tenant, func(s Stores) (auth.User, error) { return s.Users.UserByEmail(ctx, tenant, email) })
}

func (r routedUsers) ListUsers(ctx context.Context, tenant, after string, limit int) ([]auth.User, error) {
	return with(ctx, r.f, tenant, func(s Stores) ([]auth.User, error) { return s.Users.ListUsers(ctx, tenant, after, limit) })
}

func (r routedUsers) ListUserSummaries(ctx context.Context, tenant, after string, limit int) ([]auth.UserSummary, error) {
	return with(ctx, r.f, tenant, func(s Stores) ([]auth.UserSummary, error) {
		return s.Users.ListUserSummaries(ctx, tenant, after, limit)
	})
}

func (r routedUsers) DeleteUser(ctx context.Context, tenant, id string) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) { return struct{}{}, s.Users.DeleteUser(ctx, tenant, id) })
	return err
}

func (r routedUsers) SetStatus(ctx context.Context, tenant, id string, st auth.Status) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) {
		return struct{}{}, s.UserUpdates.SetStatus(ctx, tenant, id, st)
	})
	return err
}

func (r routedUsers) Deactivate(ctx context.Context, tenant, id string) (bool, error) {
	return with(ctx, r.f, tenant, func(s Stores) (bool, error) {
		return s.UserUpdates.Deactivate(ctx, tenant, id)
	})
}

func (r routedUsers) DeactivateIdle(ctx context.Context, tenant, id string, idleSince time.Time) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) {
		return struct{}{}, s.UserUpdates.DeactivateIdle(ctx, tenant, id, idleSince)
	})
	return err
}

func (r routedUsers) SetReactivatedAt(ctx context.Context, tenant, id string, at time.Time) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) {
		return struct{}{}, s.UserUpdates.SetReactivatedAt(ctx, tenant, id, at)
	})
	return err
}

func (r routedUsers) SetPassword(ctx context.Context, tenant, id, hash string, at time.Time, keep int) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) {
		return struct{}{}, s.UserUpdates.SetPassword(ctx, tenant, id, hash, at, keep)
	})
	return err
}

func (r routedUsers) ResetPassword(ctx context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) {
		return struct{}{}, s.UserUpdates.ResetPassword(ctx, tenant, id, was, hash, at, keep)
	})
	return err
}

func (r routedUsers) ChangePassword(ctx context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) {
		return struct{}{}, s.UserUpdates.ChangePassword(ctx, tenant, id, was, hash, at, keep)
	})
	return err
}

func (r routedUsers) RehashPassword(ctx context.Context, tenant, id, oldHash, newHash string) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) {
		return struct{}{}, s.UserUpdates.RehashPassword(ctx, tenant, id, oldHash, newHash)
	})
	return err
}

func (r routedUsers) ExpirePassword(ctx context.Context, tenant, id string) (bool, error) {
	return with(ctx, r.f, tenant, func(s Stores) (bool, error) {
		return s.UserUpdates.ExpirePassword(ctx, tenant, id)
	})
}

func (r routedUsers) ClearPasswordExpired(ctx context.Context, tenant, id string) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) {
		return struct{}{}, s.UserUpdates.ClearPasswordExpired(ctx, tenant, id)
	})
	return err
}

func (r routedUsers) RecordLogin(ctx context.Context, tenant, id string, at time.Time) (auth.User, error) {
	return with(ctx, r.f, tenant, func(s Stores) (auth.User, error) { return s.UserUpdates.RecordLogin(ctx, tenant, id, at) })
}

func (r routedUsers) RecordSSOLogin(ctx context.Context, tenant, id string, at time.Time) (auth.User, error) {
	return with(ctx, r.f, tenant, func(s Stores) (auth.User, error) { return s.UserUpdates.RecordSSOLogin(ctx, tenant, id, at) })
}

func (r routedUsers) SetEmail(ctx context.Context, tenant, id, email string, unverified bool) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) {
		return struct{}{}, s.UserUpdates.SetEmail(ctx, tenant, id, email, unverified)
	})
	return err
}

func (r routedUsers) ChangeEmail(ctx context.Context, tenant, id string, was auth.User, email string, unverified bool) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) {
		return struct{}{}, s.UserUpdates.ChangeEmail(ctx, tenant, id, was, email, unverified)
	})
	return err
}

func (r routedUsers) VerifyEmail(ctx context.Context, tenant, id, email string) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) {
		return struct{}{}, s.UserUpdates.VerifyEmail(ctx, tenant, id, email)
	})
	return err
}

type routedAudit struct{ f *fence }

func (r routedAudit) Append(ctx context.Context, tenant string, events []audit.Event) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) { return struct{}{}, s.Audit.Append(ctx, tenant, events) })
	return err
}

func (r routedAudit) Head(ctx context.Context, tenant string) (audit.Link, error) {
	return with(ctx, r.f, tenant, func(s Stores) (audit.Link, error) { return s.Audit.Head(ctx, tenant) })
}

func (r routedAudit) Query(ctx context.Context, tenant string, q audit.Query) ([]audit.Event, error) {
	return with(ctx, r.f, tenant, func(s Stores) ([]audit.Event, error) { return s.Audit.Query(ctx, tenant, q) })
}

func (r routedAudit) Checkpoint(ctx context.Context, tenant string) (audit.Checkpoint, error) {
	return with(ctx, r.f, tenant, func(s Stores) (audit.Checkpoint, error) { return s.Audit.Checkpoint(ctx, tenant) })
}

func (r routedAudit) Purge(ctx context.Context, tenant string, cp audit.Checkpoint) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) { return struct{}{}, s.Audit.Purge(ctx, tenant, cp) })
	return err
}

// routedMFA stands in for the tenant-data MFA stores (factors, enrolments,
// recovery codes) when tenants are ring-fenced.
type routedMFA struct{ f *fence }

var (
	_ mfa.FactorStore    = routedMFA{}
	_ mfa.FactorUpdater  = routedMFA{}
	_ mfa.EnrolmentIndex = routedMFA{}
	_ mfa.RecoveryStore  = routedMFA{}
)

// do runs fn on tenant's stores, for methods that return only an error.
func (r routedMFA) do(ctx context.Context, tenant string, fn func(mfa.Stores) error) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) { return struct{}{}, fn(s.MFA) })
	return err
}

func (r routedMFA) CreateFactor(ctx context.Context, fa mfa.Factor, max int) error {
	return r.do(ctx, fa.Tenant, func(s mfa.Stores) error { return s.Factors.CreateFactor(ctx, fa, max) })
}

func (r routedMFA) Factor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	return with(ctx, r.f, tenant, func(s Stores) (mfa.Factor, error) { return s.MFA.Factors.Factor(ctx, tenant, userID, id) })
}

func (r routedMFA) Factors(ctx context.Context, tenant, userID string) ([]mfa.Factor, error) {
	return with(ctx, r.f, tenant, func(s Stores) ([]mfa.Factor, error) { return s.MFA.Factors.Factors(ctx, tenant, userID) })
}

func (r routedMFA) DeleteFactor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	return with(ctx, r.f, tenant, func(s Stores) (mfa.Factor, error) { return s.MFA.Factors.DeleteFactor(ctx, tenant, userID, id) })
}

func (r routedMFA) DeleteFactorKeeping(ctx context.Context, tenant, userID, id string, keep int) (mfa.Factor, error) {
	return with(ctx, r.f, tenant, func(s Stores) (mfa.Factor, error) {
		return s.MFA.Factors.DeleteFactorKeeping(ctx, tenant, userID, id, keep)
	})
}

func (r routedMFA) ConfirmFactor(ctx context.Context, tenant, userID, id string, at time.Time, step int64, max int) error {
	return r.do(ctx, tenant, func(s mfa.Stores) error { return s.FactorUpdates.ConfirmFactor(ctx, tenant, userID, id, at, step, max) })
}

func (r routedMFA) AdvanceStep(ctx context.Context, tenant, userID, id string, step int64) error {
	return r.do(ctx, tenant, func(s mfa.Stores) error { return s.FactorUpdates.AdvanceStep(ctx, tenant, userID, id, step) })
}

func (r routedMFA) ResealSecret(ctx context.Context, tenant, userID, id string, old []byte, keyID string, secret []byte) error {
	return r.do(ctx, tenant, func(s mfa.Stores) error {
		return s.FactorUpdates.ResealSecret(ctx, tenant, userID, id, old, keyID, secret)
	})
}

func (r routedMFA) Enrolments(ctx context.Context, tenant, after string, limit int) ([]mfa.Enrolment, error) {
	return with(ctx, r.f, tenant, func(s Stores) ([]mfa.Enrolment, error) {
		return s.MFA.Enrolments.Enrolments(ctx, tenant, after, limit)
	})
}

func (r routedMFA) ReplaceRecoveryCodes(ctx context.Context, tenant, userID string, hashes []mfa.Hash) error {
	return r.do(ctx, tenant, func(s mfa.Stores) error { return s.Recovery.ReplaceRecoveryCodes(ctx, tenant, userID, hashes) })
}

func (r routedMFA) UseRecoveryCode(ctx context.Context, tenant, userID string, h mfa.Hash) (int, error) {
	return with(ctx, r.f, tenant, func(s Stores) (int, error) { return s.MFA.Recovery.UseRecoveryCode(ctx, tenant, userID, h) })
}

func (r routedMFA) RecoveryCodes(ctx context.Context, tenant, userID string) ([]mfa.Hash, error) {
	return with(ctx, r.f, tenant, func(s Stores) ([]mfa.Hash, error) { return s.MFA.Recovery.RecoveryCodes(ctx, tenant, userID) })
}

func (r routedMFA) SwapRecoveryCodes(ctx context.Context, tenant, userID string, old, hashes []mfa.Hash) error {
	return r.do(ctx, tenant, func(s mfa.Stores) error { return s.Recovery.SwapRecoveryCodes(ctx, tenant, userID, old, hashes) })
}

func (r routedMFA) RecoveryCodesLeft(ctx context.Context, tenant, userID string) (int, error) {
	return with(ctx, r.f, tenant, func(s Stores) (int, error) { return s.MFA.Recovery.RecoveryCodesLeft(ctx, tenant, userID) })
}

// routedIPLists stands in for the IP allow-list store when tenants are
// ring-fenced. A tenant whose stores have no allow-lists has none.
type routedIPLists struct{ f *fence }

var _ ipfilter.Store = routedIPLists{}

func (r routedIPLists) Lists(ctx context.Context, tenant string) (ipfilter.Lists, error) {
	return with(ctx, r.f, tenant, func(s Stores) (ipfilter.Lists, error) {
		if s.IPLists == nil {
			return ipfilter.Lists{}, nil
		}
		return s.IPLists.Lists(ctx, tenant)
	})
}

func (r routedIPLists) Version(ctx context.Context, tenant string) (uint64, error) {
	return with(ctx, r.f, tenant, func(s Stores) (uint64, error) {
		if s.IPLists == nil {
			return 0, nil
		}
		return s.IPLists.Version(ctx, tenant)
	})
}

func (r routedIPLists) Replace(ctx context.Context, tenant string, scope ipfilter.Scope, rules ipfilter.Rules, prev uint64) (uint64, error) {
	return with(ctx, r.f, tenant, func(s Stores) (uint64, error) {
		if s.IPLists == nil {
			return 0, ErrIPListsNotConfigured
		}
		return s.IPLists.Replace(ctx, tenant, scope, rules, prev)
	})
}

// routedRBAC stands in for the role and approval stores when tenants are
// ring-fenced.
type routedRBAC struct{ f *fence }

var (
	_ rbac.PolicyStore   = routedRBAC{}
	_ rbac.ApprovalStore = routedRBAC{}
)

func (r routedRBAC) store(s Stores) (rbac.PolicyStore, rbac.ApprovalStore, error) {
	if s.Policies == nil || s.Approvals == nil {
		return nil, nil, ErrRolesNotConfigured
	}
	return s.Policies, s.Approvals, nil
}

func (r routedRBAC) Policy(ctx context.Context, tenant string) ([]rbac.Rule, uint64, error) {
	type out struct {
		rules []rbac.Rule
		v     uint64
	}
	o, err := with(ctx, r.f, tenant, func(s Stores) (out, error) {
		ps, _, err := r.store(s)
		if err != nil {
			return out{}, err
		}
		rules, v, err := ps.Policy(ctx, tenant)
		return out{rules, v}, err
	})
	return o.rules, o.v, err
}

func (r routedRBAC) Version(ctx context.Context, tenant string) (uint64, error) {
	return with(ctx, r.f, tenant, func(s Stores) (uint64, error) {
		ps, _, err := r.store(s)
		if err != nil {
			return 0, err
		}
		return ps.Version(ctx, tenant)
	})
}

func (r routedRBAC) Update(ctx context.Context, tenant string, expect uint64, remove, add []rbac.Rule) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) {
		ps, _, err := r.store(s)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, ps.Update(ctx, tenant, expect, remove, add)
	})
	return err
}

func (r routedRBAC) Changes(ctx context.Context, tenant string, since uint64) ([]rbac.Change, error) {
	return with(ctx, r.f, tenant, func(s Stores) ([]rbac.Change, error) {
		ps, _, err := r.store(s)
		if err != nil {
			return nil, err
		}
		return ps.Changes(ctx, tenant, since)
	})
}

func (r routedRBAC) approvals(ctx context.Context, tenant string, fn func(rbac.ApprovalStore) (rbac.Approval, error)) (rbac.Approval, error) {
	return with(ctx, r.f, tenant, func(s Stores) (rbac.Approval, error) {
		_, as, err := r.store(s)
		if err != nil {
			return rbac.Approval{}, err
		}
		return fn(as)
	})
}

func (r routedRBAC) CreateApproval(ctx context.Context, a rbac.Approval) error {
	_, err := r.approvals(ctx, a.Tenant, func(as rbac.ApprovalStore) (rbac.Approval, error) {
		return rbac.Approval{}, as.CreateApproval(ctx, a)
	})
	return err
}

func (r routedRBAC) Approval(ctx context.Context, tenant, id string) (rbac.Approval, error) {
	return r.approvals(ctx, tenant, func(as rbac.ApprovalStore) (rbac.Approval, error) { return as.Approval(ctx, tenant, id) })
}

func (r routedRBAC) DecideApproval(ctx context.Context, tenant, id string, by rbac.Subject, st rbac.Status, at time.Time) (rbac.Approval, error) {
	return r.approvals(ctx, tenant, func(as rbac.ApprovalStore) (rbac.Approval, error) {
		return as.DecideApproval(ctx, tenant, id, by, st, at)
	})
}

func (r routedRBAC) ConsumeApproval(ctx context.Context, tenant, id string, c rbac.Claim, at time.Time) (rbac.Approval, error) {
	return r.approvals(ctx, tenant, func(as rbac.ApprovalStore) (rbac.Approval, error) {
		return as.ConsumeApproval(ctx, tenant, id, c, at)
	})
}

func (r routedRBAC) ListApprovals(ctx context.Context, tenant string, q rbac.ApprovalQuery) ([]rbac.Approval, error) {
	return with(ctx, r.f, tenant, func(s Stores) ([]rbac.Approval, error) {
		_, as, err := r.store(s)
		if err != nil {
			return nil, err
		}
		return as.ListApprovals(ctx, tenant, q)
	})
}

// routedSSO stands in for the IdP connection store when tenants are
// ring-fenced.
type routedSSO struct{ f *fence }

var _ sso.ConnectionStore = routedSSO{}

func (r routedSSO) conns(s Stores) (sso.ConnectionStore, error) {
	if s.SSO.Connections == nil {
		return nil, ErrSSONotConfigured
	}
	return s.SSO.Connections, nil
}

func (r routedSSO) PutConnection(ctx context.Context, c sso.Connection) error {
	_, err := with(ctx, r.f, c.Tenant, func(s Stores) (struct{}, error) {
		cs, err := r.conns(s)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, cs.PutConnection(ctx, c)
	})
	return err
}

func (r routedSSO) Connection(ctx context.Context, tenant string) (sso.Connection, error) {
	return with(ctx, r.f, tenant, func(s Stores) (sso.Connection, error) {
		cs, err := r.conns(s)
		if err != nil {
			return sso.Connection{}, err
		}
		return cs.Connection(ctx, tenant)
	})
}

func (r routedSSO) DeleteConnection(ctx context.Context, tenant string) error {
	_, err := with(ctx, r.f, tenant, func(s Stores) (struct{}, error) {
		cs, err := r.conns(s)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, cs.DeleteConnection(ctx, tenant)
	})
	return err
}

func (r routedSSO) UpdateMetadata(ctx context.Context, tenant, url, metadata string, fetchedAt time.Time) (bool, error) {
	return with(ctx, r.f, tenant, func(s Stores) (bool, error) {
		cs, err := r.conns(s)
		if err != nil {
			return false, err
		}
		return cs.UpdateMetadata(ctx, tenant, url, metadata, fetchedAt)
	})
}
