package main

import (
	"errors"
	"net/http"
	"strings"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// reviewPage is the number of user rows an access review page shows.
const reviewPage = 50

type reviewView struct {
	guard.Review
	Filter    guard.ReviewFilter
	After     string
	Roles     []rbac.RoleInfo
	Self      string
	Filters   []reviewTab
	CanDecide bool
}

type reviewTab struct {
	Filter guard.ReviewFilter
	Label  string
	Count  int
}

// review shows the access review: every user with roles, last sign-in,
// MFA and SSO status, dormant accounts, excess admins and unused API keys,
// with a decision to take for each, and when the review is due.
func (a *app) review(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	ctx := r.Context()
	q := guard.ReviewQuery{Filter: guard.ReviewFilter(r.URL.Query().Get("filter")), After: r.URL.Query().Get("after"), Limit: reviewPage}
	if !q.Filter.Valid() {
		q.Filter = guard.ReviewAll
	}
	rv, err := a.g.AccessReview(ctx, p, p.Tenant, q)
	if err != nil {
		a.failOr(w, r, err, "/")
		return
	}
	v := reviewView{Review: rv, Filter: q.Filter, After: q.After, Self: p.UserID}
	if v.Roles, err = a.g.Roles(ctx, p, p.Tenant); err != nil && !errors.Is(err, guard.ErrRolesNotConfigured) {
		a.fail(w, r, err, "/")
		return
	}
	t := rv.Totals
	v.Filters = []reviewTab{{guard.ReviewAll, "Everyone", t.Users}, {guard.ReviewDormant, "Dormant", t.Dormant},
		{guard.ReviewAdmins, "Admins", t.Admins}, {guard.ReviewNoMFA, "No MFA or SSO", t.Active - t.WithMFA - t.WithSSO},
		{guard.ReviewDeactivated, "Deactivated", t.Deactivated}}
	if v.Filters[3].Count < 0 {
		v.Filters[3].Count = 0
	}
	a.page(w, r, "review.html", view{Title: "Access review", Nav: "review", Data: v})
}

// applyReview applies the decisions of the form (one select per user row,
// one checkbox per unused key) and records the review as done.
func (a *app) applyReview(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	var ds []guard.Decision
	for field, vals := range r.PostForm {
		if len(vals) == 0 || vals[0] == "" {
			continue
		}
		switch {
		case strings.HasPrefix(field, "user:"):
			d := guard.Decision{UserID: strings.TrimPrefix(field, "user:")}
			switch v := vals[0]; {
			case v == "deactivate":
				d.Deactivate = true
			case strings.HasPrefix(v, "role:"):
				d.DowngradeTo = strings.TrimPrefix(v, "role:")
			case v == "keep":
				continue
			default:
				a.errorPage(w, r, http.StatusBadRequest, "Bad request", "Unknown decision.")
				return
			}
			ds = append(ds, d)
		case strings.HasPrefix(field, "key:") && vals[0] == "revoke":
			ds = append(ds, guard.Decision{KeyID: strings.TrimPrefix(field, "key:")})
		}
	}
	back := "/review"
	if f := r.PostForm.Get("filter"); guard.ReviewFilter(f).Valid() && f != "" {
		back += "?filter=" + f
	}
	res, err := a.g.ApplyReview(r.Context(), p, p.Tenant, ds)
	if err != nil {
		if res.Deactivated+res.RolesChanged+res.KeysRevoked > 0 {
			a.logf("access review partly applied: %+v", res)
		}
		a.failOr(w, r, err, back)
		return
	}
	days := 0
	if pol, err := a.g.EffectivePolicy(r.Context(), p.Tenant); err == nil {
		days = int(pol.ReviewEvery.Hours() / 24)
	}
	a.ok(w, r, back, "Review recorded: %d deactivated, %d with fewer roles, %d keys revoked, %d sessions ended. The next review is due in %d days.",
		res.Deactivated, res.RolesChanged, res.KeysRevoked, res.SessionsEnded, days)
}

// deactivateDormant runs what a host's scheduled job would: deactivate the
// dormant accounts, when the policy allows it.
func (a *app) deactivateDormant(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	ids, err := a.g.DeactivateDormant(r.Context(), p, p.Tenant)
	if err != nil {
		a.failOr(w, r, err, "/review")
		return
	}
	a.ok(w, r, "/review", "Deactivated %d dormant account(s). Owners are never deactivated automatically.", len(ids))
}
