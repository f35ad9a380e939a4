package guard_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// wantRecordingPausedMarked makes refusalRecordMax+1 refusals with
// refuse at one time of clock c, then as many again a minute later, and
// expects each refused with want and, of the events of that kind
// (events, in the order recorded), exactly the last one recorded in each
// minute, the refusalRecordMax-th, to carry Meta recording_paused
// "true": an auditor reading the log then knows that refusals of that
// kind in the minute after it may have gone unrecorded.
func wantRecordingPausedMarked(t *testing.T, c *clock, want error, refuse func(i int) error, events func() []audit.Event) {
	t.Helper()
	before := len(events())
	for round := range 2 {
		for i := range refusalRecordMax + 1 {
			if err := refuse(i); !errors.Is(err, want) {
				t.Fatalf("minute %d, refusal %d: %v, want %v", round+1, i+1, err, want)
			}
		}
		c.Advance(time.Minute)
	}
	got := events()[before:]
	if len(got) != 2*refusalRecordMax {
		t.Fatalf("%d refusals in two minutes left %d records, want %d", 2*(refusalRecordMax+1), len(got), 2*refusalRecordMax)
	}
	for i, e := range got {
		paused := i%refusalRecordMax == refusalRecordMax-1
		if v, ok := e.Meta["recording_paused"]; ok != paused || (paused && v != "true") {
			t.Errorf("record %d of its minute: Meta recording_paused = %q (set %v), want set only on record %d, to \"true\"",
				i%refusalRecordMax+1, v, ok, refusalRecordMax)
		}
	}
}

// The last refusal of a kind recorded before the cap holds (the 30th in
// a minute) said nothing of the refusals left unrecorded after it: the
// log looked as if the loop had stopped. It now carries Meta
// recording_paused, for reset links (a user's count) as for refused SAML
// responses (the tenant's).
func TestRefusalCapMarksLastRecorded(t *testing.T) {
	t.Run("ResetLink", func(t *testing.T) {
		f := newMFAFixture(t)
		ada := f.createUser(t, "ada@example.test", ownerPW)
		refuse := func(i int) error {
			return f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: tenantID, UserID: ada.ID,
				Token: strings.Repeat(string(rune('a'+i%26)), 43), NewPassword: "an entirely new passphrase", IP: "203.0.113.5"})
		}
		events := func() []audit.Event {
			var out []audit.Event
			for _, e := range f.events(t, audit.PasswordReset) {
				if e.Target == ada.ID && e.Outcome == audit.Failure {
					out = append(out, e)
				}
			}
			return out
		}
		wantRecordingPausedMarked(t, f.clock, guard.ErrInvalidResetToken, refuse, events)
	})
	t.Run("SSOResponse", func(t *testing.T) {
		s, c := newClockedSSOSite(t)
		sp, err := s.g.SSOServiceProvider(tenantID)
		if err != nil {
			t.Fatal(err)
		}
		refuse := func(int) error {
			_, _, err := s.g.CompleteSSO(t.Context(), guard.SSOResponse{Tenant: tenantID,
				Request: postForm(sp.ACSURL, url.Values{"SAMLResponse": {"not base64!"}}), IP: "203.0.113.5"})
			return err
		}
		events := func() []audit.Event { return s.events(t, audit.SSOFailed) }
		wantRecordingPausedMarked(t, c, guard.ErrSSOFailed, refuse, events)
	})
}
