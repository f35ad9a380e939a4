package guard_test

import (
	"testing"
	"time"

	"github.com/guardhq/guard"
)

// The notice of a change of address is the owner's word that a stolen
// session changed it. ChangeEmail is the self-service way to change an
// address and always leaves it unverified, so an address a member set
// for themselves (and receives mail at) is "unproved". Anyone can ask
// ForgotPassword for that address: the reset links it mails must not use
// up the address's count and so silence the notice of a hijacker's
// ChangeEmail from a stolen session.
func TestChangeEmailNoticeToOwnUnverifiedAddressNotSilencedByForgotPassword(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	// Ada moves to her new address (stored unverified, as ChangeEmail does).
	if err := f.g.ChangeEmail(f.ctx, p, newAdaEmail); err != nil {
		t.Fatalf("ChangeEmail to Ada's new address: %v", err)
	}
	// Anyone, unauthenticated: five reset requests for the address.
	count := func() int {
		f.out.mu.Lock()
		defer f.out.mu.Unlock()
		n := 0
		for _, m := range f.out.mail {
			if m.To == newAdaEmail {
				n++
			}
		}
		return n
	}
	for i := range 5 {
		ip := "198.51.100." + string(rune('1'+i))
		if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: newAdaEmail, IP: ip}); err != nil {
			t.Fatalf("ForgotPassword %d: %v", i, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for count() < i+1 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if count() < i+1 {
			t.Fatalf("reset link %d not mailed", i)
		}
	}
	// A stolen session of Ada's moves the account to the thief's address.
	if err := f.g.ChangeEmail(f.ctx, p, "mallory@evil.test"); err != nil {
		t.Fatalf("ChangeEmail from the stolen session: %v", err)
	}
	notices := 0
	for _, m := range f.mailTo(newAdaEmail) {
		if m.Subject == "The email address of your account was changed" {
			notices++
		}
	}
	if notices != 1 {
		t.Errorf("%d notices of the change to the thief's address mailed to Ada's own address, want 1 "+
			"(five ForgotPassword requests silenced it)", notices)
	}
}
