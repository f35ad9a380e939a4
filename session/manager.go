package session

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults filled in by New.
const (
	DefaultIdleTimeout   = 24 * time.Hour
	DefaultLifetime      = 7 * 24 * time.Hour
	DefaultTouchInterval = 30 * time.Second
	DefaultMaxTouchGap   = time.Minute
)

// Bounds on the strings of a session.
const (
	MaxIDLen        = 128 // Tenant and UserID, in bytes
	MaxIPLen        = 64  // Options.IP is cut to this many bytes
	MaxUserAgentLen = 512 // Options.UserAgent is cut to this many bytes
)

// Config configures a Manager. Zero fields take the documented defaults.
type Config struct {
	// Store keeps the sessions (required).
	Store Store
	// Index lists and ends the sessions of one user (required); usually
	// the same value as Store.
	Index UserIndex
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Rand is the source of token bytes (default crypto/rand.Reader). It
	// must be a cryptographically secure generator.
	Rand io.Reader
	// IdleTimeout ends a session after this long without a request
	// (default 24 h).
	IdleTimeout time.Duration
	// Lifetime is the absolute life of a session, whatever its activity
	// (default 7 days). It may be shorter than IdleTimeout.
	Lifetime time.Duration
	// Limit bounds the live sessions of one user (default one session,
	// EvictOldest). A zero Max means the default of 1 unless Unlimited is
	// set.
	Limit Limit
	// Unlimited lifts the default limit: users may have any number of
	// sessions. Limit.Max must then be 0.
	Unlimited bool
	// TouchInterval: a session's LastSeen is written at most this often
	// (default 30 seconds, or IdleTimeout/2 or MaxTouchGap/2 if that is
	// shorter). It must be shorter than IdleTimeout. A session whose idle
	// timeout (its own, or the tighter one of the Limits it is checked
	// under: AuthenticateHashWithin) is shorter than twice TouchInterval is
	// touched every half that idle timeout instead, so that activity
	// always keeps it alive.
	TouchInterval time.Duration
	// MaxTouchGap bounds what AuthenticateHashWithin (and
	// AuthenticateHashAdmit) lets a LookupToucher touch before the limits
	// (and admit) are applied (default one minute, the
	// shortest idle timeout guard's tenant policies allow). The one store
	// call that looks a session up also writes its LastSeen only when that
	// is less than MaxTouchGap old; a session idle for MaxTouchGap or more
	// is touched by a second store call (Touch), made only once the limits
	// have let it through, so that a session their idle timeout ends is
	// never touched. (One that only their lifetime ends may have been
	// touched by the first call; the lifetime ends it all the same.)
	// Limits whose IdleTimeout is shorter than MaxTouchGap are refused. A
	// TouchInterval of MaxTouchGap or more makes every touch under limits
	// that second call.
	MaxTouchGap time.Duration
}

// ConfigError reports an unacceptable Config field.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string { return "session: invalid Config." + e.Field + ": " + e.Reason }

// InputError reports an unacceptable argument (a tenant, a user ID, an
// Options field). It names the field and never echoes its value.
type InputError struct {
	Field, Reason string
}

func (e *InputError) Error() string { return "session: invalid " + e.Field + ": " + e.Reason }

// Manager issues, checks, rotates and ends sessions on a Store. It is safe
// for concurrent use; every invariant (the session limit above all) is
// enforced by the Store in one atomic step.
type Manager struct {
	store     Store
	lt        LookupToucher  // store's optional one-round-trip check, or nil
	lr        LineageRevoker // store's optional atomic RevokeLineage, or nil
	maxGap    time.Duration  // Config.MaxTouchGap
	index     UserIndex
	now       func() time.Time
	rand      io.Reader
	idle      time.Duration
	life      time.Duration
	limit     Limit
	touchEach time.Duration
}

// New validates cfg, fills its defaults and returns a Manager. A bad field
// is reported as a *ConfigError.
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Store == nil:
		return nil, &ConfigError{Field: "Store", Reason: "is required"}
	case cfg.Index == nil:
		return nil, &ConfigError{Field: "Index", Reason: "is required"}
	case cfg.IdleTimeout < 0:
		return nil, &ConfigError{Field: "IdleTimeout", Reason: "must not be negative"}
	case cfg.Lifetime < 0:
		return nil, &ConfigError{Field: "Lifetime", Reason: "must not be negative"}
	case cfg.TouchInterval < 0:
		return nil, &ConfigError{Field: "TouchInterval", Reason: "must not be negative"}
	case cfg.MaxTouchGap < 0:
		return nil, &ConfigError{Field: "MaxTouchGap", Reason: "must not be negative"}
	case cfg.Unlimited && cfg.Limit.Max != 0:
		return nil, &ConfigError{Field: "Limit.Max", Reason: "must be 0 when Unlimited is set"}
	}
	if field, reason := cfg.Limit.check(); field != "" {
		return nil, &ConfigError{Field: "Limit." + field, Reason: reason}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.Lifetime = cmp.Or(cfg.Lifetime, DefaultLifetime)
	if cfg.Limit.Max == 0 && !cfg.Unlimited {
		cfg.Limit.Max = 1
	}
	cfg.MaxTouchGap = cmp.Or(cfg.MaxTouchGap, DefaultMaxTouchGap)
	if cfg.TouchInterval == 0 {
		cfg.TouchInterval = min(DefaultTouchInterval, cfg.IdleTimeout/2, cfg.MaxTouchGap/2)
	}
	if cfg.TouchInterval >= cfg.IdleTimeout {
		return nil, &ConfigError{Field: "TouchInterval", Reason: "must be shorter than IdleTimeout"}
	}
	lt, _ := cfg.Store.(LookupToucher)
	lr, _ := cfg.Store.(LineageRevoker)
	return &Manager{
		store:     cfg.Store,
		lt:        lt,
		lr:        lr,
		maxGap:    cfg.MaxTouchGap,
		index:     cfg.Index,
		now:       cfg.Now,
		rand:      cfg.Rand,
		idle:      cfg.IdleTimeout,
		life:      cfg.Lifetime,
		limit:     cfg.Limit,
		touchEach: cfg.TouchInterval,
	}, nil
}

// check returns the field of l that is not acceptable and why, or "".
func (l Limit) check() (field, reason string) {
	switch {
	case l.Max < 0:
		return "Max", "must not be negative"
	case l.Policy != EvictOldest && l.Policy != RefuseNew:
		return "Policy", "is unknown"
	}
	return "", ""
}

// Options are the settings of one new session. Zero fields take the
// Manager's defaults.
type Options struct {
	// Tenant and UserID name the user (required; at most MaxIDLen bytes of
	// UTF-8 without control characters).
	Tenant, UserID string
	// IP and UserAgent describe the client, for the user's list of
	// sessions. They are cut to MaxIPLen and MaxUserAgentLen bytes at a
	// character boundary; invalid UTF-8 is replaced by U+FFFD.
	IP, UserAgent string
	// IdleTimeout and Lifetime override the Manager's (for example from a
	// tenant's policy); they must not be negative.
	IdleTimeout, Lifetime time.Duration
	// Limit overrides the Manager's session limit; nil takes it. A non-nil
	// Limit with Max 0 means no limit.
	Limit *Limit
	// Flags are stored with the session as they are.
	Flags uint32
}

func (o *Options) validate() error {
	if err := checkUser(o.Tenant, o.UserID); err != nil {
		return err
	}
	switch {
	case o.IdleTimeout < 0:
		return &InputError{Field: "Options.IdleTimeout", Reason: "must not be negative"}
	case o.Lifetime < 0:
		return &InputError{Field: "Options.Lifetime", Reason: "must not be negative"}
	}
	if o.Limit != nil {
		if field, reason := o.Limit.check(); field != "" {
			return &InputError{Field: "Options.Limit." + field, Reason: reason}
		}
	}
	return nil
}

// checkUser returns an *InputError if tenant or userID is not acceptable.
func checkUser(tenant, userID string) error {
	if r := checkID(tenant); r != "" {
		return &InputError{Field: "tenant", Reason: r}
	}
	if r := checkID(userID); r != "" {
		return &InputError{Field: "user ID", Reason: r}
	}
	return nil
}

func checkID(s string) string {
	switch {
	case s == "":
		return "is required"
	case len(s) > MaxIDLen:
		return fmt.Sprintf("is longer than %d bytes", MaxIDLen)
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return "contains a control character"
		}
	}
	return ""
}

// clip returns s as valid UTF-8 of at most n bytes, cut at a character
// boundary.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:runeStart(s, n)]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
		if len(s) > n {
			s = s[:runeStart(s, n)]
		}
	}
	return s
}

// runeStart backs i off to the start of the character that holds s[i]
// (at most utf8.UTFMax-1 bytes; invalid bytes are dealt with afterwards).
func runeStart(s string, i int) int {
	for j := 1; j < utf8.UTFMax && i > 0 && !utf8.RuneStart(s[i]); j++ {
		i--
	}
	return i
}

// timestamp is the current time as stored: UTC, to the microsecond, which
// every backend keeps exactly.
func (m *Manager) timestamp() time.Time { return m.now().UTC().Truncate(time.Microsecond) }

// Create starts a session for o's user and returns its token (give it to
// the client; it is not kept anywhere), the session as stored, and the
// sessions the limit evicted, oldest first. With RefuseNew and the user at
// the limit it returns ErrLimit and nothing changes.
func (m *Manager) Create(ctx context.Context, o Options) (token string, s Session, evicted []Session, err error) {
	if err := o.validate(); err != nil {
		return "", Session{}, nil, err
	}
	lim := m.limit
	if o.Limit != nil {
		lim = *o.Limit
	}
	token, h, err := generateToken(m.rand)
	if err != nil {
		return "", Session{}, nil, fmt.Errorf("session: reading random bytes: %w", err)
	}
	now := m.timestamp()
	s = Session{
		Hash:        h,
		Tenant:      o.Tenant,
		UserID:      o.UserID,
		CreatedAt:   now,
		LastSeen:    now,
		ExpiresAt:   now.Add(cmp.Or(o.Lifetime, m.life)),
		IdleTimeout: cmp.Or(o.IdleTimeout, m.idle),
		IP:          clip(o.IP, MaxIPLen),
		UserAgent:   clip(o.UserAgent, MaxUserAgentLen),
		Flags:       o.Flags,
	}
	evicted, err = m.store.Create(ctx, s, lim)
	if err != nil {
		return "", Session{}, nil, storeErr("create", err)
	}
	return token, s, evicted, nil
}

// Authenticate returns the live session behind token. It returns
// ErrInvalidToken for a malformed token, ErrNotFound for one that names no
// session, an *EvictedError (ErrEvicted, which is also ErrNotFound) for a
// session the session limit ended, until it would have ended anyway, and
// ErrExpired for a session past its idle timeout or lifetime, which it
// then deletes: for the call whose delete removed it, the error is an
// *ExpiredError carrying the session (so that the expiry can be recorded
// once); a call that finds it already deleted gets plain ErrExpired. A
// failed delete is a store error, not ErrExpired. Any other error is a
// store failure and the request must be denied. When the session was last
// written TouchInterval ago or more, its LastSeen is advanced to now; an
// expired session is never touched. Without that write, Authenticate
// allocates nothing beyond what the Store does.
func (m *Manager) Authenticate(ctx context.Context, token string) (Session, error) {
	h, err := ParseToken(token)
	if err != nil {
		return Session{}, err
	}
	return m.AuthenticateHash(ctx, h)
}

// AuthenticateHash is Authenticate for a token already parsed with
// ParseToken. When the Store implements LookupToucher it costs exactly one
// store call (LookupTouch, which also makes the touch when one is due).
func (m *Manager) AuthenticateHash(ctx context.Context, h Hash) (Session, error) {
	return m.AuthenticateHashWithin(ctx, h, nil)
}

// Limits are an idle timeout and a lifetime tighter than a session's own
// (for example a tenant's policy, lowered after the session was created).
// A zero field leaves the session's own.
type Limits struct {
	IdleTimeout time.Duration
	Lifetime    time.Duration // from CreatedAt
}

// within returns s with its idle timeout and end tightened to l.
func (l Limits) within(s Session) Session {
	s.IdleTimeout, s.ExpiresAt = l.bounds(&s)
	return s
}

// bounds returns the idle timeout and absolute end of s tightened to l.
func (l Limits) bounds(s *Session) (idle time.Duration, end time.Time) {
	idle, end = s.IdleTimeout, s.ExpiresAt
	if l.IdleTimeout > 0 && l.IdleTimeout < idle {
		idle = l.IdleTimeout
	}
	if e := s.CreatedAt.Add(l.Lifetime); l.Lifetime > 0 && e.Before(end) {
		end = e
	}
	return idle, end
}

// AuthenticateHashWithin is AuthenticateHash under the tighter of the
// session's own limits and the Limits that limits (if not nil) returns for
// it. limits is called once, with the session as stored before this call
// touched it; an error from it is returned as it is, the session is then
// not touched by a second call (see below), and a touch LookupTouch made
// is taken back (see AuthenticateHashAdmit). A session live by its
// own limits but not by these is expired like any other: deleted, and
// reported as ErrExpired (an *ExpiredError whose Session carries the
// tightened IdleTimeout and ExpiresAt); one their idle timeout ends is
// never touched (one only their lifetime ends may have been, harmlessly:
// the lifetime ends it whatever its LastSeen). Limits whose
// IdleTimeout is set and shorter than Config.MaxTouchGap are refused with
// an *InputError (Field "Limits.IdleTimeout"), and a touch taken back
// alike: the store may have touched the session before they were known.
// The session returned keeps its own limits.
//
// A touch is due by the tighter idle timeout too (see touchEvery): under
// limits whose idle timeout is shorter than twice Config.TouchInterval,
// the session is touched every half of that timeout, so that activity
// keeps it alive under the limits as under its own.
//
// On a LookupToucher with limits, the request costs one store call
// (LookupTouch, which also writes LastSeen when a touch is due) unless a
// touch is due and LastSeen is Config.MaxTouchGap or more old: LookupTouch
// then leaves the session alone, and once the limits have let it through,
// a second call (Touch) writes LastSeen. So too when the touch is due only
// by the limits' idle timeout (the store judges by the session's own). A
// failed Touch is a store error and the request is denied. Without
// limits, LookupTouch touches whenever a touch is due: one store call.
func (m *Manager) AuthenticateHashWithin(ctx context.Context, h Hash, limits func(Session) (Limits, error)) (Session, error) {
	return m.AuthenticateHashAdmit(ctx, h, limits, nil)
}

// AuthenticateHashAdmit is AuthenticateHashWithin with one more check,
// admit (if not nil), for a refusal that only the session tells (the
// allow-list of its tenant, say). admit is called once, with the session
// as stored before this call touched it, after limits, and only for a
// session live under them; an error from it is returned as it is, and the
// session is then not touched by a second call. With admit, LookupTouch is
// bounded by Config.MaxTouchGap as it is with limits.
//
// A refused request does not keep the session alive. On a Store without
// LookupToucher it never touches it: the check is Lookup, then limits and
// admit, then Touch. On a LookupToucher, LookupTouch may have touched the
// session before limits and admit are known; when either then refuses the
// request (an error from limits or admit, or Limits refused as an
// *InputError; not ErrExpired, which ends the session), a second store
// call, Untouch, sets LastSeen back to the value this call found, unless
// another request has moved it on since: a concurrent request's later
// touch is never undone. That call is made without ctx's cancellation
// (with its values; until ctx's deadline, or for 5 seconds at most
// without one), so that a client that hangs up cannot keep the touch;
// when it fails (a deadline past included), the request is refused with
// that store error instead of the refusal. For the same reason, with
// admit, LookupTouch itself runs without ctx's cancellation, as bounded:
// a store may report a call cancelled whose write was made. A request let through costs exactly what it
// does under AuthenticateHashWithin: only refused ones pay for Untouch.
//
// One effect remains: a request let through while a refused one's touch
// stands (between that request's LookupTouch and its Untouch) finds
// LastSeen just written and does not touch; the Untouch then takes the
// touch back, and the session ends as if that request had not come:
// LastSeen keeps the value the refused request found, less than
// MaxTouchGap old when it came. The next request let through a touch
// interval after that value touches it again.
func (m *Manager) AuthenticateHashAdmit(ctx context.Context, h Hash, limits func(Session) (Limits, error), admit func(Session) error) (Session, error) {
	now := m.timestamp()
	var (
		s   Session
		err error
		gap time.Duration // LookupTouch's maxGap: no bound without limits and admit, the store checks the session's own
	)
	if m.lt != nil {
		if limits != nil || admit != nil {
			gap = m.maxGap
		}
		if admit != nil {
			// A touch that admit may refuse, to be taken back: a client
			// that hangs up while the call is in flight must not leave it
			// made but unreported (pgx reports the cancellation of a
			// query whose write committed). (limits refuses for the
			// host's reasons, not the client's: a failed policy read.)
			lctx, cancel := detached(ctx)
			s, err = m.lt.LookupTouch(lctx, h, now, m.touchEach, gap)
			cancel()
		} else {
			s, err = m.lt.LookupTouch(ctx, h, now, m.touchEach, gap)
		}
	} else {
		s, err = m.store.Lookup(ctx, h)
	}
	if err != nil {
		return Session{}, m.lookupErr(err)
	}
	age := now.Sub(s.LastSeen)
	// Whether the call that found s also made the touch: LookupTouch
	// does when s is live at now, one is due by s's own idle timeout and
	// LastSeen is less than gap old.
	touched := m.lt != nil && s.LiveAt(now) && age >= touchEvery(m.touchEach, s.IdleTimeout) && (gap == 0 || age < gap)
	idle, err := m.live(ctx, h, &s, now, limits, m.maxGap)
	if err == nil && admit != nil {
		err = admit(s)
	}
	if err != nil {
		if touched && !errors.Is(err, ErrExpired) {
			uctx, cancel := detached(ctx)
			uerr := m.lt.Untouch(uctx, h, now, s.LastSeen)
			cancel()
			if uerr != nil {
				return Session{}, storeErr("untouch", uerr)
			}
		}
		return Session{}, err
	}
	if age >= touchEvery(m.touchEach, idle) {
		if !touched {
			if err := m.store.Touch(ctx, h, now); err != nil {
				return Session{}, storeErr("touch", err)
			}
		}
		s.LastSeen = now
	}
	return s, nil
}

// detachedTimeout bounds a store call that runs without its caller's
// cancellation (detached) when the caller's context has no deadline.
const detachedTimeout = 5 * time.Second

// detached returns ctx without its cancellation (with its values), ended
// at ctx's deadline, or detachedTimeout from now without one.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	d := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(d, dl)
	}
	return context.WithTimeout(d, detachedTimeout)
}

// LookupHashWithin checks the session h as AuthenticateHashWithin does
// (under the tighter of its own limits and those limits returns, if not
// nil; an expired session is deleted and reported the same way), but
// never writes its LastSeen: for a request that is refused whatever the
// session (one whose client cannot be identified, say), which must not
// keep the session alive past its idle timeout. It costs one store call
// (Lookup, never LookupTouch), plus the delete of an expired session.
func (m *Manager) LookupHashWithin(ctx context.Context, h Hash, limits func(Session) (Limits, error)) (Session, error) {
	s, _, err := m.lookupLive(ctx, h, limits)
	return s, err
}

// touchEvery is how long after LastSeen a request writes LastSeen again:
// the Manager's TouchInterval, or half the idle timeout the session is
// held to (its own, or the tighter one of the limits it is checked under)
// if that is shorter, so that activity always keeps a session alive.
func touchEvery(interval, idle time.Duration) time.Duration {
	return min(interval, idle/2)
}

// lookupLive returns the session h if it is live now (within limits, if
// not nil), and now.
func (m *Manager) lookupLive(ctx context.Context, h Hash, limits func(Session) (Limits, error)) (Session, time.Time, error) {
	s, err := m.store.Lookup(ctx, h)
	if err != nil {
		return Session{}, time.Time{}, m.lookupErr(err)
	}
	now := m.now()
	if _, err := m.live(ctx, h, &s, now, limits, 0); err != nil {
		return Session{}, time.Time{}, err
	}
	return s, now, nil
}

// live returns the idle timeout s (h), as stored, is held to (the
// tighter of its own and that of limits, if not nil), if s is live at now
// by its own limits and by limits; otherwise it expires s and returns the
// error. Limits with an IdleTimeout shorter than minIdle are refused (an
// *InputError). (s is read through a pointer: the per-request path
// copies it as little as it can.)
func (m *Manager) live(ctx context.Context, h Hash, s *Session, now time.Time, limits func(Session) (Limits, error), minIdle time.Duration) (time.Duration, error) {
	if !s.LiveAt(now) {
		return 0, m.expired(ctx, h, *s)
	}
	if limits == nil {
		return s.IdleTimeout, nil
	}
	l, err := limits(*s)
	if err != nil {
		return 0, err
	}
	if l.IdleTimeout > 0 && l.IdleTimeout < minIdle {
		return 0, &InputError{Field: "Limits.IdleTimeout", Reason: "is shorter than Config.MaxTouchGap"}
	}
	idle, end := l.bounds(s)
	if !liveAt(s.LastSeen, idle, end, now) {
		return 0, m.expired(ctx, h, l.within(*s))
	}
	return idle, nil
}

// lookupErr is storeErr for a failed lookup of a session to authenticate:
// a tombstone the store reports is ErrEvicted (the store's *EvictedError)
// until the evicted session would have ended anyway, and ErrNotFound
// afterwards.
func (m *Manager) lookupErr(err error) error {
	if ev := (*EvictedError)(nil); errors.As(err, &ev) {
		if m.now().Before(ev.EndsAt) {
			return ev
		}
		return ErrNotFound
	}
	return storeErr("lookup", err)
}

// expired deletes the expired session s (h) and returns ErrExpired, as an
// *ExpiredError with s if this call's delete removed it (plain ErrExpired
// if another call had). A failed delete is returned as a store error, so
// that the request is denied as on any store failure and the expiry is
// recorded by the next request, whose delete succeeds.
func (m *Manager) expired(ctx context.Context, h Hash, s Session) error {
	_, err := m.store.Delete(ctx, h)
	switch {
	case errors.Is(err, ErrNotFound):
		return ErrExpired
	case err != nil:
		return storeErr("delete", err)
	}
	return &ExpiredError{Session: s}
}

// ExpiredError is the ErrExpired of the one Authenticate that found a
// session expired and removed it (errors.Is(err, ErrExpired) holds): it
// carries the session, so that the expiry is recorded once, whoever else
// presents the token meanwhile.
type ExpiredError struct{ Session Session }

func (e *ExpiredError) Error() string { return ErrExpired.Error() }

// Is reports whether target is ErrExpired.
func (e *ExpiredError) Is(target error) bool { return target == ErrExpired }

// Rotate replaces the live session behind token by a new one with a new
// token, as after a change of privilege: the user, tenant, creation and
// expiry times, idle timeout, IP and user agent are kept, LastSeen becomes
// now and Flags become flags. The old token stops working in the same
// step. Errors are those of Authenticate, plus ErrNotFound if the session
// ended meanwhile.
func (m *Manager) Rotate(ctx context.Context, token string, flags uint32) (newToken string, s Session, err error) {
	return m.rotate(ctx, token, flags, false, Limits{})
}

// Reauthenticate is Rotate after the user proved their identity again
// (step-up): CreatedAt, the time of the session's last full
// authentication, becomes now as well. The absolute expiry is kept, and the
// session now counts as the user's newest for the session limit.
func (m *Manager) Reauthenticate(ctx context.Context, token string, flags uint32) (newToken string, s Session, err error) {
	return m.rotate(ctx, token, flags, true, Limits{})
}

// ReauthenticateWithin is Reauthenticate under the tighter of the
// session's own limits and l (for example a tenant's policy, lowered after
// the sign-in). A session live by its own limits but not by l is expired
// as AuthenticateHashWithin expires it (ErrExpired, an *ExpiredError for
// the call that removed it). Since l.Lifetime is measured from CreatedAt,
// which the step-up moves, the end it sets from the CreatedAt being
// replaced becomes the session's ExpiresAt when that is earlier: a
// step-up never extends the life that l had shortened. (A Lifetime
// lowered after the step-up is measured from the step-up.)
func (m *Manager) ReauthenticateWithin(ctx context.Context, token string, flags uint32, l Limits) (newToken string, s Session, err error) {
	return m.rotate(ctx, token, flags, true, l)
}

func (m *Manager) rotate(ctx context.Context, token string, flags uint32, reauth bool, l Limits) (newToken string, s Session, err error) {
	h, err := ParseToken(token)
	if err != nil {
		return "", Session{}, err
	}
	var limits func(Session) (Limits, error)
	if l != (Limits{}) {
		limits = func(Session) (Limits, error) { return l, nil }
	}
	s, _, err = m.lookupLive(ctx, h, limits)
	if err != nil {
		return "", Session{}, err
	}
	if reauth {
		s.ExpiresAt = l.within(s).ExpiresAt // before CreatedAt moves
	}
	newToken, nh, err := generateToken(m.rand)
	if err != nil {
		return "", Session{}, fmt.Errorf("session: reading random bytes: %w", err)
	}
	s.Hash = nh
	now := m.timestamp()
	if now.After(s.LastSeen) {
		s.LastSeen = now
	}
	if reauth {
		s.CreatedAt = now
	}
	s.Flags = flags
	if err := m.store.Rotate(ctx, h, s); err != nil {
		return "", Session{}, storeErr("rotate", err)
	}
	return newToken, s, nil
}

// Revoke ends the session behind token (sign-out), live or not, and returns
// it. ErrInvalidToken for a malformed token, ErrNotFound if there is no
// such session.
func (m *Manager) Revoke(ctx context.Context, token string) (Session, error) {
	h, err := ParseToken(token)
	if err != nil {
		return Session{}, err
	}
	s, err := m.store.Delete(ctx, h)
	if err != nil {
		return Session{}, storeErr("delete", err)
	}
	return s, nil
}

// MaxLineageHops bounds how many rotation tombstones RevokeLineage
// follows from the token it is given to the live session, and so how
// many rotations back from the session it spares UserIndex.DeleteByUser
// keeps them.
const MaxLineageHops = 8

// RevokeLineage ends the session that the session behind token is now,
// live or not, and returns it: the session itself, as Revoke does, or, if
// it was rotated (Rotate, Reauthenticate), the session it was rotated to,
// following the store's rotation tombstones (*RotatedError) at most eight
// hops, every hop of the same tenant and user. This is sign-out with a
// token that another client (another tab, or whoever else holds a copy)
// rotated meanwhile: the user ends the session they signed in with,
// whatever it became. The second return reports whether the session ended
// was reached through a rotation.
//
// It returns ErrInvalidToken for a malformed token and ErrNotFound when
// there is nothing to end: an unknown token, one of a session the limit
// evicted (that session is gone; its token revokes nothing), a chain
// that ends in nothing or in such a tombstone, that is longer than eight
// hops or that changes user. Once RevokeLineage returns a session no
// session of the lineage is left. On a Store that implements
// LineageRevoker it is one call of DeleteLineage, an atomic step that no
// rotation can outrun. Otherwise it follows the tombstones with Lookup and Delete, and
// a session rotated again meanwhile is followed to its new hash (within
// the same bound): a client rotating the session over and over can then
// outrun it. Any other error is a store failure.
func (m *Manager) RevokeLineage(ctx context.Context, token string) (s Session, rotated bool, err error) {
	h, err := ParseToken(token)
	if err != nil {
		return Session{}, false, err
	}
	return m.RevokeLineageHash(ctx, h)
}

// RevokeLineageHash is RevokeLineage for the session with hash h
// (Session.Hash; ParseID of its ID): for a caller that holds a session's
// identifier rather than its token. Like RevokeID, it ends the session
// whatever its user: the caller decides who may end which session.
func (m *Manager) RevokeLineageHash(ctx context.Context, h Hash) (s Session, rotated bool, err error) {
	if m.lr != nil {
		s, rotated, err := m.lr.DeleteLineage(ctx, h, MaxLineageHops)
		if err != nil {
			return Session{}, false, storeErr("delete lineage", err)
		}
		return s, rotated, nil
	}
	var tenant, userID string // the lineage's user, once known
	sameUser := func(t, u string) bool {
		if tenant == "" {
			tenant, userID = t, u
		}
		return t == tenant && u == userID
	}
	for range MaxLineageHops + 1 {
		s, err := m.store.Lookup(ctx, h)
		var re *RotatedError
		switch {
		case errors.As(err, &re):
			if !sameUser(re.Tenant, re.UserID) {
				return Session{}, false, ErrNotFound
			}
			h, rotated = re.Successor, true
			continue
		case err != nil:
			return Session{}, false, storeErr("lookup", err)
		case !sameUser(s.Tenant, s.UserID):
			return Session{}, false, ErrNotFound
		}
		// Hashes are never reused: the session deleted is the one found,
		// or it is gone, perhaps rotated meanwhile, and the next pass
		// follows it.
		d, err := m.store.Delete(ctx, h)
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			return Session{}, false, storeErr("delete", err)
		}
		return d, rotated, nil
	}
	return Session{}, false, ErrNotFound
}

// RevokeID ends the session with public identifier id (Session.ID) of the
// given user and returns it. It returns ErrNotFound unless that session
// exists and belongs to tenant and userID, ErrInvalidToken for a malformed
// id, and an *InputError for a malformed tenant or user ID.
func (m *Manager) RevokeID(ctx context.Context, tenant, userID, id string) (Session, error) {
	if err := checkUser(tenant, userID); err != nil {
		return Session{}, err
	}
	h, err := ParseID(id)
	if err != nil {
		return Session{}, err
	}
	// Hashes are never reused, so the session found here is the one
	// deleted below (or it is gone and Delete says so).
	s, err := m.store.Lookup(ctx, h)
	if err != nil {
		return Session{}, storeErr("lookup", err)
	}
	if s.Tenant != tenant || s.UserID != userID {
		return Session{}, ErrNotFound
	}
	s, err = m.store.Delete(ctx, h)
	if err != nil {
		return Session{}, storeErr("delete", err)
	}
	return s, nil
}

// RevokeUser ends every session of the user except the one with hash
// except (the zero Hash spares none), as after a password change or a
// deactivation, and returns the ended sessions. The user's evicted
// sessions are forgotten too: their tokens are no longer ErrEvicted. So
// are the rotations of the ended sessions, but not those of the spared
// one (see UserIndex.DeleteByUser): RevokeLineage with an older token of
// it still ends it.
func (m *Manager) RevokeUser(ctx context.Context, tenant, userID string, except Hash) ([]Session, error) {
	if err := checkUser(tenant, userID); err != nil {
		return nil, err
	}
	ended, err := m.index.DeleteByUser(ctx, tenant, userID, except)
	if err != nil {
		return nil, storeErr("delete by user", err)
	}
	return ended, nil
}

// trimPasses bounds how many times Trim lists a user's sessions again
// after finding one of them gone.
const trimPasses = 3

// Trim ends the user's sessions beyond the newest keep, as when the limit
// on sessions was lowered after they were created, and returns the
// sessions it ended, oldest first. Only the sessions that count are
// weighed: those live now and, if counts is not nil, for which counts
// reports true; the others are left alone. Of those, the newest keep are
// kept — newest by CreatedAt, then by Hash, the order in which Create
// evicts, so that a Trim and a concurrent Create agree on which sessions
// are the oldest — and the others are deleted, oldest first. A keep of 0
// means no limit: nothing ends. A bad tenant, user ID or a negative keep
// is an *InputError.
//
// Trim is not one atomic step: it lists the user's sessions (UserIndex)
// and deletes the extra ones one at a time (Store.Delete, each atomic).
// A session created after a listing is not in it, and is among the newest
// in the next, so Trim does not end a sign-in that raced it. When a
// delete finds a session already gone (ended, evicted by a new sign-in,
// rotated meanwhile), Trim lists again and goes on, at most three
// listings in all: a session rotated or reauthenticated meanwhile is
// weighed under its new hash and CreatedAt. A session that another call
// deletes first is not returned: that call ended it. On a store error
// Trim stops and returns the sessions it ended so far with the error;
// the others are untouched.
func (m *Manager) Trim(ctx context.Context, tenant, userID string, keep int, counts func(Session) bool) ([]Session, error) {
	if err := checkUser(tenant, userID); err != nil {
		return nil, err
	}
	if keep < 0 {
		return nil, &InputError{Field: "keep", Reason: "must not be negative"}
	}
	if keep == 0 {
		return nil, nil
	}
	return m.deleteListed(ctx, tenant, userID, func(all []Session, now time.Time) []Session {
		weighed := all[:0]
		for _, s := range all {
			if s.LiveAt(now) && (counts == nil || counts(s)) {
				weighed = append(weighed, s)
			}
		}
		if len(weighed) <= keep {
			return nil
		}
		// ListByUser lists oldest first: the extra ones lead.
		return weighed[:len(weighed)-keep]
	})
}

// RevokeUserWhere ends the sessions of the user for which match reports
// true, live or not, and returns those it ended, in the order it ended
// them (oldest first within each listing): as when
// the IdP that vouched for the user's single sign-on sessions is removed,
// and those sessions, not the others, end. A nil match matches nothing.
// A bad tenant or user ID is an *InputError.
//
// It is not one atomic step, as Trim is not: it lists the user's
// sessions (UserIndex) and deletes the matching ones one at a time
// (Store.Delete, each atomic), listing again (at most three listings in
// all) when a delete finds one gone, so that a session rotated meanwhile
// is judged under its new hash. A session created after the last listing
// is not looked at. On a store error it stops and returns the sessions it
// ended so far with the error.
func (m *Manager) RevokeUserWhere(ctx context.Context, tenant, userID string, match func(Session) bool) ([]Session, error) {
	if err := checkUser(tenant, userID); err != nil {
		return nil, err
	}
	if match == nil {
		return nil, nil
	}
	return m.deleteListed(ctx, tenant, userID, func(all []Session, _ time.Time) []Session {
		return slices.DeleteFunc(all, func(s Session) bool { return !match(s) })
	})
}

// deleteListed lists the user's sessions and deletes, oldest first, those
// that pick chooses from the listing (given the time of the listing); when
// a delete finds a session gone (ended, evicted or rotated meanwhile), it
// lists again and picks again, at most trimPasses listings in all. It
// returns the sessions it deleted; a session another call deleted first
// is not among them. On a store error it stops and returns those deleted
// so far with the error.
func (m *Manager) deleteListed(ctx context.Context, tenant, userID string, pick func(all []Session, now time.Time) []Session) ([]Session, error) {
	var ended []Session
	for range trimPasses {
		all, err := m.index.ListByUser(ctx, tenant, userID)
		if err != nil {
			return ended, storeErr("list by user", err)
		}
		raced := false
		for _, s := range pick(all, m.now()) {
			d, err := m.store.Delete(ctx, s.Hash)
			switch {
			case errors.Is(err, ErrNotFound):
				raced = true
			case err != nil:
				return ended, storeErr("delete", err)
			default:
				ended = append(ended, d)
			}
		}
		if !raced {
			return ended, nil
		}
	}
	return ended, nil
}

// List returns the user's live sessions, oldest first.
func (m *Manager) List(ctx context.Context, tenant, userID string) ([]Session, error) {
	if err := checkUser(tenant, userID); err != nil {
		return nil, err
	}
	all, err := m.index.ListByUser(ctx, tenant, userID)
	if err != nil {
		return nil, storeErr("list by user", err)
	}
	now := m.now()
	live := all[:0]
	for _, s := range all {
		if s.LiveAt(now) {
			live = append(live, s)
		}
	}
	return live, nil
}

// storeErr passes this package's sentinel errors through and wraps any
// other store error, so that a failure is never mistaken for a clean
// answer such as ErrNotFound.
func storeErr(op string, err error) error {
	for _, e := range [...]error{ErrNotFound, ErrLimit, ErrDuplicate} {
		if errors.Is(err, e) {
			return e
		}
	}
	return fmt.Errorf("session: store %s: %w", op, err)
}
