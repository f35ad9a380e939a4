package redisstore_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"log"
	"os"

	"github.com/redis/go-redis/v9"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/memstore"
	"github.com/guardhq/guard/store/redisstore"
)

// Tracked SAML requests, the assertion replay cache and the users'
// subjects at the IdP in Redis, shared by every replica; the tenants' IdP
// connections stay in the other backend (memstore here; pgstore in
// production). Stores sets the three roles already; SSOStores gives them
// alone, for a guard.Stores assembled by hand.
func ExampleStore_SSOStores() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	rs, err := redisstore.New(ctx, rdb, redisstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	stores := memstore.New().Stores()
	s := rs.SSOStores()
	stores.SSO.Requests, stores.SSO.Replay, stores.SSO.Subjects = s.Requests, s.Replay, s.Subjects
	// The SP's key pair, loaded by the host.
	var (
		spKey  crypto.Signer
		spCert *x509.Certificate
	)
	g, err := guard.New(guard.Config{
		Stores:   stores,
		AuditKey: []byte(os.Getenv("GUARD_AUDIT_KEY")),
		SSO:      &sso.Config{BaseURL: "https://app.example.com", Key: spKey, Certificate: spCert},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = g
}
