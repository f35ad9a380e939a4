package main

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
)

// usersPage is the number of users a page lists.
const usersPage = 50

type usersView struct {
	Users []guard.UserAccess
	After string // this page's cursor ("" for the first)
	Next  string // the next page's cursor ("" for the last)
	Roles []rbac.RoleInfo
	// InviteTTL is how long an invitation works, in words.
	InviteTTL string
	// Add is the add-user form: empty but for the role offered first,
	// or as typed when it is shown again with an error.
	Add newUserForm
}

// newUserForm is what the add-user form shows: never a password.
type newUserForm struct {
	Email, Name, Role string
}

func (a *app) users(w http.ResponseWriter, r *http.Request) {
	after := r.URL.Query().Get("after")
	if len(after) > auth.MaxIDBytes {
		after = ""
	}
	a.renderUsers(w, r, http.StatusOK, "", after, newUserForm{Role: "member"})
}

// renderUsers shows the page of users after the cursor after, with the
// add-user form holding add, and msg as the page's error.
func (a *app) renderUsers(w http.ResponseWriter, r *http.Request, status int, msg, after string, add newUserForm) {
	p := principal(r)
	rows, err := a.g.ListUserAccess(r.Context(), p, p.Tenant, after, usersPage+1)
	if err != nil {
		a.fail(w, r, err, "/")
		return
	}
	v := usersView{After: after, InviteTTL: inviteTTLText, Add: add}
	if len(rows) > usersPage {
		rows = rows[:usersPage]
		v.Next = rows[usersPage-1].ID
	}
	v.Users = rows
	if v.Roles, err = a.grantableRoles(r); err != nil {
		a.fail(w, r, err, "/")
		return
	}
	a.renderStatus(w, r, status, "users.html", view{Title: "Users", Nav: "users", Error: msg, Data: v})
}

// grantableRoles lists the roles of the tenant the signed-in user may
// grant (guard's GrantableRoles), so that an admin is not offered "owner"
// only to be refused. Without the right to grant roles (ErrForbidden) or
// without roles (ErrRolesNotConfigured) the list is empty.
func (a *app) grantableRoles(r *http.Request) ([]rbac.RoleInfo, error) {
	p := principal(r)
	rs, err := a.g.GrantableRoles(r.Context(), p, p.Tenant)
	if errors.Is(err, guard.ErrForbidden) || errors.Is(err, guard.ErrRolesNotConfigured) {
		return nil, nil
	}
	return rs, err
}

// inviteTTL is how long an invitation link works: the console's
// Recovery.InviteTTL (main.go), said in whole days on its pages.
const inviteTTL = 3 * 24 * time.Hour

var inviteTTLText = itoa(int(inviteTTL/(24*time.Hour))) + " days"

func (a *app) createUser(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	nu := guard.NewUser{Tenant: p.Tenant, Email: r.PostForm.Get("email"), Name: r.PostForm.Get("name"), Password: r.PostForm.Get("password")}
	if role := r.PostForm.Get("role"); role != "" {
		nu.Roles = []string{role}
	}
	u, err := a.g.CreateUser(r.Context(), p, nu)
	a.forget(p.Tenant)
	if err != nil {
		// A refusal shows the form again as typed, but for the password.
		if msg, ok := problem(err); ok {
			a.renderUsers(w, r, http.StatusBadRequest, msg, "", newUserForm{Email: nu.Email, Name: nu.Name, Role: r.PostForm.Get("role")})
			return
		}
		a.fail(w, r, err, "/users")
		return
	}
	if nu.Password == "" {
		if err := a.g.SendInvitation(r.Context(), p, p.Tenant, u.ID); err != nil {
			a.failOr(w, r, err, "/users/"+u.ID)
			return
		}
		a.ok(w, r, "/users/"+u.ID, "Invited %s: a link to set their password was mailed (the console prints it); it works once, for %s.", u.Email, inviteTTLText)
		return
	}
	a.ok(w, r, "/users/"+u.ID, "Created %s.", u.Email)
}

type userView struct {
	User     guard.User
	Roles    []string
	AllRoles []rbac.RoleInfo // the roles the viewer may grant
	Factors  []mfa.Factor
	Sessions []session.Session
	Lock     auth.State
	Locked   bool
	Self     bool
	// Beyond are the user's roles the viewer may not grant: then the
	// viewer may not deactivate, delete, reactivate, unlock, invite or
	// expire the password of the user, nor remove their factors (guard's
	// rule for acting on a more privileged user), only end their sessions.
	Beyond []string
}

func (a *app) userDetail(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	ctx := r.Context()
	id := r.PathValue("id")
	u, err := a.g.User(ctx, p, p.Tenant, id)
	if errors.Is(err, guard.ErrUserNotFound) {
		a.errorPage(w, r, http.StatusNotFound, "No such user", "This user does not exist (any more).")
		return
	}
	if err != nil {
		a.fail(w, r, err, "/users")
		return
	}
	v := userView{User: u, Self: id == p.UserID}
	if v.Roles, err = a.g.RolesOf(ctx, p, p.Tenant, "user:"+id); err != nil && !errors.Is(err, guard.ErrRolesNotConfigured) {
		a.fail(w, r, err, "/users")
		return
	}
	if v.AllRoles, err = a.grantableRoles(r); err != nil {
		a.fail(w, r, err, "/users")
		return
	}
	for _, role := range v.Roles {
		if !slices.ContainsFunc(v.AllRoles, func(ri rbac.RoleInfo) bool { return ri.Name == role }) {
			v.Beyond = append(v.Beyond, role)
		}
	}
	fs, err := a.g.Factors(ctx, p, p.Tenant, id)
	if err != nil && !errors.Is(err, guard.ErrMFANotConfigured) {
		a.fail(w, r, err, "/users")
		return
	}
	for _, f := range fs {
		if f.Confirmed() {
			v.Factors = append(v.Factors, f)
		}
	}
	if v.Sessions, err = a.g.UserSessions(ctx, p, p.Tenant, id); err != nil {
		a.fail(w, r, err, "/users")
		return
	}
	if v.Lock, err = a.g.LockState(ctx, p, p.Tenant, id); err != nil {
		a.fail(w, r, err, "/users")
		return
	}
	v.Locked = v.Lock.Locked(a.now())
	a.page(w, r, "user.html", view{Title: u.Email, Nav: "users", Data: v})
}

// userAction carries out one of the buttons of a user's page.
func (a *app) userAction(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	ctx := r.Context()
	id := r.PathValue("id")
	back := "/users/" + id
	var (
		err error
		msg string
	)
	switch r.PathValue("op") {
	case "deactivate":
		err, msg = a.g.DeactivateUser(ctx, p, p.Tenant, id), "Deactivated: every session of the user ended and every API key they created was revoked, at once."
	case "reactivate":
		err, msg = a.g.ReactivateUser(ctx, p, p.Tenant, id), "Reactivated."
	case "unlock":
		err, msg = a.g.UnlockUser(ctx, p, p.Tenant, id), "Sign-in lock lifted."
	case "expire-password":
		err, msg = a.g.ExpirePassword(ctx, p, p.Tenant, id), "Password marked as compromised: every session of the user ended, and they must choose a new password at their next sign-in."
	case "sessions":
		var n int
		n, err = a.g.RevokeUserSessions(ctx, p, p.Tenant, id)
		msg = "Ended " + itoa(n) + " session(s)."
	case "grant":
		role := r.PostForm.Get("role")
		err, msg = a.g.GrantRole(ctx, p, p.Tenant, "user:"+id, role), "Granted the role "+role+": the user's sessions ended, and they sign in again."
	case "revoke":
		role := r.PostForm.Get("role")
		err, msg = a.g.RevokeRole(ctx, p, p.Tenant, "user:"+id, role), "Took away the role "+role+": the user's sessions ended, and they sign in again."
	case "factor":
		err, msg = a.g.RemoveFactor(ctx, p, p.Tenant, id, r.PostForm.Get("factor")), "Second factor removed."
	case "invite":
		err, msg = a.g.SendInvitation(ctx, p, p.Tenant, id), "Invitation mailed again (the console prints it): the link sets a password, works once, for "+inviteTTLText+", and the earlier one no longer works."
	case "delete":
		if r.PostForm.Get("confirm") != "yes" {
			a.setFlash(w, "error", "Tick the box to confirm: deleting a user cannot be undone.")
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
		if err = a.g.DeleteUser(ctx, p, p.Tenant, id); err == nil {
			a.forget(p.Tenant)
			a.ok(w, r, "/users", "%s", "Deleted: the user's sessions ended, the API keys they created were revoked, and their sign-in is gone. The audit log keeps their history.")
			return
		}
	default:
		a.errorPage(w, r, http.StatusNotFound, "Not found", "No such action.")
		return
	}
	a.forget(p.Tenant)
	if errors.Is(err, guard.ErrForbidden) && id == p.UserID {
		a.setFlash(w, "error", "You cannot do that to your own account.")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	if err != nil {
		a.failOr(w, r, err, back)
		return
	}
	a.ok(w, r, back, "%s", msg)
}

// Roles: built-in and custom, with their grants over sections and actions.

type rolesView struct {
	Roles    []roleRow
	Sections []rbac.Section
	Actions  []rbac.Action
	// Define is the custom role form: empty, or as typed when it is
	// shown again with an error.
	Define roleForm
}

// roleForm is what the custom role form shows: the name and the
// permissions ticked ("section:action").
type roleForm struct {
	Name   string
	Ticked map[string]bool
}

type roleRow struct {
	rbac.RoleInfo
	Grants map[string]bool // "section:action"
}

func (a *app) roles(w http.ResponseWriter, r *http.Request) {
	a.renderRoles(w, r, http.StatusOK, "", roleForm{})
}

// renderRoles shows the roles, with the custom role form holding define
// and msg as the page's error.
func (a *app) renderRoles(w http.ResponseWriter, r *http.Request, status int, msg string, define roleForm) {
	p := principal(r)
	rs, err := a.g.Roles(r.Context(), p, p.Tenant)
	if err != nil && !errors.Is(err, guard.ErrRolesNotConfigured) {
		a.fail(w, r, err, "/")
		return
	}
	v := rolesView{Sections: rbac.BuiltInSections(), Actions: rbac.Actions(), Define: define}
	for _, role := range rs {
		row := roleRow{RoleInfo: role, Grants: map[string]bool{}}
		for _, perm := range role.Permissions {
			row.Grants[perm.String()] = true
		}
		v.Roles = append(v.Roles, row)
	}
	a.renderStatus(w, r, status, "roles.html", view{Title: "Roles", Nav: "roles", Error: msg, Data: v})
}

// defineRole saves the custom role form; a refusal shows it again as it
// was sent.
func (a *app) defineRole(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	name := strings.TrimSpace(r.PostForm.Get("name"))
	perms := slices.Clone(r.PostForm["perm"])
	typed := roleForm{Name: r.PostForm.Get("name"), Ticked: map[string]bool{}}
	for _, perm := range perms {
		typed.Ticked[perm] = true
	}
	if len(perms) == 0 {
		a.renderRoles(w, r, http.StatusBadRequest, "Tick at least one permission.", typed)
		return
	}
	if err := a.g.DefineRole(r.Context(), p, p.Tenant, name, perms); err != nil {
		if msg, ok := problem(err); ok {
			a.renderRoles(w, r, http.StatusBadRequest, msg, typed)
			return
		}
		a.fail(w, r, err, "/roles")
		return
	}
	a.ok(w, r, "/roles", "Saved the role %s.", name)
}

func (a *app) deleteRole(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	name := r.PostForm.Get("name")
	if err := a.g.DeleteRole(r.Context(), p, p.Tenant, name); err != nil {
		a.failOr(w, r, err, "/roles")
		return
	}
	a.ok(w, r, "/roles", "Deleted the role %s.", name)
}
