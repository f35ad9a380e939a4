package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/store/memstore"
	"github.com/guardhq/guard/store/pgstore"
	"github.com/guardhq/guard/store/redisstore"
	"github.com/guardhq/guard/store/sqlitestore"
)

// backend is the set of stores the console runs on, and how to close them.
type backend struct {
	stores  guard.Stores
	name    string // for the start-up banner
	closers []func() error
}

func (b *backend) Close() error {
	var errs []error
	for i := len(b.closers) - 1; i >= 0; i-- {
		errs = append(errs, b.closers[i]())
	}
	return errors.Join(errs...)
}

// openBackend opens the stores chosen by the flags: the embedded SQLite
// file by default, PostgreSQL with -postgres, in memory with -memory;
// -redis moves sessions, throttling and one-time codes to Redis.
func openBackend(ctx context.Context, o options, logf func(string, ...any)) (*backend, error) {
	b := &backend{}
	switch {
	case o.postgres != "":
		cfg, err := pgPoolConfig(o.postgres)
		if err != nil {
			return nil, err
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		b.closers = append(b.closers, func() error { pool.Close(); return nil })
		if err := firstContact(ctx, o, pool.Ping); err != nil {
			b.Close()
			return nil, fmt.Errorf("postgres: %w", err)
		}
		st, err := pgstore.New(pool, pgstore.Options{Schema: o.pgSchema})
		if err != nil {
			b.Close()
			return nil, err
		}
		if err := st.Migrate(ctx); err != nil {
			b.Close()
			return nil, err
		}
		// Allow-list and role versions kept in memory between
		// notifications: a guarded request costs one round trip.
		wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		watched := make(chan error, 1)
		go func() { watched <- st.Watch(wctx) }()
		b.closers = append(b.closers, func() error { stop(); <-watched; return nil })
		b.stores, b.name = st.Stores(), "PostgreSQL (schema "+st.Schema()+")"
	case o.memory:
		b.stores, b.name = memstore.New().Stores(), "in memory (lost when the console stops)"
	default:
		st, err := sqlitestore.Open(ctx, o.db)
		if err != nil {
			return nil, err
		}
		b.closers = append(b.closers, st.Close)
		if err := st.Migrate(ctx); err != nil {
			b.Close()
			return nil, err
		}
		// sqlitestore.Open creates the file 0600; one from before may be
		// open to others.
		if fi, err := os.Stat(o.db); err == nil && fi.Mode().Perm()&0o077 != 0 {
			logf("note: %s (password hashes, the audit log) is open to other accounts (mode %v): chmod 600 it and its -wal and -shm files",
				o.db, fi.Mode().Perm())
		}
		b.stores, b.name = st.Stores(), "SQLite file "+o.db
	}
	if o.redis != "" {
		opt, err := redisOptions(o.redis)
		if err != nil {
			b.Close()
			return nil, err
		}
		client := redis.NewClient(opt)
		b.closers = append(b.closers, client.Close)
		if err := firstContact(ctx, o, func(ctx context.Context) error { return client.Ping(ctx).Err() }); err != nil {
			b.Close()
			return nil, fmt.Errorf("redis: %w", err)
		}
		rs, err := redisstore.New(ctx, client, redisstore.Options{Prefix: o.redisPrefix})
		if err != nil {
			b.Close()
			return nil, err
		}
		b.stores = rs.Stores(b.stores)
		b.name += " with Redis at " + opt.Addr + " for sessions, throttling and one-time codes"
	}
	for _, field := range missing(b.stores) {
		logf("note: the %s backend keeps no %s: the console's pages for it say so", b.name, field)
	}
	return b, nil
}

// redisOptions are the client options of -redis: an address (HOST:PORT),
// or a URL (redis://[USER:PASSWORD@]HOST:PORT[/DB], rediss:// for TLS)
// for a server that wants a password or TLS. The password is never
// printed: the console names the server by its address.
func redisOptions(v string) (*redis.Options, error) {
	if !strings.Contains(v, "://") {
		return &redis.Options{Addr: v}, nil
	}
	opt, err := redis.ParseURL(v)
	if err != nil {
		// url.Parse's errors quote the URL, or a part of it that may be
		// the password's (an unencoded '/', '?' or '#' in it ends the
		// host early, and the rest is quoted as a port): none is told.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			return nil, errors.New("-redis: not a valid Redis URL (percent-encode '/', '?', '#', '%' and '@' in the user name and password)")
		}
		return nil, fmt.Errorf("-redis: not a valid Redis URL: %w", err)
	}
	return opt, nil
}

// fresh reports whether the stores hold no data yet: no tenant, so no
// audit chain, sealed secret or IdP connection under the keys of a key
// file.
func (b *backend) fresh(ctx context.Context) (bool, error) {
	ts, err := b.stores.Tenants.ListTenants(ctx, "", 1)
	return len(ts) == 0, err
}

// pgConnectTimeout bounds each connection to PostgreSQL whose DSN sets no
// connect_timeout: a host that drops packets fails it then, not after the
// system's TCP timeout (about two minutes).
const pgConnectTimeout = 10 * time.Second

// startupTimeout bounds the console's first contact with PostgreSQL or
// Redis.
const startupTimeout = 15 * time.Second

// pgPoolConfig parses the DSN, with a connect timeout of pgConnectTimeout
// unless it sets one. A DSN that does not parse gives pgDSNError's error,
// which never quotes it.
func pgPoolConfig(dsn string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, pgDSNError(err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = pgConnectTimeout
	}
	return cfg, nil
}

// pgDSNError is the start error of a -postgres DSN that pgx cannot
// parse. It names the flag and says what to check, but quotes nothing of
// pgx's error: pgx's message quotes the DSN with the passwords it
// recognises masked, and it misses some (libpq's keyword/value syntax
// allows "password = s3cret"), and the errors under it quote a broken
// URL whole or a fragment of the input.
func pgDSNError(error) error {
	return errors.New("-postgres: cannot parse the DSN (check its syntax: a postgres:// URL with '@', ':', '/', '?', '#' and '%' " +
		"percent-encoded in the user name and password, or keyword=value pairs with a value that holds spaces, quotes or " +
		"backslashes in single quotes, and valid values for sslmode, port and timeouts; the DSN is not shown, as it may hold a password)")
}

// firstContact pings a server within startupTimeout (o.startupTimeout in
// tests), so that a start against a host that does not answer fails soon
// and says so.
func firstContact(ctx context.Context, o options, ping func(context.Context) error) error {
	limit := o.startupTimeout
	if limit == 0 {
		limit = startupTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err := ping(pctx)
	if err != nil && ctx.Err() == nil && pctx.Err() != nil {
		return fmt.Errorf("no answer within %v: %w", limit, err)
	}
	return err
}

// missing names the optional stores s leaves nil.
func missing(s guard.Stores) []string {
	var out []string
	for _, f := range []struct {
		name string
		nil  bool
	}{
		{"API keys", s.APIKeys == nil}, {"IP allow-lists", s.IPLists == nil}, {"roles", s.Policies == nil},
		{"approvals", s.Approvals == nil}, {"second factors", s.MFA.Factors == nil},
	} {
		if f.nil {
			out = append(out, f.name)
		}
	}
	return out
}

// secrets are the keys the host keeps: the audit chain's HMAC key, the
// key that seals TOTP secrets, and the SAML service provider's RSA key and
// self-signed certificate. A database that outlives the process needs
// them to outlive it too (else its audit chain no longer verifies, its
// TOTP secrets cannot be opened, and the IdPs that trust the SP's
// certificate refuse its requests or encrypt to a key it lost), so they
// are kept in a file beside it, readable by its owner only.
type secrets struct {
	Audit []byte `json:"audit"`
	MFA   []byte `json:"mfa"`
	// SAMLKey is the service provider's RSA key (PKCS #8, DER) and
	// SAMLCert its certificate (DER), published in the SP metadata.
	SAMLKey  []byte `json:"saml_key,omitempty"`
	SAMLCert []byte `json:"saml_cert,omitempty"`
}

// keyFileMissingError: the key file does not exist but the database
// holds data, which new keys would not open nor verify.
type keyFileMissingError struct{ path string }

func (e *keyFileMissingError) Error() string {
	return "key file " + e.path + " is missing, and the database holds data: " +
		"restore the key file (or name it with -keys), or start on a new database"
}

// loadSecrets reads the key file at path, and adds an SP key made by
// newSPKey to a file from before single sign-on. When the file does not
// exist it makes new random keys and creates it, but only if fresh
// reports that the database holds no data yet: otherwise it returns a
// *keyFileMissingError, as the database's audit chain, sealed TOTP secrets
// and trusted SAML certificate need the keys that were lost. Path "" gives
// new keys kept in memory. It returns what it created, for the log.
func loadSecrets(path string, fresh func() (bool, error), newSPKey func() (key, cert []byte, err error)) (secrets, []string, error) {
	var (
		s       secrets
		created []string
		exists  bool
	)
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			if err := json.Unmarshal(b, &s); err != nil || len(s.Audit) < 32 || len(s.MFA) != 32 || (len(s.SAMLKey) == 0) != (len(s.SAMLCert) == 0) {
				return secrets{}, nil, fmt.Errorf("key file %s is damaged", path)
			}
			exists = true
		case !errors.Is(err, fs.ErrNotExist):
			return secrets{}, nil, err
		}
	}
	if !exists && path != "" {
		ok, err := fresh()
		if err != nil {
			return secrets{}, nil, fmt.Errorf("key file %s is missing, and whether the database holds data could not be checked: %w", path, err)
		}
		if !ok {
			if abs, err := filepath.Abs(path); err == nil {
				path = abs
			}
			return secrets{}, nil, &keyFileMissingError{path}
		}
	}
	if !exists {
		s.Audit, s.MFA = make([]byte, 32), make([]byte, 32)
		if _, err := rand.Read(s.Audit); err != nil {
			return secrets{}, nil, err
		}
		if _, err := rand.Read(s.MFA); err != nil {
			return secrets{}, nil, err
		}
		created = append(created, "audit chain and TOTP keys")
	}
	if len(s.SAMLKey) == 0 {
		var err error
		if s.SAMLKey, s.SAMLCert, err = newSPKey(); err != nil {
			return secrets{}, nil, err
		}
		created = append(created, "SAML service provider key and certificate")
	}
	if path == "" || len(created) == 0 {
		return s, created, nil
	}
	return s, created, writeSecrets(path, s, exists)
}

// writeSecrets writes the key file, readable by its owner only: a new
// file is created exclusively; an existing one is replaced atomically.
func writeSecrets(path string, s secrets, replace bool) error {
	b, _ := json.Marshal(s)
	name := path
	if replace {
		name = path + ".new"
		os.Remove(name)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil || !replace {
		return err
	}
	return os.Rename(name, path)
}

// newSPKey returns a new RSA-2048 key (PKCS #8, DER) and a self-signed
// certificate for it (DER), valid for ten years: the SAML service
// provider's signing and encryption key, which IdPs trust as published in
// its metadata.
func newSPKey() ([]byte, []byte, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Guard evaluation console (SAML service provider)"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// serviceProvider parses the SP key and certificate.
func (s secrets) serviceProvider() (*rsa.PrivateKey, *x509.Certificate, error) {
	k, err := x509.ParsePKCS8PrivateKey(s.SAMLKey)
	if err != nil {
		return nil, nil, errors.New("the SAML key in the key file is damaged")
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("the SAML key in the key file is not an RSA key")
	}
	cert, err := x509.ParseCertificate(s.SAMLCert)
	if err != nil || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, errors.New("the SAML certificate in the key file is damaged or not the key's")
	}
	return key, cert, nil
}
