package guard_test

import (
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// RequestEmailChange to a colleague's address counts against the link
// limits like any request: the notices to that address are bounded, and
// a member cannot ask about addresses without limit.
func TestRequestEmailChangeTakenCounted(t *testing.T) {
	f := newMFAFixture(t, withLimits(guard.LinkLimits{PerAccount: 3, PerDestination: 2, PerIP: 100}))
	f.createUser(t, adaEmail, ownerPW)
	f.createUser(t, "bob@example.test", ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	for range 3 {
		if err := f.g.RequestEmailChange(f.ctx, p, "bob@example.test"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.mailTo("bob@example.test")); n != 2 {
		t.Errorf("%d notices to the taken address for 3 requests, want 2 (PerDestination)", n)
	}
	if err := f.g.RequestEmailChange(f.ctx, p, "free@example.test"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.mailTo("free@example.test")); n != 0 {
		t.Errorf("%d links to a free address after 3 requests, want none (PerAccount 3 counts the taken ones)", n)
	}
	r := reasons(f.events(t, audit.UserEmailChangeRequested))
	if r[guard.ReasonRateLimited] != 2 {
		t.Errorf("user.email_change_requested reasons %v, want 2 %s", r, guard.ReasonRateLimited)
	}
	if r := reasons(f.events(t, audit.UserEmailChanged)); r[guard.ReasonEmailTaken] != 2 {
		t.Errorf("user.email_changed reasons %v, want 2 %s", r, guard.ReasonEmailTaken)
	}
}
