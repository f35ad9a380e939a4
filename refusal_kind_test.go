package guard_test

import (
	"errors"
	"net/url"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// ssoRefusals counts the tenant's sso.failed events of sign-in (no Meta
// step) whose reason is not junk.
func (s *ssoSite) ssoRefusals(t *testing.T, junk string) int {
	return s.failedSSOWhere(t, func(e audit.Event) bool { return e.Meta["step"] == "" && e.Reason != junk })()
}

// A flood of junk posted to the ACS, which anyone can send, does not
// silence the record of a refusal only a real assertion can cause: a
// captured response replayed after the flood is still on record (its
// request used up: reason request_unknown; replayed without one). The
// bound of recordRefusal counts each reason apart.
func TestCompleteSSOJunkFloodKeepsReplayOnRecord(t *testing.T) {
	s, _, acs, used := aliceSignedInBySSO(t)
	post := func(form url.Values) error {
		_, _, err := s.g.CompleteSSO(t.Context(), guard.SSOResponse{Tenant: tenantID, Request: postForm(acs, form), IP: "203.0.113.5"})
		return err
	}
	for i := range refusalRecordMax + 10 {
		if err := post(url.Values{"SAMLResponse": {"not base64!"}}); !errors.Is(err, guard.ErrSSOFailed) {
			t.Fatalf("junk %d: %v, want ErrSSOFailed", i+1, err)
		}
	}
	if n := s.failedSSO(t, false)(); n != refusalRecordMax {
		t.Errorf("%d junk posts left %d records, want %d", refusalRecordMax+10, n, refusalRecordMax)
	}
	if err := post(used); !errors.Is(err, guard.ErrSSOFailed) {
		t.Fatalf("replayed response: %v, want ErrSSOFailed", err)
	}
	if n := s.ssoRefusals(t, "malformed"); n != 1 {
		t.Errorf("the replayed response after the junk left %d records, want 1: the flood silenced it", n)
	}
}

// A flood of made-up reset links for a user, which anyone who knows the
// user's ID can send, does not silence the record of a real link refused
// because the address changed since it was mailed (the old mailbox using
// it): reason email_changed is counted apart from invalid_token.
func TestResetLinkFloodKeepsEmailChangedOnRecord(t *testing.T) {
	f, ada, link := linkMailedAsEmailChanged(t)
	for i := range refusalRecordMax + 10 {
		err := f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: tenantID, UserID: ada.ID, Token: "short",
			NewPassword: "an entirely new passphrase", IP: "203.0.113.5"})
		if !errors.Is(err, guard.ErrInvalidResetToken) {
			t.Fatalf("made-up link %d: %v", i+1, err)
		}
	}
	f.wantLinkRefused(t, ada.ID, link, guard.ReasonEmailChanged)
}
