package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

// Security › Single sign-on: what to give the IdP, the tenant's IdP
// connection, and "require SSO" with the break-glass owner. Everyone with
// settings:read sees it; only owners change it (Guard refuses others).

type ssoView struct {
	SP       spInfo
	Conn     *sso.Connection // nil: no IdP yet
	IdP      *sso.IdP        // the connection's metadata, parsed; nil if unusable
	IdPError string          // why it is unusable
	Mapping  []groupRole
	Pol      guard.Policy // effective
	Version  int64
	Roles    []rbac.RoleInfo // for the default role, owner left out
	CanEdit  bool            // the viewer is an owner
	Insecure bool            // http metadata URLs on loopback are accepted
	Owners   []guard.UserAccess
	Adoption guard.Adoption
	At       time.Time
	// Typed is the connection form as sent, when it is shown again with
	// an error (refuseConnection).
	Typed url.Values
	// The confirmation step of requiring SSO.
	Confirm    bool
	Form       url.Values
	BreakGlass *guard.UserAccess
	// PasswordUsers are the active users not on SSO, who would lose access
	// (Adoption.WouldNeedSSO for the break-glass owner of the form).
	PasswordUsers []guard.User
	PasswordTotal int
}

// spInfo is what an IdP administrator enters: read from the SP metadata
// Guard publishes, so the page shows exactly what the IdP will read.
type spInfo struct {
	EntityID, MetadataURL, ACSURL, SLOURL string
}

type groupRole struct{ Group, Role string }

// maxPasswordUsersShown bounds the list of users who would lose access.
const maxPasswordUsersShown = 50

func (a *app) ssoPage(w http.ResponseWriter, r *http.Request) {
	v, err := a.ssoData(r, r.URL.Query().Has("refresh"))
	if err != nil {
		a.fail(w, r, err, "/security")
		return
	}
	a.page(w, r, "sso.html", view{Title: "Single sign-on", Nav: "sso", Data: v})
}

func (a *app) ssoData(r *http.Request, fresh bool) (ssoView, error) {
	p := principal(r)
	ctx := r.Context()
	v := ssoView{Insecure: a.insecureMetadata}
	var err error
	if v.SP, err = a.spInfo(p.Tenant); err != nil {
		return ssoView{}, err
	}
	c, err := a.g.SSOConnection(ctx, p, p.Tenant)
	switch {
	case err == nil:
		v.Conn, v.Mapping = &c, mappingOf(c)
		var ie *sso.InputError
		if v.IdP, err = connectionIdP(c, a.now()); errors.As(err, &ie) {
			v.IdP, v.IdPError = nil, ssoInputSentence(ie)
		}
	case !errors.Is(err, sso.ErrNotFound):
		return ssoView{}, err
	}
	t, err := a.g.Tenant(ctx, p.Tenant)
	if err != nil {
		return ssoView{}, err
	}
	v.Version = t.Version
	if v.Pol, err = a.g.EffectivePolicy(ctx, p.Tenant); err != nil {
		return ssoView{}, err
	}
	ad, err := a.adoption(r, fresh)
	if err != nil {
		return ssoView{}, err
	}
	v.Adoption, v.At = ad.Adoption, ad.at
	roles, err := a.g.RolesOf(ctx, p, p.Tenant, "user:"+p.UserID)
	if err != nil && !errors.Is(err, guard.ErrRolesNotConfigured) {
		return ssoView{}, err
	}
	v.CanEdit = slices.Contains(roles, rbac.Owner)
	if !v.CanEdit {
		return v, nil
	}
	all, err := a.g.Roles(ctx, p, p.Tenant)
	if err != nil && !errors.Is(err, guard.ErrRolesNotConfigured) {
		return ssoView{}, err
	}
	for _, role := range all {
		if role.Name != rbac.Owner {
			v.Roles = append(v.Roles, role)
		}
	}
	err = a.eachUser(r, func(u guard.UserAccess) {
		if u.Owner && u.Status == auth.StatusActive {
			v.Owners = append(v.Owners, u)
		}
	})
	return v, err
}

// connectionIdP reads the IdP from a connection's metadata as Guard uses
// it: through ParseSignedMetadata when the connection requires signed
// metadata, so the page never shows as usable what sign-in refuses.
func connectionIdP(c sso.Connection, now time.Time) (*sso.IdP, error) {
	if len(c.MetadataSigningCertificates) == 0 {
		return sso.ParseMetadata([]byte(c.Metadata), now)
	}
	var certs []*x509.Certificate
	for _, p := range c.MetadataSigningCertificates {
		b, _ := pem.Decode([]byte(p))
		if b == nil {
			return nil, &sso.InputError{Field: "MetadataSigningCertificates", Reason: "has an entry that is not one PEM certificate"}
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, &sso.InputError{Field: "MetadataSigningCertificates", Reason: "has a certificate that cannot be parsed"}
		}
		certs = append(certs, cert)
	}
	return sso.ParseSignedMetadata([]byte(c.Metadata), now, sso.MetadataSignature{
		Certificates: certs, AllowSHA1: c.AllowSHA1, RequireValidCertificates: c.RequireValidCertificates,
	})
}

// eachUser calls f with every user of the viewer's tenant, a page at a
// time.
func (a *app) eachUser(r *http.Request, f func(guard.UserAccess)) error {
	p := principal(r)
	after := ""
	for {
		rows, err := a.g.ListUserAccess(r.Context(), p, p.Tenant, after, 1000)
		if err != nil {
			return err
		}
		for _, u := range rows {
			f(u)
		}
		if len(rows) < 1000 {
			return nil
		}
		after = rows[len(rows)-1].ID
	}
}

// spInfo reads the tenant's SP metadata.
func (a *app) spInfo(tenant string) (spInfo, error) {
	md, err := a.g.SSOMetadata(tenant)
	if err != nil {
		return spInfo{}, err
	}
	var doc struct {
		EntityID string `xml:"entityID,attr"`
		SP       struct {
			ACS []endpoint `xml:"AssertionConsumerService"`
			SLO []endpoint `xml:"SingleLogoutService"`
		} `xml:"SPSSODescriptor"`
	}
	if err := xml.Unmarshal(md, &doc); err != nil {
		return spInfo{}, err
	}
	info := spInfo{EntityID: doc.EntityID, MetadataURL: doc.EntityID}
	for _, e := range doc.SP.ACS {
		if e.Binding == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" && info.ACSURL == "" {
			info.ACSURL = e.Location
		}
	}
	for _, e := range doc.SP.SLO {
		if info.SLOURL == "" {
			info.SLOURL = e.Location
		}
	}
	return info, nil
}

type endpoint struct {
	Binding  string `xml:"Binding,attr"`
	Location string `xml:"Location,attr"`
}

// mappingOf returns a connection's group → role mapping, sorted by group.
func mappingOf(c sso.Connection) []groupRole {
	var out []groupRole
	for _, g := range slices.Sorted(maps.Keys(c.GroupRoles)) {
		out = append(out, groupRole{Group: g, Role: c.GroupRoles[g]})
	}
	return out
}

// setSSOConnection saves the connection form: the IdP's metadata (a URL,
// fetched now, or pasted XML; neither keeps the current metadata), the
// certificates the metadata must be signed with (none: not checked), the
// group → role mapping, just-in-time users, the allowed domains and the
// AuthnContextClassRefs with which the IdP reports a sign-in with two
// steps (one per line; none: an SSO sign-in never counts as one).
func (a *app) setSSOConnection(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	ctx := r.Context()
	const back = "/security/sso"
	cur, err := a.g.SSOConnection(ctx, p, p.Tenant)
	exists := err == nil
	if err != nil && !errors.Is(err, sso.ErrNotFound) {
		a.failOr(w, r, err, back)
		return
	}
	c := sso.Connection{Tenant: p.Tenant}
	if exists {
		c = cur // the settings the form does not show are kept
	}
	mdURL, mdXML := strings.TrimSpace(r.PostForm.Get("metadata_url")), strings.TrimSpace(r.PostForm.Get("metadata_xml"))
	switch {
	case mdURL != "" && mdXML != "":
		a.refuseConnection(w, r, "Give the metadata URL or paste the XML, not both.")
		return
	case mdXML != "":
		c.MetadataURL, c.Metadata = "", mdXML
	case mdURL != "":
		c.MetadataURL, c.Metadata = mdURL, "" // fetched now
	case !exists:
		a.refuseConnection(w, r, "Give your identity provider's metadata URL, or paste its metadata XML.")
		return
	}
	signers, ok := splitPEM(r.PostForm.Get("metadata_signing_certs"))
	if !ok {
		a.refuseConnection(w, r, "Paste the metadata signing certificate as PEM (-----BEGIN CERTIFICATE----- …), or leave it empty.")
		return
	}
	c.MetadataSigningCertificates = signers
	c.JIT = r.PostForm.Get("jit") == "on"
	c.SyncRoles = r.PostForm.Get("sync_roles") == "on"
	c.AllowedDomains = nil
	domains, _ := splitEntries(r.PostForm.Get("domains"))
	for _, d := range domains {
		c.AllowedDomains = append(c.AllowedDomains, strings.ToLower(d))
	}
	c.MFAAuthnContexts = nonEmptyLines(r.PostForm.Get("mfa_contexts"))
	roles, err := a.g.Roles(ctx, p, p.Tenant)
	if err != nil && !errors.Is(err, guard.ErrRolesNotConfigured) {
		a.failOr(w, r, err, back)
		return
	}
	known := func(name string) bool {
		return slices.ContainsFunc(roles, func(ri rbac.RoleInfo) bool { return ri.Name == name })
	}
	var bad string
	if c.GroupRoles, bad = parseMapping(r.PostForm.Get("group_roles"), known); bad != "" {
		a.refuseConnection(w, r, bad)
		return
	}
	c.DefaultRole = r.PostForm.Get("default_role")
	if c.DefaultRole != "" && !known(c.DefaultRole) {
		a.refuseConnection(w, r, "There is no role "+strconv.Quote(c.DefaultRole)+".")
		return
	}
	out, err := a.g.SetSSOConnection(ctx, p, c)
	if err != nil {
		msg, ok := a.ssoProblem(err)
		if !ok {
			msg, ok = problem(err)
		}
		if !ok {
			a.fail(w, r, err, back)
			return
		}
		a.refuseConnection(w, r, msg)
		return
	}
	a.forget(p.Tenant)
	entity := "your identity provider"
	if idp, err := sso.ParseMetadata([]byte(out.Metadata), a.now()); err == nil {
		entity = idp.EntityID
	}
	a.ok(w, r, back, "Connected to %s. Your users can now sign in with SSO.", entity)
}

// refuseConnection shows the single sign-on page again with the
// connection form as it was sent, and why it was refused.
func (a *app) refuseConnection(w http.ResponseWriter, r *http.Request, msg string) {
	v, err := a.ssoData(r, false)
	if err != nil {
		a.fail(w, r, err, "/security/sso")
		return
	}
	v.Typed = r.PostForm
	a.renderStatus(w, r, http.StatusBadRequest, "sso.html", view{Title: "Single sign-on", Nav: "sso", Error: msg, Data: v})
}

// nonEmptyLines returns the lines of s, trimmed, without the empty ones.
func nonEmptyLines(s string) []string {
	var out []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// splitPEM reads the PEM blocks pasted in s, one certificate each (Guard
// checks them), and reports false if s holds anything else besides white
// space, a damaged block included. Empty s gives none: metadata
// signatures are then not required.
func splitPEM(s string) ([]string, bool) {
	begin := []byte("-----BEGIN ")
	var out []string
	rest := bytes.TrimSpace([]byte(s))
	for len(rest) > 0 {
		if !bytes.HasPrefix(rest, begin) {
			return nil, false
		}
		b, r := pem.Decode(rest)
		// pem.Decode skips a block it cannot read to the next one: the
		// text it went through must hold only the block it returns.
		if b == nil || bytes.Count(rest[:len(rest)-len(r)], begin) != 1 {
			return nil, false
		}
		out = append(out, string(pem.EncodeToMemory(b)))
		rest = bytes.TrimSpace(r)
	}
	return out, true
}

// parseMapping reads "group = role" lines (a group may itself contain
// '=', as LDAP names do: the role is after the last one). A group named on
// two lines is refused, rather than the later line silently winning.
func parseMapping(s string, known func(string) bool) (map[string]string, string) {
	m := map[string]string{}
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		i := strings.LastIndex(line, "=")
		if i < 0 {
			return nil, "Write the group mapping as one \"group = role\" per line."
		}
		group, role := strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		switch {
		case group == "" || role == "":
			return nil, "Write the group mapping as one \"group = role\" per line."
		case role == rbac.Owner:
			return nil, "No group may be mapped to owner: owners are named here, never by the IdP."
		case !known(role):
			return nil, "There is no role " + strconv.Quote(role) + " (group " + strconv.Quote(group) + ")."
		}
		if _, dup := m[group]; dup {
			return nil, "The group " + strconv.Quote(group) + " is on more than one line: map each group to one role."
		}
		m[group] = role
	}
	if len(m) == 0 {
		return nil, ""
	}
	return m, ""
}

// deleteSSOConnection disconnects the tenant's IdP.
func (a *app) deleteSSOConnection(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if err := a.g.DeleteSSOConnection(r.Context(), p, p.Tenant); err != nil {
		a.ssoFailOr(w, r, err, "/security/sso")
		return
	}
	a.forget(p.Tenant)
	a.ok(w, r, "/security/sso", "The identity provider is disconnected: single sign-on is off, and the sessions it signed in have ended.")
}

// setRequireSSO turns "require SSO" on or off and names the break-glass
// owner. Turning it on first shows the confirmation step: how many users
// use SSO, MFA or neither, and who would lose access (not on SSO).
func (a *app) setRequireSSO(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	ctx := r.Context()
	const back = "/security/sso"
	t, err := a.g.Tenant(ctx, p.Tenant)
	if err != nil {
		a.fail(w, r, err, back)
		return
	}
	pol := t.Policy
	pol.RequireSSO = r.PostForm.Get("require_sso") == "on"
	pol.BreakGlassUser = r.PostForm.Get("break_glass")
	version, _ := strconv.ParseInt(r.PostForm.Get("version"), 10, 64)
	if pol.RequireSSO && !t.Policy.RequireSSO && r.PostForm.Get("confirm") != "yes" {
		v, err := a.ssoData(r, true)
		if err != nil {
			a.fail(w, r, err, back)
			return
		}
		if v.Conn == nil {
			a.flashBack(w, r, back, "Connect your identity provider before requiring single sign-on.")
			return
		}
		// Who would lose access is Guard's list (Adoption.WouldNeedSSO),
		// which leaves out the break-glass owner of the saved policy: the
		// form may name another one.
		saved := v.Pol.BreakGlassUser
		var savedRow *guard.UserAccess
		err = a.eachUser(r, func(u guard.UserAccess) {
			switch u.ID {
			case pol.BreakGlassUser:
				v.BreakGlass = &u
			case saved:
				savedRow = &u
			}
		})
		if err != nil {
			a.fail(w, r, err, back)
			return
		}
		loses := func(u *guard.UserAccess) bool { return u != nil && u.Status == auth.StatusActive && !u.SSO }
		v.PasswordTotal = v.Adoption.WouldNeedSSOTotal
		for _, u := range v.Adoption.WouldNeedSSO {
			if u.ID != pol.BreakGlassUser && len(v.PasswordUsers) < maxPasswordUsersShown {
				v.PasswordUsers = append(v.PasswordUsers, u)
			}
		}
		if pol.BreakGlassUser != saved {
			if loses(v.BreakGlass) {
				v.PasswordTotal-- // listed by Guard, spared by the form
			}
			if loses(savedRow) {
				v.PasswordTotal++ // spared by Guard, not by the form
				if len(v.PasswordUsers) < maxPasswordUsersShown {
					v.PasswordUsers = append(v.PasswordUsers, savedRow.User)
				}
			}
		}
		v.Confirm, v.Form = true, r.PostForm
		a.page(w, r, "sso.html", view{Title: "Require single sign-on?", Nav: "sso", Data: v})
		return
	}
	a.forget(p.Tenant)
	if _, err := a.g.SetPolicy(ctx, p, p.Tenant, pol, version); err != nil {
		a.ssoFailOr(w, r, err, back)
		return
	}
	if pol.RequireSSO {
		a.ok(w, r, back, "Single sign-on is required: password sign-in is refused, except for the break-glass owner.")
		return
	}
	a.ok(w, r, back, "Single sign-on is no longer required: users with a password may use it again.")
}

// ssoFailOr shows the refusals of SSO settings in the words of the page
// (ssoProblem), and hands everything else to failOr.
func (a *app) ssoFailOr(w http.ResponseWriter, r *http.Request, err error, back string) {
	if msg, ok := a.ssoProblem(err); ok {
		a.flashBack(w, r, back, msg)
		return
	}
	a.failOr(w, r, err, back)
}

// ssoProblem returns what the single sign-on page says of a refusal of
// SSO settings; ok is false for every other error.
func (a *app) ssoProblem(err error) (msg string, ok bool) {
	var (
		pe *guard.PolicyError
		fe *sso.FetchError
		ie *sso.InputError
	)
	switch {
	case errors.As(err, &pe) && pe.Field == "RequireSSO":
		return "Require SSO " + pe.Reason + ".", true
	case errors.As(err, &pe) && pe.Field == "BreakGlassUser":
		return "The break-glass owner " + pe.Reason + ".", true
	case errors.As(err, &fe):
		a.logf("single sign-on: %v", fe)
		msg := "Your identity provider's metadata could not be fetched from that URL"
		if fe.Status != 0 {
			msg += " (it answered with status " + strconv.Itoa(fe.Status) + ")"
		}
		return msg + ". Check the URL, or paste the metadata XML instead.", true
	case errors.As(err, &ie):
		return ssoInputSentence(ie), true
	case errors.Is(err, sso.ErrNotFound):
		return "No identity provider is connected.", true
	}
	return "", false
}

// ssoInputSentence says what is wrong with a connection field.
func ssoInputSentence(ie *sso.InputError) string {
	return fieldSentence(map[string]string{
		"Metadata": "The metadata", "MetadataURL": "The metadata URL", "AllowedDomains": "The list of allowed domains",
		"GroupRoles": "The group mapping", "DefaultRole": "The default role", "ExtraCertificates": "The extra certificates",
		"MetadataSigningCertificates": "The metadata signing certificate", "MFAAuthnContexts": "The list of two-step sign-in contexts",
	}, ie.Field, ie.Reason, ie)
}

// flashBack shows an error on back.
func (a *app) flashBack(w http.ResponseWriter, r *http.Request, back, msg string) {
	a.setFlash(w, "error", msg)
	http.Redirect(w, r, back, http.StatusSeeOther)
}
