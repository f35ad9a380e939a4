package guard_test

import (
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
)

// The notice of a recovery code's use says what happened: a sign-in that
// completed, or one that did not (the code is spent all the same), and
// how many codes are left in plain English ("1 is left", "none are
// left"). It used to say "was just used to sign in" of a sign-in that
// failed, and "1 are left".
func TestRecoveryCodeNoticeText(t *testing.T) {
	// The first code is spent on a sign-in that another request completes.
	f, codes := recoveryCodeLosingRace(t)
	f.g.Close() // waits for the notices
	m := f.out.lastMailWith(t, "recovery codes")
	if strings.Contains(m.Text, "to sign in") || !strings.Contains(m.Text, "did not complete") || !strings.Contains(m.Text, "9 are left") {
		t.Errorf("notice of a code spent on a failed sign-in: %q", m.Text)
	}

	// The others sign in, down to the last.
	for i, c := range codes[1:] {
		pend := f.pending(t, "ann@acme.test", ownerPW)
		if _, err := f.complete(guard.MethodRecovery, pend.Token, c); err != nil {
			t.Fatalf("sign-in with recovery code %d: %v", i+1, err)
		}
		f.g.Close()
		left := len(codes) - i - 2
		want := map[int]string{1: "1 is left", 0: "none are left"}[left]
		if want == "" {
			continue
		}
		m := f.out.lastMailWith(t, "recovery codes")
		if !strings.Contains(m.Text, "used to sign in") || !strings.Contains(m.Text, want) || strings.Contains(m.Text, "1 are") {
			t.Errorf("notice with %d codes left: %q, want %q", left, m.Text, want)
		}
	}
}
