package main

import (
	"maps"
	"net/http"
	"net/url"
	pathpkg "path"
	"slices"
	"strings"
)

// A form refused for want of a recent sign-in (guard.ErrStepUpRequired)
// is kept across the step-up, as GitHub's "sudo mode" does: fail shows
// the step-up page in place of the form's answer, carrying the path the
// form was posted to and its fields as hidden inputs; reauth, once the
// user has confirmed it is them, shows a page whose Continue button posts
// them to that path again (a button, not a script: the console's CSP
// runs none). The browser sends the path and fields back, so reauth
// checks them again as fail did (keepForm). A form that cannot be kept
// goes the old way: a redirect to the step-up page and from there to the
// form's page, to be filled in again.
//
// The console has no CSRF token to leave out or renew: Go's
// CrossOriginProtection checks every POST (Sec-Fetch-Site, Origin), and
// the Continue form is a same-origin one like any other.
const (
	// resumeField holds the path the kept form was posted to.
	resumeField = "resume"
	// keptPrefix starts the name of each of its fields on the step-up
	// form, apart from the form's own (password, totp, next, mfa).
	keptPrefix = "resume."
	// maxKeptFields bounds the values a kept form has, and maxKeptBytes
	// their names' and values' bytes in all.
	maxKeptFields = 50
	maxKeptBytes  = 8 << 10
)

// secretWords: a field whose name contains one of them, in any case,
// holds a secret (a password, a one-time code, a CAPTCHA's token), which
// must never come back in a page.
var secretWords = []string{"password", "secret", "code", "captcha", "token"}

// secretForms are the forms that hold a secret in fields named otherwise:
// the change of password (current, new, confirm).
var secretForms = map[string]bool{"/account/password": true}

// plainFields are, by form, the fields named with one of secretWords that
// hold no secret: the password rules of the security policy, numbers.
var plainFields = map[string][]string{"/security": {"password_min_length", "password_history", "password_max_age_days"}}

// keepForm returns the fields of form, posted to path, that a step-up
// carries, or false when it cannot carry it: path is not a form of the
// console (resumable), the form holds a secret (a field named with one
// of secretWords, but for its plainFields, or the CAPTCHA's field; or it
// is one of secretForms), or it is larger than maxKeptFields values or
// maxKeptBytes.
func (a *app) keepForm(path string, form url.Values) (url.Values, bool) {
	if !a.resumable(path) || secretForms[path] {
		return nil, false
	}
	kept := url.Values{}
	n, size := 0, 0
	for name, vs := range form {
		if a.secretField(name) && !slices.Contains(plainFields[path], name) {
			return nil, false
		}
		n += len(vs)
		for _, v := range vs {
			size += len(name) + len(v)
		}
		if n > maxKeptFields || size > maxKeptBytes {
			return nil, false
		}
		kept[name] = slices.Clone(vs)
	}
	return kept, true
}

// secretField reports whether a form field of that name holds a secret.
func (a *app) secretField(name string) bool {
	lower := strings.ToLower(name)
	if a.captcha.Field != "" && lower == strings.ToLower(a.captcha.Field) {
		return true
	}
	return slices.ContainsFunc(secretWords, func(w string) bool { return strings.Contains(lower, w) })
}

// resumable reports whether a kept form may be posted to path: a clean
// path on this site (localPath; no query, "..", or character that needs
// escaping, so each path has one spelling, which secretForms and
// plainFields name) that the console routes for POST, and not the step-up
// itself.
func (a *app) resumable(path string) bool {
	if a.mux == nil || path == "" || path == "/reauth" || localPath(path) != path ||
		(&url.URL{Path: path}).EscapedPath() != path || pathpkg.Clean(path) != path {
		return false
	}
	r, err := http.NewRequest(http.MethodPost, path, nil)
	if err != nil {
		return false
	}
	_, pattern := a.mux.Handler(r)
	return pattern != ""
}

// keptFrom returns the form the step-up form carries (resumeField, and
// the fields named with keptPrefix), checked again by keepForm: none when
// it carries none, or one that may not be kept.
func (a *app) keptFrom(form url.Values) resumeView {
	path := form.Get(resumeField)
	if path == "" {
		return resumeView{}
	}
	carried := url.Values{}
	for name, vs := range form {
		if n, ok := strings.CutPrefix(name, keptPrefix); ok {
			carried[n] = vs
		}
	}
	fields, ok := a.keepForm(path, carried)
	if !ok {
		return resumeView{}
	}
	return resumeOf(path, fields)
}

// formField is a hidden input of a kept form.
type formField struct{ Name, Value string }

// resumeOf returns the form posted to path with fields, to keep.
func resumeOf(path string, fields url.Values) resumeView {
	return resumeView{Path: path, Fields: hiddenFields(fields)}
}

// hiddenFields returns the fields of form as hidden inputs, by name.
func hiddenFields(form url.Values) []formField {
	var fs []formField
	for _, name := range slices.Sorted(maps.Keys(form)) {
		for _, v := range form[name] {
			fs = append(fs, formField{name, v})
		}
	}
	return fs
}

// resumeView is a form kept across a step-up: the step-up form carries
// it, and the page after the step-up has a Continue button that posts
// Fields to Path. The zero value keeps none.
type resumeView struct {
	Path   string
	Fields []formField
}
