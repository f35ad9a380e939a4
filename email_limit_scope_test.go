package guard_test

import (
	"testing"

	guard "github.com/guardhq/guard"
)

// useUpAddressLimit has another member of the tenant ask, synchronously,
// for addr as their new address until the address's hourly link limit
// (Recovery.Limits.PerDestination, default 5) is used up: each request
// mails addr's owner a notice and counts under that limit.
func useUpAddressLimit(t *testing.T, f *mfaFixture, addr string) {
	t.Helper()
	const pw = "a long enough passphrase 2"
	f.createUser(t, "mallory@example.test", pw)
	_, m := f.signIn(t, "mallory@example.test", pw)
	for range 6 {
		if err := f.g.RequestEmailChange(f.ctx, m, addr); err != nil {
			t.Fatalf("RequestEmailChange to %s: %v", addr, err)
		}
	}
}

// The notice of a change of address to an address the user proved is the
// owner's word of a stolen session's change: emails to the address that
// others made happen (and anyone can make) must not hold it back.
func TestChangeEmailNoticeToAProvedAddressIgnoresItsLinkLimit(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	useUpAddressLimit(t, f, adaEmail)
	_, p := f.signIn(t, adaEmail, ownerPW)
	if err := f.g.ChangeEmail(f.ctx, p, "thief@elsewhere.test"); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range f.mailTo(adaEmail) {
		if m.Subject == "The email address of your account was changed" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d change notices to the proved old address, want 1", n)
	}
}

// The invitations' count of an address is their own: links and notices
// mailed to it (which any member, or ForgotPassword, can cause) do not
// hold an administrator's invitation back.
func TestInvitationIgnoresTheLinkLimitOfItsAddress(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	useUpAddressLimit(t, f, adaEmail)
	if err := f.g.SendInvitation(f.ctx, guard.System("test"), tenantID, ada.ID); err != nil {
		t.Fatalf("SendInvitation after the address's links were used up: %v", err)
	}
}
