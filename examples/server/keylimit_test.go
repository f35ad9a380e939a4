package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
)

// A new key past the organisation's bound of live keys
// (guard.Config.MaxAPIKeys) is refused with a sentence that says so and
// what to do, on the keys page with the form as typed, not with "Something
// went wrong".
func TestCreateKeyPastTheLimit(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	now := c.clock.Now()
	for i := range guard.DefaultMaxAPIKeys {
		k := auth.APIKey{Tenant: demoTenant, ID: fmt.Sprintf("bulk%04d", i), Name: "bulk", CreatedBy: "test", CreatedAt: now}
		k.Hash[0], k.Hash[1] = byte(i>>8), byte(i)
		if err := c.con.backend.stores.APIKeys.CreateAPIKey(context.Background(), k, 0); err != nil {
			t.Fatal(err)
		}
	}
	body := refusedAsTyped(t, c, "/keys", url.Values{"name": {"one more"}, "role": {"admin"}, "days": {"30"}}, "name", "days")
	if msg := pageError(body); !strings.Contains(msg, "live API keys") || !strings.Contains(msg, "revoke") {
		t.Errorf("the page's error: %q, want the limit of live API keys and to revoke one", msg)
	}
	if strings.Contains(body, `id="api-key"`) {
		t.Error("a key is shown")
	}
}
