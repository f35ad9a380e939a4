package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// Four-eyes approval, tried on the host application's demo campaigns: when
// the tenant puts campaigns:send under approval (Security settings), a
// send becomes a request that someone else holding campaigns:approve must
// approve on the Approvals page; the requester then sends, consuming the
// approval once.

type campaign struct {
	ID, Name, List string
}

var demoCampaigns = []campaign{
	{"spring-newsletter", "Spring newsletter", "All subscribers (48,210)"},
	{"product-launch", "Product launch", "Customers (12,904)"},
	{"win-back", "Win-back offer", "Lapsed customers (3,377)"},
}

func findCampaign(id string) (campaign, bool) {
	for _, c := range demoCampaigns {
		if c.ID == id {
			return c, true
		}
	}
	return campaign{}, false
}

// payload is what an approval of a send is bound to: the campaign and its
// list. Changing either needs a new approval.
func (c campaign) payload() []byte {
	return []byte(`{"campaign":"` + c.ID + `","list":"` + c.List + `"}`)
}

type campaignsView struct {
	Campaigns     []campaignRow
	NeedsApproval bool
	CanSend       bool
}

type campaignRow struct {
	campaign
	Pending  bool // a request of mine waits for approval
	Approved bool // a request of mine is approved: the next send goes out
}

func (a *app) campaigns(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	ctx := r.Context()
	v := campaignsView{}
	var err error
	if v.CanSend, v.NeedsApproval, err = a.sendRights(ctx, p); err != nil {
		a.fail(w, r, err, "/")
		return
	}
	mine := map[string]rbac.Status{}
	if v.NeedsApproval {
		as, err := a.g.Approvals(ctx, p, rbac.ApprovalQuery{Limit: 100})
		if err != nil {
			a.fail(w, r, err, "/")
			return
		}
		now := a.now()
		for _, ap := range as {
			if ap.Requester == rbac.User(p.UserID) && ap.Permission == rbac.P(rbac.Campaigns, rbac.Send) {
				if st := ap.StatusAt(now); (st == rbac.StatusPending || st == rbac.StatusApproved) && mine[ap.Target] != rbac.StatusApproved {
					mine[ap.Target] = st
				}
			}
		}
	}
	for _, c := range demoCampaigns {
		v.Campaigns = append(v.Campaigns, campaignRow{campaign: c, Pending: mine[c.ID] == rbac.StatusPending, Approved: mine[c.ID] == rbac.StatusApproved})
	}
	a.page(w, r, "campaigns.html", view{Title: "Campaigns", Nav: "campaigns", Data: v})
}

// sendRights reports whether p may send campaigns and whether a send
// needs a second person's approval, for deciding which controls a page
// shows. It records nothing: Can, not Authorize (which records a refusal),
// and the tenant's approval rules, which any of its users may read.
// Sending itself is enforced by the route (approvable) and sendCampaign.
// An error means neither could be told.
func (a *app) sendRights(ctx context.Context, p guard.Principal) (may, needsApproval bool, err error) {
	switch may, err := a.g.Can(ctx, p, rbac.Campaigns, rbac.Send); {
	case errors.Is(err, guard.ErrForbidden): // a password to change first
		return false, false, nil
	case err != nil:
		return false, false, err
	case !may:
		return false, false, nil
	}
	rules, err := a.g.ApprovalRules(ctx, p, p.Tenant)
	switch {
	case errors.Is(err, guard.ErrRolesNotConfigured):
		return true, false, nil // no roles, no approval rules
	case err != nil:
		return false, false, err
	}
	return true, slices.Contains(rules, rbac.P(rbac.Campaigns, rbac.Send)), nil
}

// sendCampaign sends a demo campaign (nothing leaves: it is a demo). Under
// four-eyes approval it asks for approval first, and sends by consuming
// the approved request.
func (a *app) sendCampaign(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	ctx := r.Context()
	c, ok := findCampaign(r.PostForm.Get("campaign"))
	if !ok {
		a.errorPage(w, r, http.StatusNotFound, "Not found", "No such campaign.")
		return
	}
	if !guard.NeedsApproval(ctx) {
		a.ok(w, r, "/campaigns", "%s was sent (demo: nothing left the building).", c.Name)
		return
	}
	as, err := a.g.Approvals(ctx, p, rbac.ApprovalQuery{Limit: 100})
	if err != nil {
		a.fail(w, r, err, "/campaigns")
		return
	}
	now, hash := a.now(), sha256.Sum256(c.payload())
	pending := false
	for _, ap := range as {
		if ap.Requester != rbac.User(p.UserID) || ap.Target != c.ID || ap.Permission != rbac.P(rbac.Campaigns, rbac.Send) {
			continue
		}
		if ap.StatusAt(now) == rbac.StatusPending && ap.PayloadHash == hash {
			pending = true
		}
		if ap.StatusAt(now) != rbac.StatusApproved {
			continue
		}
		if _, err := a.g.ConsumeApproval(ctx, p, ap.ID, "campaigns:send", c.ID, c.payload()); err != nil {
			if errors.Is(err, rbac.ErrMismatch) {
				continue
			}
			a.failOr(w, r, err, "/campaigns")
			return
		}
		a.ok(w, r, "/campaigns", "%s was sent with the approval of a second person (demo: nothing left the building).", c.Name)
		return
	}
	if pending {
		// A second click of Send files no second request.
		a.ok(w, r, "/campaigns", "Sending %s already waits for a second person's approval: no new request was filed (see the Approvals page).", c.Name)
		return
	}
	if _, err := a.g.RequestApproval(ctx, p, "campaigns:send", c.ID, c.payload(), 24*time.Hour); err != nil {
		if errors.Is(err, guard.ErrTooManyAttempts) {
			a.errorPage(w, r, http.StatusTooManyRequests, "Too many approval requests",
				fmt.Sprintf("You have asked for %d approvals this hour, the most allowed: wait until the next hour, then send again. Nothing was sent.",
					guard.MaxApprovalRequestsPerHour))
			return
		}
		a.failOr(w, r, err, "/campaigns")
		return
	}
	a.ok(w, r, "/campaigns", "Sending %s needs a second person's approval: the request is on the Approvals page.", c.Name)
}

type approvalsView struct {
	Pending []approvalRow
	Recent  []approvalRow
}

type approvalRow struct {
	rbac.Approval
	Requester string // email, or the subject
	Decider   string
	Mine      bool
	Status    rbac.Status
}

func (a *app) approvals(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	ctx := r.Context()
	as, err := a.g.Approvals(ctx, p, rbac.ApprovalQuery{Limit: 100})
	if errors.Is(err, guard.ErrRolesNotConfigured) {
		a.errorPage(w, r, http.StatusNotImplemented, "Approvals", "This backend keeps no roles.")
		return
	}
	if err != nil {
		a.fail(w, r, err, "/")
		return
	}
	// Users are named by email to a viewer who may read users, and by
	// subject to one who may not (a member): Can is asked first, once,
	// so that viewing the page never records a refusal in the viewer's
	// name (as auditRows does).
	names := map[string]string{}
	asked, canRead := false, false
	name := func(s rbac.Subject) string {
		if s.Kind != rbac.KindUser {
			return s.String()
		}
		if n, ok := names[s.ID]; ok {
			return n
		}
		if s.ID != p.UserID && !asked {
			asked = true
			canRead, _ = a.g.Can(ctx, p, rbac.Users, rbac.Read) // an error: no
		}
		n := s.String()
		if s.ID == p.UserID || canRead {
			u, err := a.g.User(ctx, p, p.Tenant, s.ID)
			switch {
			case err == nil:
				n = u.Email
			case errors.Is(err, guard.ErrForbidden):
				asked, canRead = true, false // refused all the same: ask no more
			}
		}
		names[s.ID] = n
		return n
	}
	now := a.now()
	var v approvalsView
	for _, ap := range as {
		row := approvalRow{Approval: ap, Requester: name(ap.Requester), Mine: ap.Requester == rbac.User(p.UserID), Status: ap.StatusAt(now)}
		if ap.Decider.ID != "" {
			row.Decider = name(ap.Decider)
		}
		if row.Status == rbac.StatusPending {
			v.Pending = append(v.Pending, row)
		} else if len(v.Recent) < 20 {
			v.Recent = append(v.Recent, row)
		}
	}
	a.page(w, r, "approvals.html", view{Title: "Approvals", Nav: "approvals", Data: v})
}

func (a *app) decideApproval(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	id := r.PathValue("id")
	var err error
	msg := "Approved: the requester can now go ahead, once."
	switch r.PathValue("op") {
	case "approve":
		_, err = a.g.ApproveRequest(r.Context(), p, id)
	case "reject":
		_, err = a.g.RejectRequest(r.Context(), p, id)
		msg = "Rejected."
	default:
		a.errorPage(w, r, http.StatusNotFound, "Not found", "No such action.")
		return
	}
	if err != nil {
		a.failOr(w, r, err, "/approvals")
		return
	}
	a.ok(w, r, "/approvals", "%s", msg)
}
