package guard_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// longIP is a client IP no address has, and longer than the audit log
// takes in a field (audit.MaxFieldSize).
var longIP = strings.Repeat("1", 2000)

// isIPInput reports whether err is the *guard.InputError for the IP.
func isIPInput(err error) bool {
	var ie *guard.InputError
	return errors.As(err, &ie) && ie.Field == "IP"
}

// lastBadInput fails unless the newest of evs is a failed event with
// reason bad_input, and returns it.
func lastBadInput(t *testing.T, what string, evs []audit.Event, before int) {
	t.Helper()
	if len(evs) != before+1 {
		t.Errorf("%s: %d new events, want one with reason bad_input", what, len(evs)-before)
		return
	}
	if e := evs[len(evs)-1]; e.Reason != guard.ReasonBadInput || e.Outcome != audit.Failure || len(e.IP) > 64 {
		t.Errorf("%s: recorded reason %q, outcome %s, IP of %d bytes; want bad_input, failure, the IP clipped", what, e.Reason, e.Outcome, len(e.IP))
	}
}

// "Bad input gets a typed, clear error and changes nothing" and "every
// login attempt, failed ones too, is in the audit log": a sign-in with a
// client IP longer than any address is refused with an *InputError for the
// IP, recorded as login.failed with reason bad_input (the IP clipped),
// before the password is evaluated or counted. The audit log refused such
// an IP, so a wrong password used to answer ErrUnavailable, unrecorded,
// though the guess had been evaluated and counted.
func TestLoginRefusesOverlongIP(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, "ann@acme.test", ownerPW)
	for _, pw := range []string{"wrong password here", ownerPW} {
		before := len(f.events(t, audit.LoginFailed))
		_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "ann@acme.test", Password: pw, IP: longIP, UserAgent: "test"})
		if !isIPInput(err) {
			t.Errorf("password %q with an over-long IP: %v, want an *InputError for the IP", pw, err)
		}
		lastBadInput(t, "Login", f.events(t, audit.LoginFailed), before)
	}
	// Neither attempt counted: no failure is left to clear.
	res, err := f.login("ann@acme.test", ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	if res.Token == "" {
		t.Fatal("no session")
	}
	if r := reasons(f.events(t, audit.LoginFailed)); r[guard.ReasonBadPassword] != 0 {
		t.Errorf("the refused attempts evaluated the password: login.failed reasons %v", r)
	}
}

// The same Login refused an over-long user agent with an *InputError, but
// its login.failed event carried the user agent and the audit log refused
// it: ErrUnavailable, unrecorded. The event now carries it clipped.
func TestLoginOverlongUserAgentRecorded(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, "ann@acme.test", ownerPW)
	before := len(f.events(t, audit.LoginFailed))
	_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "ann@acme.test", Password: ownerPW,
		IP: "203.0.113.5", UserAgent: strings.Repeat("u", 1500)})
	var ie *guard.InputError
	if !errors.As(err, &ie) || ie.Field != "user agent" {
		t.Errorf("over-long user agent: %v, want an *InputError for it", err)
	}
	lastBadInput(t, "Login", f.events(t, audit.LoginFailed), before)
}

// The second step of a sign-in (CompleteLogin, and every other call on a
// pending sign-in) checks the IP as Login does: an *InputError, recorded
// as mfa.failed with reason bad_input, and the code is not tried (it still
// works from a well-formed request).
func TestSecondFactorRefusesOverlongIP(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, "ann@acme.test", ownerPW)
	_, p := f.signIn(t, "ann@acme.test", ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	f.clock.Advance(31 * time.Second)
	pend := f.pending(t, "ann@acme.test", ownerPW)
	code := f.code(t, secret)

	before := len(f.events(t, audit.MFAFailed))
	_, err := f.g.CompleteLogin(f.ctx, guard.SecondFactor{Pending: pend.Token, Method: guard.MethodTOTP, Code: code, IP: longIP, UserAgent: "test"})
	if !isIPInput(err) {
		t.Errorf("CompleteLogin with an over-long IP: %v, want an *InputError for the IP", err)
	}
	lastBadInput(t, "CompleteLogin", f.events(t, audit.MFAFailed), before)
	if _, err := f.complete(guard.MethodTOTP, pend.Token, code); err != nil {
		t.Errorf("the code, after the refused request: %v", err)
	}
}

// CompleteSSO checks the IP before the SAML response (which it would use
// up): an *InputError, recorded as sso.failed with reason bad_input. It
// used to check the response and record its refusal with the IP, which
// the audit log refused: ErrUnavailable, unrecorded. StartSSO, whose IP
// keys a throttle, refuses it too.
func TestSSORefusesOverlongIP(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	q := func() int {
		p, err := s.g.QueryAudit(ctx, guard.System("test"), tenantID, audit.Query{Action: string(audit.SSOFailed), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(p.Events)
	}
	before := q()
	r := httptest.NewRequest("POST", "/saml/acme/acs", strings.NewReader("SAMLResponse=x"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, _, err := s.g.CompleteSSO(ctx, guard.SSOResponse{Tenant: tenantID, Request: r, Binding: "b", IP: longIP, UserAgent: "test"})
	if !isIPInput(err) {
		t.Errorf("CompleteSSO with an over-long IP: %v, want an *InputError for the IP", err)
	}
	p, err := s.g.QueryAudit(ctx, guard.System("test"), tenantID, audit.Query{Action: string(audit.SSOFailed), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if q() != before+1 || p.Events[len(p.Events)-1].Reason != guard.ReasonBadInput {
		t.Errorf("CompleteSSO with an over-long IP: sso.failed events %d -> %d, want one more with reason bad_input", before, q())
	}
	if _, err := s.g.StartSSO(ctx, guard.SSOStart{Tenant: tenantID, IP: longIP}); !isIPInput(err) {
		t.Errorf("StartSSO with an over-long IP: %v, want an *InputError for the IP", err)
	}
}
