package mfa_test

import (
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
)

// Severity: low. A send the provider fails (a *SendError) still spends
// the transaction's resend cool-down (send.go: the "cool" hit comes
// before the send and stays), and it deletes the code for the
// transaction, the earlier one included. So a retry within
// ResendCoolDown (30 s) is suppressed with ErrCoolDown: SendCode says
// Sent false, Suppressed ErrCoolDown, and the facade's SendLoginCode
// answers nil, "as for a real send", while nothing was sent and no code
// for the sign-in exists. SendCode's doc says of a suppressed send that
// "the earlier code stays valid": here there is none. Expected: a send
// that failed does not hold back the next one (or the earlier code stays
// valid).
func TestAuditNotice_FailedSendSpendsCoolDown(t *testing.T) {
	f := newFixture(t)
	fac := f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	txn := f.login(t, "u")
	f.sms.fail = errors.New("gateway down")
	_, err := f.m.SendCode(t.Context(), mfa.SendRequest{Tenant: "t", UserID: "u", FactorID: fac.ID, Txn: txn})
	var se *mfa.SendError
	if !errors.As(err, &se) {
		t.Fatalf("SendCode with the gateway down = %v, want a *SendError", err)
	}
	f.sms.fail = nil
	f.clk.Add(time.Second)
	before := f.sms.count()
	res, err := f.m.SendCode(t.Context(), mfa.SendRequest{Tenant: "t", UserID: "u", FactorID: fac.ID, Txn: txn})
	if err != nil || !res.Sent || f.sms.count() != before+1 {
		t.Errorf("retry once the gateway is back = Sent %v, Suppressed %v, %v (%d sent): no code was sent and none is valid",
			res.Sent, res.Suppressed, err, f.sms.count()-before)
	}
}
