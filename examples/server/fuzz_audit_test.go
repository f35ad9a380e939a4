package main

import (
	"encoding/pem"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	guard "github.com/guardhq/guard"
)

// FUZZ-2: splitPEM is documented to report false "if s holds anything
// else besides white space" than PEM blocks, but pem.Decode skips a
// malformed block (here a certificate whose paste was damaged) to the
// next good one, so the SSO page accepts two pasted metadata signing
// certificates, keeps one, and says nothing about the other.
func TestAuditFuzz_FUZZ2_SplitPEMDropsMalformedBlock(t *testing.T) {
	good := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("DER")}))
	damaged := "-----BEGIN CERTIFICATE-----\nMIIB!!truncated\n-----END CERTIFICATE-----\n"
	out, ok := splitPEM(damaged + good)
	if ok {
		t.Fatalf("splitPEM(damaged block + good block) = %d block(s), true; want false: the damaged block is dropped silently", len(out))
	}
}

// FUZZ-3: the security settings form multiplies the number typed by its
// unit (minutes, hours, days) without checking that the duration can hold
// it, so a number too large wraps around to another duration, which
// Guard then finds valid and saves: 9007199254741022 minutes of
// inactivity (2^53 + 30) is saved as 30 minutes, and the page says
// "Security settings saved."
func TestAuditFuzz_FUZZ3_PolicyFormNumberOverflows(t *testing.T) {
	for _, tc := range []struct{ field, value string }{
		{"idle_minutes", "9007199254741022"},             // 2^53 + 30: 30 minutes
		{"audit_retention_days", "281474976711056"},      // 2^48 + 400: 400 days
		{"lifetime_hours", "153722867280912931"},         // wraps to a negative duration
		{"password_max_age_days", "9223372036854775807"}, // the largest number Atoi reads
	} {
		p, msg := policyFromForm(url.Values{tc.field: {tc.value}}, guard.Policy{})
		if msg == "" {
			t.Errorf("policyFromForm(%s=%s) accepted: %+v; want a message (the number is too large)", tc.field, tc.value, p)
		}
	}
}

// FUZZ-4: setFlash cuts a message longer than 500 bytes at byte 500,
// which may fall inside a character; JSON then turns the broken bytes into
// U+FFFD, and the page shows "�" at the end of the message.
func TestAuditFuzz_FUZZ4_FlashCutsACharacter(t *testing.T) {
	msg := strings.Repeat("a", 499) + "é and more"
	w := httptest.NewRecorder()
	(&app{}).setFlash(w, "error", msg)
	c, _ := cookieFrom(w, flashCookie)
	got := (&app{}).takeFlash(httptest.NewRecorder(), withCookie("/", flashCookie, c.Value))
	if got == nil || !strings.HasPrefix(msg, got.Message) || strings.ContainsRune(got.Message, utf8.RuneError) {
		t.Fatalf("a %d-byte message came back as %+v; want a prefix of it, cut between characters", len(msg), got)
	}
}
