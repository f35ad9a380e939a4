package rbactest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/guardhq/guard/rbac"
)

// base is the suite's "now": fixed, with sub-second digits down to the
// microsecond, and in the future (see the package doc).
var base = time.Date(2099, 3, 1, 9, 0, 0, 123456000, time.UTC)

var (
	alice = rbac.User("alice")
	bob   = rbac.User("bob")
	carol = rbac.User("carol")
	send  = rbac.P(rbac.Campaigns, rbac.Send)
)

func payload(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// idN is the approval ID number n: 32 hex digits, ascending with n.
func idN(n int) string { return fmt.Sprintf("%016x%016x", 0x0006000000000000+n, n*7919) }

// mkApproval returns a pending approval of tenant, number n, requested by
// alice to send campaign c-<n>, valid for an hour from base.
func mkApproval(tenant string, n int) rbac.Approval {
	return rbac.Approval{
		ID:          idN(n),
		Tenant:      tenant,
		Requester:   alice,
		Permission:  send,
		Target:      fmt.Sprintf("c-%d", n),
		PayloadHash: payload(fmt.Sprint("payload ", n)),
		CreatedAt:   base,
		ExpiresAt:   base.Add(time.Hour),
		Status:      rbac.StatusPending,
	}
}

func claimOf(a rbac.Approval) rbac.Claim {
	return rbac.Claim{Requester: a.Requester, Permission: a.Permission, Target: a.Target, PayloadHash: a.PayloadHash}
}

// ac wraps an ApprovalStore with checking helpers.
type ac struct {
	t  *testing.T
	st rbac.ApprovalStore
}

func (c ac) create(a rbac.Approval) rbac.Approval {
	c.t.Helper()
	if err := c.st.CreateApproval(c.t.Context(), a); err != nil {
		c.t.Fatalf("CreateApproval(%s): %v", a.ID, err)
	}
	return a
}

func (c ac) wantStored(want rbac.Approval) {
	c.t.Helper()
	got, err := c.st.Approval(c.t.Context(), want.Tenant, want.ID)
	if err != nil {
		c.t.Fatalf("Approval(%s, %s): %v", want.Tenant, want.ID, err)
	}
	if d := diff(got, want); d != "" {
		c.t.Errorf("Approval(%s, %s): %s", want.Tenant, want.ID, d)
	}
}

func (c ac) decide(a rbac.Approval, by rbac.Subject, s rbac.Status, at time.Time) rbac.Approval {
	c.t.Helper()
	got, err := c.st.DecideApproval(c.t.Context(), a.Tenant, a.ID, by, s, at)
	if err != nil {
		c.t.Fatalf("DecideApproval(%s, %s): %v", a.ID, s, err)
	}
	want := a
	want.Status, want.Decider, want.DecidedAt = s, by, at
	if d := diff(got, want); d != "" {
		c.t.Errorf("DecideApproval returned: %s", d)
	}
	c.wantStored(want)
	return want
}

func (c ac) decideErr(a rbac.Approval, by rbac.Subject, s rbac.Status, at time.Time, wantErr error) {
	c.t.Helper()
	if _, err := c.st.DecideApproval(c.t.Context(), a.Tenant, a.ID, by, s, at); !errors.Is(err, wantErr) {
		c.t.Errorf("DecideApproval(%s by %s, %s) = %v, want %v", a.ID, by, s, err, wantErr)
	}
}

func (c ac) consume(a rbac.Approval, at time.Time) rbac.Approval {
	c.t.Helper()
	got, err := c.st.ConsumeApproval(c.t.Context(), a.Tenant, a.ID, claimOf(a), at)
	if err != nil {
		c.t.Fatalf("ConsumeApproval(%s): %v", a.ID, err)
	}
	want := a
	want.Status, want.ConsumedAt = rbac.StatusConsumed, at
	if d := diff(got, want); d != "" {
		c.t.Errorf("ConsumeApproval returned: %s", d)
	}
	c.wantStored(want)
	return want
}

func (c ac) consumeErr(a rbac.Approval, cl rbac.Claim, at time.Time, wantErr error) {
	c.t.Helper()
	if _, err := c.st.ConsumeApproval(c.t.Context(), a.Tenant, a.ID, cl, at); !errors.Is(err, wantErr) {
		c.t.Errorf("ConsumeApproval(%s) = %v, want %v", a.ID, err, wantErr)
	}
}

func (c ac) wantList(tenant string, q rbac.ApprovalQuery, want []rbac.Approval) {
	c.t.Helper()
	got, err := c.st.ListApprovals(c.t.Context(), tenant, q)
	if err != nil {
		c.t.Fatalf("ListApprovals(%s, %+v): %v", tenant, q, err)
	}
	if len(got) != len(want) {
		c.t.Fatalf("ListApprovals(%s, %+v) returned %d approvals, want %d", tenant, q, len(got), len(want))
	}
	for i := range got {
		if d := diff(got[i], want[i]); d != "" {
			c.t.Errorf("ListApprovals(%s, %+v)[%d]: %s", tenant, q, i, d)
		}
	}
}

// diff describes how got differs from want ("" if it does not).
func diff(got, want rbac.Approval) string {
	var d []string
	check := func(name string, ok bool, g, w any) {
		if !ok {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	check("ID", got.ID == want.ID, got.ID, want.ID)
	check("Tenant", got.Tenant == want.Tenant, got.Tenant, want.Tenant)
	check("Requester", got.Requester == want.Requester, got.Requester, want.Requester)
	check("Permission", got.Permission == want.Permission, got.Permission, want.Permission)
	check("Target", got.Target == want.Target, got.Target, want.Target)
	check("PayloadHash", got.PayloadHash == want.PayloadHash, got.PayloadHash, want.PayloadHash)
	check("Status", got.Status == want.Status, got.Status, want.Status)
	check("Decider", got.Decider == want.Decider, got.Decider, want.Decider)
	for _, tm := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
		{"DecidedAt", got.DecidedAt, want.DecidedAt},
		{"ConsumedAt", got.ConsumedAt, want.ConsumedAt},
	} {
		check(tm.name, tm.got.Equal(tm.want) && tm.got.IsZero() == tm.want.IsZero(), tm.got, tm.want)
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

var approvalGroups = []group[rbac.ApprovalStore]{
	{"CreateApproval", []test[rbac.ApprovalStore]{
		{"RoundTripEveryField", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			zone := time.FixedZone("UTC-03:30", -(3*3600 + 30*60))
			a := rbac.Approval{
				ID:          idN(1),
				Tenant:      "tenant_9-x",
				Requester:   rbac.Key("Key-ABC_123"),
				Permission:  rbac.P(rbac.Section("host-section_1"), rbac.Delete),
				Target:      "Frühjahrs-Kampagne \u2603 #42 / \"quoted\", comma",
				PayloadHash: payload("every field"),
				CreatedAt:   base.In(zone).Add(987 * time.Microsecond),
				ExpiresAt:   base.In(zone).Add(36*time.Hour + time.Microsecond),
				Status:      rbac.StatusPending,
			}
			c.create(a)
			c.wantStored(a)
			// The decided fields round-trip too.
			b := mkApproval("tenant_9-x", 2)
			b.Status, b.Decider, b.DecidedAt, b.ConsumedAt = rbac.StatusConsumed, bob, base.Add(time.Minute), base.Add(2*time.Minute)
			c.create(b)
			c.wantStored(b)
		}},
		{"Duplicate", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.create(mkApproval("acme", 1))
			dup := mkApproval("acme", 1)
			dup.Target = "other"
			if err := st.CreateApproval(t.Context(), dup); !errors.Is(err, rbac.ErrDuplicate) {
				t.Errorf("CreateApproval of a taken ID = %v, want ErrDuplicate", err)
			}
			c.wantStored(a)
			// The same ID in another tenant is another approval.
			other := mkApproval("globex", 1)
			other.Target = "globex's"
			c.create(other)
			c.wantStored(other)
			c.wantStored(a)
		}},
	}},
	{"Approval", []test[rbac.ApprovalStore]{
		{"NotFound", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			c.create(mkApproval("acme", 1))
			for _, k := range [][2]string{{"acme", idN(2)}, {"globex", idN(1)}, {"", idN(1)}} {
				if _, err := st.Approval(t.Context(), k[0], k[1]); !errors.Is(err, rbac.ErrNotFound) {
					t.Errorf("Approval(%q, %s) = %v, want ErrNotFound", k[0], k[1], err)
				}
			}
		}},
	}},
	{"DecideApproval", []test[rbac.ApprovalStore]{
		{"Approve", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.create(mkApproval("acme", 1))
			c.decide(a, bob, rbac.StatusApproved, base.Add(time.Minute+time.Microsecond))
		}},
		{"Reject", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.create(mkApproval("acme", 1))
			c.decide(a, rbac.Key("k1"), rbac.StatusRejected, base)
		}},
		{"NotFound", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			c.create(mkApproval("acme", 1))
			c.decideErr(mkApproval("acme", 2), bob, rbac.StatusApproved, base, rbac.ErrNotFound)
			c.decideErr(mkApproval("globex", 1), bob, rbac.StatusApproved, base, rbac.ErrNotFound)
		}},
		{"SelfApproval", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.create(mkApproval("acme", 1))
			c.decideErr(a, alice, rbac.StatusApproved, base, rbac.ErrSelfApproval)
			c.decideErr(a, alice, rbac.StatusRejected, base, rbac.ErrSelfApproval)
			c.wantStored(a)
			// Another kind of subject with the same ID is someone else.
			c.decide(a, rbac.Key("alice"), rbac.StatusApproved, base)
		}},
		{"NotPending", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.decide(c.create(mkApproval("acme", 1)), bob, rbac.StatusApproved, base)
			c.decideErr(a, carol, rbac.StatusRejected, base, rbac.ErrNotPending)
			c.decideErr(a, bob, rbac.StatusApproved, base, rbac.ErrNotPending)
			c.wantStored(a)
			r := c.decide(c.create(mkApproval("acme", 2)), bob, rbac.StatusRejected, base)
			c.decideErr(r, carol, rbac.StatusApproved, base, rbac.ErrNotPending)
			c.wantStored(r)
			k := c.consume(c.decide(c.create(mkApproval("acme", 3)), bob, rbac.StatusApproved, base), base)
			c.decideErr(k, carol, rbac.StatusApproved, base, rbac.ErrNotPending)
			c.wantStored(k)
		}},
		{"Expired", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.create(mkApproval("acme", 1))
			c.decideErr(a, bob, rbac.StatusApproved, a.ExpiresAt, rbac.ErrExpired)
			c.decideErr(a, bob, rbac.StatusRejected, a.ExpiresAt.Add(time.Hour), rbac.ErrExpired)
			c.wantStored(a)
			c.decide(a, bob, rbac.StatusApproved, a.ExpiresAt.Add(-time.Microsecond))
		}},
		{"ErrorOrder", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.decide(c.create(mkApproval("acme", 1)), bob, rbac.StatusApproved, base)
			late := a.ExpiresAt.Add(time.Minute)
			c.decideErr(a, alice, rbac.StatusApproved, late, rbac.ErrSelfApproval) // self before not pending, expired
			c.decideErr(a, carol, rbac.StatusApproved, late, rbac.ErrNotPending)   // not pending before expired
		}},
	}},
	{"ConsumeApproval", []test[rbac.ApprovalStore]{
		{"Consume", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.decide(c.create(mkApproval("acme", 1)), bob, rbac.StatusApproved, base)
			c.consume(a, a.ExpiresAt.Add(-time.Microsecond))
		}},
		{"Mismatch", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.decide(c.create(mkApproval("acme", 1)), bob, rbac.StatusApproved, base)
			for name, f := range map[string]func(*rbac.Claim){
				"requester":    func(cl *rbac.Claim) { cl.Requester = carol },
				"requesterKey": func(cl *rbac.Claim) { cl.Requester = rbac.Key("alice") },
				"section":      func(cl *rbac.Claim) { cl.Permission.Section = rbac.Contacts },
				"action":       func(cl *rbac.Claim) { cl.Permission.Action = rbac.Delete },
				"target":       func(cl *rbac.Claim) { cl.Target = a.Target + "x" },
				"payload":      func(cl *rbac.Claim) { cl.PayloadHash = payload("another payload") },
				"payloadBit":   func(cl *rbac.Claim) { cl.PayloadHash[31] ^= 1 },
			} {
				cl := claimOf(a)
				f(&cl)
				t.Run(name, func(t *testing.T) { ac{t, st}.consumeErr(a, cl, base, rbac.ErrMismatch) })
			}
			c.wantStored(a)
			c.consume(a, base)
		}},
		{"Twice", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.consume(c.decide(c.create(mkApproval("acme", 1)), bob, rbac.StatusApproved, base), base)
			c.consumeErr(a, claimOf(a), base.Add(time.Second), rbac.ErrConsumed)
			c.wantStored(a)
		}},
		{"NotApproved", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			p := c.create(mkApproval("acme", 1))
			c.consumeErr(p, claimOf(p), base, rbac.ErrNotApproved)
			c.wantStored(p)
			r := c.decide(c.create(mkApproval("acme", 2)), bob, rbac.StatusRejected, base)
			c.consumeErr(r, claimOf(r), base, rbac.ErrNotApproved)
			c.wantStored(r)
		}},
		{"Expired", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.decide(c.create(mkApproval("acme", 1)), bob, rbac.StatusApproved, base)
			c.consumeErr(a, claimOf(a), a.ExpiresAt, rbac.ErrExpired)
			c.consumeErr(a, claimOf(a), a.ExpiresAt.Add(24*time.Hour), rbac.ErrExpired)
			c.wantStored(a)
		}},
		{"NotFound", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.decide(c.create(mkApproval("acme", 1)), bob, rbac.StatusApproved, base)
			other := a
			other.Tenant = "globex"
			c.consumeErr(other, claimOf(a), base, rbac.ErrNotFound)
			c.consumeErr(mkApproval("acme", 2), claimOf(a), base, rbac.ErrNotFound)
			c.wantStored(a)
		}},
		{"ErrorOrder", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			a := c.consume(c.decide(c.create(mkApproval("acme", 1)), bob, rbac.StatusApproved, base), base)
			late := a.ExpiresAt.Add(time.Minute)
			bad := claimOf(a)
			bad.Target = "other"
			c.consumeErr(a, bad, late, rbac.ErrMismatch)        // mismatch before consumed and expired
			c.consumeErr(a, claimOf(a), late, rbac.ErrConsumed) // consumed before expired
			p := c.create(mkApproval("acme", 2))
			c.consumeErr(p, claimOf(p), p.ExpiresAt, rbac.ErrNotApproved) // not approved before expired
		}},
	}},
	{"ListApprovals", []test[rbac.ApprovalStore]{
		{"DescendingByID", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			var all []rbac.Approval
			for _, n := range []int{3, 1, 4, 2, 5} {
				all = append(all, c.create(mkApproval("acme", n)))
			}
			c.create(mkApproval("globex", 9))
			slices.SortFunc(all, func(a, b rbac.Approval) int { return -cmpString(a.ID, b.ID) })
			c.wantList("acme", rbac.ApprovalQuery{}, all)
			c.wantList("nobody", rbac.ApprovalQuery{}, nil)
		}},
		{"Status", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			p := c.create(mkApproval("acme", 1))
			ap := c.decide(c.create(mkApproval("acme", 2)), bob, rbac.StatusApproved, base)
			rj := c.decide(c.create(mkApproval("acme", 3)), bob, rbac.StatusRejected, base)
			cs := c.consume(c.decide(c.create(mkApproval("acme", 4)), bob, rbac.StatusApproved, base), base)
			p2 := c.create(mkApproval("acme", 5))
			c.wantList("acme", rbac.ApprovalQuery{Status: rbac.StatusPending}, []rbac.Approval{p2, p})
			c.wantList("acme", rbac.ApprovalQuery{Status: rbac.StatusApproved}, []rbac.Approval{ap})
			c.wantList("acme", rbac.ApprovalQuery{Status: rbac.StatusRejected}, []rbac.Approval{rj})
			c.wantList("acme", rbac.ApprovalQuery{Status: rbac.StatusConsumed}, []rbac.Approval{cs})
			c.wantList("acme", rbac.ApprovalQuery{}, []rbac.Approval{p2, cs, rj, ap, p})
		}},
		{"Before", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			var all []rbac.Approval
			for n := 10; n > 0; n-- {
				all = append(all, c.create(mkApproval("acme", n)))
			}
			c.wantList("acme", rbac.ApprovalQuery{Before: idN(6)}, all[5:])
			c.wantList("acme", rbac.ApprovalQuery{Before: idN(6), Limit: 2}, all[5:7])
			c.wantList("acme", rbac.ApprovalQuery{Before: idN(1)}, nil)
			// A cursor need not be an existing ID.
			c.wantList("acme", rbac.ApprovalQuery{Before: idN(6)[:31] + "0"}, all[5:])
			c.wantList("acme", rbac.ApprovalQuery{Before: "f"}, all)
		}},
		{"Limit", func(t *testing.T, st rbac.ApprovalStore) {
			c := ac{t, st}
			var all []rbac.Approval
			for n := 1003; n > 0; n-- {
				all = append(all, c.create(mkApproval("acme", n)))
			}
			c.wantList("acme", rbac.ApprovalQuery{Limit: 1}, all[:1])
			c.wantList("acme", rbac.ApprovalQuery{}, all[:100])
			c.wantList("acme", rbac.ApprovalQuery{Limit: 5000}, all[:1000])
			c.wantList("acme", rbac.ApprovalQuery{Limit: 1000, Before: all[999].ID}, all[1000:])
		}},
	}},
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
