package guard_test

import (
	"testing"

	guard "github.com/guardhq/guard"
)

// Security notices go to active accounts only (hearsNotices): the lock
// notice (TestAuditNotice_LockNoticeToDeactivatedAccount), and as here
// an administrator's ExpirePassword and RemoveFactor, and the notice of
// an email change to a deactivated user's address. Each is still done
// and recorded; only the mail is not sent.
func TestNoticesSkipDeactivated(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	f.createUser(t, "bob@example.test", ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	fa := f.enrolEmail(t, p, "ada.codes@example.test")
	_, bob := f.signIn(t, "bob@example.test", ownerPW)
	sys := guard.System("test")
	if err := f.g.DeactivateUser(f.ctx, sys, tenantID, ada.ID); err != nil {
		t.Fatal(err)
	}
	before, beforeCodes := len(f.mailTo(adaEmail)), len(f.mailTo(fa.Destination))
	if err := f.g.ExpirePassword(f.ctx, sys, tenantID, ada.ID); err != nil {
		t.Fatalf("ExpirePassword: %v", err)
	}
	if err := f.g.RemoveFactor(f.ctx, sys, tenantID, ada.ID, fa.ID); err != nil {
		t.Fatalf("RemoveFactor: %v", err)
	}
	if fs, err := f.g.Factors(f.ctx, sys, tenantID, ada.ID); err != nil || len(fs) != 0 {
		t.Fatalf("factors after removal = %v, %v", fs, err)
	}
	if err := f.g.RequestEmailChange(f.ctx, bob, adaEmail); err != nil {
		t.Fatalf("RequestEmailChange to a deactivated user's address: %v", err)
	}
	for _, m := range f.mailTo(adaEmail)[before:] {
		t.Errorf("deactivated account mailed %q", m.Subject)
	}
	for _, m := range f.mailTo(fa.Destination)[beforeCodes:] {
		t.Errorf("deactivated account's factor address mailed %q", m.Subject)
	}
}
