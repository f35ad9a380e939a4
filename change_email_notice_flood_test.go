package guard_test

import (
	"strings"
	"testing"
)

// ChangeEmail stores any address, unverified, and mails the address it
// leaves a notice of the change. A member who sets a stranger's address
// and sets their own back, in a loop, must not be able to mail that
// stranger without bound: the notices to one address an hour stay within
// Recovery.Limits.PerDestination (default 5), as RequestEmailChange's
// links and notices do.
func TestChangeEmailNoticesToAnUnprovedAddressBounded(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	const victim = "victim@elsewhere.test"
	for i := range 12 {
		if err := f.g.ChangeEmail(f.ctx, p, victim); err != nil {
			t.Fatalf("round %d: ChangeEmail to the stranger's address: %v", i, err)
		}
		if err := f.g.ChangeEmail(f.ctx, p, adaEmail); err != nil {
			t.Fatalf("round %d: ChangeEmail back: %v", i, err)
		}
	}
	sent := f.mailTo(victim)
	if len(sent) > 5 {
		t.Errorf("%d notices mailed within the hour to an address the member never proved (first: %q, %q), want at most 5",
			len(sent), sent[0].Subject, strings.SplitN(sent[0].Text, ".", 2)[0])
	}
}
