package sso

import (
	"testing"
	"time"

	"github.com/beevik/etree"
)

// An assertion may carry several AuthnStatements, and the Result must
// honour all of them: the SP session must not outlive the earliest
// SessionNotOnOrAfter of any (SECURITY-CHECKLIST SAML-50), the sign-in is
// multi-factor only if every statement says so, and the authentication is
// as old as the oldest AuthnInstant.
func TestResultReadsEveryAuthnStatement(t *testing.T) {
	k := loadKeys(t)
	limit := t0.Add(10 * time.Minute)
	older := t0.Add(-10 * time.Minute)
	for _, tc := range []struct {
		name                     string
		classRef                 string            // of the first statement; "": PasswordProtectedTransport
		first, second            map[string]string // attributes set on each statement
		secondRef                string            // the second's AuthnContextClassRef; "": as the first
		wantSession, wantInstant time.Time         // zero: not checked
		wantMFA                  bool
	}{
		{name: "SessionNotOnOrAfter of the second only",
			second:      map[string]string{"SessionNotOnOrAfter": limit.Format(time.RFC3339)},
			wantSession: limit},
		{name: "the earliest SessionNotOnOrAfter",
			first:       map[string]string{"SessionNotOnOrAfter": limit.Add(time.Hour).Format(time.RFC3339)},
			second:      map[string]string{"SessionNotOnOrAfter": limit.Format(time.RFC3339)},
			wantSession: limit},
		{name: "the earliest AuthnInstant",
			second:      map[string]string{"AuthnInstant": older.Format(time.RFC3339)},
			wantInstant: older},
		{name: "MFA in every statement", classRef: samlMFA, wantMFA: true},
		{name: "MFA in the first only", classRef: samlMFA, secondRef: password},
		{name: "MFA in the second only", secondRef: samlMFA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Connection) { c.MFAAuthnContexts = []string{samlMFA} })
			e.track(requestID, relayState)
			s := valid()
			s.classRef = tc.classRef
			s.editAssertion = func(a *etree.Element) {
				first := a.SelectElement("AuthnStatement")
				if first == nil {
					t.Fatal("the assertion has no AuthnStatement")
				}
				second := first.Copy()
				second.RemoveAttr("SessionIndex")
				for k, v := range tc.first {
					first.CreateAttr(k, v)
				}
				for k, v := range tc.second {
					second.CreateAttr(k, v)
				}
				if tc.secondRef != "" {
					ref := second.FindElement("./AuthnContext/AuthnContextClassRef")
					if ref == nil {
						t.Fatal("the AuthnStatement has no AuthnContextClassRef")
					}
					ref.SetText(tc.secondRef)
				}
				a.InsertChildAt(first.Index()+1, second)
			}
			res, err := e.post(s.build(k), relayState)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.wantSession.IsZero() && !res.SessionNotOnOrAfter.Equal(tc.wantSession) {
				t.Errorf("SessionNotOnOrAfter = %v; want %v", res.SessionNotOnOrAfter, tc.wantSession)
			}
			if !tc.wantInstant.IsZero() && !res.AuthnInstant.Equal(tc.wantInstant) {
				t.Errorf("AuthnInstant = %v; want %v", res.AuthnInstant, tc.wantInstant)
			}
			if res.MFA != tc.wantMFA {
				t.Errorf("MFA = %v (AuthnContext %q); want %v", res.MFA, res.AuthnContext, tc.wantMFA)
			}
		})
	}
}
