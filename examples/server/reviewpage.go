package main

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// reviewPage is the number of user rows an access review page shows.
const reviewPage = 50

type reviewView struct {
	guard.Review
	Rows      []guard.UserAccess
	Next      string
	Filter    guard.ReviewFilter
	After     string
	Roles     []rbac.RoleInfo
	Self      string
	Filters   []reviewTab
	CanDecide bool
	// Reviewer names who recorded the last review: the email the event
	// carries, else the user's current one, else a short ID.
	Reviewer string
	// Keys is the number of usable API keys (shown with KeysShown), so
	// that "every key is in use" is not said of none.
	Keys int
}

// Outranks reports whether the viewer may give every one of roles: only
// then may they deactivate the user or change their roles (guard's rule
// for acting on a more privileged user, which ApplyReview applies to the
// whole review).
func (v reviewView) Outranks(roles []string) bool {
	for _, role := range roles {
		if !slices.ContainsFunc(v.Roles, func(ri rbac.RoleInfo) bool { return ri.Name == role }) {
			return false
		}
	}
	return true
}

type reviewTab struct {
	Filter guard.ReviewFilter
	Label  string
	Count  int
}

// reviewCacheTTL is how long a reviewer pages through one report before
// it is computed again: reading every user of a large tenant takes tens of
// milliseconds, a page of the report a fraction of one.
const reviewCacheTTL = time.Minute

// reviewCache keeps each reviewer's latest report. Reports are kept per
// user, since what a report shows depends on the reviewer's permissions,
// and dropped when the console changes the tenant's users.
type reviewCache struct {
	mu sync.Mutex
	m  map[string]guard.Review // tenant "/" user ID → report
}

const maxCachedReviews = 64

func (c *reviewCache) get(tenant, user string, now time.Time) (guard.Review, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rv, ok := c.m[tenant+"/"+user]
	if !ok || now.Sub(rv.At) > reviewCacheTTL || now.Before(rv.At) {
		return guard.Review{}, false
	}
	return rv, true
}

func (c *reviewCache) put(user string, rv guard.Review) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedReviews {
		c.m = map[string]guard.Review{}
	}
	c.m[rv.Tenant+"/"+user] = rv
}

// forget drops the reports of a tenant after a change to its users.
func (c *reviewCache) forget(tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if strings.HasPrefix(k, tenant+"/") {
			delete(c.m, k)
		}
	}
}

// review shows the access review: every user with roles, last sign-in,
// MFA and SSO status, dormant accounts, addresses users set without
// confirming them, excess admins and unused API keys,
// with a decision to take for each, and when the review is due.
func (a *app) review(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	ctx := r.Context()
	q := r.URL.Query()
	filter := guard.ReviewFilter(q.Get("filter"))
	if !filter.Valid() {
		filter = guard.ReviewAll
	}
	rv, ok := a.reviews.get(p.Tenant, p.UserID, a.now())
	if !ok || q.Has("refresh") {
		var err error
		if rv, err = a.g.AccessReview(ctx, p, p.Tenant); err != nil {
			a.failOr(w, r, err, "/")
			return
		}
		a.reviews.put(p.UserID, rv)
	}
	v := reviewView{Review: rv, Filter: filter, After: q.Get("after"), Self: p.UserID}
	v.Rows, v.Next = rv.Rows(filter, v.After, reviewPage)
	var err error
	if v.Roles, err = a.grantableRoles(r); err != nil {
		a.fail(w, r, err, "/")
		return
	}
	if !rv.LastReview.IsZero() {
		v.Reviewer = rv.LastReviewer.Email
		if v.Reviewer == "" && isUserID(rv.LastReviewer.ID) {
			if u, err := a.g.User(ctx, p, p.Tenant, rv.LastReviewer.ID); err == nil {
				v.Reviewer = u.Email
			}
		}
		if v.Reviewer == "" {
			v.Reviewer = string(rv.LastReviewer.Kind) + " " + short(rv.LastReviewer.ID)
		}
	}
	if rv.KeysShown {
		ks, err := a.g.ListAPIKeys(ctx, p, p.Tenant)
		if err != nil {
			a.fail(w, r, err, "/")
			return
		}
		now := a.now()
		for _, k := range ks {
			if k.UsableAt(now) {
				v.Keys++
			}
		}
	}
	for _, f := range []struct {
		f     guard.ReviewFilter
		label string
	}{{guard.ReviewAll, "Everyone"}, {guard.ReviewDormant, "Dormant"}, {guard.ReviewAdmins, "Admins"},
		{guard.ReviewNoMFA, "No MFA or SSO"}, {guard.ReviewUnverified, "Unverified address"}, {guard.ReviewDeactivated, "Deactivated"}} {
		v.Filters = append(v.Filters, reviewTab{f.f, f.label, rv.Count(f.f)})
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
	a.forget(p.Tenant)
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
	a.forget(p.Tenant)
	if err != nil {
		a.failOr(w, r, err, "/review")
		return
	}
	a.ok(w, r, "/review", "Deactivated %d dormant account(s). Owners are never deactivated automatically.", len(ids))
}
