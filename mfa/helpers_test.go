package mfa_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/memstore"
)

// t0 is the tests' start time: 10 s into a TOTP step.
var t0 = time.Date(2026, 1, 1, 9, 0, 10, 0, time.UTC)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// sink captures what a sender was asked to send; fail makes it fail.
type sink struct {
	mu   sync.Mutex
	sent []mfa.Message
	fail error
}

func (s *sink) SendEmail(_ context.Context, m mfa.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.sent = append(s.sent, m)
	return nil
}

func (s *sink) SendSMS(_ context.Context, to, text string) error {
	return s.SendEmail(context.Background(), mfa.Message{To: to, Text: text})
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

var codeRE = regexp.MustCompile(`\b\d{6}\b`)

// lastCode returns the code in the last message sent.
func (s *sink) lastCode(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sent) == 0 {
		t.Fatal("nothing was sent")
	}
	c := codeRE.FindString(s.sent[len(s.sent)-1].Text)
	if c == "" {
		t.Fatalf("no code in %q", s.sent[len(s.sent)-1].Text)
	}
	return c
}

type fixture struct {
	m     *mfa.Manager
	st    *memstore.MFA
	clk   *clock
	keys  *mfa.Keyring
	email *sink
	sms   *sink
}

// key returns a fixed key for id.
func key(id string) []byte {
	k := sha256.Sum256([]byte("mfa test key " + id))
	return k[:]
}

func newKeyring(t testing.TB, current string, ids ...string) *mfa.Keyring {
	t.Helper()
	keys := map[string][]byte{}
	for _, id := range ids {
		keys[id] = key(id)
	}
	k, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: keys, Current: current})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newFixture(t testing.TB, opts ...func(*mfa.Config)) *fixture {
	t.Helper()
	f := &fixture{
		st:    memstore.NewMFA(),
		clk:   &clock{now: t0},
		keys:  newKeyring(t, "k1", "k1"),
		email: &sink{},
		sms:   &sink{},
	}
	cfg := mfa.Config{
		Stores:  f.st.Stores(),
		Keyring: f.keys,
		Issuer:  "Guard Test",
		Email:   f.email,
		SMS:     f.sms,
		Now:     f.clk.Now,
		QRSize:  64, // small and quick; TestBeginTOTP checks the default
	}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := mfa.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	return f
}

// enrolTOTP enrols and confirms a TOTP factor for t/user and returns it
// with its base32 secret. The clock is moved one step on, so the
// confirmation code's step is behind.
func (f *fixture) enrolTOTP(t testing.TB, user string) (mfa.Factor, string) {
	t.Helper()
	ctx := context.Background()
	e, err := f.m.BeginTOTP(ctx, "t", user, user+"@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	c := codeAt(t, e.Secret, f.clk.Now())
	fac, err := f.m.ConfirmTOTP(ctx, "t", user, e.Factor.ID, c)
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Add(30 * time.Second)
	return fac, e.Secret
}

// codeAt is what an authenticator app shows at tm, computed by pquerna/otp.
func codeAt(t testing.TB, secret string, tm time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, tm)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", what, err, want)
	}
}

func wantInputError(t *testing.T, what string, err error) {
	t.Helper()
	var ie *mfa.InputError
	if !errors.As(err, &ie) {
		t.Errorf("%s = %v, want an *InputError", what, err)
	}
}
