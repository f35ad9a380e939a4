package auth_test

import (
	"net/http"
	"testing"

	"github.com/guardhq/guard/auth"
)

// Audit of the CAPTCHA axis in auth (the Siteverify verifier): each test
// fails on the code as it stands because of the defect it names.

// Severity: low.
// Siteverify fails closed on "any doubt (... a malformed reply)"
// (CaptchaVerifier) and refuses anything but one siteverify object
// (TestSiteverifyFailsClosed: a second object after it, an array). But
// judge decodes one value and asks dec.More(), which is false before a
// closing bracket or brace: a reply of the object followed by "]" or "}"
// (not JSON) is accepted. encoding/json also matches keys without regard
// to case and lets the last duplicate win, so {"success": false, ...,
// "Success": true} (two answers, the last one not the protocol's key) is
// a pass. Expected: CaptchaMalformed for both (decode the whole body
// strictly: one object, nothing after it but white space, the
// protocol's keys only as the protocol spells them, no duplicates).
func TestAuditCaptcha_CAPTCHA5_MalformedReplyAccepted(t *testing.T) {
	for _, tc := range []struct{ name, reply string }{
		{"TrailingBracket", hcaptchaOK + `]`},
		{"TrailingBrace", hcaptchaOK + ` }`},
		{"ContradictorySuccess", `{"success": false, "hostname": "app.example.com", "Success": true}`},
		{"DuplicateSuccess", `{"success": false, "hostname": "app.example.com", "success": true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := captchaServer(t, http.StatusOK, tc.reply)
			err := newSiteverify(t, srv, nil).Verify(t.Context(), captchaToken, "203.0.113.9")
			if err == nil {
				t.Fatalf("Verify of the reply %q = nil (a pass), want a CaptchaMalformed refusal", tc.reply)
			}
			wantCaptcha(t, err, auth.CaptchaMalformed)
		})
	}
}
