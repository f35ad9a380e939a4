package guard_test

import (
	"errors"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// Severity: medium. RemoveFactor mails "This address no longer receives
// sign-in codes" to the destination of a removed email factor
// (mfaflow.go, RemoveFactor: f.Destination != u.Email), confirmed or not.
// A pending factor's address was never proved: BeginOOB stores the
// factor for any address (even once the send limits suppress its code),
// so a signed-in user loops BeginOOB(stranger) + RemoveFactor and mails
// the stranger a notice per loop, past every send limit (mfa.SendLimits
// holds the codes to 5 an hour per address; the notices have none),
// with a text that tells the stranger "your account's sign-in steps"
// changed and to contact "your administrator". Expected: only an address
// that was a confirmed factor hears of its removal, so the stranger
// gets at most the hour's codes.
func TestAuditNotice_PendingFactorRemovalMailsStranger(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	const stranger = "stranger@example.test"
	for i := range 12 {
		fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, stranger, "")
		if err != nil || fa.ID == "" {
			t.Fatalf("BeginOOB %d: %+v, %v", i, fa, err)
		}
		if err := f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, fa.ID); err != nil {
			t.Fatalf("RemoveFactor %d (a pending factor): %v", i, err)
		}
	}
	var codes, removals int
	for _, m := range f.mailTo(stranger) {
		if strings.Contains(m.Subject, "no longer receives") {
			removals++
		} else {
			codes++
		}
	}
	if removals != 0 {
		t.Errorf("an address never confirmed as a factor got %d removal notices (and %d codes) in one hour; want none", removals, codes)
	}
}

// Severity: low. The lock notice (login.go, recordFailure) goes to any
// account that exists, a deactivated one too: wrong passwords for a
// deactivated user lock the account and mail "Your account was locked
// … change it once you can sign in again, and tell your administrator"
// to someone who can no longer sign in at all (a person who left, whose
// mailbox may be forwarded). ForgotPassword deliberately mails nothing
// to a deactivated account (reason deactivated). Expected: no notice
// to a deactivated account.
func TestAuditNotice_LockNoticeToDeactivatedAccount(t *testing.T) {
	f := newMFAFixture(t)
	u := f.createUser(t, adaEmail, ownerPW)
	if err := f.g.DeactivateUser(f.ctx, guard.System("test"), tenantID, u.ID); err != nil {
		t.Fatal(err)
	}
	before := len(f.mailTo(adaEmail))
	for range 6 {
		if _, err := f.login(adaEmail, "wrong password"); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("Login = %v", err)
		}
	}
	if n := len(f.events(t, audit.LoginLocked)); n == 0 {
		t.Fatalf("no login.locked event: the premise does not hold")
	}
	for _, m := range f.mailTo(adaEmail)[before:] {
		t.Errorf("deactivated account mailed %q", m.Subject)
	}
}

// Severity: low. BeginOOB whose code cannot be sent (the provider is
// down) returns ErrUnavailable, but nothing is on record: the factor is
// stored pending by mfa.Manager.BeginOOB (voiding an earlier pending one
// of its kind), the send fails, and the facade (mfaflow.go, BeginOOB:
// "if err != nil { return …, mfaErr(…) }") returns before recording
// mfa.enrol_started or any failure. SendLoginCode records the same
// provider failure as mfa.failed (reason unavailable), and the package
// promises every MFA step is audited. Expected: a failed record of the
// enrolment (mfa.enrol_started or mfa.failed, reason unavailable).
func TestAuditNotice_EnrolmentSendFailureUnrecorded(t *testing.T) {
	fm := &failingMail{outbox: &outbox{}}
	fm.down.Store(true)
	f := newMFAFixture(t, func(c *guard.Config) { c.MFA.Email = fm })
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	_, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, "ada.other@example.test", "")
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("BeginOOB with the provider down = %v, want ErrUnavailable", err)
	}
	var recorded []audit.Event
	for _, a := range []audit.Action{audit.MFAEnrolStarted, audit.MFAFailed} {
		recorded = append(recorded, f.events(t, a)...)
	}
	if len(recorded) == 0 {
		t.Error("an enrolment whose code could not be sent left no mfa.enrol_started or mfa.failed record")
	}
	for _, e := range recorded {
		if e.Outcome == audit.Success {
			t.Errorf("recorded %s as a success", e.Action)
		}
	}
}

// Severity: low. A sign-in that has proved only the password gets
// LoginResult.Pending.Factors, the user's confirmed factors as
// mfa.Factor values with Destination in full (login.go, pend): the whole
// phone number of an SMS factor and the whole address of an email
// factor, handed to whoever holds the password, before any second
// factor. The mfa package masks the default label for this reason
// ("Phone ending 0123": "without showing all of the destination"), but
// the facade passes the destination itself. A stolen password thus
// yields the number to SIM-swap or port, the one thing that stands
// between it and the account. Expected: the pending sign-in's factors
// do not carry the full destination (empty, or masked as the label is).
func TestAuditNotice_PendingSignInRevealsDestination(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	sms, err := f.g.BeginOOB(f.ctx, p, mfa.KindSMS, "+447700900123", "")
	if err == nil {
		_, err = f.g.ConfirmFactor(f.ctx, p, sms.ID, f.out.lastSMSCode(t))
	}
	if err != nil {
		t.Fatalf("enrolling an SMS factor: %v", err)
	}
	pend := f.pending(t, adaEmail, ownerPW)
	for _, fa := range pend.Factors {
		if strings.Contains(fa.Destination, "7700900123") || strings.Contains(fa.Label, "7700900123") {
			t.Errorf("a sign-in with only the password sees factor %q: destination %q, label %q", fa.ID, fa.Destination, fa.Label)
		}
	}
}
