package authtest

import (
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

// Users is what a user backend implements.
type Users interface {
	auth.UserStore
	auth.UserUpdater
}

// Stores says which stores a backend provides; a nil field is not tested.
// Each function returns a fresh, empty store on every call.
type Stores struct {
	Users    func(t *testing.T) Users
	Throttle func(t *testing.T) auth.ThrottleStore
	APIKeys  func(t *testing.T) auth.APIKeyStore
}

// base is the suite's "now": fixed, with sub-second digits down to the
// microsecond, and in the future (see the package doc).
var base = time.Date(2099, 1, 1, 9, 0, 0, 123456000, time.UTC)

const day = 24 * time.Hour

// Run runs the conformance tests of the stores s provides, one fresh store
// per subtest.
func Run(t *testing.T, s Stores) {
	t.Helper()
	if s.Users == nil && s.Throttle == nil && s.APIKeys == nil {
		t.Fatal("authtest.Run: Stores provides no store")
	}
	runParityAudit(t, s)
	if s.Users != nil {
		t.Run("Users", func(t *testing.T) { runUsers(t, s.Users) })
	}
	if s.Throttle != nil {
		t.Run("Throttle", func(t *testing.T) { runThrottle(t, s.Throttle) })
	}
	if s.APIKeys != nil {
		t.Run("APIKeys", func(t *testing.T) { runAPIKeys(t, s.APIKeys) })
	}
}

// RunConcurrent hammers the stores s provides from many goroutines and
// checks that every method is one atomic step (see the package doc).
func RunConcurrent(t *testing.T, s Stores) {
	t.Helper()
	if s.Users == nil && s.Throttle == nil && s.APIKeys == nil {
		t.Fatal("authtest.RunConcurrent: Stores provides no store")
	}
	if s.Users != nil {
		t.Run("Users", func(t *testing.T) { runUsersConcurrent(t, s.Users) })
	}
	if s.Throttle != nil {
		t.Run("Throttle", func(t *testing.T) { runThrottleConcurrent(t, s.Throttle) })
	}
	if s.APIKeys != nil {
		t.Run("APIKeys", func(t *testing.T) { runAPIKeysConcurrent(t, s.APIKeys) })
	}
}

// test is one named subtest of a group.
type test[C any] struct {
	name string
	run  func(t *testing.T, c C)
}

// group is a named list of subtests.
type group[C any] struct {
	name  string
	tests []test[C]
}

// runGroups runs every test of every group with a checker made by newC.
func runGroups[C any](t *testing.T, groups []group[C], newC func(t *testing.T) C) {
	t.Helper()
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, newC(t)) })
			}
		})
	}
}

// parallel runs f(0..n-1) in n goroutines released at once, and waits.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}
