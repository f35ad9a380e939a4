package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/mfa"
)

// A BeginOOB whose code cannot be sent (the provider is down) changes
// nothing: the email factor the user began before it stays pending, and
// the code mailed for it still confirms it.
func TestBeginOOBSendFailedKeepsEarlierPending(t *testing.T) {
	fm := &failingMail{outbox: &outbox{}}
	f, p := signedInWithCodeMail(t, fm)
	const first, second = "ada.first@example.test", "ada.second@example.test"
	fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, first, "")
	if err != nil {
		t.Fatal(err)
	}
	code := fm.lastCodeTo(t, first)
	fm.down.Store(true)
	if _, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, second, ""); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("BeginOOB with the provider down = %v, want ErrUnavailable", err)
	}
	fm.down.Store(false)
	if fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID); err != nil || len(fs) != 1 || fs[0].ID != fa.ID {
		t.Errorf("factors after the failed begin = %+v, %v; want only the first, pending", fs, err)
	}
	if _, err := f.g.ConfirmFactor(f.ctx, p, fa.ID, code); err != nil {
		t.Errorf("ConfirmFactor of the earlier enrolment with its code after a failed begin: %v", err)
	}
}
