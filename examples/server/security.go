package main

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/sso"
)

// Security settings: the tenant's policy, with the counts of users on MFA,
// on SSO and on neither (and who would have to enrol) shown before MFA is
// required.

type securityView struct {
	Tenant      guard.Tenant
	Pol         guard.Policy // effective
	Adoption    guard.Adoption
	MFA         bool // MFA is configured on this server
	FourEyes    bool // campaigns:send needs approval
	CanFourEyes bool // the viewer may see and change that
	AdoptionAt  time.Time
	Confirm     bool // the confirmation step of requiring MFA
	Form        url.Values
	Shown       int    // users listed of Adoption.WouldEnrol
	IdPEntity   string // the entity ID of the tenant's IdP ("" for none)
	// Typed is the policy form as submitted when it was refused: the
	// form shows it again instead of the policy in force.
	Typed url.Values
}

// Val returns the value of the policy form's field name: as typed, when
// the form was refused, else cur (the value in force).
func (v securityView) Val(name string, cur any) string {
	if v.Typed != nil {
		return v.Typed.Get(name)
	}
	return fmt.Sprint(cur)
}

// On reports whether the policy form's checkbox name is ticked: as
// submitted, when the form was refused, else cur.
func (v securityView) On(name string, cur bool) bool {
	if v.Typed != nil {
		return v.Typed.Get(name) == "on"
	}
	return cur
}

// policyLabels names the policy's fields as the form labels them, by
// guard.PolicyError.Field and by form field.
var policyLabels = map[string]string{
	"SessionLimit": "Sessions per user", "session_limit": "Sessions per user",
	"OnSessionLimit": "At the limit", "on_session_limit": "At the limit",
	"IdleTimeout": "Sign out after inactivity", "idle_minutes": "Sign out after inactivity (minutes)",
	"SessionLifetime": "Sign out after", "lifetime_hours": "Sign out after (hours)",
	"PasswordMinLength": "Minimum password length", "password_min_length": "Minimum password length",
	"PasswordHistory": "Refuse the last N passwords", "password_history": "Refuse the last N passwords",
	"PasswordMaxAge": "Expire passwords after", "password_max_age_days": "Expire passwords after (days)",
	"MFAGrace": "MFA grace period", "mfa_grace_days": "MFA grace period (days)",
	"ReviewEvery": "Review every", "review_every_days": "Review every (days)",
	"DormantAfter": "Dormant after", "dormant_after_days": "Dormant after (days)",
	"AuditRetention": "Keep audit events", "audit_retention_days": "Keep audit events (days)",
}

// policyLabel returns the form's label of a policy field, or the field.
func policyLabel(field string) string {
	if l, ok := policyLabels[field]; ok {
		return l
	}
	return field
}

// maxWouldEnrolShown bounds the list of users shown on the page.
const maxWouldEnrolShown = 50

func (a *app) security(w http.ResponseWriter, r *http.Request) {
	v, err := a.securityData(r, r.URL.Query().Has("refresh"))
	if err != nil {
		a.fail(w, r, err, "/")
		return
	}
	a.page(w, r, "security.html", view{Title: "Security settings", Nav: "security", Data: v})
}

func (a *app) securityData(r *http.Request, fresh bool) (securityView, error) {
	p := principal(r)
	ctx := r.Context()
	t, err := a.g.Tenant(ctx, p.Tenant)
	if err != nil {
		return securityView{}, err
	}
	pol, err := a.g.EffectivePolicy(ctx, p.Tenant)
	if err != nil {
		return securityView{}, err
	}
	ad, err := a.adoption(r, fresh)
	if err != nil {
		return securityView{}, err
	}
	v := securityView{Tenant: t, Pol: pol, Adoption: ad.Adoption, AdoptionAt: ad.at, MFA: a.mfaOn(), Shown: min(len(ad.WouldEnrol), maxWouldEnrolShown)}
	switch c, err := a.g.SSOConnection(ctx, p, p.Tenant); {
	case err == nil:
		v.IdPEntity = "an identity provider whose metadata cannot be used"
		if idp, err := connectionIdP(c, a.now()); err == nil {
			v.IdPEntity = idp.EntityID
		}
	case !errors.Is(err, sso.ErrNotFound):
		return securityView{}, err
	}
	// Only those who may send campaigns see (and change) the rule.
	if v.CanFourEyes, v.FourEyes, err = a.sendRights(ctx, p); err != nil {
		return securityView{}, err
	}
	return v, nil
}

// adoptionCacheTTL: the security page reads every user of the tenant to
// count who uses MFA or SSO; it reuses the counts for a minute (or until
// the console changes the tenant's users or policy). The confirmation step
// before requiring MFA always counts afresh.
const adoptionCacheTTL = time.Minute

type cachedAdoption struct {
	guard.Adoption
	at time.Time
}

type adoptionCache struct {
	mu sync.Mutex
	m  map[string]cachedAdoption // tenant "/" user ID
}

func (a *app) adoption(r *http.Request, fresh bool) (cachedAdoption, error) {
	p := principal(r)
	key, now := p.Tenant+"/"+p.UserID, a.now()
	c := &a.adoptions
	if !fresh {
		c.mu.Lock()
		ad, ok := c.m[key]
		c.mu.Unlock()
		if ok && now.Sub(ad.at) <= adoptionCacheTTL && !now.Before(ad.at) {
			return ad, nil
		}
	}
	ad, err := a.g.MFAAdoption(r.Context(), p, p.Tenant)
	if err != nil {
		return cachedAdoption{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedReviews {
		c.m = map[string]cachedAdoption{}
	}
	c.m[key] = cachedAdoption{Adoption: ad, at: now}
	return c.m[key], nil
}

func (c *adoptionCache) forget(tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if strings.HasPrefix(k, tenant+"/") {
			delete(c.m, k)
		}
	}
}

func (a *app) mfaOn() bool { return a.g != nil && a.mfaConfigured }

// setPolicy saves the policy form. Turning "require MFA" on first shows
// the confirmation step: how many users use MFA, SSO or neither, and who
// would have to enrol at their next sign-in.
func (a *app) setPolicy(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	ctx := r.Context()
	t, err := a.g.Tenant(ctx, p.Tenant)
	if err != nil {
		a.fail(w, r, err, "/security")
		return
	}
	pol, bad := policyFromForm(r.PostForm, t.Policy)
	if bad != "" {
		a.refusePolicy(w, r, bad)
		return
	}
	version, _ := strconv.ParseInt(r.PostForm.Get("version"), 10, 64)
	if pol.RequireMFA && !t.Policy.RequireMFA && r.PostForm.Get("confirm") != "yes" {
		// The counts and the list of who is affected are read afresh
		// for the decision.
		v, err := a.securityData(r, true)
		if err != nil {
			a.fail(w, r, err, "/security")
			return
		}
		v.Confirm, v.Form = true, r.PostForm
		a.page(w, r, "security.html", view{Title: "Require MFA?", Nav: "security", Data: v})
		return
	}
	a.forget(p.Tenant)
	if _, err := a.g.SetPolicy(ctx, p, p.Tenant, pol, version); err != nil {
		var pe *guard.PolicyError
		if errors.As(err, &pe) {
			a.refusePolicy(w, r, policyLabel(pe.Field)+": "+pe.Reason+".")
			return
		}
		a.failOr(w, r, err, "/security")
		return
	}
	a.ok(w, r, "/security", "Security settings saved.")
}

// refusePolicy shows the policy form again as it was submitted, with why
// it was refused.
func (a *app) refusePolicy(w http.ResponseWriter, r *http.Request, msg string) {
	v, err := a.securityData(r, false)
	if err != nil {
		a.fail(w, r, err, "/security")
		return
	}
	v.Typed = r.PostForm
	a.renderStatus(w, r, http.StatusBadRequest, "security.html", view{Title: "Security settings", Nav: "security", Error: msg, Data: v})
}

// policyFromForm reads the policy form over the tenant's current policy,
// or says what is wrong with it (a number that is not a whole one, or that
// is too large for a duration).
func policyFromForm(f url.Values, cur guard.Policy) (guard.Policy, string) {
	p := cur
	num := func(name string, unit time.Duration, dst *time.Duration) string {
		s := strings.TrimSpace(f.Get(name))
		if s == "" {
			return ""
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return "Please enter a whole number for " + policyLabel(name) + "."
		}
		// A number no duration can hold would wrap around to another.
		if int64(n) > math.MaxInt64/int64(unit) {
			return "The number for " + policyLabel(name) + " is too large."
		}
		*dst = time.Duration(n) * unit
		return ""
	}
	count := func(name string, dst *int) string {
		s := strings.TrimSpace(f.Get(name))
		if s == "" {
			return ""
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return "Please enter a whole number for " + policyLabel(name) + "."
		}
		*dst = n
		return ""
	}
	for _, msg := range []string{
		count("session_limit", &p.SessionLimit),
		num("idle_minutes", time.Minute, &p.IdleTimeout),
		num("lifetime_hours", time.Hour, &p.SessionLifetime),
		count("password_min_length", &p.PasswordMinLength),
		count("password_history", &p.PasswordHistory),
		num("password_max_age_days", 24*time.Hour, &p.PasswordMaxAge),
		num("mfa_grace_days", 24*time.Hour, &p.MFAGrace),
		num("review_every_days", 24*time.Hour, &p.ReviewEvery),
		num("dormant_after_days", 24*time.Hour, &p.DormantAfter),
		num("audit_retention_days", 24*time.Hour, &p.AuditRetention),
	} {
		if msg != "" {
			return guard.Policy{}, msg
		}
	}
	if v := f.Get("on_session_limit"); v != "" {
		p.OnSessionLimit = v
	}
	p.RequireMFA = f.Get("require_mfa") == "on"
	p.MFAAllowEmail = f.Get("mfa_allow_email") == "on"
	p.AutoDeactivateDormant = f.Get("auto_deactivate_dormant") == "on"
	return p, ""
}

// setApprovalRule puts campaign sends under four-eyes approval, or takes
// them out.
func (a *app) setApprovalRule(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	on := r.PostForm.Get("required") == "on"
	if err := a.g.SetApprovalRequired(r.Context(), p, p.Tenant, "campaigns:send", on); err != nil {
		a.failOr(w, r, err, "/security")
		return
	}
	if on {
		a.ok(w, r, "/security", "Campaign sends now need a second person's approval.")
		return
	}
	a.ok(w, r, "/security", "Campaign sends no longer need approval.")
}

// IP allow-lists, for people and for API keys.

type ipView struct {
	ClientIP string
	Sections []ipSection
}

type ipSection struct {
	Scope, Title string
	Entries      string // one per line
	ReportOnly   bool
	Version      uint64
	Mine         string // the address to suggest adding
}

func (a *app) ipLists(w http.ResponseWriter, r *http.Request) {
	a.renderIPLists(w, r, http.StatusOK, "", nil)
}

// renderIPLists shows the lists; a form that was refused (typed, not
// nil) is shown as it was submitted, with the error msg.
func (a *app) renderIPLists(w http.ResponseWriter, r *http.Request, status int, msg string, typed *ipSection) {
	p := principal(r)
	l, err := a.g.IPAllowLists(r.Context(), p, p.Tenant)
	if err != nil {
		if msg, ok := problem(err); ok || errors.Is(err, guard.ErrIPListsNotConfigured) {
			a.errorPage(w, r, http.StatusNotImplemented, "IP allow-lists", msg)
			return
		}
		a.fail(w, r, err, "/")
		return
	}
	ip := a.g.ClientIP(r)
	sections := []ipSection{
		{Scope: "users", Title: "People: sign-in and every request", Entries: strings.Join(l.Users.Entries, "\n"), ReportOnly: l.Users.ReportOnly, Version: l.Version, Mine: ip},
		{Scope: "api_keys", Title: "API keys", Entries: strings.Join(l.APIKeys.Entries, "\n"), ReportOnly: l.APIKeys.ReportOnly, Version: l.Version},
	}
	for i := range sections {
		if typed != nil && sections[i].Scope == typed.Scope {
			typed.Title = sections[i].Title
			if typed.Mine == "" {
				typed.Mine = sections[i].Mine
			}
			sections[i] = *typed
		}
	}
	a.renderStatus(w, r, status, "ip.html", view{Title: "IP allow-lists", Nav: "ip", Error: msg, Data: ipView{ClientIP: ip, Sections: sections}})
}

func scopeOf(s string) (ipfilter.Scope, bool) {
	switch s {
	case "users":
		return ipfilter.Users, true
	case "api_keys":
		return ipfilter.APIKeys, true
	}
	return 0, false
}

func (a *app) setIPList(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	scope, ok := scopeOf(r.PostForm.Get("scope"))
	if !ok {
		a.errorPage(w, r, http.StatusBadRequest, "Bad request", "Unknown list.")
		return
	}
	version, _ := strconv.ParseUint(r.PostForm.Get("version"), 10, 64)
	typed := r.PostForm.Get("entries")
	entries, lines := splitEntries(typed)
	c := guard.IPListChange{Scope: scope, Entries: entries, ReportOnly: r.PostForm.Get("report_only") == "on", Version: version}
	where := func(i int) string {
		if i >= 0 && i < len(lines) {
			return "line " + itoa(lines[i])
		}
		return "entry " + itoa(i+1)
	}
	a.saveIPList(w, r, c, where, &ipSection{Scope: r.PostForm.Get("scope"), Entries: typed, ReportOnly: c.ReportOnly, Version: version})
}

// addIP adds one entry to a list, keeping the others.
func (a *app) addIP(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	scope, ok := scopeOf(r.PostForm.Get("scope"))
	if !ok {
		a.errorPage(w, r, http.StatusBadRequest, "Bad request", "Unknown list.")
		return
	}
	l, err := a.g.IPAllowLists(r.Context(), p, p.Tenant)
	if err != nil {
		a.failOr(w, r, err, "/ip")
		return
	}
	rules := l.Rules(scope)
	added, _ := splitEntries(r.PostForm.Get("entry"))
	entries := append(slices.Clone(rules.Entries), added...)
	where := func(i int) string {
		if i >= len(rules.Entries) {
			return "the entry added"
		}
		return "line " + itoa(i+1) + " of the list"
	}
	a.saveIPList(w, r, guard.IPListChange{Scope: scope, Entries: entries, ReportOnly: rules.ReportOnly, Version: l.Version}, where,
		&ipSection{Scope: r.PostForm.Get("scope"), Entries: strings.Join(rules.Entries, "\n"), ReportOnly: rules.ReportOnly,
			Version: l.Version, Mine: r.PostForm.Get("entry")})
}

// saveIPList saves the change; where names the entry at an index of
// c.Entries as the administrator sees it (a line of the textarea, from
// 1). A refused change is shown again as typed, with the reason.
func (a *app) saveIPList(w http.ResponseWriter, r *http.Request, c guard.IPListChange, where func(int) string, typed *ipSection) {
	p := principal(r)
	ap, err := a.g.SetIPAllowList(r.Context(), p, p.Tenant, c)
	if err != nil {
		var pe *ipfilter.ParseError
		msg, ok := problem(err)
		switch {
		case errors.Is(err, guard.ErrConflict) || !ok:
			a.failOr(w, r, err, "/ip")
			return
		case errors.As(err, &pe) && pe.Index >= 0:
			msg = "Not a valid IP address or range, " + where(pe.Index) + " " + strconv.Quote(pe.Entry) + ": " + strings.TrimPrefix(pe.Err.Error(), "ipfilter: ")
			if pe.Detail != "" {
				msg += " (" + pe.Detail + ")"
			}
			msg += "."
		}
		a.renderIPLists(w, r, http.StatusBadRequest, msg, typed)
		return
	}
	msg := "Saved the list (" + plural(len(ap.Entries), "entry", "entries") + ")."
	if len(ap.Entries) == 0 {
		msg = "Saved: the list is empty, so there is no restriction."
	}
	for _, wa := range ap.Warnings {
		msg += " Note: " + where(wa.Index) + " " + strconv.Quote(wa.Entry) + " read as " + wa.Canonical + ": " + wa.Adjusted.String() + "."
	}
	a.ok(w, r, "/ip", "%s", msg)
}

// plural returns n with the singular or plural noun: "1 entry", "2 entries".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return itoa(n) + " " + many
}

// splitEntries splits a textarea into entries: one per line or separated
// by commas or spaces; blank ones are dropped. lines holds the line (from
// 1) of each entry, for messages.
func splitEntries(s string) (entries []string, lines []int) {
	for i, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		for _, e := range strings.FieldsFunc(line, func(r rune) bool { return r == '\r' || r == ',' || r == ' ' || r == '\t' }) {
			entries = append(entries, e)
			lines = append(lines, i+1)
		}
	}
	return entries, lines
}

func itoa(n int) string { return strconv.Itoa(n) }
