package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

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
		pool, err := pgxpool.New(ctx, o.postgres)
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		b.closers = append(b.closers, func() error { pool.Close(); return nil })
		st, err := pgstore.New(pool, pgstore.Options{Schema: o.pgSchema})
		if err != nil {
			b.Close()
			return nil, err
		}
		if err := st.Migrate(ctx); err != nil {
			b.Close()
			return nil, err
		}
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
		b.stores, b.name = st.Stores(), "SQLite file "+o.db
	}
	if o.redis != "" {
		client := redis.NewClient(&redis.Options{Addr: o.redis})
		b.closers = append(b.closers, client.Close)
		if err := client.Ping(ctx).Err(); err != nil {
			b.Close()
			return nil, fmt.Errorf("redis: %w", err)
		}
		rs, err := redisstore.New(client, redisstore.Options{Prefix: o.redisPrefix})
		if err != nil {
			b.Close()
			return nil, err
		}
		b.stores = rs.Stores(b.stores)
		b.name += " with Redis at " + o.redis + " for sessions, throttling and one-time codes"
	}
	for _, field := range missing(b.stores) {
		logf("note: the %s backend keeps no %s: the console's pages for it say so", b.name, field)
	}
	return b, nil
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

// secrets are the keys the host keeps: the audit chain's HMAC key and the
// key that seals TOTP secrets. A database that outlives the process needs
// them to outlive it too (else its audit chain no longer verifies and its
// TOTP secrets cannot be opened), so they are kept in a file beside it,
// readable by its owner only.
type secrets struct {
	Audit []byte `json:"audit"`
	MFA   []byte `json:"mfa"`
}

// loadSecrets reads the key file at path, creating it with new random
// keys when it does not exist; path "" gives new keys kept in memory.
func loadSecrets(path string) (secrets, bool, error) {
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			var s secrets
			if err := json.Unmarshal(b, &s); err != nil || len(s.Audit) < 32 || len(s.MFA) != 32 {
				return secrets{}, false, fmt.Errorf("key file %s is damaged", path)
			}
			return s, false, nil
		case !errors.Is(err, fs.ErrNotExist):
			return secrets{}, false, err
		}
	}
	s := secrets{Audit: make([]byte, 32), MFA: make([]byte, 32)}
	if _, err := rand.Read(s.Audit); err != nil {
		return secrets{}, false, err
	}
	if _, err := rand.Read(s.MFA); err != nil {
		return secrets{}, false, err
	}
	if path == "" {
		return s, true, nil
	}
	b, _ := json.Marshal(s)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return secrets{}, false, err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return secrets{}, false, err
	}
	return s, true, f.Close()
}
