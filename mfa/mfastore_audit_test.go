package mfa_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/guardhq/guard/mfa"
)

// An email factor's destination is stored and shown (Factor.Destination),
// and when no label is given the label is made from it (defaultLabel)
// without passing checkLabel. checkLabel refuses, for a label that is
// shown, C1 controls, line and paragraph separators and bidirectional
// overrides; auth.CanonicalEmail refuses them in an address too. But
// checkDestination takes whatever net/mail accepts, and net/mail accepts
// any non-ASCII rune in an atom: such an address becomes a factor whose
// destination and label carry those characters (the facade passes an
// address CanonicalEmail refused through as typed, for mfa to refuse).
func TestAuditMFAStore_EmailDestinationWithControlCharacters(t *testing.T) {
	for _, tc := range []struct{ name, dest string }{
		{"BidiOverrideInDomain", "ada@ex\u202eelpmaxe.com"},
		{"BidiOverrideFirstInLocal", "\u202eada@example.com"},
		{"LineSeparatorInDomain", "ada@ex\u2028ample.com"},
		{"C1ControlInDomain", "ada@ex\u0085ample.com"},
		{"BidiIsolateInDomain", "ada@ex\u2067ample.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			fac, res, err := f.m.BeginOOB(t.Context(), mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindEmail, Destination: tc.dest})
			var ie *mfa.InputError
			if !errors.As(err, &ie) {
				t.Errorf("BeginOOB(%q) = factor label %q, sent %v, err %v; want an *InputError for the destination",
					tc.dest, fac.Label, res.Sent, err)
			}
			fs, err := f.m.Factors(t.Context(), "t", "u")
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range fs {
				if unfitToShow(s.Label) || unfitToShow(s.Destination) {
					t.Errorf("stored factor with label %q and destination %q", s.Label, s.Destination)
				}
			}
			if n := f.email.count(); n != 0 {
				t.Errorf("%d message(s) sent to the address", n)
			}
		})
	}
}

// unfitToShow reports whether s holds a character that checkLabel refuses in a
// label shown to users: a C0 or C1 control, a line or paragraph
// separator, a bidirectional embedding, override or isolate.
func unfitToShow(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 || (r >= 0x7f && r < 0xa0) || r == '\u2028' || r == '\u2029' ||
			('\u202a' <= r && r <= '\u202e') || ('\u2066' <= r && r <= '\u2069')
	})
}

// Config.MaxFactors "bounds the confirmed factors of a user" and ErrLimit
// is "the user already has Config.MaxFactors confirmed factors". The
// bound is checked only when a factor is begun (CreateFactor counts the
// confirmed ones), never when it is confirmed: a user below the bound can
// begin one pending factor of each kind (a new one voids only a pending
// factor of its own kind) and then confirm them all, ending above it.
func TestAuditMFAStore_MaxFactorsExceededByConfirmingPendingFactors(t *testing.T) {
	f := newFixture(t, func(c *mfa.Config) { c.MaxFactors = 1 })
	ctx := t.Context()
	e, err := f.m.BeginTOTP(ctx, "t", "u", "ada@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	sms, _, err := f.m.BeginOOB(ctx, mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindSMS, Destination: "+447700900123"})
	if err != nil {
		t.Fatal(err)
	}
	smsCode := f.sms.lastCode(t)
	mail, _, err := f.m.BeginOOB(ctx, mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindEmail, Destination: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	mailCode := f.email.lastCode(t)

	_, err1 := f.m.ConfirmTOTP(ctx, "t", "u", e.Factor.ID, codeAt(t, e.Secret, f.clk.Now()))
	_, err2 := f.m.ConfirmOOB(ctx, "t", "u", sms.ID, smsCode)
	_, err3 := f.m.ConfirmOOB(ctx, "t", "u", mail.ID, mailCode)

	fs, err := f.m.Factors(ctx, "t", "u")
	if err != nil {
		t.Fatal(err)
	}
	confirmed := 0
	for _, x := range fs {
		if x.Confirmed() {
			confirmed++
		}
	}
	if confirmed > 1 {
		t.Errorf("with MaxFactors 1 the user has %d confirmed factors (ConfirmTOTP: %v, ConfirmOOB sms: %v, ConfirmOOB email: %v); "+
			"want at most 1, the later confirmations refused with ErrLimit", confirmed, err1, err2, err3)
	}
	for _, err := range []error{err2, err3} {
		if err != nil && !errors.Is(err, mfa.ErrLimit) {
			t.Errorf("a confirmation beyond MaxFactors = %v, want ErrLimit", err)
		}
	}
}
