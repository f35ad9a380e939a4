package guard_test

// Store wrappers for the fault-injection sweep (faults_test.go): every
// store of guard.Stores behind one shared call counter that fails the
// k-th call.
//
// Optional interfaces the facade probes by type assertion:
//   - auth.BatchThrottleStore (auth.BatchThrottle, probed in guard.New):
//     fThrottle embeds a BatchThrottleStore, so ReserveAll and Settle are
//     exposed and counted (memstore.Throttle has them).
//   - session.LookupToucher (probed by session.New): exposed, and
//     LookupTouch and Untouch counted, when the wrapped session store has
//     it (fLookupToucher). memstore.Sessions does not, so TestFaultSweep
//     sweeps the Lookup-then-Touch path; TestFaultSweepLookupTouch
//     (faults_lookuptouch_test.go) sweeps the one-round-trip path of
//     pgstore, redisstore and sqlitestore on sqlitestore's Sessions.

import (
	"context"
	"errors"
	"sync"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/sso"
)

// errInjected is the error of the failed store call.
var errInjected = errors.New("injected")

// faultCounter counts the store calls made while it is armed and fails
// the failAt-th (1-based; 0 fails none), or the failNth call named
// failName: TestFaultSweep's steps, so that a step fails the same call
// whatever the order of the calls a flow makes on several goroutines at
// once, each calling methods of its own (ApplyReview's side-by-side read
// of the tenant). While armed, it holds one call as hold says (none if
// hold.name is ""), to force an order on calls a flow makes side by side.
type faultCounter struct {
	mu       sync.Mutex
	armed    bool
	failAt   int
	failName string
	failNth  int
	calls    []string
	fired    string // the call that failed, "" if none

	hold     holdCall
	heldLong bool // a held call was let go after holdLimit, its order not forced
}

// holdCall holds the nth call named name until the calls counted include
// untilN calls named until, or a call has failed (the flow then goes
// another way), so that calls made on other goroutines come first.
type holdCall struct {
	name   string
	nth    int
	until  string
	untilN int
}

// holdLimit bounds a hold: a call still held then goes on (heldLong).
const holdLimit = 10 * time.Second

// holdIfDue waits, with c.mu held and released while it waits, if the
// call named name about to be counted is the one c.hold names.
func (c *faultCounter) holdIfDue(name string) {
	h := c.hold
	if h.name != name || c.count(name)+1 != h.nth {
		return
	}
	deadline := time.Now().Add(holdLimit)
	for c.count(h.until) < h.untilN && c.fired == "" {
		if time.Now().After(deadline) {
			c.heldLong = true
			return
		}
		c.mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		c.mu.Lock()
	}
}

// count returns the number of calls named name counted so far (c.mu held).
func (c *faultCounter) count(name string) int {
	n := 0
	for _, s := range c.calls {
		if s == name {
			n++
		}
	}
	return n
}

// setHold makes c hold a call as h says, from its next arming on.
func (c *faultCounter) setHold(h holdCall) {
	c.mu.Lock()
	c.hold, c.heldLong = h, false
	c.mu.Unlock()
}

// heldTooLong reports whether a held call was let go after holdLimit.
func (c *faultCounter) heldTooLong() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.heldLong
}

func (c *faultCounter) arm(failAt int) {
	c.mu.Lock()
	c.armed, c.failAt, c.failName, c.calls, c.fired = true, failAt, "", nil, ""
	c.mu.Unlock()
}

// armName arms c to fail the first call named name (Store.Method).
func (c *faultCounter) armName(name string) { c.armNth(name, 1) }

// armNth arms c to fail the nth call named name (Store.Method).
func (c *faultCounter) armNth(name string, nth int) {
	c.mu.Lock()
	c.armed, c.failAt, c.failName, c.failNth, c.calls, c.fired = true, 0, name, nth, nil, ""
	c.mu.Unlock()
}

// disarm stops counting and returns the calls counted and the one that
// failed.
func (c *faultCounter) disarm() (calls []string, fired string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = false
	return c.calls, c.fired
}

func (c *faultCounter) hit(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.armed {
		return nil
	}
	c.holdIfDue(name)
	c.calls = append(c.calls, name)
	if len(c.calls) == c.failAt || (c.failName == name && c.fired == "" && c.count(name) == c.failNth) {
		c.fired = name
		return errInjected
	}
	return nil
}

func do0(c *faultCounter, name string, f func() error) error {
	if err := c.hit(name); err != nil {
		return err
	}
	return f()
}

func do1[T any](c *faultCounter, name string, f func() (T, error)) (T, error) {
	if err := c.hit(name); err != nil {
		var z T
		return z, err
	}
	return f()
}

func do2[T, U any](c *faultCounter, name string, f func() (T, U, error)) (T, U, error) {
	if err := c.hit(name); err != nil {
		var t T
		var u U
		return t, u, err
	}
	return f()
}

// wrapStores puts every non-nil store of s behind the shared counter c.
func wrapStores(s guard.Stores, c *faultCounter) guard.Stores {
	if s.Users != nil {
		s.Users = fUsers{s.Users, c}
	}
	if s.UserUpdates != nil {
		s.UserUpdates = fUserUpdates{s.UserUpdates, c}
	}
	if s.Throttle != nil {
		s.Throttle = fThrottle{auth.BatchThrottle(s.Throttle), c}
	}
	if s.APIKeys != nil {
		s.APIKeys = fAPIKeys{s.APIKeys, c}
	}
	if lt, ok := s.Sessions.(session.LookupToucher); ok {
		s.Sessions = fLookupToucher{fSessions{s.Sessions, c}, lt}
	} else if s.Sessions != nil {
		s.Sessions = fSessions{s.Sessions, c}
	}
	if s.SessionIndex != nil {
		s.SessionIndex = fSessionIndex{s.SessionIndex, c}
	}
	if s.Audit != nil {
		s.Audit = fAudit{s.Audit, c}
	}
	if s.Tenants != nil {
		s.Tenants = fTenants{s.Tenants, c}
	}
	if s.IPLists != nil {
		s.IPLists = fIPLists{s.IPLists, c}
	}
	if s.Policies != nil {
		s.Policies = fPolicies{s.Policies, c}
	}
	if s.Approvals != nil {
		s.Approvals = fApprovals{s.Approvals, c}
	}
	if s.MFA.Factors != nil {
		s.MFA.Factors = fFactors{s.MFA.Factors, c}
	}
	if s.MFA.FactorUpdates != nil {
		s.MFA.FactorUpdates = fFactorUpdates{s.MFA.FactorUpdates, c}
	}
	if s.MFA.Enrolments != nil {
		s.MFA.Enrolments = fEnrolments{s.MFA.Enrolments, c}
	}
	if s.MFA.Recovery != nil {
		s.MFA.Recovery = fRecovery{s.MFA.Recovery, c}
	}
	if s.MFA.Codes != nil {
		s.MFA.Codes = fCodes{s.MFA.Codes, c}
	}
	if s.MFA.Rates != nil {
		s.MFA.Rates = fRates{s.MFA.Rates, c}
	}
	if s.MFA.Transactions != nil {
		s.MFA.Transactions = fTransactions{s.MFA.Transactions, c}
	}
	if s.SSO.Connections != nil {
		s.SSO.Connections = fConnections{s.SSO.Connections, c}
	}
	if s.SSO.Requests != nil {
		s.SSO.Requests = fRequests{s.SSO.Requests, c}
	}
	if s.SSO.Replay != nil {
		s.SSO.Replay = fReplay{s.SSO.Replay, c}
	}
	if s.SSO.Subjects != nil {
		s.SSO.Subjects = fSubjects{s.SSO.Subjects, c}
	}
	return s
}

type fUsers struct {
	auth.UserStore
	c *faultCounter
}

func (w fUsers) CreateUser(ctx context.Context, u auth.User) error {
	return do0(w.c, "Users.CreateUser", func() error { return w.UserStore.CreateUser(ctx, u) })
}

func (w fUsers) User(ctx context.Context, tenant, id string) (auth.User, error) {
	return do1(w.c, "Users.User", func() (auth.User, error) { return w.UserStore.User(ctx, tenant, id) })
}

func (w fUsers) UserByEmail(ctx context.Context, tenant, email string) (auth.User, error) {
	return do1(w.c, "Users.UserByEmail", func() (auth.User, error) { return w.UserStore.UserByEmail(ctx, tenant, email) })
}

func (w fUsers) ListUsers(ctx context.Context, tenant, after string, limit int) ([]auth.User, error) {
	return do1(w.c, "Users.ListUsers", func() ([]auth.User, error) { return w.UserStore.ListUsers(ctx, tenant, after, limit) })
}

func (w fUsers) ListUserSummaries(ctx context.Context, tenant, after string, limit int) ([]auth.UserSummary, error) {
	return do1(w.c, "Users.ListUserSummaries", func() ([]auth.UserSummary, error) { return w.UserStore.ListUserSummaries(ctx, tenant, after, limit) })
}

func (w fUsers) DeleteUser(ctx context.Context, tenant, id string) error {
	return do0(w.c, "Users.DeleteUser", func() error { return w.UserStore.DeleteUser(ctx, tenant, id) })
}

type fUserUpdates struct {
	auth.UserUpdater
	c *faultCounter
}

func (w fUserUpdates) SetStatus(ctx context.Context, tenant, id string, s auth.Status) error {
	return do0(w.c, "UserUpdates.SetStatus", func() error { return w.UserUpdater.SetStatus(ctx, tenant, id, s) })
}

func (w fUserUpdates) Deactivate(ctx context.Context, tenant, id string) (bool, error) {
	return do1(w.c, "UserUpdates.Deactivate", func() (bool, error) { return w.UserUpdater.Deactivate(ctx, tenant, id) })
}

func (w fUserUpdates) DeactivateIdle(ctx context.Context, tenant, id string, idleSince time.Time) error {
	return do0(w.c, "UserUpdates.DeactivateIdle", func() error { return w.UserUpdater.DeactivateIdle(ctx, tenant, id, idleSince) })
}

func (w fUserUpdates) SetReactivatedAt(ctx context.Context, tenant, id string, at time.Time) error {
	return do0(w.c, "UserUpdates.SetReactivatedAt", func() error { return w.UserUpdater.SetReactivatedAt(ctx, tenant, id, at) })
}

func (w fUserUpdates) SetPassword(ctx context.Context, tenant, id, hash string, at time.Time, keep int) error {
	return do0(w.c, "UserUpdates.SetPassword", func() error { return w.UserUpdater.SetPassword(ctx, tenant, id, hash, at, keep) })
}

func (w fUserUpdates) ResetPassword(ctx context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	return do0(w.c, "UserUpdates.ResetPassword", func() error { return w.UserUpdater.ResetPassword(ctx, tenant, id, was, hash, at, keep) })
}

func (w fUserUpdates) ChangePassword(ctx context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	return do0(w.c, "UserUpdates.ChangePassword", func() error { return w.UserUpdater.ChangePassword(ctx, tenant, id, was, hash, at, keep) })
}

func (w fUserUpdates) RehashPassword(ctx context.Context, tenant, id, oldHash, newHash string) error {
	return do0(w.c, "UserUpdates.RehashPassword", func() error { return w.UserUpdater.RehashPassword(ctx, tenant, id, oldHash, newHash) })
}

func (w fUserUpdates) ExpirePassword(ctx context.Context, tenant, id string) (bool, error) {
	return do1(w.c, "UserUpdates.ExpirePassword", func() (bool, error) { return w.UserUpdater.ExpirePassword(ctx, tenant, id) })
}

func (w fUserUpdates) ClearPasswordExpired(ctx context.Context, tenant, id string) error {
	return do0(w.c, "UserUpdates.ClearPasswordExpired", func() error { return w.UserUpdater.ClearPasswordExpired(ctx, tenant, id) })
}

func (w fUserUpdates) RecordLogin(ctx context.Context, tenant, id string, at time.Time) (auth.User, error) {
	return do1(w.c, "UserUpdates.RecordLogin", func() (auth.User, error) { return w.UserUpdater.RecordLogin(ctx, tenant, id, at) })
}

func (w fUserUpdates) RecordSSOLogin(ctx context.Context, tenant, id string, at time.Time) (auth.User, error) {
	return do1(w.c, "UserUpdates.RecordSSOLogin", func() (auth.User, error) { return w.UserUpdater.RecordSSOLogin(ctx, tenant, id, at) })
}

func (w fUserUpdates) SetEmail(ctx context.Context, tenant, id, email string, unverified bool) error {
	return do0(w.c, "UserUpdates.SetEmail", func() error { return w.UserUpdater.SetEmail(ctx, tenant, id, email, unverified) })
}

func (w fUserUpdates) ChangeEmail(ctx context.Context, tenant, id string, was auth.User, email string, unverified bool) error {
	return do0(w.c, "UserUpdates.ChangeEmail", func() error { return w.UserUpdater.ChangeEmail(ctx, tenant, id, was, email, unverified) })
}
func (w fUserUpdates) VerifyEmail(ctx context.Context, tenant, id, email string) error {
	return do0(w.c, "UserUpdates.VerifyEmail", func() error { return w.UserUpdater.VerifyEmail(ctx, tenant, id, email) })
}

type fThrottle struct {
	auth.BatchThrottleStore
	c *faultCounter
}

func (w fThrottle) Reserve(ctx context.Context, key string, now time.Time, lim auth.Limit) (auth.Reservation, error) {
	return do1(w.c, "Throttle.Reserve", func() (auth.Reservation, error) { return w.BatchThrottleStore.Reserve(ctx, key, now, lim) })
}

func (w fThrottle) Release(ctx context.Context, key string, res auth.Reservation) error {
	return do0(w.c, "Throttle.Release", func() error { return w.BatchThrottleStore.Release(ctx, key, res) })
}

func (w fThrottle) Reset(ctx context.Context, key string) error {
	return do0(w.c, "Throttle.Reset", func() error { return w.BatchThrottleStore.Reset(ctx, key) })
}

func (w fThrottle) Peek(ctx context.Context, key string, now time.Time, lim auth.Limit) (auth.State, error) {
	return do1(w.c, "Throttle.Peek", func() (auth.State, error) { return w.BatchThrottleStore.Peek(ctx, key, now, lim) })
}

func (w fThrottle) ReserveAll(ctx context.Context, now time.Time, keys []auth.ThrottleKey) ([]auth.Reservation, error) {
	return do1(w.c, "Throttle.ReserveAll", func() ([]auth.Reservation, error) { return w.BatchThrottleStore.ReserveAll(ctx, now, keys) })
}

func (w fThrottle) Settle(ctx context.Context, keys []auth.Settlement) error {
	return do0(w.c, "Throttle.Settle", func() error { return w.BatchThrottleStore.Settle(ctx, keys) })
}

type fAPIKeys struct {
	auth.APIKeyStore
	c *faultCounter
}

func (w fAPIKeys) CreateAPIKey(ctx context.Context, k auth.APIKey, maxLive int) error {
	return do0(w.c, "APIKeys.CreateAPIKey", func() error { return w.APIKeyStore.CreateAPIKey(ctx, k, maxLive) })
}

func (w fAPIKeys) APIKeyByHash(ctx context.Context, h [32]byte) (auth.APIKey, error) {
	return do1(w.c, "APIKeys.APIKeyByHash", func() (auth.APIKey, error) { return w.APIKeyStore.APIKeyByHash(ctx, h) })
}

func (w fAPIKeys) ListAPIKeys(ctx context.Context, tenant string) ([]auth.APIKey, error) {
	return do1(w.c, "APIKeys.ListAPIKeys", func() ([]auth.APIKey, error) { return w.APIKeyStore.ListAPIKeys(ctx, tenant) })
}

func (w fAPIKeys) RevokeAPIKey(ctx context.Context, tenant, id string, at time.Time) error {
	return do0(w.c, "APIKeys.RevokeAPIKey", func() error { return w.APIKeyStore.RevokeAPIKey(ctx, tenant, id, at) })
}

func (w fAPIKeys) TouchAPIKey(ctx context.Context, tenant, id string, at time.Time) error {
	return do0(w.c, "APIKeys.TouchAPIKey", func() error { return w.APIKeyStore.TouchAPIKey(ctx, tenant, id, at) })
}

func (w fAPIKeys) RevokeByCreator(ctx context.Context, tenant, userID string, at time.Time) ([]auth.APIKey, error) {
	return do1(w.c, "APIKeys.RevokeByCreator", func() ([]auth.APIKey, error) { return w.APIKeyStore.RevokeByCreator(ctx, tenant, userID, at) })
}

func (w fAPIKeys) PurgeAPIKeys(ctx context.Context, tenant string, before time.Time) (int, error) {
	return do1(w.c, "APIKeys.PurgeAPIKeys", func() (int, error) { return w.APIKeyStore.PurgeAPIKeys(ctx, tenant, before) })
}

type fSessions struct {
	session.Store
	c *faultCounter
}

func (w fSessions) Create(ctx context.Context, s session.Session, lim session.Limit) ([]session.Session, error) {
	return do1(w.c, "Sessions.Create", func() ([]session.Session, error) { return w.Store.Create(ctx, s, lim) })
}

func (w fSessions) Lookup(ctx context.Context, h session.Hash) (session.Session, error) {
	return do1(w.c, "Sessions.Lookup", func() (session.Session, error) { return w.Store.Lookup(ctx, h) })
}

func (w fSessions) Touch(ctx context.Context, h session.Hash, seen time.Time) error {
	return do0(w.c, "Sessions.Touch", func() error { return w.Store.Touch(ctx, h, seen) })
}

func (w fSessions) Delete(ctx context.Context, h session.Hash) (session.Session, error) {
	return do1(w.c, "Sessions.Delete", func() (session.Session, error) { return w.Store.Delete(ctx, h) })
}

func (w fSessions) Rotate(ctx context.Context, old session.Hash, s session.Session) error {
	return do0(w.c, "Sessions.Rotate", func() error { return w.Store.Rotate(ctx, old, s) })
}

// fLookupToucher is fSessions over a store that has the optional
// session.LookupToucher, which it exposes, counted.
type fLookupToucher struct {
	fSessions
	lt session.LookupToucher
}

func (w fLookupToucher) LookupTouch(ctx context.Context, h session.Hash, now time.Time, interval, maxGap time.Duration) (session.Session, error) {
	return do1(w.c, "Sessions.LookupTouch", func() (session.Session, error) { return w.lt.LookupTouch(ctx, h, now, interval, maxGap) })
}

func (w fLookupToucher) Untouch(ctx context.Context, h session.Hash, touched, prev time.Time) error {
	return do0(w.c, "Sessions.Untouch", func() error { return w.lt.Untouch(ctx, h, touched, prev) })
}

type fSessionIndex struct {
	session.UserIndex
	c *faultCounter
}

func (w fSessionIndex) ListByUser(ctx context.Context, tenant, userID string) ([]session.Session, error) {
	return do1(w.c, "SessionIndex.ListByUser", func() ([]session.Session, error) { return w.UserIndex.ListByUser(ctx, tenant, userID) })
}

func (w fSessionIndex) DeleteByUser(ctx context.Context, tenant, userID string, except session.Hash) ([]session.Session, error) {
	return do1(w.c, "SessionIndex.DeleteByUser", func() ([]session.Session, error) { return w.UserIndex.DeleteByUser(ctx, tenant, userID, except) })
}

type fAudit struct {
	audit.Store
	c *faultCounter
}

func (w fAudit) Append(ctx context.Context, tenant string, events []audit.Event) error {
	return do0(w.c, "Audit.Append", func() error { return w.Store.Append(ctx, tenant, events) })
}

func (w fAudit) Head(ctx context.Context, tenant string) (audit.Link, error) {
	return do1(w.c, "Audit.Head", func() (audit.Link, error) { return w.Store.Head(ctx, tenant) })
}

func (w fAudit) Query(ctx context.Context, tenant string, q audit.Query) ([]audit.Event, error) {
	return do1(w.c, "Audit.Query", func() ([]audit.Event, error) { return w.Store.Query(ctx, tenant, q) })
}

func (w fAudit) Checkpoint(ctx context.Context, tenant string) (audit.Checkpoint, error) {
	return do1(w.c, "Audit.Checkpoint", func() (audit.Checkpoint, error) { return w.Store.Checkpoint(ctx, tenant) })
}

func (w fAudit) Purge(ctx context.Context, tenant string, cp audit.Checkpoint) error {
	return do0(w.c, "Audit.Purge", func() error { return w.Store.Purge(ctx, tenant, cp) })
}

type fTenants struct {
	guard.TenantStore
	c *faultCounter
}

func (w fTenants) CreateTenant(ctx context.Context, t guard.Tenant) error {
	return do0(w.c, "Tenants.CreateTenant", func() error { return w.TenantStore.CreateTenant(ctx, t) })
}

func (w fTenants) Tenant(ctx context.Context, id string) (guard.Tenant, error) {
	return do1(w.c, "Tenants.Tenant", func() (guard.Tenant, error) { return w.TenantStore.Tenant(ctx, id) })
}

func (w fTenants) SetPolicy(ctx context.Context, id string, p guard.Policy, version int64) (int64, error) {
	return do1(w.c, "Tenants.SetPolicy", func() (int64, error) { return w.TenantStore.SetPolicy(ctx, id, p, version) })
}

func (w fTenants) MarkReviewed(ctx context.Context, id string, at time.Time) error {
	return do0(w.c, "Tenants.MarkReviewed", func() error { return w.TenantStore.MarkReviewed(ctx, id, at) })
}

func (w fTenants) MarkIdPChanged(ctx context.Context, id string, at time.Time) error {
	return do0(w.c, "Tenants.MarkIdPChanged", func() error { return w.TenantStore.MarkIdPChanged(ctx, id, at) })
}

func (w fTenants) ListTenants(ctx context.Context, after string, limit int) ([]guard.Tenant, error) {
	return do1(w.c, "Tenants.ListTenants", func() ([]guard.Tenant, error) { return w.TenantStore.ListTenants(ctx, after, limit) })
}

type fIPLists struct {
	ipfilter.Store
	c *faultCounter
}

func (w fIPLists) Lists(ctx context.Context, tenant string) (ipfilter.Lists, error) {
	return do1(w.c, "IPLists.Lists", func() (ipfilter.Lists, error) { return w.Store.Lists(ctx, tenant) })
}

func (w fIPLists) Version(ctx context.Context, tenant string) (uint64, error) {
	return do1(w.c, "IPLists.Version", func() (uint64, error) { return w.Store.Version(ctx, tenant) })
}

func (w fIPLists) Replace(ctx context.Context, tenant string, scope ipfilter.Scope, r ipfilter.Rules, prev uint64) (uint64, error) {
	return do1(w.c, "IPLists.Replace", func() (uint64, error) { return w.Store.Replace(ctx, tenant, scope, r, prev) })
}

type fPolicies struct {
	rbac.PolicyStore
	c *faultCounter
}

func (w fPolicies) Policy(ctx context.Context, tenant string) ([]rbac.Rule, uint64, error) {
	return do2(w.c, "Policies.Policy", func() ([]rbac.Rule, uint64, error) { return w.PolicyStore.Policy(ctx, tenant) })
}

func (w fPolicies) Version(ctx context.Context, tenant string) (uint64, error) {
	return do1(w.c, "Policies.Version", func() (uint64, error) { return w.PolicyStore.Version(ctx, tenant) })
}

func (w fPolicies) Update(ctx context.Context, tenant string, expect uint64, remove, add []rbac.Rule) error {
	return do0(w.c, "Policies.Update", func() error { return w.PolicyStore.Update(ctx, tenant, expect, remove, add) })
}

func (w fPolicies) Changes(ctx context.Context, tenant string, since uint64) ([]rbac.Change, error) {
	return do1(w.c, "Policies.Changes", func() ([]rbac.Change, error) { return w.PolicyStore.Changes(ctx, tenant, since) })
}

type fApprovals struct {
	rbac.ApprovalStore
	c *faultCounter
}

func (w fApprovals) CreateApproval(ctx context.Context, a rbac.Approval) error {
	return do0(w.c, "Approvals.CreateApproval", func() error { return w.ApprovalStore.CreateApproval(ctx, a) })
}

func (w fApprovals) Approval(ctx context.Context, tenant, id string) (rbac.Approval, error) {
	return do1(w.c, "Approvals.Approval", func() (rbac.Approval, error) { return w.ApprovalStore.Approval(ctx, tenant, id) })
}

func (w fApprovals) DecideApproval(ctx context.Context, tenant, id string, by rbac.Subject, status rbac.Status, at time.Time) (rbac.Approval, error) {
	return do1(w.c, "Approvals.DecideApproval", func() (rbac.Approval, error) { return w.ApprovalStore.DecideApproval(ctx, tenant, id, by, status, at) })
}

func (w fApprovals) ConsumeApproval(ctx context.Context, tenant, id string, c rbac.Claim, at time.Time) (rbac.Approval, error) {
	return do1(w.c, "Approvals.ConsumeApproval", func() (rbac.Approval, error) { return w.ApprovalStore.ConsumeApproval(ctx, tenant, id, c, at) })
}

func (w fApprovals) ListApprovals(ctx context.Context, tenant string, q rbac.ApprovalQuery) ([]rbac.Approval, error) {
	return do1(w.c, "Approvals.ListApprovals", func() ([]rbac.Approval, error) { return w.ApprovalStore.ListApprovals(ctx, tenant, q) })
}

type fFactors struct {
	mfa.FactorStore
	c *faultCounter
}

func (w fFactors) CreateFactor(ctx context.Context, f mfa.Factor, max int) error {
	return do0(w.c, "MFA.Factors.CreateFactor", func() error { return w.FactorStore.CreateFactor(ctx, f, max) })
}

func (w fFactors) Factor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	return do1(w.c, "MFA.Factors.Factor", func() (mfa.Factor, error) { return w.FactorStore.Factor(ctx, tenant, userID, id) })
}

func (w fFactors) Factors(ctx context.Context, tenant, userID string) ([]mfa.Factor, error) {
	return do1(w.c, "MFA.Factors.Factors", func() ([]mfa.Factor, error) { return w.FactorStore.Factors(ctx, tenant, userID) })
}

func (w fFactors) DeleteFactor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	return do1(w.c, "MFA.Factors.DeleteFactor", func() (mfa.Factor, error) { return w.FactorStore.DeleteFactor(ctx, tenant, userID, id) })
}

func (w fFactors) DeleteFactorKeeping(ctx context.Context, tenant, userID, id string, keep int) (mfa.Factor, error) {
	return do1(w.c, "MFA.Factors.DeleteFactorKeeping", func() (mfa.Factor, error) { return w.FactorStore.DeleteFactorKeeping(ctx, tenant, userID, id, keep) })
}

type fFactorUpdates struct {
	mfa.FactorUpdater
	c *faultCounter
}

func (w fFactorUpdates) ConfirmFactor(ctx context.Context, tenant, userID, id string, at time.Time, step int64, max int) error {
	return do0(w.c, "MFA.FactorUpdates.ConfirmFactor", func() error { return w.FactorUpdater.ConfirmFactor(ctx, tenant, userID, id, at, step, max) })
}

func (w fFactorUpdates) AdvanceStep(ctx context.Context, tenant, userID, id string, step int64) error {
	return do0(w.c, "MFA.FactorUpdates.AdvanceStep", func() error { return w.FactorUpdater.AdvanceStep(ctx, tenant, userID, id, step) })
}

func (w fFactorUpdates) ResealSecret(ctx context.Context, tenant, userID, id string, old []byte, keyID string, secret []byte) error {
	return do0(w.c, "MFA.FactorUpdates.ResealSecret", func() error { return w.FactorUpdater.ResealSecret(ctx, tenant, userID, id, old, keyID, secret) })
}

type fEnrolments struct {
	mfa.EnrolmentIndex
	c *faultCounter
}

func (w fEnrolments) Enrolments(ctx context.Context, tenant, after string, limit int) ([]mfa.Enrolment, error) {
	return do1(w.c, "MFA.Enrolments.Enrolments", func() ([]mfa.Enrolment, error) { return w.EnrolmentIndex.Enrolments(ctx, tenant, after, limit) })
}

type fRecovery struct {
	mfa.RecoveryStore
	c *faultCounter
}

func (w fRecovery) ReplaceRecoveryCodes(ctx context.Context, tenant, userID string, hashes []mfa.Hash) error {
	return do0(w.c, "MFA.Recovery.ReplaceRecoveryCodes", func() error { return w.RecoveryStore.ReplaceRecoveryCodes(ctx, tenant, userID, hashes) })
}

func (w fRecovery) UseRecoveryCode(ctx context.Context, tenant, userID string, h mfa.Hash) (int, error) {
	return do1(w.c, "MFA.Recovery.UseRecoveryCode", func() (int, error) { return w.RecoveryStore.UseRecoveryCode(ctx, tenant, userID, h) })
}

func (w fRecovery) RecoveryCodes(ctx context.Context, tenant, userID string) ([]mfa.Hash, error) {
	return do1(w.c, "MFA.Recovery.RecoveryCodes", func() ([]mfa.Hash, error) { return w.RecoveryStore.RecoveryCodes(ctx, tenant, userID) })
}

func (w fRecovery) SwapRecoveryCodes(ctx context.Context, tenant, userID string, old, hashes []mfa.Hash) error {
	return do0(w.c, "MFA.Recovery.SwapRecoveryCodes", func() error { return w.RecoveryStore.SwapRecoveryCodes(ctx, tenant, userID, old, hashes) })
}

func (w fRecovery) RecoveryCodesLeft(ctx context.Context, tenant, userID string) (int, error) {
	return do1(w.c, "MFA.Recovery.RecoveryCodesLeft", func() (int, error) { return w.RecoveryStore.RecoveryCodesLeft(ctx, tenant, userID) })
}

type fCodes struct {
	mfa.CodeStore
	c *faultCounter
}

func (w fCodes) PutCode(ctx context.Context, c mfa.Code) error {
	return do0(w.c, "MFA.Codes.PutCode", func() error { return w.CodeStore.PutCode(ctx, c) })
}

func (w fCodes) CheckCode(ctx context.Context, tenant, txn string, h mfa.Hash, now time.Time) (mfa.Code, error) {
	return do1(w.c, "MFA.Codes.CheckCode", func() (mfa.Code, error) { return w.CodeStore.CheckCode(ctx, tenant, txn, h, now) })
}

func (w fCodes) DeleteCode(ctx context.Context, tenant, txn string) error {
	return do0(w.c, "MFA.Codes.DeleteCode", func() error { return w.CodeStore.DeleteCode(ctx, tenant, txn) })
}

type fRates struct {
	mfa.RateStore
	c *faultCounter
}

func (w fRates) Hit(ctx context.Context, key string, now time.Time, window time.Duration) (int, error) {
	return do1(w.c, "MFA.Rates.Hit", func() (int, error) { return w.RateStore.Hit(ctx, key, now, window) })
}

type fTransactions struct {
	mfa.TransactionStore
	c *faultCounter
}

func (w fTransactions) CreateTransaction(ctx context.Context, t mfa.Transaction) error {
	return do0(w.c, "MFA.Transactions.CreateTransaction", func() error { return w.TransactionStore.CreateTransaction(ctx, t) })
}

func (w fTransactions) Transaction(ctx context.Context, h mfa.Hash) (mfa.Transaction, error) {
	return do1(w.c, "MFA.Transactions.Transaction", func() (mfa.Transaction, error) { return w.TransactionStore.Transaction(ctx, h) })
}

func (w fTransactions) ConsumeTransaction(ctx context.Context, h mfa.Hash) (mfa.Transaction, error) {
	return do1(w.c, "MFA.Transactions.ConsumeTransaction", func() (mfa.Transaction, error) { return w.TransactionStore.ConsumeTransaction(ctx, h) })
}

type fConnections struct {
	sso.ConnectionStore
	c *faultCounter
}

func (w fConnections) PutConnection(ctx context.Context, c sso.Connection) error {
	return do0(w.c, "SSO.Connections.PutConnection", func() error { return w.ConnectionStore.PutConnection(ctx, c) })
}

func (w fConnections) Connection(ctx context.Context, tenant string) (sso.Connection, error) {
	return do1(w.c, "SSO.Connections.Connection", func() (sso.Connection, error) { return w.ConnectionStore.Connection(ctx, tenant) })
}

func (w fConnections) DeleteConnection(ctx context.Context, tenant string) error {
	return do0(w.c, "SSO.Connections.DeleteConnection", func() error { return w.ConnectionStore.DeleteConnection(ctx, tenant) })
}

func (w fConnections) UpdateMetadata(ctx context.Context, tenant, url, metadata string, fetchedAt time.Time) (bool, error) {
	return do1(w.c, "SSO.Connections.UpdateMetadata", func() (bool, error) { return w.ConnectionStore.UpdateMetadata(ctx, tenant, url, metadata, fetchedAt) })
}

type fRequests struct {
	sso.RequestStore
	c *faultCounter
}

func (w fRequests) RememberRequest(ctx context.Context, r sso.Request) error {
	return do0(w.c, "SSO.Requests.RememberRequest", func() error { return w.RequestStore.RememberRequest(ctx, r) })
}

func (w fRequests) ConsumeRequest(ctx context.Context, tenant, id string, now time.Time) (sso.Request, error) {
	return do1(w.c, "SSO.Requests.ConsumeRequest", func() (sso.Request, error) { return w.RequestStore.ConsumeRequest(ctx, tenant, id, now) })
}

type fReplay struct {
	sso.ReplayCache
	c *faultCounter
}

func (w fReplay) InsertID(ctx context.Context, tenant, id string, until, now time.Time) (bool, error) {
	return do1(w.c, "SSO.Replay.InsertID", func() (bool, error) { return w.ReplayCache.InsertID(ctx, tenant, id, until, now) })
}

type fSubjects struct {
	sso.SubjectStore
	c *faultCounter
}

func (w fSubjects) PutSubject(ctx context.Context, s sso.Subject, now time.Time) error {
	return do0(w.c, "SSO.Subjects.PutSubject", func() error { return w.SubjectStore.PutSubject(ctx, s, now) })
}

func (w fSubjects) Subject(ctx context.Context, tenant, userID string, now time.Time) (sso.Subject, error) {
	return do1(w.c, "SSO.Subjects.Subject", func() (sso.Subject, error) { return w.SubjectStore.Subject(ctx, tenant, userID, now) })
}

func (w fSubjects) SubjectsByNameID(ctx context.Context, tenant, idp, nameID string, now time.Time) ([]sso.Subject, error) {
	return do1(w.c, "SSO.Subjects.SubjectsByNameID", func() ([]sso.Subject, error) {
		return w.SubjectStore.SubjectsByNameID(ctx, tenant, idp, nameID, now)
	})
}
