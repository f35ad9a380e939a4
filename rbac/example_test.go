package rbac_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

func Example() {
	ctx := context.Background()
	e, err := rbac.New(rbac.Config{Store: memstore.NewPolicies()})
	if err != nil {
		panic(err)
	}
	system := e.AllPerms() // the host application bootstraps the owner
	ada, bob, cleo := rbac.User("ada"), rbac.User("bob"), rbac.User("cleo")
	_ = e.Grant(ctx, system, "acme", ada, rbac.Owner)
	_ = e.Grant(ctx, system, "acme", bob, rbac.Admin)

	// bob (admin) gives cleo read-only access to reports.
	byBob, _ := e.Permissions(ctx, "acme", bob)
	fmt.Println(e.Grant(ctx, byBob, "acme", cleo, rbac.ReportsOnly))
	// bob cannot hand out billing, which he does not hold himself.
	fmt.Println(e.Grant(ctx, byBob, "acme", cleo, rbac.Owner))

	for _, p := range []rbac.Permission{rbac.P(rbac.Reports, rbac.Read), rbac.P(rbac.Contacts, rbac.Read)} {
		d, _ := e.Decide(ctx, "acme", cleo, p.Section, p.Action)
		fmt.Println(p, d.Allowed)
	}
	// A grant in acme means nothing in globex.
	d, _ := e.Decide(ctx, "globex", ada, rbac.Billing, rbac.Read)
	fmt.Println("globex", d.Allowed)
	// Output:
	// <nil>
	// rbac: role holds permissions the actor lacks
	// reports:read true
	// contacts:read false
	// globex false
}

func ExampleEnforcer_DefineRole() {
	ctx := context.Background()
	e, _ := rbac.New(rbac.Config{Store: memstore.NewPolicies()})
	_, err := e.DefineRole(ctx, e.AllPerms(), "acme", "crm-viewer", []rbac.Permission{
		rbac.P(rbac.Contacts, rbac.Read),
		rbac.P(rbac.Reports, rbac.Read),
	})
	fmt.Println(err)
	_ = e.Grant(ctx, e.AllPerms(), "acme", rbac.Key("reporting-bot"), "crm-viewer")
	roles, _ := e.RolesOf(ctx, "acme", rbac.Key("reporting-bot"))
	p, _ := e.Permissions(ctx, "acme", rbac.Key("reporting-bot"))
	fmt.Println(roles, p)
	// A redefinition returns the role it replaced and who held it.
	r, _ := e.DefineRole(ctx, e.AllPerms(), "acme", "crm-viewer", []rbac.Permission{rbac.P(rbac.Contacts, rbac.Read)})
	fmt.Println(r.Prev, r.Holders)
	_, err = e.DefineRole(ctx, e.AllPerms(), "acme", "x:y", []rbac.Permission{rbac.P(rbac.Reports, rbac.Read)})
	fmt.Println(err)
	// Output:
	// <nil>
	// [crm-viewer] contacts:read reports:read
	// [contacts:read reports:read] [key:reporting-bot]
	// rbac: invalid role: contains a separator
}

func ExampleApprovals() {
	ctx := context.Background()
	e, _ := rbac.New(rbac.Config{Store: memstore.NewPolicies()})
	all := e.AllPerms()
	dan, cleo := rbac.User("dan"), rbac.User("cleo")
	_ = e.Grant(ctx, all, "acme", dan, rbac.Member)
	_ = e.Grant(ctx, all, "acme", cleo, rbac.Manager)
	_ = e.SetApprovalRequired(ctx, all, "acme", rbac.P(rbac.Campaigns, rbac.Send), true)

	d, _ := e.Decide(ctx, "acme", dan, rbac.Campaigns, rbac.Send)
	fmt.Printf("allowed %v, needs approval %v\n", d.Allowed, d.NeedsApproval)

	ap, _ := rbac.NewApprovals(rbac.ApprovalConfig{Store: memstore.NewApprovals(), Enforcer: e})
	body := []byte(`{"campaign":"spring"}`)
	req, _ := ap.Request(ctx, "acme", dan, rbac.P(rbac.Campaigns, rbac.Send), "spring", sha256.Sum256(body), 0)

	_, err := ap.Approve(ctx, "acme", req.ID, dan)
	fmt.Println(errors.Is(err, rbac.ErrSelfApproval))
	a, _ := ap.Approve(ctx, "acme", req.ID, cleo)
	fmt.Println(a.Status)

	claim := rbac.Claim{Requester: dan, Permission: rbac.P(rbac.Campaigns, rbac.Send), Target: "spring", PayloadHash: sha256.Sum256([]byte(`{"campaign":"other"}`))}
	_, err = ap.Consume(ctx, "acme", req.ID, claim)
	fmt.Println(err)
	claim.PayloadHash = sha256.Sum256(body)
	a, _ = ap.Consume(ctx, "acme", req.ID, claim)
	fmt.Println(a.Status)
	_, err = ap.Consume(ctx, "acme", req.ID, claim)
	fmt.Println(err)
	// Output:
	// allowed true, needs approval true
	// true
	// approved
	// rbac: approval does not match the request
	// consumed
	// rbac: approval already consumed
}

func ExampleEnforcer_AdminWarning() {
	ctx := context.Background()
	e, _ := rbac.New(rbac.Config{Store: memstore.NewPolicies()}) // MaxAdmins defaults to 1
	_ = e.Grant(ctx, e.AllPerms(), "acme", rbac.User("ada"), rbac.Owner)
	_ = e.Grant(ctx, e.AllPerms(), "acme", rbac.User("bob"), rbac.Admin)
	_ = e.Grant(ctx, e.AllPerms(), "acme", rbac.User("cleo"), rbac.Admin)
	w, _ := e.AdminWarning(ctx, "acme")
	fmt.Println(w.Message)
	fmt.Println(w.Owners, w.Admins)
	// Output:
	// 3 owners and admins; the recommendation is at most 1
	// [user:ada] [user:bob user:cleo]
}
