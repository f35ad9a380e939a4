package pgstore_test

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"sync"
	"testing"

	"github.com/pquerna/otp/totp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
)

// codeOutbox keeps the last one-time code sent to each address or number.
type codeOutbox struct {
	mu   sync.Mutex
	last map[string]string
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

func (o *codeOutbox) keep(to, text string) {
	if c := sixDigits.FindString(text); c != "" {
		o.mu.Lock()
		o.last[to] = c
		o.mu.Unlock()
	}
}

func (o *codeOutbox) SendEmail(_ context.Context, m mfa.Message) error {
	o.keep(m.To, m.Text)
	return nil
}

func (o *codeOutbox) SendSMS(_ context.Context, to, text string) error {
	o.keep(to, text)
	return nil
}

func (o *codeOutbox) code(t *testing.T, to string) string {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	c, ok := o.last[to]
	if !ok {
		t.Fatalf("no code sent to %s", to)
	}
	return c
}

// Two replicas (two Guards on one PostgreSQL schema) confirm the first
// factors of one user at once, an authenticator app on one and an email
// address and a phone on the other (REVIEW-D-3): every set of recovery
// codes they return works, whatever the interleaving; at least one set is
// returned.
func TestFacadeFirstFactorsAtOnceOnTwoReplicas(t *testing.T) {
	st := newStore(t)
	kr, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")}, Current: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	out := &codeOutbox{last: map[string]string{}}
	c := &clock{t: facadeNow}
	var replicas [2]*guard.Guard
	for i := range replicas {
		replicas[i], err = guard.New(guard.Config{
			Stores:   st.Stores(),
			AuditKey: auditKey,
			Hasher:   auth.HasherConfig{Memory: 64, Time: 1},
			Defaults: guard.Policy{SessionLimit: 100},
			Now:      c.Now,
			MFA:      &mfa.Config{Keyring: kr, Issuer: "Acme", Email: out, SMS: out},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	g1, g2 := replicas[0], replicas[1]
	ctx := t.Context()
	sys := guard.System("test")
	if _, err := g1.CreateTenant(ctx, sys, facadeTenant, "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 15; round++ {
		email := fmt.Sprintf("user%d@example.com", round)
		if _, err := g1.CreateUser(ctx, sys, guard.NewUser{Tenant: facadeTenant, Email: email, Password: facadePassword}); err != nil {
			t.Fatal(err)
		}
		login := func() guard.LoginResult {
			t.Helper()
			res, err := g1.Login(ctx, guard.LoginRequest{Tenant: facadeTenant, Email: email, Password: facadePassword, IP: "203.0.113.5", UserAgent: "test"})
			if err != nil {
				t.Fatalf("round %d: Login: %v", round, err)
			}
			return res
		}
		p, err := g1.Authenticate(ctx, login().Token)
		if err != nil {
			t.Fatalf("round %d: Authenticate: %v", round, err)
		}
		// A client IP of its own each round, within the code send limits.
		ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + round)})
		p.IP, p.UserAgent, p.Addr = ip.String(), "test", ip
		en, err := g1.BeginTOTP(ctx, p, "Phone")
		if err != nil {
			t.Fatal(err)
		}
		addr, phone := fmt.Sprintf("codes%d@example.com", round), fmt.Sprintf("+4477009001%02d", round)
		mail, err := g2.BeginOOB(ctx, p, mfa.KindEmail, addr, "")
		if err != nil {
			t.Fatal(err)
		}
		sms, err := g2.BeginOOB(ctx, p, mfa.KindSMS, phone, "")
		if err != nil {
			t.Fatal(err)
		}
		appCode, err := totp.GenerateCode(en.Secret, c.Now())
		if err != nil {
			t.Fatal(err)
		}
		confirms := []struct {
			g        *guard.Guard
			id, code string
		}{{g1, en.Factor.ID, appCode}, {g2, mail.ID, out.code(t, addr)}, {g2, sms.ID, out.code(t, phone)}}
		sets := make([][]string, len(confirms))
		var start, done sync.WaitGroup
		start.Add(1)
		for i, cf := range confirms {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				var err error
				if sets[i], err = cf.g.ConfirmFactor(ctx, p, cf.id, cf.code); err != nil {
					t.Errorf("round %d: ConfirmFactor %d: %v", round, i, err)
				}
			}()
		}
		start.Done()
		done.Wait()
		if t.Failed() {
			t.FailNow()
		}
		returned := 0
		for i, set := range sets {
			if len(set) > 0 {
				returned++
			}
			for _, code := range set {
				res, err := g1.CompleteLogin(ctx, guard.SecondFactor{Pending: login().Pending.Token, Method: guard.MethodRecovery, Code: code,
					IP: "203.0.113.5", UserAgent: "test"})
				if err != nil || res.Token == "" {
					t.Fatalf("round %d: a recovery code of the set confirmation %d returned: %v", round, i, err)
				}
			}
		}
		if returned == 0 {
			t.Fatalf("round %d: no confirmation returned recovery codes", round)
		}
	}
}
