package guard_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
)

// The per-IP login throttle (IPLimit: 50 failures, then a lock) is meant
// to stop one client spraying a password across accounts
// (SECURITY-CHECKLIST LG-13). One IPv4 client is locked after 50; one
// IPv6 client owns a whole /64 (2^64 addresses, the smallest block a
// subscriber is given), and is locked after 50 too, whichever addresses
// of its /64 it steps through.
func TestIPThrottleCountsIPv6Prefix(t *testing.T) {
	spray := func(t *testing.T, ip func(i int) string) map[string]int {
		f := newFixture(t)
		for i := range 60 {
			_, _ = f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: fmt.Sprintf("user%d@example.test", i),
				Password: "Spring2026!", IP: ip(i), UserAgent: "bot"})
		}
		return reasons(f.events(t, audit.LoginFailed))
	}
	v4 := spray(t, func(int) string { return "198.51.100.7" })
	t.Logf("one IPv4 address: %v", v4)
	if v4[guard.ReasonIPThrottled] != 10 {
		t.Fatalf("setup: %d of 60 guesses from one IPv4 address IP-throttled, want 10", v4[guard.ReasonIPThrottled])
	}
	v6 := spray(t, func(i int) string { return fmt.Sprintf("2001:db8:1:2::%x", i+1) })
	t.Logf("one IPv6 /64: %v", v6)
	if v6[guard.ReasonIPThrottled] != 10 {
		t.Errorf("%d of 60 guesses from 60 addresses of one /64 IP-throttled, want 10 (as for one IPv4 address)", v6[guard.ReasonIPThrottled])
	}
}

// Which addresses count as one client: after IPLimit failures from the
// addresses of first, a login from then is refused as ip_throttled when
// it is the same client and evaluated when it is another. The audit
// events keep the exact address the attempt came from.
func TestIPThrottleClient(t *testing.T) {
	for _, c := range []struct {
		name   string
		prefix int // Config.IPv6Prefix
		first  []string
		then   string
		same   bool
	}{
		{"one /64, many addresses", 0, []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"}, "2001:db8:1:2:abcd:ef01:2345:6789", true},
		{"two /64s", 0, []string{"2001:db8:1:2::1", "2001:db8:1:2::1", "2001:db8:1:2::1"}, "2001:db8:1:3::1", false},
		{"IPv6 text in another form", 0, []string{"2001:DB8:1:2::1", "2001:db8:1:2:0:0:0:1", "2001:0db8:0001:0002::1"}, "2001:db8:1:2::9", true},
		{"IPv4-mapped then IPv4", 0, []string{"::ffff:198.51.100.7", "::ffff:198.51.100.7", "::ffff:c633:6407"}, "198.51.100.7", true},
		{"IPv4 then IPv4-mapped", 0, []string{"198.51.100.7", "198.51.100.7", "198.51.100.7"}, "::ffff:198.51.100.7", true},
		{"IPv4 per address", 0, []string{"198.51.100.7", "198.51.100.7", "198.51.100.7"}, "198.51.100.8", false},
		{"IPv4 per address at /32", 32, []string{"198.51.100.7", "198.51.100.7", "198.51.100.7"}, "198.51.100.8", false},
		{"IPv6Prefix 128: per address", 128, []string{"2001:db8:1:2::1", "2001:db8:1:2::1", "2001:db8:1:2::1"}, "2001:db8:1:2::2", false},
		{"IPv6Prefix 128: same address", 128, []string{"2001:db8:1:2::1", "2001:db8:1:2::1", "2001:db8:1:2::1"}, "2001:db8:1:2::1", true},
		{"IPv6Prefix 48: one /48", 48, []string{"2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:1:ffff::1"}, "2001:db8:1:4::1", true},
		{"IPv6Prefix 48: two /48s", 48, []string{"2001:db8:1:2::1", "2001:db8:1:2::1", "2001:db8:1:2::1"}, "2001:db8:2:2::1", false},
		{"a zone is not the client", 0, []string{"fe80::1%eth0", "fe80::2%eth1", "fe80::3"}, "fe80::4%eth0", true},
		{"text that is no address: as given", 0, []string{"not an address", "not an address", "not an address"}, "not an address", true},
		{"text that is no address, another", 0, []string{"not an address", "not an address", "not an address"}, "not an address either", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(cfg *guard.Config) {
				cfg.IPLimit = auth.Limit{Max: len(c.first), ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
				cfg.IPv6Prefix = c.prefix
			})
			f.createUser(t, "alice@example.com", ownerPW)
			for i, ip := range c.first {
				_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: fmt.Sprintf("user%d@example.com", i),
					Password: "spray password", IP: ip, UserAgent: "bot"})
				if !errors.Is(err, guard.ErrInvalidCredentials) {
					t.Fatalf("guess %d from %s: %v, want ErrInvalidCredentials", i, ip, err)
				}
			}
			if r := reasons(f.events(t, audit.LoginFailed)); r[guard.ReasonIPThrottled] != 0 {
				t.Fatalf("guesses up to the limit: reasons %v, want none ip_throttled", r)
			}
			_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "alice@example.com", Password: ownerPW, IP: c.then, UserAgent: "test"})
			if c.same {
				if !errors.Is(err, guard.ErrInvalidCredentials) {
					t.Fatalf("the right password from %s after %v: %v, want ErrInvalidCredentials (ip_throttled)", c.then, c.first, err)
				}
				evs := f.events(t, audit.LoginFailed)
				last := evs[len(evs)-1]
				if last.Reason != guard.ReasonIPThrottled || last.IP != c.then {
					t.Errorf("last login.failed: reason %q, IP %q; want %q, the exact address %q", last.Reason, last.IP, guard.ReasonIPThrottled, c.then)
				}
			} else if err != nil {
				t.Fatalf("the right password from %s after %v: %v, want a sign-in (another client)", c.then, c.first, err)
			}
			// The lock of the client is recorded with the address that
			// started it, as given.
			locks := f.events(t, audit.LoginLocked)
			if len(locks) != 1 || locks[0].Meta["scope"] != "ip" || locks[0].IP != c.first[len(c.first)-1] {
				t.Errorf("login.locked events %+v, want one of scope ip, IP %q", locks, c.first[len(c.first)-1])
			}
		})
	}
}

// IPv6Prefix is 0 (64) or 32 to 128; anything else is refused by New.
func TestIPv6PrefixValidated(t *testing.T) {
	for _, bits := range []int{-1, 1, 16, 31, 129, 256} {
		_, err := guard.New(guard.Config{Stores: newMem(), AuditKey: auditKey, Hasher: fastHasher, IPv6Prefix: bits})
		var pe *guard.PolicyError
		if !errors.As(err, &pe) || pe.Field != "IPv6Prefix" {
			t.Errorf("New with IPv6Prefix %d = %v, want a *PolicyError on IPv6Prefix", bits, err)
		}
	}
	for _, bits := range []int{0, 32, 48, 56, 64, 128} {
		if _, err := guard.New(guard.Config{Stores: newMem(), AuditKey: auditKey, Hasher: fastHasher, IPv6Prefix: bits}); err != nil {
			t.Errorf("New with IPv6Prefix %d: %v", bits, err)
		}
	}
}

// CaptchaAfterIP counts an IPv6 client per /64 too: failures from many of
// its addresses make every login from it need a CAPTCHA.
func TestCaptchaAfterIPCountsIPv6Prefix(t *testing.T) {
	captcha := auth.CaptchaFunc(func(_ context.Context, token, _ string) error {
		if token != "human" {
			return errors.New("captcha refused")
		}
		return nil
	})
	f := newFixture(t, func(c *guard.Config) { c.Captcha = captcha })
	f.createUser(t, "alice@example.com", ownerPW)
	for i := range 10 {
		_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: fmt.Sprintf("user%d@example.com", i),
			Password: "a wrong password", IP: fmt.Sprintf("2001:db8:7:7::%x", i+1), UserAgent: "bot"})
		if !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v, want ErrInvalidCredentials", i, err)
		}
	}
	login := func(ip string) error {
		_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "alice@example.com", Password: ownerPW, IP: ip, UserAgent: "test"})
		return err
	}
	if err := login("2001:db8:7:7::ffff"); !errors.Is(err, guard.ErrCaptchaRequired) {
		t.Errorf("a login from the /64 after 10 failures from its addresses: %v, want ErrCaptchaRequired", err)
	}
	if err := login("2001:db8:7:8::1"); err != nil {
		t.Errorf("a login from another /64: %v, want no CAPTCHA", err)
	}
}

// The per-IP link limit (Recovery.Limits.PerIP) counts an IPv6 client per
// /64: reset requests from many of its addresses, each for another
// account, send no more than PerIP links (SECURITY-CHECKLIST RS-14).
func TestForgotPasswordSendLimitPerIPv6Prefix(t *testing.T) {
	f := newMFAFixture(t, withLimits(guard.LinkLimits{PerIP: 2, PerAccount: 100, PerDestination: 100}))
	emails := []string{"a@example.test", "b@example.test", "c@example.test", "d@example.test"}
	for i, e := range emails {
		f.createUser(t, e, ownerPW)
		if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: e, IP: fmt.Sprintf("2001:db8:1:2::%x", i+1)}); err != nil {
			t.Fatal(err)
		}
		f.mailTo(e) // one after the other: a and b get the two links
	}
	got := 0
	for _, e := range emails {
		got += len(f.mailTo(e))
	}
	if got != 2 {
		t.Errorf("%d reset emails from 4 addresses of one /64, want 2 (PerIP)", got)
	}
	if limited := reasons(f.events(t, audit.PasswordResetRequested))[guard.ReasonRateLimited]; limited != 2 {
		t.Errorf("%d password.reset_requested events refused as rate_limited, want 2", limited)
	}
	// Another /64 is not held back.
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: "d@example.test", IP: "2001:db8:1:3::1"}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.mailTo("d@example.test")); n != 1 {
		t.Errorf("%d emails to d after a request from another /64, want 1", n)
	}
}

// Invalid API keys are throttled per client too: 20 junk keys from 20
// addresses of one /64 lock it, and not another /64.
func TestAPIKeyThrottleCountsIPv6Prefix(t *testing.T) {
	f := newFixture(t)
	for i := range 20 {
		addr := netip.MustParseAddr(fmt.Sprintf("2001:db8:9:9::%x", i+1))
		if _, err := f.g.AuthenticateAPIKey(f.ctx, "gk_junk", addr); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Fatalf("junk key %d from %s: %v, want ErrUnauthenticated", i, addr, err)
		}
	}
	if _, err := f.g.AuthenticateAPIKey(f.ctx, "gk_junk", netip.MustParseAddr("2001:db8:9:9::ffff")); !errors.Is(err, guard.ErrTooManyAttempts) {
		t.Errorf("junk key from the /64 after 20: %v, want ErrTooManyAttempts", err)
	}
	if _, err := f.g.AuthenticateAPIKey(f.ctx, "gk_junk", netip.MustParseAddr("2001:db8:9:a::1")); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("junk key from another /64: %v, want ErrUnauthenticated", err)
	}
}

// The per-IP send limit of one-time codes (MFA.Limits.PerIP) counts an
// IPv6 client per /64: sends asked from many of its addresses are held
// back after PerIP, and a send from another /64 is not.
func TestSendLoginCodeLimitCountsIPv6Prefix(t *testing.T) {
	f := newMFAFixture(t, func(c *guard.Config) {
		c.MFA.Limits = mfa.SendLimits{PerIP: 2, PerDestination: 100, PerAccount: 100}
		c.MFA.ResendCoolDown = time.Second
	})
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	email := f.enrolEmail(t, p, "ada.codes@example.test")
	pend := f.pending(t, adaEmail, ownerPW)
	before := len(f.events(t, audit.MFACodeSent)) // the enrolment's code
	send := func(ip string) {
		t.Helper()
		f.clock.Advance(time.Second) // past the resend cool-down
		if err := f.g.SendLoginCode(f.ctx, pend.Token, email.ID, ip, "test"); err != nil {
			t.Fatalf("SendLoginCode from %s: %v", ip, err)
		}
	}
	for i := range 4 {
		send(fmt.Sprintf("2001:db8:5:5::%x", i+1))
	}
	sent, limited := len(f.events(t, audit.MFACodeSent))-before, reasons(f.events(t, audit.MFACodeSuppressed))["rate_limited"]
	if sent != 2 || limited != 2 {
		t.Errorf("4 sends from 4 addresses of one /64: %d sent, %d rate_limited; want 2 and 2 (PerIP)", sent, limited)
	}
	send("2001:db8:5:6::1")
	if n := len(f.events(t, audit.MFACodeSent)) - before; n != sent+1 {
		t.Errorf("a send from another /64: %d codes sent in all, want %d", n, sent+1)
	}
}

// SP-initiated SSO logins are limited per client (30 a minute): an IPv6
// client per /64, whichever of its addresses it starts them from.
func TestStartSSOLimitCountsIPv6Prefix(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	for i := range 30 {
		if _, err := s.g.StartSSO(ctx, guard.SSOStart{Tenant: tenantID, IP: fmt.Sprintf("2001:db8:3:3::%x", i+1)}); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
	}
	if _, err := s.g.StartSSO(ctx, guard.SSOStart{Tenant: tenantID, IP: "2001:db8:3:3::ffff"}); !errors.Is(err, guard.ErrTooManyAttempts) {
		t.Errorf("the 31st start from one /64: %v, want ErrTooManyAttempts", err)
	}
	if _, err := s.g.StartSSO(ctx, guard.SSOStart{Tenant: tenantID, IP: "2001:db8:3:4::1"}); err != nil {
		t.Errorf("a start from another /64: %v", err)
	}
}
