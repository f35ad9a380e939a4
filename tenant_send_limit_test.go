package guard_test

import (
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// The tenant's send limit (mfa.SendLimits.PerTenant) holds back every
// send path of the facade alike, enrolment codes and sign-in codes: the
// caller gets the answer of a real send, no code goes out, and the
// refusal is on record as mfa.code_suppressed, reason tenant_limit.
func TestTenantSendLimitRecorded(t *testing.T) {
	const addr = "ada.codes@example.test"
	f := newMFAFixture(t, func(c *guard.Config) { c.MFA.Limits = mfa.SendLimits{PerTenant: 3} })
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	fa := f.enrolEmail(t, p, addr) // the tenant's first code
	for range 3 {                  // two more, then one past the limit
		if err := f.g.SendLoginCode(f.ctx, f.pending(t, adaEmail, ownerPW).Token, fa.ID, "203.0.113.5", "test"); err != nil {
			t.Fatalf("SendLoginCode: %v", err)
		}
	}
	sms, err := f.g.BeginOOB(f.ctx, p, mfa.KindSMS, "+447700900123", "")
	if err != nil || sms.ID == "" {
		t.Fatalf("BeginOOB past the tenant's limit = %+v, %v; want the answer of a real send", sms, err)
	}

	f.out.mu.Lock()
	codes := 0
	for _, m := range f.out.mail {
		if m.To == addr && digits6.MatchString(m.Text) {
			codes++
		}
	}
	texts := len(f.out.sms)
	f.out.mu.Unlock()
	if codes != 3 || texts != 0 {
		t.Errorf("%d codes mailed and %d texts sent, want the tenant's limit, 3, and no text", codes, texts)
	}
	if n := len(f.events(t, audit.MFACodeSent)); n != 3 {
		t.Errorf("%d mfa.code_sent events, want 3", n)
	}
	evs := f.events(t, audit.MFACodeSuppressed)
	if r := reasons(evs); len(evs) != 2 || r[guard.ReasonTenantLimit] != 2 {
		t.Fatalf("mfa.code_suppressed reasons %v, want two tenant_limit (a sign-in code, an enrolment code)", r)
	}
	if last := evs[len(evs)-1]; last.Target != sms.ID || last.Meta["kind"] != string(mfa.KindSMS) {
		t.Errorf("the enrolment's suppression: target %q, Meta %v; want the pending factor %q, kind sms", last.Target, last.Meta, sms.ID)
	}
}
