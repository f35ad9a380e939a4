package guard_test

import (
	"errors"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// Severity: low. A refusal anyone can repeat (a made-up reset link) is
// recorded 30 times a minute of its kind, the 30th with Meta
// recording_paused; a record that failed counted all the same: when the
// 30th failed, the refusals of the rest of the minute went unrecorded
// with no recording_paused on record to say so. A record that fails no
// longer counts: the next refusal is recorded in its place, and carries
// the mark.
func TestRefusalCapRecordFailedDoesNotCount(t *testing.T) {
	var fa *failingAudit
	f := newMFAFixture(t, func(c *guard.Config) {
		fa = &failingAudit{Audit: c.Stores.Audit.(*memstore.Audit)}
		c.Stores.Audit = fa
	})
	ada := f.createUser(t, "ada@example.test", ownerPW)
	refuse := func(i int) error {
		return f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: tenantID, UserID: ada.ID,
			Token: strings.Repeat(string(rune('a'+i%26)), 43), NewPassword: "an entirely new passphrase", IP: "203.0.113.5"})
	}
	for i := range refusalRecordMax - 1 {
		if err := refuse(i); !errors.Is(err, guard.ErrInvalidResetToken) {
			t.Fatalf("refusal %d: %v, want ErrInvalidResetToken", i+1, err)
		}
	}
	fa.set(true)
	err := refuse(refusalRecordMax - 1)
	fa.set(false)
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("refusal %d, its record failing: %v, want ErrUnavailable", refusalRecordMax, err)
	}
	if err := refuse(refusalRecordMax); !errors.Is(err, guard.ErrInvalidResetToken) {
		t.Fatalf("refusal %d: %v, want ErrInvalidResetToken", refusalRecordMax+1, err)
	}
	var got []audit.Event
	for _, e := range f.events(t, audit.PasswordReset) {
		if e.Target == ada.ID && e.Outcome == audit.Failure {
			got = append(got, e)
		}
	}
	if len(got) != refusalRecordMax {
		t.Fatalf("%d refusals in a minute, one record failing, left %d records, want %d", refusalRecordMax+1, len(got), refusalRecordMax)
	}
	if got[len(got)-1].Meta["recording_paused"] != "true" {
		t.Errorf("the last record of the minute: Meta %v, want recording_paused \"true\"", got[len(got)-1].Meta)
	}
}
