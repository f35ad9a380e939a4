package mfa_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/guardhq/guard/mfa"
)

// secret32 is 20 bytes in base32.
const secret32 = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     mfa.URI // zero Account: refused
	}{
		{"Minimal", "otpauth://totp/alice@example.com?secret=" + secret32,
			mfa.URI{Account: "alice@example.com", Algorithm: "SHA1", Digits: 6, Period: 30}},
		{"LabelIssuer", "otpauth://totp/Example:alice@example.com?secret=" + secret32 + "&issuer=Example",
			mfa.URI{Issuer: "Example", Account: "alice@example.com", Algorithm: "SHA1", Digits: 6, Period: 30}},
		{"ParamIssuerOnly", "otpauth://totp/alice?secret=" + secret32 + "&issuer=ACME%20Co",
			mfa.URI{Issuer: "ACME Co", Account: "alice", Algorithm: "SHA1", Digits: 6, Period: 30}},
		{"EncodedLabel", "otpauth://totp/ACME%20Co:%20%20john.doe%40email.com?secret=" + secret32 + "&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60",
			mfa.URI{Issuer: "ACME Co", Account: "john.doe@email.com", Algorithm: "SHA256", Digits: 8, Period: 60}},
		{"LowerCaseSecretPadded", "otpauth://totp/a?secret=" + strings.ToLower(secret32) + "====&algorithm=sha512",
			mfa.URI{Account: "a", Algorithm: "SHA512", Digits: 6, Period: 30}},
		{"UnknownParamIgnored", "otpauth://totp/a?secret=" + secret32 + "&image=https%3A%2F%2Fx",
			mfa.URI{Account: "a", Algorithm: "SHA1", Digits: 6, Period: 30}},
		{"Unicode", "otpauth://totp/%C3%89cole:z%C3%B6e?secret=" + secret32,
			mfa.URI{Issuer: "École", Account: "zöe", Algorithm: "SHA1", Digits: 6, Period: 30}},
		{"TrimmedSpaces", "  otpauth://totp/a?secret=" + secret32 + "\n",
			mfa.URI{Account: "a", Algorithm: "SHA1", Digits: 6, Period: 30}},

		{"Empty", "", mfa.URI{}},
		{"NotAURI", "%zz", mfa.URI{}},
		{"HTTP", "https://totp/a?secret=" + secret32, mfa.URI{}},
		{"HOTP", "otpauth://hotp/a?secret=" + secret32 + "&counter=1", mfa.URI{}},
		{"OtherType", "otpauth://steam/a?secret=" + secret32, mfa.URI{}},
		{"Opaque", "otpauth:totp/a?secret=" + secret32, mfa.URI{}},
		{"UserInfo", "otpauth://x@totp/a?secret=" + secret32, mfa.URI{}},
		{"Port", "otpauth://totp:1/a?secret=" + secret32, mfa.URI{}},
		{"Fragment", "otpauth://totp/a?secret=" + secret32 + "#x", mfa.URI{}},
		{"NoLabel", "otpauth://totp?secret=" + secret32, mfa.URI{}},
		{"EmptyAccount", "otpauth://totp/Issuer:?secret=" + secret32, mfa.URI{}},
		{"TwoColons", "otpauth://totp/a:b:c?secret=" + secret32, mfa.URI{}},
		{"ControlInAccount", "otpauth://totp/a%0Ab?secret=" + secret32, mfa.URI{}},
		{"NULInIssuer", "otpauth://totp/a?secret=" + secret32 + "&issuer=x%00", mfa.URI{}},
		{"InvalidUTF8", "otpauth://totp/a%FF?secret=" + secret32, mfa.URI{}},
		{"TrailingSpaceAccount", "otpauth://totp/a%20?secret=" + secret32, mfa.URI{}},
		{"IssuerMismatch", "otpauth://totp/A:a?secret=" + secret32 + "&issuer=B", mfa.URI{}},
		{"ColonInIssuerParam", "otpauth://totp/a?secret=" + secret32 + "&issuer=B:C", mfa.URI{}},
		{"NoSecret", "otpauth://totp/a", mfa.URI{}},
		{"EmptySecret", "otpauth://totp/a?secret=", mfa.URI{}},
		{"SecretNotBase32", "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP1890JBSW", mfa.URI{}},
		{"SecretSpaces", "otpauth://totp/a?secret=JBSW%20Y3DP%20EHPK%203PXP%20JBSW%20Y3DP", mfa.URI{}},
		{"Secret80Bits", "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP", mfa.URI{}},
		{"SecretTooLong", "otpauth://totp/a?secret=" + strings.Repeat("A", 200), mfa.URI{}},
		{"RepeatedSecret", "otpauth://totp/a?secret=" + secret32 + "&secret=" + secret32, mfa.URI{}},
		{"RepeatedIssuer", "otpauth://totp/a?secret=" + secret32 + "&issuer=x&issuer=x", mfa.URI{}},
		{"MD5", "otpauth://totp/a?secret=" + secret32 + "&algorithm=MD5", mfa.URI{}},
		{"Digits7", "otpauth://totp/a?secret=" + secret32 + "&digits=7", mfa.URI{}},
		{"Digits06", "otpauth://totp/a?secret=" + secret32 + "&digits=06", mfa.URI{}},
		{"Period0", "otpauth://totp/a?secret=" + secret32 + "&period=0", mfa.URI{}},
		{"Period030", "otpauth://totp/a?secret=" + secret32 + "&period=030", mfa.URI{}},
		{"PeriodNegative", "otpauth://totp/a?secret=" + secret32 + "&period=-30", mfa.URI{}},
		{"PeriodHuge", "otpauth://totp/a?secret=" + secret32 + "&period=99999999999999999999", mfa.URI{}},
		{"Semicolon", "otpauth://totp/a?secret=" + secret32 + ";digits=8", mfa.URI{}},
		{"BadEscape", "otpauth://totp/a?secret=" + secret32 + "&issuer=%zz", mfa.URI{}},
		{"10KB", "otpauth://totp/a?secret=" + secret32 + "&x=" + strings.Repeat("a", 10<<10), mfa.URI{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mfa.ParseURI(tc.in)
			if tc.want.Account == "" {
				var ue *mfa.URIError
				if !errors.As(err, &ue) {
					t.Fatalf("ParseURI = %+v, %v; want a *URIError", got, err)
				}
				if strings.Contains(err.Error(), secret32[:16]) {
					t.Errorf("error %q echoes the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURI: %v", err)
			}
			if len(got.Secret) != 20 {
				t.Errorf("secret of %d bytes, want 20", len(got.Secret))
			}
			tc.want.Secret = got.Secret
			if !sameURI(got, tc.want) {
				t.Errorf("ParseURI = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestURIStringRoundTrip(t *testing.T) {
	for _, k := range []mfa.URI{
		{Issuer: "ACME Co", Account: "john.doe@example.com", Secret: bytes.Repeat([]byte{0xa5}, 20), Algorithm: "SHA1", Digits: 6, Period: 30},
		{Account: "a/b?c#d%e&f=g+h", Secret: bytes.Repeat([]byte{1}, 14), Algorithm: "SHA512", Digits: 8, Period: 300},
		{Issuer: "É & Co/?#", Account: "zöe ü", Secret: bytes.Repeat([]byte{0xff}, 64), Algorithm: "SHA256", Digits: 6, Period: 1},
	} {
		s := k.String()
		if !strings.HasPrefix(s, "otpauth://totp/") {
			t.Errorf("String() = %q", s)
		}
		got, err := mfa.ParseURI(s)
		if err != nil {
			t.Errorf("ParseURI(%q): %v", s, err)
			continue
		}
		if !sameURI(got, k) {
			t.Errorf("round trip of %+v gave %+v", k, got)
		}
		// pquerna/otp reads what we write.
		key, err := otp.NewKeyFromURL(s)
		if err != nil || key.Issuer() != k.Issuer || key.AccountName() != k.Account {
			t.Errorf("pquerna reads %q as issuer %q account %q (%v)", s, key.Issuer(), key.AccountName(), err)
		}
	}
}

func sameURI(a, b mfa.URI) bool {
	return a.Issuer == b.Issuer && a.Account == b.Account && bytes.Equal(a.Secret, b.Secret) &&
		a.Algorithm == b.Algorithm && a.Digits == b.Digits && a.Period == b.Period
}

func TestParseURIOfPquernaKeys(t *testing.T) {
	// What pquerna/otp generates (and so what authenticator apps are
	// given) parses back to the same key.
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "Guard Example", AccountName: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := mfa.ParseURI(key.URL())
	if err != nil {
		t.Fatalf("ParseURI(%s): %v", key.URL(), err)
	}
	if got.Issuer != key.Issuer() || got.Account != key.AccountName() || got.Digits != 6 || got.Period != 30 {
		t.Errorf("ParseURI = %+v", got)
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"otpauth://totp/Example:alice@example.com?secret=" + secret32 + "&issuer=Example",
		"otpauth://totp/ACME%20Co:%20john?secret=" + secret32 + "&algorithm=SHA256&digits=8&period=60",
		"otpauth://totp/a?secret=" + strings.ToLower(secret32) + "==",
		"otpauth://hotp/a?secret=" + secret32,
		"otpauth://totp/a:b:c?secret=" + secret32,
		"otpauth://totp/%C3%89:z?secret=" + secret32 + "&issuer=%C3%89",
		"otpauth://totp/a?secret=" + secret32 + "&secret=" + secret32,
		"otpauth://totp/a%00?secret=" + secret32,
		"otpauth://totp:80/a?secret=" + secret32,
		"otpauth://totp/a?secret=" + secret32 + "#frag",
		"otpauth:totp",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := mfa.ParseURI(s)
		if err != nil {
			var ue *mfa.URIError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseURI(%q) = %v, want a *URIError", s, err)
			}
			return
		}
		if k.Account == "" || len(k.Secret) < mfa.MinSecretBytes || len(k.Secret) > mfa.MaxSecretBytes ||
			(k.Digits != 6 && k.Digits != 8) || k.Period < 1 || k.Period > 300 {
			t.Fatalf("ParseURI(%q) accepted %+v", s, k)
		}
		// The canonical form parses to the same key.
		again, err := mfa.ParseURI(k.String())
		if err != nil {
			t.Fatalf("ParseURI(String()) of %q = %v (String %q)", s, err, k.String())
		}
		if !sameURI(again, k) {
			t.Fatalf("round trip of %q: %+v then %+v", s, k, again)
		}
	})
}
