package main

import "net/url"

// The form a step-up interrupted (fail, reauth): its path and fields ride
// through the step-up page as hidden inputs.
const (
	// resumeField holds the path the interrupted form was posted to.
	resumeField = "resume"
	// keptPrefix starts the name of each of its fields on the step-up
	// page, apart from the page's own (password, totp, next).
	keptPrefix = "resume."
	// maxKeptFields and maxKeptBytes bound a form kept across a step-up.
	maxKeptFields = 50
	maxKeptBytes  = 8 << 10
)

// keepForm returns the fields of the form posted to path that a step-up
// may carry, or false when it cannot be carried.
func (a *app) keepForm(path string, form url.Values) (url.Values, bool) {
	return nil, false
}
