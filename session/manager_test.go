package session_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/session/sessiontest"
	"github.com/guardhq/guard/store/memstore"
)

var t0 = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// spyStore wraps a store, counts calls and fails the methods named in fail.
type spyStore struct {
	sessiontest.Store
	mu      sync.Mutex
	calls   map[string]int
	fail    map[string]error
	touched []time.Time
}

func newSpy() *spyStore {
	return &spyStore{Store: memstore.NewSessions(), calls: map[string]int{}, fail: map[string]error{}}
}

func (s *spyStore) call(method string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[method]++
	return s.fail[method]
}

func (s *spyStore) count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func (s *spyStore) setFail(method string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[method] = err
}

func (s *spyStore) Create(ctx context.Context, n session.Session, lim session.Limit) ([]session.Session, error) {
	if err := s.call("Create"); err != nil {
		return nil, err
	}
	return s.Store.Create(ctx, n, lim)
}

func (s *spyStore) Lookup(ctx context.Context, h session.Hash) (session.Session, error) {
	if err := s.call("Lookup"); err != nil {
		return session.Session{}, err
	}
	return s.Store.Lookup(ctx, h)
}

func (s *spyStore) Touch(ctx context.Context, h session.Hash, seen time.Time) error {
	if err := s.call("Touch"); err != nil {
		return err
	}
	s.mu.Lock()
	s.touched = append(s.touched, seen)
	s.mu.Unlock()
	return s.Store.Touch(ctx, h, seen)
}

func (s *spyStore) Delete(ctx context.Context, h session.Hash) (session.Session, error) {
	if err := s.call("Delete"); err != nil {
		return session.Session{}, err
	}
	return s.Store.Delete(ctx, h)
}

func (s *spyStore) Rotate(ctx context.Context, old session.Hash, n session.Session) error {
	if err := s.call("Rotate"); err != nil {
		return err
	}
	return s.Store.Rotate(ctx, old, n)
}

func (s *spyStore) ListByUser(ctx context.Context, tenant, userID string) ([]session.Session, error) {
	if err := s.call("ListByUser"); err != nil {
		return nil, err
	}
	return s.Store.ListByUser(ctx, tenant, userID)
}

func (s *spyStore) DeleteByUser(ctx context.Context, tenant, userID string, except session.Hash) ([]session.Session, error) {
	if err := s.call("DeleteByUser"); err != nil {
		return nil, err
	}
	return s.Store.DeleteByUser(ctx, tenant, userID, except)
}

type fixture struct {
	m     *session.Manager
	store *spyStore
	clock *clock
}

// newFixture returns a Manager on a spy store and a clock at t0; edit
// adjusts the Config.
func newFixture(t *testing.T, edit func(*session.Config)) *fixture {
	t.Helper()
	f := &fixture{store: newSpy(), clock: newClock()}
	cfg := session.Config{Store: f.store, Index: f.store, Now: f.clock.Now}
	if edit != nil {
		edit(&cfg)
	}
	m, err := session.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.m = m
	return f
}

func (f *fixture) create(t *testing.T, o session.Options) (string, session.Session) {
	t.Helper()
	if o.Tenant == "" {
		o.Tenant = "acme"
	}
	if o.UserID == "" {
		o.UserID = "u1"
	}
	token, s, _, err := f.m.Create(t.Context(), o)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return token, s
}

func (f *fixture) wantLive(t *testing.T, token string) session.Session {
	t.Helper()
	s, err := f.m.Authenticate(t.Context(), token)
	if err != nil {
		t.Fatalf("Authenticate at +%v: %v", f.clock.Now().Sub(t0), err)
	}
	return s
}

func (f *fixture) wantErr(t *testing.T, token string, want error) {
	t.Helper()
	s, err := f.m.Authenticate(t.Context(), token)
	if !errors.Is(err, want) {
		t.Fatalf("Authenticate at +%v = %v, want %v", f.clock.Now().Sub(t0), err, want)
	}
	if s != (session.Session{}) {
		t.Errorf("Authenticate failed but returned session %s", s.ID())
	}
}

func TestNewValidates(t *testing.T) {
	store := memstore.NewSessions()
	tests := []struct {
		name  string
		cfg   session.Config
		field string
	}{
		{"NoStore", session.Config{Index: store}, "Store"},
		{"NoIndex", session.Config{Store: store}, "Index"},
		{"NegativeIdle", session.Config{Store: store, Index: store, IdleTimeout: -1}, "IdleTimeout"},
		{"NegativeLifetime", session.Config{Store: store, Index: store, Lifetime: -time.Hour}, "Lifetime"},
		{"NegativeTouch", session.Config{Store: store, Index: store, TouchInterval: -time.Second}, "TouchInterval"},
		{"TouchEqualsIdle", session.Config{Store: store, Index: store, IdleTimeout: time.Hour, TouchInterval: time.Hour}, "TouchInterval"},
		{"TouchAboveDefaultIdle", session.Config{Store: store, Index: store, TouchInterval: 25 * time.Hour}, "TouchInterval"},
		{"NegativeMaxTouchGap", session.Config{Store: store, Index: store, MaxTouchGap: -time.Minute}, "MaxTouchGap"},
		{"NegativeMax", session.Config{Store: store, Index: store, Limit: session.Limit{Max: -1}}, "Limit.Max"},
		{"UnknownPolicy", session.Config{Store: store, Index: store, Limit: session.Limit{Max: 1, Policy: 7}}, "Limit.Policy"},
		{"UnlimitedWithMax", session.Config{Store: store, Index: store, Unlimited: true, Limit: session.Limit{Max: 2}}, "Limit.Max"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := session.New(tc.cfg)
			var ce *session.ConfigError
			if !errors.As(err, &ce) || m != nil {
				t.Fatalf("New = %v, %v; want a *ConfigError", m, err)
			}
			if ce.Field != tc.field {
				t.Errorf("ConfigError.Field = %q, want %q (%v)", ce.Field, tc.field, err)
			}
			if !strings.HasPrefix(err.Error(), "session: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	for _, cfg := range []session.Config{
		{Store: store, Index: store},
		{Store: store, Index: store, IdleTimeout: time.Minute},                      // default touch interval shrinks to 30s
		{Store: store, Index: store, IdleTimeout: time.Hour, Lifetime: time.Minute}, // lifetime shorter than idle is fine
		{Store: store, Index: store, Unlimited: true, Limit: session.Limit{Policy: session.RefuseNew}},
		{Store: store, Index: store, Limit: session.Limit{Max: 3, Policy: session.RefuseNew}, TouchInterval: 5 * time.Minute},
	} {
		if _, err := session.New(cfg); err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	f := newFixture(t, nil)
	token, s := f.create(t, session.Options{})
	if s.IdleTimeout != 24*time.Hour {
		t.Errorf("IdleTimeout = %v, want 24h", s.IdleTimeout)
	}
	if want := t0.Add(7 * 24 * time.Hour); !s.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", s.ExpiresAt, want)
	}
	if !s.CreatedAt.Equal(t0) || !s.LastSeen.Equal(t0) {
		t.Errorf("CreatedAt, LastSeen = %v, %v; want %v", s.CreatedAt, s.LastSeen, t0)
	}
	if len(token) != 43 {
		t.Errorf("token length %d, want 43", len(token))
	}
	// Default touch interval: 30 seconds (half the default MaxTouchGap).
	f.clock.Advance(29 * time.Second)
	f.wantLive(t, token)
	if n := f.store.count("Touch"); n != 0 {
		t.Errorf("%d Touch calls within the first 30 s", n)
	}
	f.clock.Advance(time.Second)
	f.wantLive(t, token)
	if n := f.store.count("Touch"); n != 1 {
		t.Errorf("%d Touch calls after 30 s, want 1", n)
	}
}

func TestCreateSession(t *testing.T) {
	f := newFixture(t, nil)
	f.clock.Advance(1234567 * time.Nanosecond) // truncated to the microsecond
	ua := strings.Repeat("a", 511) + "é" + "z" // "é" straddles the 512-byte bound
	token, s, evicted, err := f.m.Create(t.Context(), session.Options{
		Tenant: "acme", UserID: "u1", IP: "203.0.113.9", UserAgent: ua,
		IdleTimeout: 30 * time.Minute, Lifetime: 12 * time.Hour, Flags: 5,
	})
	if err != nil || len(evicted) != 0 {
		t.Fatalf("Create = %v, %v", evicted, err)
	}
	want := t0.Add(1234 * time.Microsecond)
	if !s.CreatedAt.Equal(want) || !s.LastSeen.Equal(want) || s.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt, LastSeen = %v, %v; want %v in UTC", s.CreatedAt, s.LastSeen, want)
	}
	if !s.ExpiresAt.Equal(want.Add(12*time.Hour)) || s.IdleTimeout != 30*time.Minute || s.Flags != 5 {
		t.Errorf("ExpiresAt %v, IdleTimeout %v, Flags %d", s.ExpiresAt, s.IdleTimeout, s.Flags)
	}
	if s.IP != "203.0.113.9" || s.UserAgent != strings.Repeat("a", 511) {
		t.Errorf("IP %q, UserAgent of %d bytes", s.IP, len(s.UserAgent))
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q does not decode to 32 bytes: %v", token, err)
	}
	if s.Hash != sha256.Sum256(raw) {
		t.Error("Session.Hash is not the SHA-256 of the token's bytes")
	}
	stored, err := f.store.Lookup(t.Context(), s.Hash)
	if err != nil || stored != s {
		t.Errorf("stored session %+v, %v; want %+v", stored, err, s)
	}
	if strings.Contains(fmt.Sprintf("%+v", stored), token) {
		t.Error("the stored session contains the token")
	}
}

func TestCreateClipsClientStrings(t *testing.T) {
	f := newFixture(t, func(c *session.Config) { c.Unlimited = true })
	tests := []struct {
		name, ip, ua, wantIP, wantUA string
	}{
		{"Short", "192.0.2.1", "curl/8", "192.0.2.1", "curl/8"},
		{"LongIP", strings.Repeat("1", 100), "", strings.Repeat("1", 64), ""},
		{"LongASCII", "", strings.Repeat("x", 600), "", strings.Repeat("x", 512)},
		{"RuneAtBoundary", strings.Repeat("1", 63) + "€", "", strings.Repeat("1", 63), ""},
		{"FourByteRune", strings.Repeat("1", 61) + "😀", "", strings.Repeat("1", 61), ""},
		{"InvalidUTF8", "1\xff2", "a\xc3", "1\uFFFD2", "a\uFFFD"},
		{"InvalidUTF8Long", strings.Repeat("\xff", 100), "", strings.Repeat("\uFFFD", 1), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, s := f.create(t, session.Options{IP: tc.ip, UserAgent: tc.ua})
			if s.IP != tc.wantIP || s.UserAgent != tc.wantUA {
				t.Errorf("IP, UserAgent = %q, %q; want %q, %q", s.IP, s.UserAgent, tc.wantIP, tc.wantUA)
			}
			if !utf8.ValidString(s.IP) || !utf8.ValidString(s.UserAgent) || len(s.IP) > 64 || len(s.UserAgent) > 512 {
				t.Errorf("IP %q / UserAgent %q not valid UTF-8 within bounds", s.IP, s.UserAgent)
			}
		})
	}
}

func TestCreateRejectsBadOptions(t *testing.T) {
	f := newFixture(t, nil)
	long := strings.Repeat("x", 129)
	tests := []struct {
		name  string
		o     session.Options
		field string
	}{
		{"NoTenant", session.Options{UserID: "u"}, "tenant"},
		{"NoUser", session.Options{Tenant: "t"}, "user ID"},
		{"LongTenant", session.Options{Tenant: long, UserID: "u"}, "tenant"},
		{"LongUser", session.Options{Tenant: "t", UserID: long}, "user ID"},
		{"ControlInTenant", session.Options{Tenant: "t\n", UserID: "u"}, "tenant"},
		{"DELInUser", session.Options{Tenant: "t", UserID: "u\x7f"}, "user ID"},
		{"C1InUser", session.Options{Tenant: "t", UserID: "u\u0085"}, "user ID"},
		{"InvalidUTF8", session.Options{Tenant: "t\xff", UserID: "u"}, "tenant"},
		{"NegativeIdle", session.Options{Tenant: "t", UserID: "u", IdleTimeout: -1}, "Options.IdleTimeout"},
		{"NegativeLifetime", session.Options{Tenant: "t", UserID: "u", Lifetime: -1}, "Options.Lifetime"},
		{"NegativeMax", session.Options{Tenant: "t", UserID: "u", Limit: &session.Limit{Max: -2}}, "Options.Limit.Max"},
		{"UnknownPolicy", session.Options{Tenant: "t", UserID: "u", Limit: &session.Limit{Max: 1, Policy: -1}}, "Options.Limit.Policy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token, _, _, err := f.m.Create(t.Context(), tc.o)
			var ie *session.InputError
			if !errors.As(err, &ie) || token != "" {
				t.Fatalf("Create = %q, %v; want an *InputError", token, err)
			}
			if ie.Field != tc.field {
				t.Errorf("Field = %q, want %q", ie.Field, tc.field)
			}
			if strings.Contains(err.Error(), long) || strings.Contains(err.Error(), "\xff") {
				t.Errorf("error %q echoes the input", err)
			}
		})
	}
	if n := f.store.count("Create"); n != 0 {
		t.Errorf("bad options reached the store %d times", n)
	}
	// The bounds themselves are accepted.
	f.create(t, session.Options{Tenant: strings.Repeat("t", 128), UserID: "ü-" + strings.Repeat("u", 125)})
}

// SE-5: a request at I−1s is accepted and slides the timer; I+1s without a
// request ends the session.
func TestIdleTimeout(t *testing.T) {
	const idle = 30 * time.Minute
	f := newFixture(t, func(c *session.Config) { c.IdleTimeout = idle })
	token, _ := f.create(t, session.Options{})
	for i := range 3 {
		f.clock.Advance(idle - time.Second)
		s := f.wantLive(t, token)
		if !s.LastSeen.Equal(f.clock.Now()) {
			t.Fatalf("request %d: LastSeen = %v, want now (%v): the timer did not slide", i, s.LastSeen, f.clock.Now())
		}
	}
	f.clock.Advance(idle + time.Second)
	f.wantErr(t, token, session.ErrExpired)
	// The expired session was deleted.
	f.wantErr(t, token, session.ErrNotFound)
	if n := f.store.Store.(*memstore.Sessions).Len(); n != 0 {
		t.Errorf("%d sessions stored after expiry, want 0", n)
	}
}

func TestIdleTimeoutExactly(t *testing.T) {
	f := newFixture(t, func(c *session.Config) { c.IdleTimeout = time.Hour })
	token, _ := f.create(t, session.Options{})
	f.clock.Advance(time.Hour)
	f.wantErr(t, token, session.ErrExpired)
}

// SE-6: activity does not extend the absolute lifetime.
func TestAbsoluteLifetime(t *testing.T) {
	const life = 2 * time.Hour
	f := newFixture(t, func(c *session.Config) { c.IdleTimeout = 30 * time.Minute; c.Lifetime = life })
	token, _ := f.create(t, session.Options{})
	for f.clock.Now().Before(t0.Add(life - time.Minute)) {
		f.clock.Advance(time.Minute)
		f.wantLive(t, token)
	}
	f.clock.Advance(time.Minute - time.Second) // L−1s
	f.wantLive(t, token)
	f.clock.Advance(2 * time.Second) // L+1s
	f.wantErr(t, token, session.ErrExpired)
}

func TestPerSessionTimeouts(t *testing.T) {
	f := newFixture(t, func(c *session.Config) { c.Unlimited = true })
	short, _ := f.create(t, session.Options{IdleTimeout: 10 * time.Minute})
	brief, _ := f.create(t, session.Options{Lifetime: 5 * time.Minute})
	dflt, _ := f.create(t, session.Options{})
	f.clock.Advance(6 * time.Minute)
	f.wantErr(t, brief, session.ErrExpired)
	f.wantLive(t, short)
	f.clock.Advance(11 * time.Minute)
	f.wantErr(t, short, session.ErrExpired)
	f.wantLive(t, dflt)
}

func TestTouchAtMostOncePerInterval(t *testing.T) {
	f := newFixture(t, func(c *session.Config) { c.TouchInterval = time.Minute })
	token, _ := f.create(t, session.Options{})
	var last time.Time
	for range 30 { // a request every 10 s for 5 minutes
		f.clock.Advance(10 * time.Second)
		last = f.wantLive(t, token).LastSeen
	}
	if n := f.store.count("Touch"); n != 5 {
		t.Errorf("%d Touch calls in 5 minutes, want 5", n)
	}
	if want := t0.Add(5 * time.Minute); !last.Equal(want) {
		t.Errorf("LastSeen = %v, want %v", last, want)
	}
	for i, at := range f.store.touched {
		if want := t0.Add(time.Duration(i+1) * time.Minute); !at.Equal(want) {
			t.Errorf("Touch %d at %v, want %v", i, at, want)
		}
	}
}

func TestShortIdleTimeoutStillSlides(t *testing.T) {
	// A session whose idle timeout is below the touch interval is touched
	// every half idle timeout, so steady activity keeps it alive.
	f := newFixture(t, func(c *session.Config) { c.TouchInterval = 5 * time.Minute })
	token, _ := f.create(t, session.Options{IdleTimeout: 2 * time.Minute})
	for range 40 {
		f.clock.Advance(30 * time.Second)
		f.wantLive(t, token)
	}
	if n := f.store.count("Touch"); n != 20 {
		t.Errorf("%d Touch calls in 20 minutes, want 20 (every minute)", n)
	}
}

func TestRotate(t *testing.T) {
	f := newFixture(t, nil)
	old, s := f.create(t, session.Options{IP: "192.0.2.1", UserAgent: "ua", Flags: 1})
	f.clock.Advance(10 * time.Second)
	token, r, err := f.m.Rotate(t.Context(), old, 6)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if token == old || r.Hash == s.Hash {
		t.Fatal("Rotate kept the token")
	}
	f.wantErr(t, old, session.ErrNotFound)
	got := f.wantLive(t, token)
	if got != r {
		t.Errorf("Authenticate = %+v, want %+v", got, r)
	}
	if r.Tenant != s.Tenant || r.UserID != s.UserID || !r.CreatedAt.Equal(s.CreatedAt) || !r.ExpiresAt.Equal(s.ExpiresAt) ||
		r.IdleTimeout != s.IdleTimeout || r.IP != s.IP || r.UserAgent != s.UserAgent {
		t.Errorf("Rotate changed the session: %+v, was %+v", r, s)
	}
	if r.Flags != 6 || !r.LastSeen.Equal(f.clock.Now()) {
		t.Errorf("Flags %d, LastSeen %v; want 6, now", r.Flags, r.LastSeen)
	}

	if _, _, err := f.m.Rotate(t.Context(), old, 0); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Rotate of a dead token: %v, want ErrNotFound", err)
	}
	if _, _, err := f.m.Rotate(t.Context(), "bad", 0); !errors.Is(err, session.ErrInvalidToken) {
		t.Errorf("Rotate of a malformed token: %v, want ErrInvalidToken", err)
	}
}

func TestRotateExpired(t *testing.T) {
	f := newFixture(t, func(c *session.Config) { c.IdleTimeout = time.Hour })
	token, _ := f.create(t, session.Options{})
	f.clock.Advance(2 * time.Hour)
	if _, _, err := f.m.Rotate(t.Context(), token, 0); !errors.Is(err, session.ErrExpired) {
		t.Errorf("Rotate of an expired session: %v, want ErrExpired", err)
	}
	if n := f.store.count("Rotate"); n != 0 {
		t.Errorf("an expired session reached Store.Rotate")
	}
}

// SE-4: after logout the token is refused.
func TestRevoke(t *testing.T) {
	f := newFixture(t, nil)
	token, s := f.create(t, session.Options{})
	got, err := f.m.Revoke(t.Context(), token)
	if err != nil || got != s {
		t.Fatalf("Revoke = %+v, %v; want %+v", got, err, s)
	}
	f.wantErr(t, token, session.ErrNotFound)
	if _, err := f.m.Revoke(t.Context(), token); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("second Revoke: %v, want ErrNotFound", err)
	}
	if _, err := f.m.Revoke(t.Context(), token+"x"); !errors.Is(err, session.ErrInvalidToken) {
		t.Errorf("Revoke of a malformed token: %v, want ErrInvalidToken", err)
	}
}

func TestRevokeID(t *testing.T) {
	f := newFixture(t, nil)
	token, s := f.create(t, session.Options{Tenant: "acme", UserID: "u1"})
	for _, tc := range []struct{ name, tenant, user string }{
		{"OtherUser", "acme", "u2"},
		{"OtherTenant", "globex", "u1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.m.RevokeID(t.Context(), tc.tenant, tc.user, s.ID()); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("RevokeID by %s/%s: %v, want ErrNotFound", tc.tenant, tc.user, err)
			}
			f.wantLive(t, token)
		})
	}
	var ie *session.InputError
	if _, err := f.m.RevokeID(t.Context(), "", "u1", s.ID()); !errors.As(err, &ie) {
		t.Errorf("RevokeID with no tenant: %v, want *InputError", err)
	}
	if _, err := f.m.RevokeID(t.Context(), "acme", "u1", "nope"); !errors.Is(err, session.ErrInvalidToken) {
		t.Errorf("RevokeID of a malformed ID: %v, want ErrInvalidToken", err)
	}
	// The token is not an ID.
	if _, err := f.m.RevokeID(t.Context(), "acme", "u1", token); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("RevokeID(token): %v, want ErrNotFound", err)
	}
	got, err := f.m.RevokeID(t.Context(), "acme", "u1", s.ID())
	if err != nil || got != s {
		t.Fatalf("RevokeID = %+v, %v", got, err)
	}
	f.wantErr(t, token, session.ErrNotFound)
	if _, err := f.m.RevokeID(t.Context(), "acme", "u1", s.ID()); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("second RevokeID: %v, want ErrNotFound", err)
	}
}

// SE-9, SE-10, SE-11: end every other session, or all of them.
func TestRevokeUser(t *testing.T) {
	f := newFixture(t, func(c *session.Config) { c.Unlimited = true })
	var tokens []string
	var sessions []session.Session
	for range 3 {
		tok, s := f.create(t, session.Options{})
		tokens, sessions = append(tokens, tok), append(sessions, s)
	}
	other, _ := f.create(t, session.Options{UserID: "u2"})
	ended, err := f.m.RevokeUser(t.Context(), "acme", "u1", sessions[1].Hash)
	if err != nil || len(ended) != 2 {
		t.Fatalf("RevokeUser = %d sessions, %v; want 2", len(ended), err)
	}
	f.wantErr(t, tokens[0], session.ErrNotFound)
	f.wantErr(t, tokens[2], session.ErrNotFound)
	f.wantLive(t, tokens[1])
	f.wantLive(t, other)
	if ended, err := f.m.RevokeUser(t.Context(), "acme", "u1", session.Hash{}); err != nil || len(ended) != 1 {
		t.Fatalf("RevokeUser(zero) = %d sessions, %v; want 1", len(ended), err)
	}
	f.wantErr(t, tokens[1], session.ErrNotFound)
	var ie *session.InputError
	if _, err := f.m.RevokeUser(t.Context(), "acme", "", session.Hash{}); !errors.As(err, &ie) {
		t.Errorf("RevokeUser with no user: %v, want *InputError", err)
	}
}

func TestList(t *testing.T) {
	f := newFixture(t, func(c *session.Config) { c.Unlimited = true })
	_, a := f.create(t, session.Options{})
	f.clock.Advance(time.Second)
	f.create(t, session.Options{IdleTimeout: time.Minute}) // will have timed out
	f.clock.Advance(time.Second)
	_, c := f.create(t, session.Options{})
	f.create(t, session.Options{UserID: "u2"})
	f.create(t, session.Options{Tenant: "globex"})
	f.clock.Advance(2 * time.Minute)
	list, err := f.m.List(t.Context(), "acme", "u1")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0] != a || list[1] != c {
		t.Errorf("List = %v, want the two live sessions oldest first", list)
	}
	if list, err := f.m.List(t.Context(), "acme", "nobody"); err != nil || len(list) != 0 {
		t.Errorf("List of an unknown user = %v, %v", list, err)
	}
	var ie *session.InputError
	if _, err := f.m.List(t.Context(), "acme", strings.Repeat("u", 200)); !errors.As(err, &ie) {
		t.Errorf("List with a long user ID: %v, want *InputError", err)
	}
}

// SE-7: one live session per user by default, newest wins; RefuseNew
// refuses the second sign-in instead.
func TestOneSessionPerUser(t *testing.T) {
	t.Run("EvictOldest", func(t *testing.T) {
		f := newFixture(t, nil)
		a, sa := f.create(t, session.Options{})
		f.clock.Advance(time.Second)
		b, _, evicted, err := f.m.Create(t.Context(), session.Options{Tenant: "acme", UserID: "u1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evicted) != 1 || evicted[0] != sa {
			t.Errorf("evicted %v, want the first session", evicted)
		}
		f.wantErr(t, a, session.ErrEvicted)
		f.wantLive(t, b)
		// Another user and the same user ID in another tenant are unaffected.
		c, _ := f.create(t, session.Options{UserID: "u2"})
		d, _ := f.create(t, session.Options{Tenant: "globex"})
		f.wantLive(t, b)
		f.wantLive(t, c)
		f.wantLive(t, d)
	})
	t.Run("RefuseNew", func(t *testing.T) {
		f := newFixture(t, func(c *session.Config) { c.Limit = session.Limit{Max: 1, Policy: session.RefuseNew} })
		a, _ := f.create(t, session.Options{})
		token, _, _, err := f.m.Create(t.Context(), session.Options{Tenant: "acme", UserID: "u1"})
		if !errors.Is(err, session.ErrLimit) || token != "" {
			t.Fatalf("second Create = %q, %v; want ErrLimit", token, err)
		}
		f.wantLive(t, a)
		// Once the first session ends, the user may sign in again.
		if _, err := f.m.Revoke(t.Context(), a); err != nil {
			t.Fatal(err)
		}
		f.create(t, session.Options{})
	})
	t.Run("OptionsOverride", func(t *testing.T) {
		f := newFixture(t, nil)
		a, _ := f.create(t, session.Options{Limit: &session.Limit{}}) // Max 0: unlimited
		b, _ := f.create(t, session.Options{Limit: &session.Limit{}})
		f.wantLive(t, a)
		f.wantLive(t, b)
		_, _, _, err := f.m.Create(t.Context(), session.Options{Tenant: "acme", UserID: "u1",
			Limit: &session.Limit{Max: 2, Policy: session.RefuseNew}})
		if !errors.Is(err, session.ErrLimit) {
			t.Errorf("Create over an Options limit of 2: %v, want ErrLimit", err)
		}
	})
}

func TestConcurrentSignIns(t *testing.T) {
	f := newFixture(t, nil)
	const n = 50
	tokens := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tok, _, _, err := f.m.Create(context.Background(), session.Options{Tenant: "acme", UserID: "u1"})
			if err != nil {
				t.Errorf("Create: %v", err)
			}
			tokens[i] = tok
		})
	}
	wg.Wait()
	live := 0
	for _, tok := range tokens {
		_, err := f.m.Authenticate(t.Context(), tok)
		switch {
		case err == nil:
			live++
		case !errors.Is(err, session.ErrEvicted):
			t.Errorf("Authenticate of a session that lost: %v, want ErrEvicted", err)
		}
	}
	if live != 1 {
		t.Errorf("%d sessions live after %d concurrent sign-ins, want 1", live, n)
	}
}

// An evicted session is reported as such (SE-7: "signed in elsewhere")
// until it would have ended anyway; every other way of ending a session
// still gives a plain ErrNotFound or ErrExpired.
func TestEvictedSession(t *testing.T) {
	f := newFixture(t, func(c *session.Config) { c.IdleTimeout = time.Hour })
	a, sa := f.create(t, session.Options{})
	f.clock.Advance(10 * time.Minute)
	f.wantLive(t, a) // touched: a now ends an hour after t0+10m
	f.clock.Advance(time.Minute)
	b, _ := f.create(t, session.Options{})
	f.wantErr(t, a, session.ErrEvicted)
	f.wantErr(t, a, session.ErrNotFound) // for callers that know only ErrNotFound
	var ev *session.EvictedError
	if _, err := f.m.Authenticate(t.Context(), a); !errors.As(err, &ev) || !ev.EndsAt.Equal(t0.Add(70*time.Minute)) {
		t.Errorf("Authenticate of the evicted session: %v (%+v), want an *EvictedError ending at +70m", err, ev)
	}
	if _, _, err := f.m.Rotate(t.Context(), a, 0); !errors.Is(err, session.ErrEvicted) {
		t.Errorf("Rotate of the evicted session: %v, want ErrEvicted", err)
	}
	if _, _, err := f.m.Reauthenticate(t.Context(), a, 0); !errors.Is(err, session.ErrEvicted) {
		t.Errorf("Reauthenticate of the evicted session: %v, want ErrEvicted", err)
	}
	// Signing out with it, or ending it by ID, finds no session.
	if _, err := f.m.Revoke(t.Context(), a); !errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrEvicted) {
		t.Errorf("Revoke of the evicted session: %v, want plain ErrNotFound", err)
	}
	if _, err := f.m.RevokeID(t.Context(), "acme", "u1", sa.ID()); !errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrEvicted) {
		t.Errorf("RevokeID of the evicted session: %v, want plain ErrNotFound", err)
	}
	f.wantErr(t, a, session.ErrEvicted)
	// Until a would have ended anyway, then it is just unknown.
	f.clock.Advance(70*time.Minute - 11*time.Minute - time.Microsecond)
	f.wantErr(t, a, session.ErrEvicted)
	f.clock.Advance(time.Microsecond)
	wantPlain(t, f, a, session.ErrNotFound)
	f.wantLive(t, b)
	// Signed out, expired: not evicted.
	if _, err := f.m.Revoke(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	wantPlain(t, f, b, session.ErrNotFound)
	c, _ := f.create(t, session.Options{})
	f.clock.Advance(time.Hour)
	wantPlain(t, f, c, session.ErrExpired)
	wantPlain(t, f, c, session.ErrNotFound)
}

// wantPlain checks that Authenticate fails with want and not ErrEvicted.
func wantPlain(t *testing.T, f *fixture, token string, want error) {
	t.Helper()
	s, err := f.m.Authenticate(t.Context(), token)
	if !errors.Is(err, want) || errors.Is(err, session.ErrEvicted) || s != (session.Session{}) {
		t.Errorf("Authenticate at +%v = %s, %v; want plain %v", f.clock.Now().Sub(t0), s.ID(), err, want)
	}
}

func TestConcurrentAuthenticate(t *testing.T) {
	f := newFixture(t, nil)
	token, _ := f.create(t, session.Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				f.clock.Advance(time.Second)
				if _, err := f.m.Authenticate(context.Background(), token); err != nil {
					t.Errorf("Authenticate: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	s := f.wantLive(t, token)
	if d := f.clock.Now().Sub(s.LastSeen); d >= time.Minute || d < 0 {
		t.Errorf("LastSeen %v behind now", d)
	}
}

// SE-15: a store failure never authenticates and is not mistaken for a
// clean "no such session".
func TestStoreErrorsFailClosed(t *testing.T) {
	boom := errors.New("connection refused")
	for _, method := range []string{"Lookup", "Touch"} {
		t.Run(method, func(t *testing.T) {
			f := newFixture(t, nil)
			token, _ := f.create(t, session.Options{})
			f.clock.Advance(time.Hour) // due for a touch
			f.store.setFail(method, boom)
			s, err := f.m.Authenticate(t.Context(), token)
			if err == nil || s != (session.Session{}) {
				t.Fatalf("Authenticate = %+v, %v; want an error and no session", s, err)
			}
			if !errors.Is(err, boom) {
				t.Errorf("error %v does not wrap the store's", err)
			}
			for _, clean := range []error{session.ErrNotFound, session.ErrExpired, session.ErrInvalidToken} {
				if errors.Is(err, clean) {
					t.Errorf("store failure reported as %v", clean)
				}
			}
			if !strings.HasPrefix(err.Error(), "session: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if strings.Contains(err.Error(), token) {
				t.Error("the error contains the token")
			}
		})
	}
	for _, tc := range []struct {
		method string
		call   func(f *fixture, token string, s session.Session) error
	}{
		{"Create", func(f *fixture, _ string, _ session.Session) error {
			_, _, _, err := f.m.Create(context.Background(), session.Options{Tenant: "acme", UserID: "u1"})
			return err
		}},
		{"Rotate", func(f *fixture, token string, _ session.Session) error {
			_, _, err := f.m.Rotate(context.Background(), token, 0)
			return err
		}},
		{"Delete", func(f *fixture, token string, _ session.Session) error {
			_, err := f.m.Revoke(context.Background(), token)
			return err
		}},
		{"ListByUser", func(f *fixture, _ string, _ session.Session) error {
			_, err := f.m.List(context.Background(), "acme", "u1")
			return err
		}},
		{"DeleteByUser", func(f *fixture, _ string, _ session.Session) error {
			_, err := f.m.RevokeUser(context.Background(), "acme", "u1", session.Hash{})
			return err
		}},
	} {
		t.Run(tc.method, func(t *testing.T) {
			f := newFixture(t, nil)
			token, s := f.create(t, session.Options{})
			f.store.setFail(tc.method, boom)
			if err := tc.call(f, token, s); !errors.Is(err, boom) || errors.Is(err, session.ErrNotFound) {
				t.Errorf("%s failure: %v, want it wrapped", tc.method, err)
			}
		})
	}
}

// An expired session whose delete fails is a store failure (fail closed:
// the request is denied, and the error says the store failed, not that the
// token is merely expired); the next request deletes it and gets the
// *ExpiredError that records the expiry.
func TestExpiredDeleteFailureFailsClosed(t *testing.T) {
	f := newFixture(t, func(c *session.Config) { c.IdleTimeout = time.Hour })
	token, _ := f.create(t, session.Options{})
	f.clock.Advance(2 * time.Hour)
	down := errors.New("down")
	f.store.setFail("Delete", down)
	if s, err := f.m.Authenticate(t.Context(), token); !errors.Is(err, down) || errors.Is(err, session.ErrExpired) || s != (session.Session{}) {
		t.Errorf("Authenticate of an expired session whose delete fails = %+v, %v; want the store error", s, err)
	}
	f.store.setFail("Delete", nil)
	var ee *session.ExpiredError
	if _, err := f.m.Authenticate(t.Context(), token); !errors.As(err, &ee) {
		t.Errorf("the next Authenticate = %v, want an *ExpiredError", err)
	}
}

func TestMalformedTokenNeverReachesStore(t *testing.T) {
	f := newFixture(t, nil)
	for _, tok := range []string{"", "x", strings.Repeat("A", 42) + "B", strings.Repeat("A", 44)} {
		f.wantErr(t, tok, session.ErrInvalidToken)
	}
	if n := f.store.count("Lookup"); n != 0 {
		t.Errorf("malformed tokens caused %d lookups", n)
	}
	// A well-formed token that was never issued (SE-2).
	f.wantErr(t, strings.Repeat("A", 43), session.ErrNotFound)
}

func TestAuthenticateHash(t *testing.T) {
	f := newFixture(t, nil)
	token, s := f.create(t, session.Options{})
	h, err := session.ParseToken(token)
	if err != nil || h != s.Hash {
		t.Fatalf("ParseToken = %v, %v; want %v", h, err, s.Hash)
	}
	if got, err := f.m.AuthenticateHash(t.Context(), h); err != nil || got != s {
		t.Errorf("AuthenticateHash = %+v, %v", got, err)
	}
}

func TestRandFailure(t *testing.T) {
	f := newFixture(t, func(c *session.Config) { c.Rand = io.LimitReader(strings.NewReader(strings.Repeat("x", 40)), 40) })
	if _, _, _, err := f.m.Create(t.Context(), session.Options{Tenant: "acme", UserID: "u1"}); err != nil {
		t.Fatalf("first Create: %v", err)
	}
	token, _, _, err := f.m.Create(t.Context(), session.Options{Tenant: "acme", UserID: "u2"})
	if err == nil || token != "" {
		t.Fatalf("Create with an exhausted Rand = %q, %v; want an error", token, err)
	}
	if n := f.store.count("Create"); n != 1 {
		t.Errorf("Store.Create called %d times, want 1", n)
	}
}

// SE-12: 10,000 tokens, all distinct, 256 bits each, no shared prefix.
func TestTokensUnique(t *testing.T) {
	f := newFixture(t, func(c *session.Config) { c.Unlimited = true })
	const n = 10000
	seen := make(map[string]bool, n)
	hashes := make(map[session.Hash]bool, n)
	prefix := ""
	for i := range n {
		token, s := f.create(t, session.Options{UserID: fmt.Sprint("u", i%100)})
		raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
		if err != nil || len(raw) != 32 {
			t.Fatalf("token %d does not decode to 256 bits: %v", i, err)
		}
		if seen[token] || hashes[s.Hash] {
			t.Fatalf("token %d repeats an earlier one", i)
		}
		seen[token], hashes[s.Hash] = true, true
		if i == 0 {
			prefix = token
		}
		for !strings.HasPrefix(token, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	if prefix != "" {
		t.Errorf("all tokens start with %q", prefix)
	}
}

func TestAuthenticateAllocs(t *testing.T) {
	store := memstore.NewSessions()
	clk := newClock()
	m, err := session.New(session.Config{Store: store, Index: store, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	token, _, _, err := m.Create(t.Context(), session.Options{Tenant: "acme", UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := m.Authenticate(ctx, token); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Authenticate allocates %v times per call, want 0", n)
	}
	// Nor with limits and admit (the facade's tenant policy and
	// allow-list).
	h, _ := session.ParseToken(token)
	tenant := ""
	admit := func(s session.Session) error { tenant = s.Tenant; return nil }
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := m.AuthenticateHashAdmit(ctx, h, policy10, admit); err != nil {
			t.Fatal(err)
		}
	}); n != 0 || tenant != "acme" {
		t.Errorf("AuthenticateHashAdmit allocates %v times per call (admit saw tenant %q), want 0", n, tenant)
	}
}

func Example() {
	store := memstore.NewSessions()
	m, err := session.New(session.Config{Store: store, Index: store})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	// Sign-in: give token to the client (in a cookie); keep nothing.
	token, _, _, err := m.Create(ctx, session.Options{Tenant: "acme", UserID: "ada"})
	if err != nil {
		panic(err)
	}
	// Every request.
	s, err := m.Authenticate(ctx, token)
	fmt.Println(s.Tenant, s.UserID, err)
	// Signing in again ends the first session (one session per user),
	// whose token is then refused with ErrEvicted: "signed in elsewhere".
	_, _, evicted, _ := m.Create(ctx, session.Options{Tenant: "acme", UserID: "ada"})
	fmt.Println(len(evicted))
	_, err = m.Authenticate(ctx, token)
	fmt.Println(errors.Is(err, session.ErrEvicted), err)
	// Output:
	// acme ada <nil>
	// 1
	// true session: ended by a newer sign-in of its user
}

// ltStore is a spy store with the optional LookupToucher capability,
// implemented as Lookup then Touch under one lock (the reference rule).
type ltStore struct {
	*spyStore
	ltMu sync.Mutex
}

var _ session.LookupToucher = (*ltStore)(nil)

func (s *ltStore) LookupTouch(ctx context.Context, h session.Hash, now time.Time, interval, maxGap time.Duration) (session.Session, error) {
	if err := s.call("LookupTouch"); err != nil {
		return session.Session{}, err
	}
	s.ltMu.Lock()
	defer s.ltMu.Unlock()
	got, err := s.Store.Lookup(ctx, h)
	if err != nil {
		return session.Session{}, err
	}
	if gap := now.Sub(got.LastSeen); got.LiveAt(now) && gap >= min(interval, got.IdleTimeout/2) && (maxGap <= 0 || gap < maxGap) {
		s.mu.Lock()
		s.touched = append(s.touched, now)
		s.mu.Unlock()
		if err := s.Store.Touch(ctx, h, now); err != nil {
			return session.Session{}, err
		}
	}
	return got, nil
}

// Untouch is the reference rule: under the lock that LookupTouch (and
// Touch, below) take, LastSeen goes back to prev if it is touched. memstore
// has no such write: the session is put back as it was, but for LastSeen.
// Like a network store, it fails on a context already done.
func (s *ltStore) Untouch(ctx context.Context, h session.Hash, touched, prev time.Time) error {
	if err := s.call("Untouch"); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.ltMu.Lock()
	defer s.ltMu.Unlock()
	got, err := s.Store.Lookup(ctx, h)
	if errors.Is(err, session.ErrNotFound) || err == nil && !got.LastSeen.Equal(touched) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := s.Store.Delete(ctx, h); err != nil {
		return err
	}
	got.LastSeen = prev
	_, err = s.Store.Create(ctx, got, session.Limit{})
	return err
}

// Touch is the spy's, under the lock of LookupTouch and Untouch.
func (s *ltStore) Touch(ctx context.Context, h session.Hash, seen time.Time) error {
	s.ltMu.Lock()
	defer s.ltMu.Unlock()
	return s.spyStore.Touch(ctx, h, seen)
}

// A store with LookupTouch is asked exactly once per request, and the idle
// bookkeeping is the same as with Lookup and Touch.
func TestLookupToucherIsOneCall(t *testing.T) {
	st := &ltStore{spyStore: newSpy()}
	c := newClock()
	m, err := session.New(session.Config{Store: st, Index: st, Now: c.Now, TouchInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	token, _, _, err := m.Create(t.Context(), session.Options{Tenant: "t", UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for range 30 { // a request every 10 s for 5 minutes
		c.Advance(10 * time.Second)
		s, err := m.Authenticate(t.Context(), token)
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		last = s.LastSeen
	}
	if n := st.count("LookupTouch"); n != 30 {
		t.Errorf("%d LookupTouch calls for 30 requests", n)
	}
	if n := st.count("Lookup") + st.count("Touch"); n != 0 {
		t.Errorf("%d Lookup/Touch calls besides LookupTouch", n)
	}
	if len(st.touched) != 5 {
		t.Errorf("%d touches in 5 minutes, want 5", len(st.touched))
	}
	if want := t0.Add(5 * time.Minute); !last.Equal(want) {
		t.Errorf("LastSeen = %v, want %v", last, want)
	}

	c.Advance(25 * time.Hour) // idle timeout
	// The call that removes the expired session gets it, to record the
	// expiry; the next gets ErrNotFound (the session is gone).
	var ee *session.ExpiredError
	if s, err := m.Authenticate(t.Context(), token); !errors.Is(err, session.ErrExpired) || !errors.As(err, &ee) ||
		ee.Session.UserID != "u" || ee.Session.Hash.IsZero() || s != (session.Session{}) {
		t.Errorf("Authenticate after the idle timeout = %+v, %v; want an *ExpiredError with the session", s, err)
	}
	if s, err := m.Authenticate(t.Context(), token); !errors.Is(err, session.ErrNotFound) || s != (session.Session{}) {
		t.Errorf("Authenticate of the removed session = %+v, %v; want ErrNotFound", s, err)
	}

	boom := errors.New("connection refused")
	token, _, _, err = m.Create(t.Context(), session.Options{Tenant: "t", UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	st.setFail("LookupTouch", boom)
	if s, err := m.Authenticate(t.Context(), token); !errors.Is(err, boom) || errors.Is(err, session.ErrNotFound) || s != (session.Session{}) {
		t.Errorf("Authenticate with the store down = %+v, %v; want a wrapped store error", s, err)
	}
}

// Under limits (AuthenticateHashWithin), a LookupToucher touches in its
// one call only a session whose LastSeen is less than Config.MaxTouchGap
// old; a session idle for longer is touched by a second call (Touch) once
// the limits have let it through, and never when they end it or cannot
// be read. Limits shorter than MaxTouchGap are refused on either store
// path.
func TestLookupToucherUnderLimits(t *testing.T) {
	st := &ltStore{spyStore: newSpy()}
	c := newClock()
	m, err := session.New(session.Config{Store: st, Index: st, Now: c.Now, Unlimited: true}) // 30 s, 1 min
	if err != nil {
		t.Fatal(err)
	}
	_, s, _, err := m.Create(t.Context(), session.Options{Tenant: "t", UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		limitsErr error
		policy    = session.Limits{IdleTimeout: 10 * time.Minute}
	)
	limits := func(session.Session) (session.Limits, error) { return policy, limitsErr }
	type counts struct{ lookupTouch, touch, touches int }
	count := func() counts {
		st.mu.Lock()
		n := len(st.touched)
		st.mu.Unlock()
		return counts{st.count("LookupTouch"), st.count("Touch"), n}
	}
	request := func(what string, pause time.Duration, want counts, wantErr error) {
		t.Helper()
		c.Advance(pause)
		before := count()
		got, err := m.AuthenticateHashWithin(t.Context(), s.Hash, limits)
		if !errors.Is(err, wantErr) {
			t.Fatalf("%s: AuthenticateHashWithin = %+v, %v; want %v", what, got, err, wantErr)
		}
		after := count()
		if d := (counts{after.lookupTouch - before.lookupTouch, after.touch - before.touch, after.touches - before.touches}); d != want {
			t.Errorf("%s: %d LookupTouch, %d Touch calls, %d touches; want %+v", what, d.lookupTouch, d.touch, d.touches, want)
		}
		if err == nil && !got.LastSeen.Equal(stored(t, st, s.Hash).LastSeen) {
			t.Errorf("%s: returned LastSeen %v, stored %v", what, got.LastSeen, stored(t, st, s.Hash).LastSeen)
		}
	}
	one, oneTouch := counts{1, 0, 0}, counts{1, 0, 1}
	for i := range 12 { // a request every 10 s: one call each, a touch every 30 s
		want := one
		if i%3 == 2 {
			want = oneTouch
		}
		request(fmt.Sprintf("request %d, 10 s apart", i), 10*time.Second, want, nil)
	}
	for i := range 3 { // 59 s apart: every request touches, in its one call
		request(fmt.Sprintf("request %d, 59 s apart", i), 59*time.Second, oneTouch, nil)
	}
	request("after a pause of a minute", time.Minute, counts{1, 1, 1}, nil)
	request("right after", time.Second, one, nil)

	// The limits fail after a pause: refused, and not touched.
	limitsErr = errors.New("policy store down")
	seen := stored(t, st, s.Hash).LastSeen
	request("limits failing after a pause", 2*time.Minute, one, limitsErr)
	limitsErr = nil
	if got := stored(t, st, s.Hash); !got.LastSeen.Equal(seen) {
		t.Errorf("a refused request touched the session: LastSeen %v, was %v", got.LastSeen, seen)
	}
	// A failed Touch denies.
	boom := errors.New("connection refused")
	st.setFail("Touch", boom)
	request("the Touch failing", 0, counts{1, 1, 0}, boom)
	st.setFail("Touch", nil)
	// Idle past the limits (within its own day): expired, never touched.
	request("idle past the limits", 9*time.Minute, counts{1, 0, 0}, session.ErrExpired)
	if _, err := st.Store.Lookup(t.Context(), s.Hash); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("the expired session: %v, want deleted", err)
	}

	// Limits shorter than MaxTouchGap are refused, whatever the store.
	for _, lt := range []bool{false, true} {
		var st sessiontest.Store = newSpy()
		if lt {
			st = &ltStore{spyStore: newSpy()}
		}
		m, err := session.New(session.Config{Store: st, Index: st, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		_, s, _, err := m.Create(t.Context(), session.Options{Tenant: "t", UserID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		short := func(session.Session) (session.Limits, error) {
			return session.Limits{IdleTimeout: 59 * time.Second}, nil
		}
		var ie *session.InputError
		if _, err := m.AuthenticateHashWithin(t.Context(), s.Hash, short); !errors.As(err, &ie) || ie.Field != "Limits.IdleTimeout" {
			t.Errorf("LookupToucher=%v: limits of 59 s under a 1 min MaxTouchGap: %v, want an *InputError", lt, err)
		}
	}
}

// LookupHashWithin checks a session as AuthenticateHashWithin does, on a
// LookupToucher too, but never touches it: one Lookup, no LookupTouch nor
// Touch, LastSeen as it was, whatever the pause; past the limits, it is
// expired and deleted all the same.
func TestLookupHashWithinNeverTouches(t *testing.T) {
	st := &ltStore{spyStore: newSpy()}
	c := newClock()
	m, err := session.New(session.Config{Store: st, Index: st, Now: c.Now, Unlimited: true})
	if err != nil {
		t.Fatal(err)
	}
	_, s, _, err := m.Create(t.Context(), session.Options{Tenant: "t", UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	limits := func(session.Session) (session.Limits, error) {
		return session.Limits{IdleTimeout: 10 * time.Minute}, nil
	}
	for _, pause := range []time.Duration{45 * time.Second, 2 * time.Minute, 4 * time.Minute} {
		c.Advance(pause)
		lookups, lt, touches := st.count("Lookup"), st.count("LookupTouch"), st.count("Touch")
		got, err := m.LookupHashWithin(t.Context(), s.Hash, limits)
		if err != nil || got.Hash != s.Hash {
			t.Fatalf("LookupHashWithin after %v = %+v, %v; want the session", pause, got, err)
		}
		if d := [3]int{st.count("Lookup") - lookups, st.count("LookupTouch") - lt, st.count("Touch") - touches}; d != [3]int{1, 0, 0} {
			t.Errorf("after %v: %d Lookup, %d LookupTouch, %d Touch calls; want one Lookup", pause, d[0], d[1], d[2])
		}
		if seen := stored(t, st, s.Hash).LastSeen; !seen.Equal(s.LastSeen) || !got.LastSeen.Equal(s.LastSeen) {
			t.Errorf("after %v: LastSeen %v (returned %v), want %v as created", pause, seen, got.LastSeen, s.LastSeen)
		}
	}
	c.Advance(4 * time.Minute) // 10m45s since the last use
	var ee *session.ExpiredError
	if _, err := m.LookupHashWithin(t.Context(), s.Hash, limits); !errors.As(err, &ee) || ee.Session.Hash != s.Hash {
		t.Fatalf("LookupHashWithin past the limits' idle timeout: %v, want an *ExpiredError", err)
	}
	if _, err := st.Store.Lookup(t.Context(), s.Hash); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("the expired session: %v, want deleted", err)
	}
}

// stored returns the session h as st holds it.
func stored(t *testing.T, st *ltStore, h session.Hash) session.Session {
	t.Helper()
	s, err := st.Store.Lookup(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReauthenticate(t *testing.T) {
	f := newFixture(t, nil)
	old, s := f.create(t, session.Options{Flags: 1})
	other, _ := f.create(t, session.Options{UserID: "other"})
	f.clock.Advance(30 * time.Minute)
	token, r, err := f.m.Reauthenticate(t.Context(), old, 3)
	if err != nil {
		t.Fatalf("Reauthenticate: %v", err)
	}
	f.wantErr(t, old, session.ErrNotFound)
	if got := f.wantLive(t, token); got != r {
		t.Errorf("Authenticate = %+v, want %+v", got, r)
	}
	now := f.clock.Now()
	if !r.CreatedAt.Equal(now) || !r.LastSeen.Equal(now) || r.Flags != 3 {
		t.Errorf("CreatedAt %v, LastSeen %v, Flags %d; want now, now, 3", r.CreatedAt, r.LastSeen, r.Flags)
	}
	if !r.ExpiresAt.Equal(s.ExpiresAt) {
		t.Errorf("ExpiresAt moved from %v to %v: re-authentication must not extend the absolute lifetime", s.ExpiresAt, r.ExpiresAt)
	}
	f.wantLive(t, other)
}

// ReauthenticateWithin: Limits.Lifetime is measured from CreatedAt, which
// a step-up moves, so the end it set from the CreatedAt being replaced
// becomes the session's ExpiresAt (the step-up does not restart a lowered
// lifetime); a looser lifetime leaves ExpiresAt alone; a session the
// limits have already ended is expired, not renewed.
func TestReauthenticateWithin(t *testing.T) {
	t.Run("lowered lifetime kept", func(t *testing.T) {
		f := newFixture(t, nil)
		old, s := f.create(t, session.Options{})
		f.clock.Advance(100 * time.Minute)
		token, r, err := f.m.ReauthenticateWithin(t.Context(), old, 0, session.Limits{Lifetime: 2 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if want := s.CreatedAt.Add(2 * time.Hour); !r.ExpiresAt.Equal(want) || !r.CreatedAt.Equal(f.clock.Now()) {
			t.Errorf("ExpiresAt %v, CreatedAt %v; want %v, now", r.ExpiresAt, r.CreatedAt, want)
		}
		f.clock.Advance(20 * time.Minute)
		f.wantErr(t, token, session.ErrExpired)
	})
	t.Run("looser lifetime", func(t *testing.T) {
		f := newFixture(t, nil)
		old, s := f.create(t, session.Options{Lifetime: time.Hour})
		f.clock.Advance(30 * time.Minute)
		_, r, err := f.m.ReauthenticateWithin(t.Context(), old, 0, session.Limits{Lifetime: 2 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if !r.ExpiresAt.Equal(s.ExpiresAt) || r.IdleTimeout != s.IdleTimeout {
			t.Errorf("ExpiresAt %v, IdleTimeout %v; want %v, %v", r.ExpiresAt, r.IdleTimeout, s.ExpiresAt, s.IdleTimeout)
		}
	})
	t.Run("ended by the limits", func(t *testing.T) {
		f := newFixture(t, nil)
		old, _ := f.create(t, session.Options{})
		f.clock.Advance(2 * time.Hour)
		if _, _, err := f.m.ReauthenticateWithin(t.Context(), old, 0, session.Limits{IdleTimeout: time.Hour}); !errors.Is(err, session.ErrExpired) {
			t.Fatalf("ReauthenticateWithin of a session idle 2 h under a 1 h limit: %v, want ErrExpired", err)
		}
		f.wantErr(t, old, session.ErrNotFound)
	})
}

// AuthenticateHashWithin: limits tighter than the session's own (a tenant
// policy lowered after sign-in) end it like its own would, judged on
// LastSeen before this call's touch, on both store paths; looser ones
// change nothing; an error from limits is returned and denies.
func TestAuthenticateHashWithin(t *testing.T) {
	for _, lt := range []bool{false, true} {
		t.Run(fmt.Sprintf("LookupToucher=%v", lt), func(t *testing.T) {
			c := newClock()
			var st interface {
				session.Store
				session.UserIndex
			} = newSpy()
			if lt {
				st = &ltStore{spyStore: newSpy()}
			}
			m, err := session.New(session.Config{Store: st, Index: st, Now: c.Now, Unlimited: true})
			if err != nil {
				t.Fatal(err)
			}
			create := func() (string, session.Hash) {
				token, s, _, err := m.Create(t.Context(), session.Options{Tenant: "t", UserID: "u"})
				if err != nil {
					t.Fatal(err)
				}
				return token, s.Hash
			}
			auth := func(token string, l session.Limits) (session.Session, error) {
				h, err := session.ParseToken(token)
				if err != nil {
					t.Fatal(err)
				}
				var seen []session.Session
				s, err := m.AuthenticateHashWithin(t.Context(), h, func(s session.Session) (session.Limits, error) {
					seen = append(seen, s)
					return l, nil
				})
				if len(seen) > 1 {
					t.Errorf("limits called %d times", len(seen))
				}
				return s, err
			}
			idle, life := session.Limits{IdleTimeout: time.Hour}, session.Limits{Lifetime: 3 * time.Hour}

			a, _ := create()
			c.Advance(59 * time.Minute)
			if s, err := auth(a, idle); err != nil || s.IdleTimeout != 24*time.Hour {
				t.Fatalf("idle 59 min under a 1 h limit: %+v, %v; want live, with its own 24 h", s, err)
			}
			c.Advance(61 * time.Minute) // 61 min since the last request, which touched it
			var ee *session.ExpiredError
			if _, err := auth(a, idle); !errors.As(err, &ee) || ee.Session.IdleTimeout != time.Hour {
				t.Fatalf("idle 61 min under a 1 h limit: %v; want an *ExpiredError with the 1 h idle timeout", err)
			}
			if _, err := m.Authenticate(t.Context(), a); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("after: %v, want ErrNotFound (deleted)", err)
			}

			b, _ := create()
			for age := 50 * time.Minute; age <= 200*time.Minute; age += 50 * time.Minute { // busy, until past a 3 h lifetime
				c.Advance(50 * time.Minute)
				if _, err := auth(b, life); (err == nil) != (age < 3*time.Hour) {
					t.Fatalf("a session %v old under a 3 h lifetime: %v", age, err)
				}
			}
			if _, err := m.Authenticate(t.Context(), b); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("a session 200 min old under a 3 h lifetime: %v, want ended", err)
			}

			// Looser limits are no limit; an error denies.
			d, _ := create()
			c.Advance(23 * time.Hour)
			if _, err := auth(d, session.Limits{IdleTimeout: 48 * time.Hour, Lifetime: 30 * 24 * time.Hour}); err != nil {
				t.Errorf("looser limits: %v", err)
			}
			boom := errors.New("policy store down")
			h, _ := session.ParseToken(d)
			if s, err := m.AuthenticateHashWithin(t.Context(), h, func(session.Session) (session.Limits, error) { return session.Limits{}, boom }); !errors.Is(err, boom) || s != (session.Session{}) {
				t.Errorf("limits failing: %+v, %v; want the error", s, err)
			}
			if _, err := m.Authenticate(t.Context(), d); err != nil {
				t.Errorf("after limits failed, the session itself: %v, want live", err)
			}
		})
	}
}

// A touch is due by the tighter idle timeout: under limits whose idle
// timeout is shorter than twice TouchInterval (a tenant lowering its
// timeout below the session's own), a session active more often than
// that timeout stays alive, touched every half of it, on both store paths
// (on a LookupToucher by a second call: the store judges by the
// session's own idle timeout).
func TestTouchDueByLimitsIdleTimeout(t *testing.T) {
	for _, lt := range []bool{false, true} {
		t.Run(fmt.Sprintf("LookupToucher=%v", lt), func(t *testing.T) {
			c := newClock()
			spy := newSpy()
			var st sessiontest.Store = spy
			if lt {
				st = &ltStore{spyStore: spy}
			}
			m, err := session.New(session.Config{Store: st, Index: st, Now: c.Now, TouchInterval: 5 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			_, s, _, err := m.Create(t.Context(), session.Options{Tenant: "t", UserID: "u"})
			if err != nil {
				t.Fatal(err)
			}
			limits := func(session.Session) (session.Limits, error) {
				return session.Limits{IdleTimeout: 90 * time.Second}, nil
			}
			for i := range 10 { // a request every 50 s under a 90 s idle timeout
				c.Advance(50 * time.Second)
				got, err := m.AuthenticateHashWithin(t.Context(), s.Hash, limits)
				if err != nil {
					t.Fatalf("request %d, 50 s after the previous one, under a 90 s idle timeout: %v", i, err)
				}
				if !got.LastSeen.Equal(c.Now()) {
					t.Errorf("request %d: LastSeen %v, want now (a touch is due every 45 s)", i, got.LastSeen)
				}
			}
			if n := spy.count("Touch"); n != 10 {
				t.Errorf("%d Touch calls for 10 requests each due for a touch, want 10", n)
			}
		})
	}
}
