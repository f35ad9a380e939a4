package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// API keys: created and shown once, listed by their first characters,
// revoked; their own IP allow-list is on the IP page.

type keysView struct {
	Keys    []keyRow
	Roles   []rbac.RoleInfo // the roles the viewer may give a key
	New     string          // the key just created, shown once
	NewName string
	BaseURL string
	Now     time.Time
	// Create is the create-key form: its defaults, or as typed when it
	// is shown again with an error.
	Create keyForm
}

// keyForm is what the create-key form shows.
type keyForm struct {
	Name, Role, Days string
}

// defaultKeyForm is the create-key form as first shown.
var defaultKeyForm = keyForm{Role: "reports-only", Days: "90"}

type keyRow struct {
	auth.APIKey
	Roles  []string
	Status string
}

func (a *app) keys(w http.ResponseWriter, r *http.Request) {
	v, err := a.keysData(r)
	if err != nil {
		if errors.Is(err, guard.ErrAPIKeysNotConfigured) {
			a.errorPage(w, r, http.StatusNotImplemented, "API keys", "This backend keeps no API keys.")
			return
		}
		a.fail(w, r, err, "/")
		return
	}
	a.page(w, r, "keys.html", view{Title: "API keys", Nav: "keys", Data: v})
}

func (a *app) keysData(r *http.Request) (keysView, error) {
	p := principal(r)
	ctx := r.Context()
	ks, err := a.g.ListAPIKeys(ctx, p, p.Tenant)
	if err != nil {
		return keysView{}, err
	}
	now := a.now()
	v := keysView{BaseURL: strings.TrimSuffix(a.base.String(), "/"), Now: now, Create: defaultKeyForm}
	for i := len(ks) - 1; i >= 0; i-- { // newest first
		k := ks[i]
		row := keyRow{APIKey: k, Status: "active"}
		switch {
		case !k.RevokedAt.IsZero():
			row.Status = "revoked"
		case !k.UsableAt(now):
			row.Status = "expired"
		}
		if row.Roles, err = a.g.RolesOf(ctx, p, p.Tenant, "key:"+k.ID); err != nil && !errors.Is(err, guard.ErrRolesNotConfigured) {
			return keysView{}, err
		}
		v.Keys = append(v.Keys, row)
	}
	// Only the roles the viewer may give a key (guard's GrantableKeyRoles),
	// so that "owner" is not offered to an admin only to be refused;
	// none without the right to (ErrForbidden) or without roles.
	v.Roles, err = a.g.GrantableKeyRoles(ctx, p, p.Tenant)
	if err != nil && !errors.Is(err, guard.ErrForbidden) && !errors.Is(err, guard.ErrRolesNotConfigured) {
		return keysView{}, err
	}
	return v, nil
}

func (a *app) createKey(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	nk := guard.NewAPIKey{Tenant: p.Tenant, Name: r.PostForm.Get("name")}
	typed := keyForm{Name: nk.Name, Role: r.PostForm.Get("role"), Days: r.PostForm.Get("days")}
	if d := strings.TrimSpace(typed.Days); d != "" && d != "0" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 3650 {
			a.refuseKey(w, r, "Please give the key's life in days (0 for none, at most 3650).", typed)
			return
		}
		nk.ExpiresAt = a.now().Add(time.Duration(n) * 24 * time.Hour)
	}
	if role := r.PostForm.Get("role"); role != "" {
		nk.Roles = []string{role}
	}
	key, k, err := a.g.CreateAPIKey(r.Context(), p, nk)
	if err != nil {
		if msg, ok := problem(err); ok {
			a.refuseKey(w, r, msg, typed)
			return
		}
		a.fail(w, r, err, "/keys")
		return
	}
	v, err := a.keysData(r)
	if err != nil {
		a.fail(w, r, err, "/keys")
		return
	}
	// The key is in this answer only (Cache-Control: no-store): Guard
	// keeps its hash.
	v.New, v.NewName = key, k.Name
	a.page(w, r, "keys.html", view{Title: "API keys", Nav: "keys", Data: v})
}

// refuseKey shows the keys page again with the create-key form as it was
// sent (typed), and why it was refused.
func (a *app) refuseKey(w http.ResponseWriter, r *http.Request, msg string, typed keyForm) {
	v, err := a.keysData(r)
	if err != nil {
		a.fail(w, r, err, "/keys")
		return
	}
	v.Create = typed
	a.renderStatus(w, r, http.StatusBadRequest, "keys.html", view{Title: "API keys", Nav: "keys", Error: msg, Data: v})
}

func (a *app) revokeKey(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	if err := a.g.RevokeAPIKey(r.Context(), p, p.Tenant, r.PostForm.Get("id")); err != nil {
		a.failOr(w, r, err, "/keys")
		return
	}
	a.ok(w, r, "/keys", "Key revoked: its next request fails.")
}

// The host application's API, to try keys with:
//
//	curl -H "Authorization: Bearer gk_…" http://127.0.0.1:8080/api/reports

type whoamiAnswer struct {
	Tenant    string `json:"tenant"`
	UserID    string `json:"user_id"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	SessionID string `json:"session_id"`
	SSO       bool   `json:"sso"` // the session was opened by single sign-on
}

// whoami answers GET /api/whoami: the signed-in user of the session that
// asks, and which session it is. Without a credential it is 401 with
// Guard's challenge (RequireSession); an API key, authenticated but not
// a user's session, gets 403: its credential is good, so a challenge
// would ask for nothing it could send (/api/reports is the route to try
// keys with).
func (a *app) whoami(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if p.Kind != guard.KindUser {
		http.Error(w, "Forbidden: whoami answers a signed-in user's session, not an API key", http.StatusForbidden)
		return
	}
	u, err := a.g.User(r.Context(), p, p.Tenant, p.UserID)
	if err != nil {
		http.Error(w, "Service temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, whoamiAnswer{Tenant: p.Tenant, UserID: u.ID, Email: u.Email, Name: u.Name, SessionID: p.SessionID(),
		SSO: p.Flags&guard.FlagSSO != 0})
}

type reportsAnswer struct {
	Tenant  string   `json:"tenant"`
	Caller  string   `json:"caller"`
	Reports []report `json:"reports"`
}

type report struct {
	Name   string  `json:"name"`
	Opens  float64 `json:"open_rate"`
	Clicks float64 `json:"click_rate"`
}

func (a *app) apiReports(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	caller := "user:" + p.UserID
	if p.Kind == guard.KindAPIKey {
		caller = "key:" + p.KeyID
	}
	writeJSON(w, reportsAnswer{Tenant: p.Tenant, Caller: caller, Reports: []report{
		{Name: "Spring newsletter", Opens: 0.41, Clicks: 0.07}, {Name: "Product launch", Opens: 0.52, Clicks: 0.11},
	}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
