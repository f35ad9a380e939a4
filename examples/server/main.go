// Command server is Guard's evaluation console: a small admin web
// application, wired the way a host application wires Guard, in which
// every capability of Guard can be tried as a tenant administrator would.
//
//	go run ./examples/server
//
// It keeps its data in the embedded SQLite store (the file guard.db, and
// its keys in guard.db.keys, readable by you only), creates a demo tenant
// and an owner account whose random password it prints once, and serves
// the console on http://127.0.0.1:8080/. Flags:
//
//	-addr 127.0.0.1:8080   listen address
//	-base-url URL          public address for links in emails (default from -addr)
//	-db guard.db           SQLite file
//	-memory                keep everything in memory instead
//	-postgres DSN          keep everything in PostgreSQL instead
//	-redis ADDR            keep sessions, throttling and one-time codes in Redis
//	-captcha-provider P    turnstile, hcaptcha or recaptcha (with -captcha-secret
//	                       and -captcha-sitekey) instead of the local stand-in
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
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

const (
	demoTenant = "demo"
	ownerEmail = "owner@demo.example"
)

// options are the command's flags.
type options struct {
	addr, baseURL        string
	db, keys             string
	memory               bool
	postgres, pgSchema   string
	redis, redisPrefix   string
	captchaProvider      string
	captchaSecret        string
	captchaSiteKey       string
	seed                 bool
	now                  func() time.Time // tests only
	hasherMemory, hasher uint32           // tests only: cheap argon2id
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address (HOST:PORT)")
	flag.StringVar(&o.baseURL, "base-url", "", "public address of the console, for the links in emails (default http://ADDR)")
	flag.StringVar(&o.db, "db", "guard.db", "SQLite database file")
	flag.StringVar(&o.keys, "keys", "", "file keeping the audit and MFA keys (default: the database file + .keys)")
	flag.BoolVar(&o.memory, "memory", false, "keep everything in memory (nothing is saved)")
	flag.StringVar(&o.postgres, "postgres", "", "PostgreSQL DSN: keep everything in PostgreSQL instead of SQLite")
	flag.StringVar(&o.pgSchema, "postgres-schema", "guard", "PostgreSQL schema")
	flag.StringVar(&o.redis, "redis", "", "Redis address (HOST:PORT): keep sessions, throttling and one-time codes there")
	flag.StringVar(&o.redisPrefix, "redis-prefix", "guard:", "prefix of the Redis keys")
	flag.StringVar(&o.captchaProvider, "captcha-provider", "", "turnstile, hcaptcha or recaptcha: verify a real CAPTCHA (default: a local \"I am human\" checkbox)")
	flag.StringVar(&o.captchaSecret, "captcha-secret", "", "the CAPTCHA provider's secret key")
	flag.StringVar(&o.captchaSiteKey, "captcha-sitekey", "", "the CAPTCHA provider's site key")
	flag.BoolVar(&o.seed, "seed", true, "add a few invited demo users to a new tenant")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(o options, out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	if o.baseURL == "" {
		o.baseURL = "http://" + ln.Addr().String()
	}
	c, err := newConsole(ctx, o, out)
	if err != nil {
		ln.Close()
		return err
	}
	defer c.Close()
	fmt.Fprintf(out, "\nGuard evaluation console: %s/\n", strings.TrimSuffix(o.baseURL, "/"))
	fmt.Fprintf(out, "Stores: %s\n", c.backend.name)
	if c.password != "" {
		fmt.Fprintf(out, "Sign in to tenant %q as %s with the password\n\n    %s\n\n(random, shown only now: note it).\n", demoTenant, ownerEmail, c.password)
	} else {
		fmt.Fprintf(out, "Tenant %q exists: sign in as %s with the password printed when it was created,\n"+
			"or use \"Forgot your password?\": the reset link is printed here.\n", demoTenant, ownerEmail)
	}
	srv := &http.Server{Handler: c.app.routes(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 32 << 10}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// console is a running console: its handlers, Guard and stores.
type console struct {
	app      *app
	g        *guard.Guard
	backend  *backend
	password string // the new owner's password ("" if the tenant existed)
}

func (c *console) Close() error {
	err := c.g.Close()
	return errors.Join(err, c.backend.Close())
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
	keys, created, err := loadSecrets(keysPath)
	if err != nil {
		return nil, err
	}
	if created && keysPath != "" {
		logger.Printf("created the key file %s (audit chain and TOTP keys; keep it with the database)", keysPath)
	}
	b, err := openBackend(ctx, o, logger.Printf)
	if err != nil {
		return nil, err
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
	cfg := guard.Config{
		Stores:   b.stores,
		AuditKey: keys.Audit,
		MFA:      &mfa.Config{Keyring: kr, Issuer: "Guard demo", Email: mail, SMS: mail},
		Captcha:  verifier,
		Recovery: guard.RecoveryConfig{Email: mail, BaseURL: strings.TrimSuffix(base.String(), "/")},
		Now:      o.now,
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
		pages: pages, csp: contentSecurityPolicy(captcha), mfaConfigured: true}
	return &console{app: a, g: g, backend: b, password: password}, nil
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
