package redisstore_test

import (
	"context"
	"log"
	"os"

	"github.com/redis/go-redis/v9"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/memstore"
	"github.com/guardhq/guard/store/redisstore"
)

// One-time codes, send limits and pending sign-ins in Redis beside the
// sessions; factors and recovery codes stay in the other backend (memstore
// here; pgstore in production).
func ExampleStore_MFAStores() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	rs, err := redisstore.New(ctx, rdb, redisstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	stores := rs.Stores(memstore.New().Stores())
	m := rs.MFAStores()
	stores.MFA.Codes, stores.MFA.Rates, stores.MFA.Transactions = m.Codes, m.Rates, m.Transactions
	kr, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"k1": []byte(os.Getenv("GUARD_MFA_KEY"))}, Current: "k1"})
	if err != nil {
		log.Fatal(err)
	}
	g, err := guard.New(guard.Config{
		Stores:   stores,
		AuditKey: []byte(os.Getenv("GUARD_AUDIT_KEY")),
		MFA:      &mfa.Config{Keyring: kr, Issuer: "Example"},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = g
}
