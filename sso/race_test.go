//go:build race

package sso

// raceEnabled reports whether the tests run under the race detector,
// which slows the code down several times: the limit tests then check
// their memory bound but not their time bound.
const raceEnabled = true
