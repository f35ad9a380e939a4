package rbac_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type approvalRig struct {
	e     *rbac.Enforcer
	ap    *rbac.Approvals
	clock *clock
	store *memstore.Approvals
}

var (
	send        = rbac.P(rbac.Campaigns, rbac.Send)
	campaignDoc = []byte(`{"campaign":"spring","list":"all"}`)
	campaignSum = sha256.Sum256(campaignDoc)
)

// newApprovalRig: in acme, dan (member) sends campaigns, which need
// approval; cleo (manager) and bob (admin) may approve; eve (member)
// may not; key1 (an API key with a role holding campaigns:approve) is
// not a person.
func newApprovalRig(t *testing.T) *approvalRig {
	t.Helper()
	e := tenantWith(t)
	grant(t, e, "acme", rbac.User("eve"), rbac.Member)
	define(t, e, "acme", "approver", rbac.P(rbac.Campaigns, rbac.Approve))
	grant(t, e, "acme", key1, "approver")
	if err := e.SetApprovalRequired(ctx, e.AllPerms(), "acme", send, true); err != nil {
		t.Fatal(err)
	}
	c := &clock{now: t0}
	st := memstore.NewApprovals()
	ap, err := rbac.NewApprovals(rbac.ApprovalConfig{Store: st, Enforcer: e, Now: c.Now, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return &approvalRig{e: e, ap: ap, clock: c, store: st}
}

func (r *approvalRig) request(t *testing.T) rbac.Approval {
	t.Helper()
	a, err := r.ap.Request(ctx, "acme", dan, send, "campaign-spring", campaignSum, 0)
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	return a
}

func claim(target string, sum [32]byte) rbac.Claim {
	return rbac.Claim{Requester: dan, Permission: send, Target: target, PayloadHash: sum}
}

func TestApprovalFlow(t *testing.T) {
	r := newApprovalRig(t)
	a := r.request(t)
	if a.Status != rbac.StatusPending || !a.ExpiresAt.Equal(t0.Add(time.Hour)) || a.Requester != dan || len(a.ID) != 32 {
		t.Fatalf("Request = %+v", a)
	}
	r.clock.Add(time.Minute)
	got, err := r.ap.Approve(ctx, "acme", a.ID, cleo)
	if err != nil || got.Status != rbac.StatusApproved || got.Decider != cleo || !got.DecidedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("Approve = %+v, %v", got, err)
	}
	got, err = r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum))
	if err != nil || got.Status != rbac.StatusConsumed {
		t.Fatalf("Consume = %+v, %v", got, err)
	}
	if _, err := r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum)); !errors.Is(err, rbac.ErrConsumed) {
		t.Errorf("second Consume = %v, want ErrConsumed", err)
	}
	list, err := r.ap.List(ctx, "acme", rbac.ApprovalQuery{})
	if err != nil || len(list) != 1 || list[0].Status != rbac.StatusConsumed {
		t.Errorf("List = %+v, %v", list, err)
	}
}

func TestApprovalCannotBeSelfApproved(t *testing.T) {
	r := newApprovalRig(t)
	// dan may approve campaigns himself after a grant: still not his own request.
	grant(t, r.e, "acme", dan, rbac.Manager)
	a := r.request(t)
	for _, f := range []func(context2 string, id string, by rbac.Subject) (rbac.Approval, error){
		func(tn, id string, by rbac.Subject) (rbac.Approval, error) { return r.ap.Approve(ctx, tn, id, by) },
		func(tn, id string, by rbac.Subject) (rbac.Approval, error) { return r.ap.Reject(ctx, tn, id, by) },
	} {
		if _, err := f("acme", a.ID, dan); !errors.Is(err, rbac.ErrSelfApproval) {
			t.Errorf("self decision = %v, want ErrSelfApproval", err)
		}
	}
	// The store refuses it too, whoever calls it.
	if _, err := r.store.DecideApproval(ctx, "acme", a.ID, dan, rbac.StatusApproved, t0); !errors.Is(err, rbac.ErrSelfApproval) {
		t.Errorf("store-level self approval = %v", err)
	}
	if _, err := r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum)); !errors.Is(err, rbac.ErrNotApproved) {
		t.Errorf("Consume of a pending request = %v, want ErrNotApproved", err)
	}
}

func TestApproverNeedsApprovePermission(t *testing.T) {
	r := newApprovalRig(t)
	a := r.request(t)
	for _, who := range []rbac.Subject{rbac.User("eve"), rbac.User("stranger"), key1} {
		if _, err := r.ap.Approve(ctx, "acme", a.ID, who); !errors.Is(err, rbac.ErrDenied) {
			t.Errorf("Approve by %s = %v, want ErrDenied", who, err)
		}
	}
	// Approve in another tenant: the approval is not there.
	grant(t, r.e, "globex", rbac.User("eve"), rbac.Owner)
	if _, err := r.ap.Approve(ctx, "globex", a.ID, rbac.User("eve")); !errors.Is(err, rbac.ErrNotFound) {
		t.Errorf("Approve from another tenant = %v, want ErrNotFound", err)
	}
	// The approve permission is per section: contacts:approve does not approve a campaign.
	define(t, r.e, "acme", "contacts-approver", rbac.P(rbac.Contacts, rbac.Approve))
	grant(t, r.e, "acme", rbac.User("eve"), "contacts-approver")
	if _, err := r.ap.Approve(ctx, "acme", a.ID, rbac.User("eve")); !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("Approve with another section's approve = %v, want ErrDenied", err)
	}
	if _, err := r.ap.Reject(ctx, "acme", a.ID, bob); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ap.Approve(ctx, "acme", a.ID, cleo); !errors.Is(err, rbac.ErrNotPending) {
		t.Errorf("Approve after a rejection = %v, want ErrNotPending", err)
	}
	if _, err := r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum)); !errors.Is(err, rbac.ErrNotApproved) {
		t.Errorf("Consume of a rejected request = %v, want ErrNotApproved", err)
	}
}

func TestApprovalBoundToPayload(t *testing.T) {
	r := newApprovalRig(t)
	a := r.request(t)
	if _, err := r.ap.Approve(ctx, "acme", a.ID, cleo); err != nil {
		t.Fatal(err)
	}
	edited := sha256.Sum256(bytes.Replace(campaignDoc, []byte("all"), []byte("everyone"), 1))
	for name, c := range map[string]rbac.Claim{
		"OtherPayload": claim("campaign-spring", edited),
		"OtherTarget":  claim("campaign-autumn", campaignSum),
		"OtherAction":  {Requester: dan, Permission: rbac.P(rbac.Campaigns, rbac.Write), Target: "campaign-spring", PayloadHash: campaignSum},
		"OtherUser":    {Requester: rbac.User("eve"), Permission: send, Target: "campaign-spring", PayloadHash: campaignSum},
	} {
		if _, err := r.ap.Consume(ctx, "acme", a.ID, c); !errors.Is(err, rbac.ErrMismatch) {
			t.Errorf("%s: Consume = %v, want ErrMismatch", name, err)
		}
	}
	if _, err := r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum)); err != nil {
		t.Errorf("Consume with the approved payload after refused attempts: %v", err)
	}
}

func TestApprovalExpires(t *testing.T) {
	r := newApprovalRig(t)
	a := r.request(t)
	r.clock.Add(time.Hour)
	if _, err := r.ap.Approve(ctx, "acme", a.ID, cleo); !errors.Is(err, rbac.ErrExpired) {
		t.Errorf("Approve at expiry = %v, want ErrExpired", err)
	}
	b := r.request(t)
	if _, err := r.ap.Approve(ctx, "acme", b.ID, cleo); err != nil {
		t.Fatal(err)
	}
	r.clock.Add(time.Hour)
	if _, err := r.ap.Consume(ctx, "acme", b.ID, claim("campaign-spring", campaignSum)); !errors.Is(err, rbac.ErrExpired) {
		t.Errorf("Consume after expiry = %v, want ErrExpired", err)
	}
	if got, _ := r.ap.Get(ctx, "acme", b.ID); got.StatusAt(r.clock.Now()) != rbac.StatusExpired {
		t.Errorf("StatusAt after expiry = %s", got.StatusAt(r.clock.Now()))
	}
}

func TestApprovalRequesterMustHoldThePermission(t *testing.T) {
	r := newApprovalRig(t)
	if _, err := r.ap.Request(ctx, "acme", rbac.User("stranger"), send, "c", campaignSum, 0); !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("Request without the permission = %v, want ErrDenied", err)
	}
	a := r.request(t)
	if _, err := r.ap.Approve(ctx, "acme", a.ID, cleo); err != nil {
		t.Fatal(err)
	}
	revoke(t, r.e, "acme", dan, rbac.Member)
	if _, err := r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum)); !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("Consume after the requester lost the permission = %v, want ErrDenied", err)
	}
}

func TestApprovalBadInput(t *testing.T) {
	r := newApprovalRig(t)
	a := r.request(t)
	for name, err := range map[string]error{
		"Tenant": func() error { _, err := r.ap.Request(ctx, "Acme", dan, send, "c", campaignSum, 0); return err }(),
		"Requester": func() error {
			_, err := r.ap.Request(ctx, "acme", rbac.User("a b"), send, "c", campaignSum, 0)
			return err
		}(),
		"Permission": func() error {
			_, err := r.ap.Request(ctx, "acme", dan, rbac.P("x", rbac.Send), "c", campaignSum, 0)
			return err
		}(),
		"EmptyTarget":   func() error { _, err := r.ap.Request(ctx, "acme", dan, send, "", campaignSum, 0); return err }(),
		"ControlTarget": func() error { _, err := r.ap.Request(ctx, "acme", dan, send, "c\n1", campaignSum, 0); return err }(),
		"LongTarget": func() error {
			_, err := r.ap.Request(ctx, "acme", dan, send, string(make([]byte, 300)), campaignSum, 0)
			return err
		}(),
		"TTL": func() error {
			_, err := r.ap.Request(ctx, "acme", dan, send, "c", campaignSum, 30*24*time.Hour)
			return err
		}(),
		"NegativeTTL": func() error {
			_, err := r.ap.Request(ctx, "acme", dan, send, "c", campaignSum, -time.Second)
			return err
		}(),
		"ApproveID": func() error { _, err := r.ap.Approve(ctx, "acme", "../"+a.ID, cleo); return err }(),
		"ConsumeID": func() error {
			_, err := r.ap.Consume(ctx, "acme", a.ID[:31], claim("campaign-spring", campaignSum))
			return err
		}(),
		"ListStatus": func() error {
			_, err := r.ap.List(ctx, "acme", rbac.ApprovalQuery{Status: rbac.StatusExpired})
			return err
		}(),
		"ListCursor": func() error { _, err := r.ap.List(ctx, "acme", rbac.ApprovalQuery{Before: "x"}); return err }(),
	} {
		var ie *rbac.InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: %v, want an *InputError", name, err)
		}
	}
	if list, _ := r.ap.List(ctx, "acme", rbac.ApprovalQuery{}); len(list) != 1 {
		t.Errorf("bad input created approvals: %d listed", len(list))
	}
	for name, cfg := range map[string]rbac.ApprovalConfig{
		"NoStore":    {Enforcer: r.e},
		"NoEnforcer": {Store: r.store},
		"TTL>Max":    {Store: r.store, Enforcer: r.e, TTL: 2 * time.Hour, MaxTTL: time.Hour},
		"NegTTL":     {Store: r.store, Enforcer: r.e, TTL: -1},
	} {
		var ce *rbac.ConfigError
		if _, err := rbac.NewApprovals(cfg); !errors.As(err, &ce) {
			t.Errorf("%s: NewApprovals = %v", name, err)
		}
	}
}

func TestApprovalIDsSortByCreation(t *testing.T) {
	r := newApprovalRig(t)
	var ids []string
	for range 5 {
		ids = append(ids, r.request(t).ID)
		r.clock.Add(time.Millisecond)
	}
	list, _ := r.ap.List(ctx, "acme", rbac.ApprovalQuery{})
	for i, a := range list {
		if a.ID != ids[len(ids)-1-i] {
			t.Fatalf("List is not newest first: %d is %s", i, a.ID)
		}
	}
}

func TestApprovalConsumedOnceUnderConcurrency(t *testing.T) {
	r := newApprovalRig(t)
	a := r.request(t)
	if _, err := r.ap.Approve(ctx, "acme", a.ID, cleo); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 50 {
		wg.Go(func() {
			<-start
			c := claim("campaign-spring", campaignSum)
			if i%5 == 4 {
				c.PayloadHash = sha256.Sum256([]byte(fmt.Sprint("forged ", i)))
			}
			_, err := r.ap.Consume(ctx, "acme", a.ID, c)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, rbac.ErrConsumed), errors.Is(err, rbac.ErrMismatch):
			default:
				t.Errorf("Consume %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d of 50 concurrent Consumes succeeded, want exactly 1", wins.Load())
	}
}

func TestApprovalDecidedOnceUnderConcurrency(t *testing.T) {
	r := newApprovalRig(t)
	a := r.request(t)
	var wins atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 50 {
		wg.Go(func() {
			<-start
			var err error
			if i%2 == 0 {
				_, err = r.ap.Approve(ctx, "acme", a.ID, []rbac.Subject{cleo, bob, ada}[i%3])
			} else {
				_, err = r.ap.Reject(ctx, "acme", a.ID, []rbac.Subject{cleo, bob, ada}[i%3])
			}
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, rbac.ErrNotPending):
			default:
				t.Errorf("decision %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d of 50 concurrent decisions succeeded, want exactly 1", wins.Load())
	}
}
