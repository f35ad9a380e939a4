package guard

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/sso"
)

// DefaultStepUpWindow is the default of Config.StepUpWindow.
const DefaultStepUpWindow = 15 * time.Minute

// DefaultMaxAPIKeys is the default of Config.MaxAPIKeys.
const DefaultMaxAPIKeys = 1000

// DefaultAPIKeyRetention is the default of Config.APIKeyRetention.
const DefaultAPIKeyRetention = 90 * 24 * time.Hour

// Stores are the storage interfaces the facade consumes. A backend package
// (store/memstore, …) returns a filled Stores; fields may also come from
// different backends (for example sessions and throttling in Redis,
// everything else in PostgreSQL).
type Stores struct {
	Users        auth.UserStore
	UserUpdates  auth.UserUpdater
	Throttle     auth.ThrottleStore
	Sessions     session.Store
	SessionIndex session.UserIndex
	Audit        audit.Store
	Tenants      TenantStore
	APIKeys      auth.APIKeyStore
	// IPLists keeps each tenant's IP allow-lists (nil: no allow-lists).
	// Tenant data: with OpenTenant it comes from each tenant's stores.
	IPLists ipfilter.Store
	// Policies and Approvals keep each tenant's roles and grants and its
	// four-eyes approval requests (nil: no roles; every user of a tenant
	// administers it). Tenant data.
	Policies  rbac.PolicyStore
	Approvals rbac.ApprovalStore
	// MFA are the second-factor stores, needed when Config.MFA is set
	// (and MFA.Codes for password recovery). With OpenTenant, Factors,
	// FactorUpdates, Enrolments and Recovery come from each tenant's
	// stores and must be nil here; Codes, Rates and Transactions, which
	// hold only hashes and counters that live minutes, stay shared.
	MFA mfa.Stores
	// SSO are the SAML stores, needed when Config.SSO is set. With
	// OpenTenant, SSO.Connections comes from each tenant's stores (the
	// tenant's IdP configuration is tenant data); SSO.Requests,
	// SSO.Replay and SSO.Subjects (tracked requests, accepted assertion
	// IDs, who each signed-in user is at the IdP), which live as long as
	// sessions, stay shared.
	SSO sso.Stores
}

// Shared returns s without its tenant-data stores (Users, UserUpdates,
// Audit, IPLists, Policies, Approvals, the MFA factor, enrolment and
// recovery stores, and SSO.Connections): the stores that stay shared
// when tenants are ring-fenced (see Config.OpenTenant for what they
// hold).
func (s Stores) Shared() Stores {
	s.Users, s.UserUpdates, s.Audit, s.IPLists, s.Policies, s.Approvals = nil, nil, nil, nil, nil, nil
	s.MFA.Factors, s.MFA.FactorUpdates, s.MFA.Enrolments, s.MFA.Recovery = nil, nil, nil, nil
	s.SSO.Connections = nil
	return s
}

func (s Stores) validate(fenced bool) error {
	if fenced {
		switch {
		case s.Users != nil || s.UserUpdates != nil || s.Audit != nil || s.IPLists != nil || s.Policies != nil || s.Approvals != nil ||
			s.MFA.Factors != nil || s.MFA.FactorUpdates != nil || s.MFA.Enrolments != nil || s.MFA.Recovery != nil ||
			s.SSO.Connections != nil:
			return &PolicyError{Field: "Stores", Reason: "the tenant-data stores (Users, UserUpdates, Audit, IPLists, Policies, Approvals, MFA.Factors, MFA.FactorUpdates, MFA.Enrolments, MFA.Recovery, SSO.Connections) must be nil with OpenTenant: each tenant's come from OpenTenant"}
		case s.Throttle == nil:
			return &PolicyError{Field: "Stores.Throttle", Reason: "is required"}
		case s.Sessions == nil:
			return &PolicyError{Field: "Stores.Sessions", Reason: "is required"}
		case s.SessionIndex == nil:
			return &PolicyError{Field: "Stores.SessionIndex", Reason: "is required"}
		case s.Tenants == nil:
			return &PolicyError{Field: "Stores.Tenants", Reason: "is required"}
		}
		return nil
	}
	switch {
	case s.Users == nil:
		return &PolicyError{Field: "Stores.Users", Reason: "is required"}
	case s.UserUpdates == nil:
		return &PolicyError{Field: "Stores.UserUpdates", Reason: "is required"}
	case s.Throttle == nil:
		return &PolicyError{Field: "Stores.Throttle", Reason: "is required"}
	case s.Sessions == nil:
		return &PolicyError{Field: "Stores.Sessions", Reason: "is required"}
	case s.SessionIndex == nil:
		return &PolicyError{Field: "Stores.SessionIndex", Reason: "is required"}
	case s.Audit == nil:
		return &PolicyError{Field: "Stores.Audit", Reason: "is required"}
	case s.Tenants == nil:
		return &PolicyError{Field: "Stores.Tenants", Reason: "is required"}
	}
	return nil
}

// Config configures a Guard. Only Stores and AuditKey are required; every
// other field has the documented default.
type Config struct {
	Stores Stores
	// OpenTenant, when set, ring-fences tenants: each tenant's users,
	// credentials and audit chain live in stores of its own (its own SQLite
	// file, its own PostgreSQL database or schema), opened by OpenTenant
	// on first use, and the tenant-data stores (Users, UserUpdates, Audit,
	// IPLists, Policies, Approvals, the MFA factor, enrolment and recovery
	// stores, SSO.Connections) must then be nil: use Stores.Shared. What
	// stays shared, and holds no
	// password, secret or audit record:
	//   - Stores.Tenants: the registry of tenants and their policies;
	//   - Stores.Sessions and Stores.SessionIndex: token hashes, user IDs,
	//     times, and each session's client IP and user agent;
	//   - Stores.Throttle: counters keyed by hashes and client IPs;
	//   - Stores.APIKeys: key hashes and prefixes, names, creators'
	//     user IDs, expiry and last use (a key is found by its hash
	//     before its tenant is known);
	//   - the short-lived MFA and SSO stores (see Stores.MFA and
	//     Stores.SSO), SSO.Subjects holding each signed-in user's NameID
	//     at the IdP, often an email address.
	// See TenantOpener for the stores OpenTenant must return and for how
	// to name each tenant's file, database or schema one-to-one.
	OpenTenant TenantOpener
	// MaxOpenTenants caps how many tenants' stores are open at once when
	// OpenTenant is set (default 64): the least recently used are closed
	// once no call is using them, and opened again when needed.
	MaxOpenTenants int
	// AuditKey is the HMAC key of the tamper-evident audit chain, at least
	// 32 bytes, kept secret by the host (rotate by starting a new chain).
	AuditKey []byte

	// Defaults is the policy of every tenant for the fields its own policy
	// leaves zero. Its zero fields default to: SessionLimit 1, IdleTimeout
	// 24 h, SessionLifetime 7 days, PasswordMinLength 8, no history, no
	// maximum age. Its IdleTimeout, so filled in, may not be longer than
	// its SessionLifetime (*PolicyError). A tenant policy stored before a
	// change of Defaults is not checked again: its sessions end at the
	// lifetime. Only the numbers and strings of the sessions, passwords,
	// grace period, reviews and retention can be defaults: Defaults with
	// RequireMFA, MFAAllowEmail, RequireSSO or AutoDeactivateDormant on,
	// or with a BreakGlassUser or MFARequiredSince, is refused
	// (*PolicyError), since a tenant's policy could not turn a yes/no
	// default off (its zero means "the default"); set those per tenant.
	Defaults Policy
	// Hasher configures password hashing (argon2id m=19 MiB, t=2, p=1 and
	// at most GOMAXPROCS hashes at once by default). Its MaxPasswordBytes,
	// if set, must be at least 4·PasswordMaxLength (*PolicyError).
	Hasher auth.HasherConfig
	// PasswordMaxLength in code points (default 128, at least 64, at
	// most MaxPasswordBytes/4 = 256: a code point takes up to 4 bytes, and
	// every password of PasswordMaxLength code points must fit in
	// MaxPasswordBytes and in Hasher.MaxPasswordBytes, which New refuses
	// below 4·PasswordMaxLength).
	PasswordMaxLength int
	// AccountLimit throttles failed logins per account: default 5 failures,
	// then locks of 1, 2, 4, 8 and at most 15 minutes; failures are
	// forgotten 15 minutes after the last one. PermanentAfter is off.
	AccountLimit auth.Limit
	// IPLimit throttles failed logins per client IP across all accounts:
	// default 50 failures, then locks of 5 minutes doubling up to an hour;
	// forgotten an hour after the last one. IPv6 clients are counted per
	// /64 (IPv6Prefix), the smallest block one subscriber is given, so
	// that a client cannot step through its own addresses; IPv4 per
	// address (an IPv4-mapped IPv6 address counts as its IPv4 address).
	// The same holds for every per-IP limit: CaptchaAfterIP, the link
	// limits (Recovery.Limits.PerIP), the one-time code send limit
	// (MFA.Limits.PerIP), SP-initiated SSO logins and invalid API keys.
	// The audit log keeps the exact address.
	IPLimit auth.Limit
	// IPv6Prefix is the length of the IPv6 prefix the per-IP limits count
	// a client by (default 64; 32 to 128, else New returns a
	// *PolicyError). 128 counts each IPv6 address apart; a shorter prefix
	// (48, 56) counts a whole site's allocation as one client.
	IPv6Prefix int
	// TouchInterval: a session's last-seen time is written at most this
	// often (default 30 seconds; see session.Config.TouchInterval: at most
	// half a minute keeps continuous activity at one store round trip per
	// request).
	TouchInterval time.Duration
	// PolicyCacheTTL is how long a tenant's policy is cached per Guard
	// (default 500 ms, so a change made on one replica is in force on all
	// within a second). Negative disables the cache.
	PolicyCacheTTL time.Duration
	// CookieName of the session cookie (default "__Host-guard"). The cookie
	// is always Secure, HttpOnly, SameSite=Lax, Path=/, without a Domain,
	// so its name must start with "__Host-": browsers then refuse a cookie
	// of that name set by a sibling subdomain or over plain HTTP (cookie
	// tossing). New refuses another name, or one that is not a valid
	// cookie name, with a *PolicyError.
	CookieName string

	// Sections are the host application's own sections for role grants,
	// beside the built-in ones (contacts, campaigns, reports, settings,
	// users, audit, api-keys, billing).
	Sections []rbac.Section
	// MaxAdmins is the recommended number of owners and admins of a
	// tenant; more gives an AdminWarning (default 1).
	MaxAdmins int
	// MaxAPIKeys bounds the live API keys of a tenant, those neither
	// revoked nor expired (default DefaultMaxAPIKeys, 1000; negative is
	// refused with a *PolicyError). CreateAPIKey refuses one more with
	// auth.ErrTooManyAPIKeys; revoking a key, or its expiry, frees a
	// place. The store counts and inserts in one atomic step, so the bound
	// holds across replicas.
	MaxAPIKeys int
	// APIKeyRetention is how long a revoked or expired API key is kept,
	// counted from its revocation or expiry (default
	// DefaultAPIKeyRetention, 90 days; negative: kept forever). Maintain
	// deletes the keys kept longer, so that a tenant whose automation
	// rotates keys does not gather dead ones without end; each key's
	// history stays in the audit log (apikey.created, apikey.revoked).
	APIKeyRetention time.Duration
	// Proxies are the trusted reverse proxies in front of the application,
	// whose X-Forwarded-For header gives the client IP (see
	// ipfilter.ResolverConfig). Zero: the client IP is the connection's
	// peer, and forwarding headers are ignored.
	Proxies ipfilter.ResolverConfig
	// MFA turns second factors on: authenticator apps, email and SMS codes,
	// recovery codes, and the "require MFA" policy. Fill in the Keyring,
	// the Issuer and any senders (see mfa.Config); the facade supplies
	// Stores (from Stores.MFA), Now and Rand. Nil: MFA is off, logins never
	// ask for a second factor, and a policy requiring MFA is refused.
	MFA *mfa.Config
	// SSO turns SAML single sign-on on (Guard is the service provider):
	// fill in BaseURL, the SP Key and Certificate, and the metadata
	// options (see sso.Config); the facade supplies Stores (from
	// Stores.SSO), Now and Rand. Nil: SSO is off.
	SSO *sso.Config
	// OnRefuse, if set, answers the requests that Middleware, Require and
	// RequireMFA refuse before the host's handler runs, in place of their
	// plain-text answers: the host's own error pages, and a log line with
	// the cause. status is 401, 403, 429 or 503; cause is the error behind
	// it (for 503 the store failure: log it, never show it to the client).
	// Headers Guard sets (WWW-Authenticate: Challenge on every 401,
	// Guard-Reason, Guard-Step-Up, a cleared cookie) are already on w. It
	// must write the response.
	OnRefuse func(w http.ResponseWriter, r *http.Request, status int, cause error)
	// BreachCheck, if set, refuses new passwords known from data breaches
	// (auth.RuleBreached), after every other rule: auth.NewRangeAPI asks
	// Have I Been Pwned's Pwned Passwords, or a mirror of it, with
	// k-anonymity. When the check cannot be made the change is refused
	// with ErrUnavailable.
	BreachCheck auth.BreachChecker
	// ProductName is the name of the host's product. Passwords containing
	// a word of it, or of the tenant's name or ID, are refused (ASVS
	// 6.2.11). Empty: MFA's Issuer, if MFA is on.
	ProductName string
	// StepUpWindow is how recent a user's last full authentication must be
	// for sensitive actions: removing a factor, creating API keys, changing
	// the security policy (default 15 minutes). Older sessions get
	// ErrStepUpRequired and must call Reauthenticate.
	StepUpWindow time.Duration
	// Captcha verifies CAPTCHA tokens on forgot-password and reset, on
	// change-password, and on a login's password step (Login) and step-up
	// (Reauthenticate) once an account has CaptchaAfter or a client IP
	// CaptchaAfterIP recent failures, or has been locked (AccountLimit,
	// IPLimit) since its failures were last forgotten: a lock sets the
	// count of failures back to zero, not the need for a CAPTCHA. Nil: no
	// CAPTCHA.
	//
	// A login or step-up refused only because it carried no CAPTCHA token
	// does not count as a failure (its password was not evaluated; the
	// client is being asked for the first time); one with a refused token
	// does.
	//
	// The second step of a sign-in (CompleteLogin, and the other steps of
	// a pending sign-in: SendLoginCode, CompletePendingEnrolment) never
	// asks for one: SecondFactor carries no token. It comes after a right
	// password (and the CAPTCHA, if one was due then). Its wrong codes
	// count as failures of the account as wrong passwords do, so the next
	// password step asks for a CAPTCHA after CaptchaAfter of them; the
	// pending sign-in's own guesses are bounded by the account lock
	// (AccountLimit), not by a CAPTCHA.
	Captcha auth.CaptchaVerifier
	// CaptchaAfter is the number of recent failures of an account (wrong
	// passwords and wrong second-factor codes alike) after which a login
	// of it needs a CAPTCHA token at its password step (default 3).
	CaptchaAfter int
	// CaptchaAfterIP is the number of recent failed logins from a client
	// IP, across accounts, after which every login from it needs a
	// CAPTCHA token (default 10). It is higher than CaptchaAfter because
	// many people may share an address (an office behind NAT), and
	// because an attempt counts from its start: sign-ins from one address
	// that are still being checked count until they succeed.
	CaptchaAfterIP int
	// Recovery configures forgotten-password emails; without
	// Recovery.Email, ForgotPassword is unavailable.
	Recovery RecoveryConfig

	// Now and Rand are injectable for tests (default time.Now, crypto/rand).
	Now  func() time.Time
	Rand io.Reader
}

// Defaults applied by New.
var (
	DefaultAccountLimit = auth.Limit{Max: 5, ResetAfter: 15 * time.Minute, LockFor: time.Minute, MaxLockFor: 15 * time.Minute}
	DefaultIPLimit      = auth.Limit{Max: 50, ResetAfter: time.Hour, LockFor: 5 * time.Minute, MaxLockFor: time.Hour}
	defaultPolicy       = Policy{SessionLimit: 1, OnSessionLimit: EndOldestSession, IdleTimeout: 24 * time.Hour, SessionLifetime: 7 * 24 * time.Hour, PasswordMinLength: 8,
		ReviewEvery: 14 * 24 * time.Hour, DormantAfter: 30 * 24 * time.Hour}
)

// DefaultIPv6Prefix is the length of the IPv6 prefix the per-IP limits
// count a client by when Config.IPv6Prefix is 0: a /64, the smallest
// block one subscriber is given.
const DefaultIPv6Prefix = 64

// Guard is the facade: it orchestrates the auth, session and audit packages
// and is the one place that writes audit events. It is safe for concurrent
// use; create one per process with New.
type Guard struct {
	stores   Stores
	throttle auth.BatchThrottleStore // Stores.Throttle, probed once
	now      func() time.Time
	rand     io.Reader
	defaults Policy
	maxLen   int
	acctLim  auth.Limit
	ipLim    auth.Limit
	ipv6Bits int // Config.IPv6Prefix
	cookie   string
	maxKeys  int           // Config.MaxAPIKeys, filled in
	keyKeep  time.Duration // Config.APIKeyRetention, filled in; negative: forever

	hasher   *auth.Hasher
	sessions *session.Manager
	audit    *audit.Log
	policies *policyCache
	fence    *fence // nil unless tenants are ring-fenced

	mfa            *mfa.Manager // nil when MFA is off
	resolver       *ipfilter.Resolver
	ipf            *ipfilter.Filter // nil without Stores.IPLists
	rbac           *rbac.Enforcer   // nil without Stores.Policies
	approvals      *rbac.Approvals
	sso            *sso.Provider // nil when SSO is off
	stepUp         time.Duration
	captcha        auth.CaptchaVerifier
	captchaAfter   int
	captchaAfterIP int
	recovery       RecoveryConfig
	product        string
	breach         auth.BreachChecker
	onRefuse       func(http.ResponseWriter, *http.Request, int, error)

	bg            sync.WaitGroup     // background work (reset emails, notices), and calls waiting to start some, that Close waits for
	closeMu       sync.Mutex         // guards closing, closers, abort and stopWork; held for every bg.Add from zero (enterBackground)
	closing       chan struct{}      // closed while a Close runs: wakes the calls waiting for a background slot
	closers       int                // Close calls under way: no background work starts meanwhile
	abort         context.Context    // ends the background work's contexts when a Shutdown's context ends first (abortLocked)
	stopWork      context.CancelFunc // ends abort
	resets        chan struct{}      // ForgotPassword's background slots (MaxBackgroundResets)
	resetMails    chan struct{}      // ForgotPassword's email slots (MaxBackgroundResets)
	notices       chan struct{}      // security notices' background slots (MaxBackgroundNotices)
	dropped       atomic.Int64       // security notices dropped (DroppedNotices)
	droppedResets atomic.Int64       // ForgotPassword's emails dropped (DroppedResetMails)

	lockNotices chan struct{}           // slots for lock notices alone (lockNoticeSlots)
	noticeMu    sync.Mutex              // guards noticeTo
	noticeTo    map[string]*noticeQueue // by address in canonical form (canonicalAddress), while it has a notice active (MaxNoticesPerRecipient)
}

// New validates cfg, fills its defaults and returns a Guard.
func New(cfg Config) (*Guard, error) {
	if err := cfg.Stores.validate(cfg.OpenTenant != nil); err != nil {
		return nil, err
	}
	if cfg.MaxOpenTenants < 0 {
		return nil, &PolicyError{Field: "MaxOpenTenants", Reason: "must not be negative"}
	}
	if cfg.MaxOpenTenants == 0 {
		cfg.MaxOpenTenants = DefaultMaxOpenTenants
	}
	if len(cfg.AuditKey) < 32 {
		return nil, &PolicyError{Field: "AuditKey", Reason: "must be at least 32 bytes"}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if err := cfg.Defaults.validateWith(defaultPolicy); err != nil {
		return nil, err
	}
	if f := cfg.Defaults.tenantOnly(); f != "" {
		return nil, &PolicyError{Field: "Defaults." + f, Reason: "cannot be a default: set it in each tenant's policy"}
	}
	defaults := cfg.Defaults.withDefaults(defaultPolicy)
	if cfg.AccountLimit == (auth.Limit{}) {
		cfg.AccountLimit = DefaultAccountLimit
	}
	if cfg.IPLimit == (auth.Limit{}) {
		cfg.IPLimit = DefaultIPLimit
	}
	if err := cfg.AccountLimit.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.IPLimit.Validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.IPv6Prefix == 0:
		cfg.IPv6Prefix = DefaultIPv6Prefix
	case cfg.IPv6Prefix < 32 || cfg.IPv6Prefix > 128:
		return nil, &PolicyError{Field: "IPv6Prefix", Reason: "must be 0 (64) or between 32 and 128"}
	}
	pw := auth.Policy{MinLength: defaults.PasswordMinLength, MaxLength: cfg.PasswordMaxLength}
	if err := pw.Validate(); err != nil {
		return nil, err
	}
	if cfg.PasswordMaxLength == 0 {
		cfg.PasswordMaxLength = 128
	}
	// Length is counted in code points; the byte caps under it must hold
	// any password of PasswordMaxLength code points (4 bytes each at most).
	if cfg.PasswordMaxLength > MaxPasswordBytes/utf8.UTFMax {
		return nil, &PolicyError{Field: "PasswordMaxLength", Reason: fmt.Sprintf("must be at most %d (MaxPasswordBytes / 4)", MaxPasswordBytes/utf8.UTFMax)}
	}
	if hb := cfg.Hasher.MaxPasswordBytes; hb != 0 && hb < utf8.UTFMax*cfg.PasswordMaxLength {
		return nil, &PolicyError{Field: "Hasher.MaxPasswordBytes", Reason: fmt.Sprintf("must be 0 or at least %d (4 × PasswordMaxLength)", utf8.UTFMax*cfg.PasswordMaxLength)}
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "__Host-guard"
	}
	if err := checkCookieName(cfg.CookieName); err != nil {
		return nil, err
	}
	if cfg.PolicyCacheTTL == 0 {
		cfg.PolicyCacheTTL = 500 * time.Millisecond
	}
	if cfg.Hasher.Rand == nil {
		cfg.Hasher.Rand = cfg.Rand
	}
	hasher, err := auth.NewHasher(cfg.Hasher)
	if err != nil {
		return nil, err
	}
	sessions, err := session.New(session.Config{
		Store:         cfg.Stores.Sessions,
		Index:         cfg.Stores.SessionIndex,
		Now:           cfg.Now,
		Rand:          cfg.Rand,
		IdleTimeout:   defaults.IdleTimeout,
		Lifetime:      defaults.SessionLifetime,
		Limit:         defaults.sessionLimit(),
		TouchInterval: cfg.TouchInterval,
	})
	if err != nil {
		return nil, err
	}
	policies := newPolicyCache(cfg.Stores.Tenants, cfg.PolicyCacheTTL, cfg.Now, defaults)
	var f *fence
	if cfg.OpenTenant != nil {
		f = newFence(cfg.OpenTenant, cfg.MaxOpenTenants, func(ctx context.Context, tenant string) error {
			_, err := policies.get(ctx, tenant)
			return err
		})
		cfg.Stores.Users, cfg.Stores.UserUpdates, cfg.Stores.Audit = routedUsers{f}, routedUsers{f}, routedAudit{f}
		f.needMFA = cfg.MFA != nil
		r := routedMFA{f}
		cfg.Stores.MFA.Factors, cfg.Stores.MFA.FactorUpdates, cfg.Stores.MFA.Enrolments, cfg.Stores.MFA.Recovery = r, r, r, r
		cfg.Stores.IPLists = routedIPLists{f}
		cfg.Stores.Policies, cfg.Stores.Approvals = routedRBAC{f}, routedRBAC{f}
		cfg.Stores.SSO.Connections = routedSSO{f}
	}
	resolver, err := ipfilter.NewResolver(cfg.Proxies)
	if err != nil {
		return nil, err
	}
	var (
		enf *rbac.Enforcer
		aps *rbac.Approvals
	)
	if cfg.Stores.Policies != nil {
		if enf, err = rbac.New(rbac.Config{Store: cfg.Stores.Policies, Sections: cfg.Sections, MaxAdmins: cfg.MaxAdmins}); err != nil {
			return nil, err
		}
		if cfg.Stores.Approvals == nil {
			return nil, &PolicyError{Field: "Stores.Approvals", Reason: "is required with Stores.Policies"}
		}
		if aps, err = rbac.NewApprovals(rbac.ApprovalConfig{Store: cfg.Stores.Approvals, Enforcer: enf, Now: cfg.Now, Rand: cfg.Rand,
			DeciderActive: deciderActive(cfg.Stores.Users), RequesterStands: requesterStands(cfg.Stores.Users)}); err != nil {
			return nil, err
		}
	}
	var sp *sso.Provider
	if cfg.SSO != nil {
		sc := *cfg.SSO
		sc.Stores, sc.Now, sc.Rand = cfg.Stores.SSO, cfg.Now, cfg.Rand
		if sp, err = sso.New(sc); err != nil {
			return nil, err
		}
	}
	var ipf *ipfilter.Filter
	if cfg.Stores.IPLists != nil {
		if ipf, err = ipfilter.New(ipfilter.Config{Store: cfg.Stores.IPLists, Now: cfg.Now}); err != nil {
			return nil, err
		}
	}
	var mf *mfa.Manager
	if cfg.MFA != nil {
		mc := *cfg.MFA
		mc.Stores, mc.Now, mc.Rand = cfg.Stores.MFA, cfg.Now, cfg.Rand
		if mf, err = mfa.New(mc); err != nil {
			return nil, err
		}
	}
	if cfg.StepUpWindow < 0 {
		return nil, &PolicyError{Field: "StepUpWindow", Reason: "must not be negative"}
	}
	if cfg.StepUpWindow == 0 {
		cfg.StepUpWindow = DefaultStepUpWindow
	}
	if cfg.CaptchaAfter < 0 {
		return nil, &PolicyError{Field: "CaptchaAfter", Reason: "must not be negative"}
	}
	if cfg.CaptchaAfter == 0 {
		cfg.CaptchaAfter = 3
	}
	if cfg.CaptchaAfterIP < 0 {
		return nil, &PolicyError{Field: "CaptchaAfterIP", Reason: "must not be negative"}
	}
	if cfg.CaptchaAfterIP == 0 {
		cfg.CaptchaAfterIP = 10
	}
	if cfg.MaxAPIKeys < 0 {
		return nil, &PolicyError{Field: "MaxAPIKeys", Reason: "must not be negative"}
	}
	if cfg.MaxAPIKeys == 0 {
		cfg.MaxAPIKeys = DefaultMaxAPIKeys
	}
	if cfg.APIKeyRetention == 0 {
		cfg.APIKeyRetention = DefaultAPIKeyRetention
	}
	if err := cfg.Recovery.fill(cfg.Stores.MFA.Codes, cfg.Stores.MFA.Rates); err != nil {
		return nil, err
	}
	log, err := audit.New(audit.Config{Store: cfg.Stores.Audit, Key: cfg.AuditKey, Now: cfg.Now, Rand: cfg.Rand})
	if err != nil {
		return nil, err
	}
	product := cfg.ProductName
	if product == "" && cfg.MFA != nil {
		product = cfg.MFA.Issuer
	}
	return &Guard{
		stores:   cfg.Stores,
		throttle: auth.BatchThrottle(cfg.Stores.Throttle),
		now:      cfg.Now,
		rand:     cfg.Rand,
		defaults: defaults,
		maxLen:   cfg.PasswordMaxLength,
		acctLim:  cfg.AccountLimit,
		ipLim:    cfg.IPLimit,
		ipv6Bits: cfg.IPv6Prefix,
		cookie:   cfg.CookieName,
		maxKeys:  cfg.MaxAPIKeys,
		keyKeep:  cfg.APIKeyRetention,
		hasher:   hasher,
		sessions: sessions,
		audit:    log,
		policies: policies,
		fence:    f,

		mfa:          mf,
		resolver:     resolver,
		ipf:          ipf,
		rbac:         enf,
		approvals:    aps,
		sso:          sp,
		stepUp:       cfg.StepUpWindow,
		captcha:      cfg.Captcha,
		captchaAfter: cfg.CaptchaAfter, captchaAfterIP: cfg.CaptchaAfterIP,
		recovery:   cfg.Recovery,
		product:    product,
		breach:     cfg.BreachCheck,
		onRefuse:   cfg.OnRefuse,
		resets:     make(chan struct{}, MaxBackgroundResets),
		resetMails: make(chan struct{}, MaxBackgroundResets),
		notices:    make(chan struct{}, MaxBackgroundNotices),
		closing:    make(chan struct{}),

		lockNotices: make(chan struct{}, lockNoticeSlots),
		noticeTo:    map[string]*noticeQueue{},
	}, nil
}
