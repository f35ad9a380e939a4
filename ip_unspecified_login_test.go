package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
)

// A sign-in that gives an unspecified address as its client IP
// (LoginRequest.IP 0.0.0.0, ::, ::ffff:0.0.0.0, with or without a zone),
// which no client has, is a client that cannot be identified, as it is to
// AuthenticateFrom and the resolver: refused (ErrIPNotAllowed) under an
// allow-list for people, even one whose prefixes hold the unspecified
// addresses, while addresses in those prefixes are let in; with no list,
// it signs in as a sign-in with no address does.
func TestLoginUnspecifiedIPIsUnidentified(t *testing.T) {
	const email = "ada@example.test"
	login := func(f *fixture, ip string) (guard.LoginResult, error) {
		return f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: ownerPW, IP: ip, UserAgent: "test"})
	}
	unspecified := []string{"0.0.0.0", "::", "::ffff:0.0.0.0", "::%eth0", "::ffff:0.0.0.0%eth0"}

	f := newFixture(t)
	f.createUser(t, email, ownerPW)
	f.allowPeopleFrom(t, "0.0.0.0/8", "::/127")
	for _, ip := range []string{"0.0.0.1", "::1", "::ffff:0.0.0.1"} {
		if _, err := login(f, ip); err != nil {
			t.Fatalf("Login from %s, inside the allow-list: %v", ip, err)
		}
	}
	for _, ip := range unspecified {
		if _, err := login(f, ip); !errors.Is(err, guard.ErrIPNotAllowed) {
			t.Errorf("Login from %s under an allow-list of 0.0.0.0/8 and ::/127: %v, want ErrIPNotAllowed", ip, err)
		}
	}

	f = newFixture(t)
	f.createUser(t, email, ownerPW)
	for _, ip := range unspecified {
		if _, err := login(f, ip); err != nil {
			t.Errorf("Login from %s with no allow-list: %v", ip, err)
		}
	}
}
