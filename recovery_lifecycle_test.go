package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// legacyCodes gives userID a set of recovery codes straight through the
// MFA stores, as an older Guard could leave a user without a confirmed
// factor (RegenerateRecoveryCodes made them then), and returns it.
func (f *mfaFixture) legacyCodes(t testing.TB, userID string) []string {
	t.Helper()
	kr, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")}, Current: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mfa.New(mfa.Config{Stores: f.mem.Stores().MFA, Keyring: kr, Issuer: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	codes, err := m.GenerateRecoveryCodes(f.ctx, tenantID, userID)
	if err != nil || len(codes) == 0 {
		t.Fatalf("legacy recovery codes = %d, %v", len(codes), err)
	}
	return codes
}

// Severity: medium. RegenerateRecoveryCodes made a set for a user with no
// confirmed factor: codes that protect nothing (the sign-in asks for no
// second step), proved by the password alone, and the very codes a first
// factor then had to void (RC-1). It is refused now, as other MFA
// self-service calls refuse their input: an *InputError, recorded as a
// failed mfa.recovery_regenerated (reason bad_input), nothing changed.
func TestRegenerateRecoveryCodesNeedsAConfirmedFactor(t *testing.T) {
	refused := func(t *testing.T, f *mfaFixture, p guard.Principal, left int) {
		t.Helper()
		codes, err := f.g.RegenerateRecoveryCodes(f.ctx, p)
		var ie *guard.InputError
		if !errors.As(err, &ie) || len(codes) != 0 {
			t.Fatalf("RegenerateRecoveryCodes without a confirmed factor = %d codes, %v, want an *InputError", len(codes), err)
		}
		if r, err := f.g.RecoveryCodesLeft(f.ctx, p); err != nil || r.Left != left {
			t.Errorf("recovery codes left after the refusal = %d, %v, want %d", r.Left, err, left)
		}
		evs := f.events(t, audit.RecoveryReset)
		if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != guard.ReasonBadInput || evs[0].Target != p.UserID {
			t.Fatalf("%s events %+v, want one failure, reason bad_input, naming the user", audit.RecoveryReset, evs)
		}
	}

	t.Run("no factor", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		refused(t, f, p, 0)
	})

	t.Run("a pending factor only", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		if _, err := f.g.BeginTOTP(f.ctx, p, "Phone"); err != nil {
			t.Fatal(err)
		}
		refused(t, f, p, 0)
	})

	t.Run("codes from before", func(t *testing.T) {
		// A set an older Guard made stays as it is: the refusal changes
		// nothing (the first factor voids it).
		f := newMFAFixture(t)
		u := f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		f.legacyCodes(t, u.ID)
		refused(t, f, p, 10)
	})
}
