package guard_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// UnlockUser refuses an API key its target created, as it refuses the
// target's own session: whoever holds the key (a leaked CI secret) could
// guess the creator's password through Login until the account locks,
// unlock it with the key, and guess on.
func TestUnlockUserRefusesCreatorsOwnKey(t *testing.T) {
	f := newFixture(t)
	adam, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	key, _ := f.newKey(t, adam, "sync", rbac.Admin)
	kp, err := f.g.AuthenticateAPIKey(f.ctx, key, netip.MustParseAddr("203.0.113.9"))
	if err != nil {
		t.Fatal(err)
	}
	evaluated := 0
	for r := 0; r < 3; r++ {
		for i := 0; i < guard.DefaultAccountLimit.Max; i++ {
			_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "adam@example.test",
				Password: fmt.Sprintf("guess %d-%d", r, i), IP: fmt.Sprintf("198.51.100.%d", r*10+i+1), UserAgent: "test"})
			if !errors.Is(err, guard.ErrInvalidCredentials) {
				t.Fatalf("guess %d-%d: %v", r, i, err)
			}
		}
		err := f.g.UnlockUser(f.ctx, kp, tenantID, adam.UserID)
		if err != nil {
			if !errors.Is(err, guard.ErrForbidden) {
				t.Fatalf("UnlockUser by the creator's own key: %v", err)
			}
			break
		}
		evaluated++
	}
	if evaluated > 0 {
		t.Errorf("the creator's own API key unlocked the creator %d times: the lock no longer bounds guesses of the password", evaluated)
	}
}
