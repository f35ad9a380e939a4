package sso

import (
	"testing"

	"github.com/beevik/etree"
)

// An assertion whose Conditions holds a condition the SP does not
// understand (here an extension saml:Condition, a delegation restriction)
// is Indeterminate, and saml-core §2.5.1.1 says it MUST be rejected.
func TestACSRefusesUnknownCondition(t *testing.T) {
	e := newEnv(t, nil)
	e.track(requestID, relayState)
	s := valid()
	s.editAssertion = func(a *etree.Element) {
		c := a.SelectElement("Conditions")
		if c == nil {
			t.Fatal("the assertion has no Conditions")
		}
		cond := c.CreateElement("saml:Condition")
		cond.CreateAttr("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
		cond.CreateAttr("xmlns:del", "urn:oasis:names:tc:SAML:2.0:conditions:delegation")
		cond.CreateAttr("xsi:type", "del:DelegationRestrictionType")
	}
	_, err := e.post(s.build(e.k), relayState)
	wantReason(t, err, ReasonUnsupported)
}
