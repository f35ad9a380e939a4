// Command server is Guard's evaluation console: a small admin web
// application, wired the way a host application wires Guard, in which
// every capability of Guard can be tried as a tenant administrator would.
//
//	go run ./examples/server
//
// It keeps its data in the embedded SQLite store (the file guard.db, and
// its keys in guard.db.keys, readable by you only), creates a demo tenant
// and an owner account whose random password it prints once, and serves
// the console on http://127.0.0.1:8080/. Ctrl-C (or SIGTERM) stops it
// once the requests in flight are answered (at most 5 s), a second Ctrl-C
// at once. The key file is made with a new database and must stay with
// it: the console refuses to start on a database holding data whose key
// file is missing (its audit chain, TOTP secrets and SAML certificate need
// those keys). Flags:
//
//	-addr 127.0.0.1:8080   listen address
//	-base-url URL          public address, for links in emails and the SAML
//	                       URLs (default from -addr)
//	-db guard.db           SQLite file
//	-keys FILE             key file (default: the database file + .keys;
//	                       guard-postgres.keys with -postgres)
//	-memory                keep everything in memory instead
//	-postgres DSN          keep everything in PostgreSQL instead
//	                       (-postgres-schema guard; connect_timeout=10
//	                       unless the DSN sets one)
//	-redis ADDR            keep sessions, throttling and one-time codes in Redis
//	                       (-redis-prefix guard:)
//	-idp-metadata SRC      connect the demo tenant to a SAML IdP: the URL or
//	                       file of its metadata (see examples/idp)
//	-captcha-provider P    turnstile, hcaptcha or recaptcha (with -captcha-secret
//	                       and -captcha-sitekey) instead of the local stand-in
//	-breach-api URL        refuse new passwords known from breaches, asking a
//	                       Pwned Passwords range API (k-anonymity)
//	-admin-mfa=false       let a session signed in without a second factor
//	                       open the Administration pages (default true: they
//	                       need one, SECURITY-CHECKLIST RB-11)
//
// Flags that contradict each other (-memory with -postgres) or that the
// engine chosen would ignore (-db with -memory or -postgres,
// -postgres-schema without -postgres, -redis-prefix without -redis) are
// refused as usage errors (exit status 2). A PostgreSQL or Redis server
// that does not answer within 15 s fails the start.
//
// The Administration pages (users, roles, security, single sign-on, IP
// allow-lists, API keys, audit log, access review) need a session that
// passed a second factor (Guard's RequireMFA): the first time, the demo
// owner is asked to set up an authenticator app and to confirm it is them
// with a code from it. An email code alone does not count.
//
// Single sign-on is always on: each tenant's service provider is at
// {base}/saml/{tenant}/metadata (entity ID and metadata), /acs and /slo,
// signed with an RSA key and self-signed certificate made at the first
// start and kept in the key file. An owner connects the tenant's IdP under
// Security › Single sign-on, or -idp-metadata does it at start.
//
// Email and SMS are not sent: one-time codes and password-reset links are
// printed to the console's output, where you read them while evaluating.
// The console uses only Guard's public API; it is also the reference for
// wiring Guard into a host application.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

const (
	demoTenant = "demo"
	ownerEmail = "owner@demo.example"
)

// options are the command's flags.
type options struct {
	addr, baseURL      string
	db, keys           string
	memory             bool
	postgres, pgSchema string
	redis, redisPrefix string
	captchaProvider    string
	captchaSecret      string
	captchaSiteKey     string
	idpMetadata        string // URL or file of the demo tenant's IdP metadata
	breachAPI          string // Pwned Passwords range API (or a mirror); "" is off
	seed               bool
	// proxies: the reverse proxies in front of the console, whose
	// forwarding header gives the client IP (-trusted-proxies,
	// -trusted-hops, -proxy-header).
	proxies              ipfilter.ResolverConfig
	now                  func() time.Time // tests only
	hasherMemory, hasher uint32           // tests only: cheap argon2id
	// newSPKey makes the SAML key and certificate (default newSPKey);
	// tests share one, as RSA key generation is slow under the race
	// detector.
	newSPKey func() (key, cert []byte, err error)
	// startupTimeout (tests only) bounds the first contact with PostgreSQL and Redis
	// (default startupTimeout).
	startupTimeout time.Duration
	// noAdminMFA (-admin-mfa=false): the Administration pages take a
	// session without a second factor. The zero value keeps them behind
	// RequireMFA.
	noAdminMFA bool
	// wrapStores (tests only) wraps the stores before Guard is built on
	// them, to put a race or a failure into one store (nil: none).
	wrapStores func(guard.Stores) guard.Stores
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal stops the console gracefully (serve waits for the
	// requests in flight); unregistering then restores the default
	// handler, so that a second Ctrl-C stops it at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		log.Fatal(err)
	}
}

// errUsage: the command line could not be parsed, or its flags
// contradict each other (parseFlags said why on the flag set's output).
var errUsage = errors.New("usage")

// parseFlags reads the command line.
func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address (HOST:PORT)")
	fs.StringVar(&o.baseURL, "base-url", "", "public address of the console, for the links in emails and the SAML URLs (default http://ADDR)")
	fs.StringVar(&o.db, "db", "guard.db", "SQLite database file (the default engine: not with -memory or -postgres)")
	fs.StringVar(&o.keys, "keys", "", "file keeping the audit, MFA and SAML keys (default: the database file + .keys; guard-postgres.keys with -postgres); made with a new database, needed by one that holds data")
	fs.BoolVar(&o.memory, "memory", false, "keep everything in memory (nothing is saved; not with -postgres)")
	fs.StringVar(&o.postgres, "postgres", "", "PostgreSQL DSN: keep everything in PostgreSQL instead of SQLite (connect_timeout=10 unless the DSN sets one; the start fails if the server does not answer within 15 s)")
	fs.StringVar(&o.pgSchema, "postgres-schema", "guard", "PostgreSQL schema (with -postgres)")
	fs.StringVar(&o.redis, "redis", "", "Redis address (HOST:PORT), or URL for a password or TLS (redis://[USER:PASSWORD@]HOST:PORT[/DB], rediss://…): keep sessions, throttling and one-time codes there (the start fails if it does not answer within 15 s)")
	fs.StringVar(&o.redisPrefix, "redis-prefix", "guard:", "prefix of the Redis keys (with -redis)")
	fs.StringVar(&o.idpMetadata, "idp-metadata", "", "URL or file of a SAML IdP's metadata: connect the demo tenant to it (see examples/idp)")
	fs.StringVar(&o.captchaProvider, "captcha-provider", "", "turnstile, hcaptcha or recaptcha: verify a real CAPTCHA (default: a local \"I am human\" checkbox)")
	fs.StringVar(&o.captchaSecret, "captcha-secret", "", "the CAPTCHA provider's secret key")
	fs.StringVar(&o.captchaSiteKey, "captcha-sitekey", "", "the CAPTCHA provider's site key")
	fs.StringVar(&o.breachAPI, "breach-api", "", "refuse new passwords known from breaches, asking this Pwned Passwords range API with k-anonymity (e.g. "+auth.DefaultRangeAPIURL+")")
	fs.BoolVar(&o.seed, "seed", true, "add a few invited demo users to a new tenant")
	fs.Func("trusted-proxies", "comma-separated addresses or CIDR prefixes of the reverse proxies in front of the console: their forwarding header gives the client IP (default: none, the client IP is the connection's peer and forwarding headers are ignored)", func(v string) error {
		for _, e := range ipfilter.SplitList(v) {
			p, _, err := ipfilter.ParsePrefix(e, ipfilter.ParseOptions{})
			if err != nil {
				return err
			}
			o.proxies.TrustedProxies = append(o.proxies.TrustedProxies, p)
		}
		return nil
	})
	fs.IntVar(&o.proxies.TrustedHops, "trusted-hops", 0, "the exact number of proxies in front of the console, each adding one value to the header (with -trusted-proxies; default: skip every value inside -trusted-proxies)")
	fs.Func("proxy-header", "the forwarding header the proxies set: x-forwarded-for (the default) or forwarded (RFC 7239)", func(v string) error {
		switch strings.ToLower(v) {
		case "x-forwarded-for":
			o.proxies.Header = ipfilter.XForwardedFor
		case "forwarded":
			o.proxies.Header = ipfilter.Forwarded
		default:
			return errors.New("must be x-forwarded-for or forwarded")
		}
		return nil
	})
	adminMFA := fs.Bool("admin-mfa", true, "the Administration pages need a session that passed a second factor (an authenticator app): false lets a password-only session in, for a quick look")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return options{}, err
		}
		return options{}, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return options{}, errUsage
	}
	o.noAdminMFA = !*adminMFA
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if msg := proxyConflict(o, set); msg != "" {
		fmt.Fprintln(fs.Output(), msg)
		return options{}, fmt.Errorf("%w: %s", errUsage, msg)
	}
	if msg := engineConflict(o, set); msg != "" {
		fmt.Fprintln(fs.Output(), msg)
		return options{}, fmt.Errorf("%w: %s", errUsage, msg)
	}
	return o, nil
}

// proxyConflict says which proxy flags are wrong together, or would be
// ignored ("" if none); set holds the flags given.
func proxyConflict(o options, set map[string]bool) string {
	if (set["trusted-hops"] || set["proxy-header"]) && len(o.proxies.TrustedProxies) == 0 {
		return "-trusted-hops and -proxy-header are used only with -trusted-proxies"
	}
	if _, err := ipfilter.NewResolver(o.proxies); err != nil {
		return err.Error()
	}
	return ""
}

// engineConflict says which engine flags contradict each other, or would
// be ignored by the engine chosen ("" if none); set holds the flags given.
func engineConflict(o options, set map[string]bool) string {
	engine := ""
	switch {
	case o.memory && o.postgres != "":
		return "-memory and -postgres: choose one (-memory keeps nothing, -postgres keeps everything in PostgreSQL)"
	case o.memory:
		engine = "-memory"
	case o.postgres != "":
		engine = "-postgres"
	}
	switch {
	case set["db"] && engine != "":
		return "-db names the SQLite file, which " + engine + " does not use"
	case set["postgres-schema"] && o.postgres == "":
		return "-postgres-schema is used only with -postgres"
	case set["redis-prefix"] && o.redis == "":
		return "-redis-prefix is used only with -redis"
	}
	if o.redis != "" {
		if _, err := redisOptions(o.redis); err != nil {
			return err.Error()
		}
	}
	return ""
}

// run parses the command line and serves the console until ctx is done.
func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	return serve(ctx, o, out)
}

// serve serves the console until ctx is done.
func serve(ctx context.Context, o options, out io.Writer) error {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	if o.baseURL == "" {
		o.baseURL = "http://" + publicAddr(ln.Addr())
	}
	c, err := newConsole(ctx, o, out)
	if err != nil {
		ln.Close()
		return err
	}
	defer c.Close()
	base := strings.TrimSuffix(o.baseURL, "/")
	fmt.Fprintf(out, "\nGuard evaluation console: %s/\n", base)
	fmt.Fprintf(out, "Stores: %s\n", c.backend.name)
	if c.password != "" {
		fmt.Fprintf(out, "Sign in to tenant %q as %s with the password\n\n    %s\n\n(random, shown only now: note it).\n", demoTenant, ownerEmail, c.password)
	} else {
		fmt.Fprintf(out, "Tenant %q exists: sign in as %s with the password printed when it was created,\n"+
			"or use \"Forgot your password?\": the reset link is printed here.\n", demoTenant, ownerEmail)
	}
	if c.app.adminMFA {
		fmt.Fprintf(out, "Administration pages need two-step verification: the console asks you to set up an authenticator app the first time (-admin-mfa=false turns this off).\n")
	} else {
		fmt.Fprintf(out, "-admin-mfa=false: Administration pages open without two-step verification (SECURITY-CHECKLIST RB-11 is off).\n")
	}
	fmt.Fprintf(out, "Single sign-on: give the IdP the metadata %s/saml/%s/metadata; sign in at %s/saml/%s/login\n", base, demoTenant, base, demoTenant)
	// Guard's scheduled chores, hourly; stopped before the console closes.
	mctx, stopMaintenance := context.WithCancel(ctx)
	maintained := make(chan struct{})
	go func() {
		defer close(maintained)
		maintain(mctx, c.g, time.Hour, c.app.logf)
	}()
	defer func() { stopMaintenance(); <-maintained }()
	srv := &http.Server{Handler: c.app.routes(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 32 << 10}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		// The listener failed: the requests it accepted still finish
		// before the stores close.
		shutdown(srv, c.app.logf)
		return err
	case <-ctx.Done():
	}
	c.app.logf("stopping: waiting for the requests in flight (at most %v; Ctrl-C again stops at once)", shutdownGrace)
	// Serve returns as soon as Shutdown begins: the stores are closed
	// (serve's deferred Close) only once Shutdown has returned.
	shutdown(srv, c.app.logf)
	<-served
	return nil
}

// shutdownGrace is how long a stopping console waits for the requests in
// flight.
const shutdownGrace = 5 * time.Second

// shutdown stops srv accepting requests and waits, at most shutdownGrace,
// for those in flight to finish; then it closes the connections of those
// still running.
func shutdown(srv *http.Server, logf func(string, ...any)) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logf("stopping: requests still running after %v: their connections are closed", shutdownGrace)
		srv.Close()
	}
}

// maintain runs Guard's scheduled chores (Guard.Maintain: dormant users
// deactivated where a tenant's policy asks, audit events past its
// retention purged, IdP metadata fetched again from its URL, keys of
// deactivated users revoked, sessions beyond a lowered limit ended) at once and
// then every period, until ctx is done, and logs what they did.
func maintain(ctx context.Context, g *guard.Guard, every time.Duration, logf func(string, ...any)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rep, err := g.Maintain(ctx, guard.System("console-maintenance"), guard.MaintainOptions{})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			logf("maintenance: %v", err)
		}
		for tenant, ids := range rep.Deactivated {
			logf("maintenance: tenant %q: %d dormant user(s) deactivated", tenant, len(ids))
		}
		for tenant, n := range rep.Purged {
			logf("maintenance: tenant %q: %d audit event(s) past retention purged", tenant, n)
		}
		for _, tenant := range rep.MetadataRefreshed {
			logf("maintenance: tenant %q: IdP metadata fetched again", tenant)
		}
		for tenant, n := range rep.KeysRevoked {
			logf("maintenance: tenant %q: %d API key(s) of deactivated users revoked", tenant, n)
		}
		for tenant, n := range rep.KeysPurged {
			logf("maintenance: tenant %q: %d revoked or expired API key(s) past retention deleted", tenant, n)
		}
		for tenant, n := range rep.SessionsOfDeactivated {
			logf("maintenance: tenant %q: %d session(s) of deactivated users ended", tenant, n)
		}
		for tenant, n := range rep.SessionsTrimmed {
			logf("maintenance: tenant %q: %d session(s) beyond the session limit ended", tenant, n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// publicAddr is the listen address as a browser reaches it: a console
// listening on every interface (0.0.0.0 or [::]) is 127.0.0.1 from here.
func publicAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// console is a running console: its handlers, Guard and stores.
type console struct {
	app      *app
	g        *guard.Guard
	backend  *backend
	password string // the new owner's password ("" if the tenant existed)
	// idp connects the demo tenant to -idp-metadata in the background
	// while the IdP is not reachable yet (nil otherwise).
	idp *idpRetry
}

// Close stops the console's Guard as a host should on a graceful
// shutdown: its notices and reset emails under way are given
// shutdownGrace (Guard.Shutdown), then dropped, so that a hanging mail
// server cannot hold the process; then the stores close.
func (c *console) Close() error {
	c.idp.stop()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := c.g.Shutdown(ctx); err != nil {
		c.app.logf("stopping: security notices or reset emails still being sent after %v were dropped (%d notices, %d reset emails dropped in all)",
			shutdownGrace, c.g.DroppedNotices(), c.g.DroppedResetMails())
	}
	return c.backend.Close()
}

// newConsole opens the stores, builds the Guard the way a host
// application would, and creates the demo tenant and its owner if needed.
func newConsole(ctx context.Context, o options, out io.Writer) (*console, error) {
	logger := log.New(out, "console: ", log.LstdFlags)
	base, err := url.Parse(o.baseURL)
	if err != nil || !base.IsAbs() || base.Host == "" || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, fmt.Errorf("-base-url %q: want an absolute http(s) URL", o.baseURL)
	}
	if o.now == nil {
		o.now = time.Now
	}
	keysPath := o.keys
	switch {
	case keysPath != "":
	case o.memory:
	case o.postgres != "":
		keysPath = "guard-postgres.keys"
	default:
		keysPath = o.db + ".keys"
	}
	src, err := parseIdPSource(o.idpMetadata)
	if err != nil {
		return nil, err
	}
	if o.newSPKey == nil {
		o.newSPKey = newSPKey
	}
	// The stores first: new keys are made (and their file written) only
	// for a database that opened and holds no data yet.
	b, err := openBackend(ctx, o, logger.Printf)
	if err != nil {
		return nil, err
	}
	if o.wrapStores != nil {
		b.stores = o.wrapStores(b.stores)
	}
	keys, created, err := loadSecrets(keysPath, func() (bool, error) { return b.fresh(ctx) }, o.newSPKey)
	if err != nil {
		b.Close()
		return nil, err
	}
	if len(created) > 0 && keysPath != "" {
		logger.Printf("key file %s: made the %s (keep it with the database)", keysPath, strings.Join(created, " and the "))
	}
	spKey, spCert, err := keys.serviceProvider()
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("key file %s: %w", keysPath, err)
	}
	if src.insecure() {
		logger.Printf("single sign-on: -idp-metadata is on loopback, so IdP metadata may be fetched over plain http and from local addresses (AllowInsecureMetadata): for a local evaluation only")
	}
	kr, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"k1": keys.MFA}, Current: "k1"})
	if err != nil {
		b.Close()
		return nil, err
	}
	mail := &consoleSender{w: out}
	verifier, captcha, err := newCaptcha(o.captchaProvider, o.captchaSecret, o.captchaSiteKey, []string{base.Hostname()})
	if err != nil {
		b.Close()
		return nil, err
	}
	var breach auth.BreachChecker
	if o.breachAPI != "" {
		if breach, err = auth.NewRangeAPI(auth.RangeAPIConfig{BaseURL: o.breachAPI}); err != nil {
			b.Close()
			return nil, err
		}
	}
	cfg := guard.Config{
		Stores:   b.stores,
		AuditKey: keys.Audit,
		// SMS codes name the console's host (the origin-bound line
		// "@host #code"): a phone offers them only on this site.
		MFA:     &mfa.Config{Keyring: kr, Issuer: "Guard demo", Email: mail, SMS: mail, SMSOrigin: smsOrigin(base)},
		Captcha: verifier,
		Recovery: guard.RecoveryConfig{Email: mail, BaseURL: strings.TrimSuffix(base.String(), "/"), InviteTTL: inviteTTL,
			ComposeInvite: inviteMail},
		// SAML: the SP's URLs are built from the base URL, never from a
		// request's Host.
		SSO: &sso.Config{BaseURL: strings.TrimSuffix(base.String(), "/"), Key: spKey, Certificate: spCert,
			AllowInsecureMetadata: src.insecure()},
		Now:         o.now,
		OnRefuse:    onRefuse(logger.Printf),
		BreachCheck: breach,
		Proxies:     o.proxies,
	}
	if o.hasher != 0 {
		cfg.Hasher.Memory, cfg.Hasher.Time, cfg.Hasher.Threads = o.hasherMemory, o.hasher, 1
	}
	g, err := guard.New(cfg)
	if err != nil {
		b.Close()
		return nil, err
	}
	password, err := bootstrap(ctx, g, o.seed)
	if err != nil {
		g.Close()
		b.Close()
		return nil, err
	}
	pages, err := parsePages(o.now)
	if err != nil {
		g.Close()
		b.Close()
		return nil, err
	}
	a := &app{g: g, tenant: demoTenant, base: base, mail: mail, captcha: captcha, now: o.now, logf: logger.Printf,
		pages: pages, csp: contentSecurityPolicy(captchaUI{}), captchaCSP: contentSecurityPolicy(captcha), mfaConfigured: true, insecureMetadata: src.insecure(),
		adminMFA: !o.noAdminMFA, breachCheck: breach != nil}
	c := &console{app: a, g: g, backend: b, password: password}
	if src.raw != "" {
		if c.idp, err = connectIdP(ctx, g, src, logger.Printf); err != nil {
			g.Close()
			b.Close()
			return nil, err
		}
	}
	return c, nil
}

// bootstrap creates the demo tenant and its owner, with a random password
// it returns, when the tenant does not exist yet ("" otherwise). With seed
// it also invites a few users (no password: they set one through "Forgot
// your password?"), so the user list and the access review have someone
// to show.
func bootstrap(ctx context.Context, g *guard.Guard, seed bool) (string, error) {
	sys := guard.System("bootstrap")
	if _, err := g.Tenant(ctx, demoTenant); err == nil {
		return "", nil
	} else if !errors.Is(err, guard.ErrTenantNotFound) {
		return "", err
	}
	if _, err := g.CreateTenant(ctx, sys, demoTenant, "Demo Ltd", guard.Policy{}); err != nil {
		return "", err
	}
	password := randomPassword()
	if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: demoTenant, Email: ownerEmail, Name: "Olivia Owner", Password: password,
		Roles: []string{rbac.Owner}}); err != nil {
		return "", err
	}
	if seed {
		for _, u := range []guard.NewUser{
			{Email: "max@demo.example", Name: "Max Manager", Roles: []string{rbac.Manager}},
			{Email: "mia@demo.example", Name: "Mia Member", Roles: []string{rbac.Member}},
			{Email: "rita@demo.example", Name: "Rita Reports", Roles: []string{rbac.ReportsOnly}},
		} {
			u.Tenant = demoTenant
			if _, err := g.CreateUser(ctx, sys, u); err != nil {
				return "", err
			}
		}
	}
	return password, nil
}

// randomPassword returns 24 characters from a 32-letter alphabet (120
// bits) in groups of six.
func randomPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789-"
	b := make([]byte, 24)
	rand.Read(b)
	var sb strings.Builder
	for i, c := range b {
		if i > 0 && i%6 == 0 {
			sb.WriteByte('.')
		}
		sb.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return sb.String()
}

// parsePages parses each page template with the layout and the shared
// partials.
func parsePages(now func() time.Time) (map[string]*template.Template, error) {
	names, err := templateNames()
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		t, err := template.New(n).Funcs(newFuncs(now)).ParseFS(templateFS, "templates/layout.html", "templates/"+n)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", n, err)
		}
		pages[n] = t
	}
	return pages, nil
}

func templateNames() ([]string, error) {
	es, err := templateFS.ReadDir("templates")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		if e.Name() != "layout.html" {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// smsOrigin is the host that SMS codes are bound to (mfa.Config.SMSOrigin):
// the base URL's, but none for an IPv6 literal, which the origin-bound
// line cannot name.
func smsOrigin(base *url.URL) string {
	if h := base.Hostname(); !strings.Contains(h, ":") {
		return h
	}
	return ""
}
