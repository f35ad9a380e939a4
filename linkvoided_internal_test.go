package guard

import (
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

// linkVoided is the one rule of recheckLink, giveBackLink and
// resetConflict: each change that voids a user's links makes a link read
// against the account before it void, and nothing else does.
func TestLinkVoided(t *testing.T) {
	was := auth.User{Tenant: "t1", ID: "u1", Email: "Ada@Example.com", PasswordHash: "$argon2id$a",
		Status: auth.StatusActive, ReactivatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
	for _, tc := range []struct {
		name   string
		change func(u *auth.User)
		want   string
	}{
		{"unchanged", func(*auth.User) {}, ""},
		{"address case and spaces only", func(u *auth.User) { u.Email = " ada@example.COM" }, ""},
		{"reactivated time in another zone", func(u *auth.User) { u.ReactivatedAt = u.ReactivatedAt.In(time.FixedZone("x", 3600)) }, ""},
		{"unrelated field", func(u *auth.User) { u.LastLoginAt = time.Now() }, ""},
		{"address", func(u *auth.User) { u.Email = "eve@example.com" }, ReasonEmailChanged},
		{"password", func(u *auth.User) { u.PasswordHash = "$argon2id$b" }, ReasonPasswordChanged},
		{"deactivated", func(u *auth.User) { u.Status = auth.StatusDeactivated }, ReasonDeactivated},
		{"expiry marked", func(u *auth.User) { u.PasswordExpired = true }, ReasonPasswordExpired},
		{"reactivated since", func(u *auth.User) { u.ReactivatedAt = u.ReactivatedAt.Add(time.Microsecond) }, ReasonDeactivated},
	} {
		now := was
		tc.change(&now)
		if got := linkVoided(was, now); got != tc.want {
			t.Errorf("%s: linkVoided = %q, want %q", tc.name, got, tc.want)
		}
	}
	// A mark cleared since the read (an ExpirePassword undone) voids too.
	marked := was
	marked.PasswordExpired = true
	if got := linkVoided(marked, was); got != ReasonPasswordExpired {
		t.Errorf("expiry cleared: linkVoided = %q, want %q", got, ReasonPasswordExpired)
	}
}
