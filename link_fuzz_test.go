package guard_test

import (
	"errors"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
)

// linkFuzzFixture is an mfaFixture with Ada holding an outstanding reset
// link and an email-change link (neither given to the fuzzer), for the
// fuzz tests of the mailed links' inputs. check fails the input if the
// call's answer is not a refusal, or if Ada's account changed.
func linkFuzzFixture(f *testing.F) (fx *mfaFixture, adaID string, check func(t *testing.T, err error, invalid error)) {
	fx = newMFAFixture(f)
	ada := fx.createUser(f, adaEmail, ownerPW)
	fx.forgot(f, adaEmail)
	_, p := fx.signIn(f, adaEmail, ownerPW)
	fx.requestChange(f, p, newAdaEmail)
	before, err := fx.g.User(fx.ctx, guard.System("test"), tenantID, ada.ID)
	if err != nil {
		f.Fatal(err)
	}
	return fx, ada.ID, func(t *testing.T, err error, invalid error) {
		t.Helper()
		var ie *guard.InputError
		if err == nil || !(errors.Is(err, invalid) || errors.As(err, &ie)) {
			t.Fatalf("a made-up link was answered %v, want %v or an *InputError", err, invalid)
		}
		u, uerr := fx.g.User(fx.ctx, guard.System("test"), tenantID, ada.ID)
		if uerr != nil || u != before {
			t.Fatalf("a made-up link changed the account: %+v, %v; was %+v", u, uerr, before)
		}
	}
}

// FuzzResetPasswordLink: whatever a reset link's parameters and the
// request's client fields are, a link Guard did not mail never sets a
// password and never panics: the answer is ErrInvalidResetToken or an
// *InputError, and the account stays as it was.
func FuzzResetPasswordLink(f *testing.F) {
	fx, adaID, check := linkFuzzFixture(f)
	for _, s := range [][5]string{
		{tenantID, adaID, bogusToken, "198.51.100.9", "Mozilla/5.0"},
		{tenantID, adaID, bogusToken + "A", "", ""},
		{tenantID, adaID, strings.Repeat("_", 43), "198.51.100.9", "\xff"},
		{tenantID, "0123456789abcdef0123456789abcdef", bogusToken, "::1", "curl"},
		{"no-such-tenant", adaID, bogusToken, "198.51.100.9", "a\nb"},
		{"", "", "", "", ""},
		{"Acme", adaID + "\x00", "tok\xff", strings.Repeat("1", 65), strings.Repeat("u", 1025)},
	} {
		f.Add(s[0], s[1], s[2], "an entirely new passphrase", s[3], s[4])
	}
	f.Add(tenantID, adaID, bogusToken, strings.Repeat("p", guard.MaxPasswordBytes+1), "198.51.100.9", "ua")
	f.Fuzz(func(t *testing.T, tenant, user, token, password, ip, ua string) {
		err := fx.g.ResetPassword(fx.ctx, guard.ResetRequest{Tenant: tenant, UserID: user, Token: token,
			NewPassword: password, IP: ip, UserAgent: ua})
		check(t, err, guard.ErrInvalidResetToken)
	})
}

// FuzzConfirmEmailChangeLink: the same for an email-change link: a link
// Guard did not mail never changes the address (nor anything else) and
// never panics; the answer is ErrInvalidEmailChange or an *InputError.
func FuzzConfirmEmailChangeLink(f *testing.F) {
	fx, adaID, check := linkFuzzFixture(f)
	for _, s := range [][6]string{
		{tenantID, adaID, newAdaEmail, bogusToken, "198.51.100.9", "Mozilla/5.0"},
		{tenantID, adaID, strings.ToUpper(newAdaEmail), bogusToken, "", ""},
		{tenantID, adaID, adaEmail, bogusToken, "198.51.100.9", "\xff"},
		{tenantID, adaID, "not an address", bogusToken, "::1", "curl"},
		{tenantID, adaID, "a\x00@example.test", strings.Repeat("-", 43), "::1", "curl"},
		{tenantID, "0123456789abcdef0123456789abcdef", newAdaEmail, bogusToken, "::1", "curl"},
		{"no-such-tenant", adaID, newAdaEmail, bogusToken, "198.51.100.9", "a\tb"},
		{"", "", "", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5])
	}
	f.Fuzz(func(t *testing.T, tenant, user, email, token, ip, ua string) {
		err := fx.g.ConfirmEmailChange(fx.ctx, guard.EmailChangeConfirm{Tenant: tenant, UserID: user, Email: email,
			Token: token, IP: ip, UserAgent: ua})
		check(t, err, guard.ErrInvalidEmailChange)
	})
}
