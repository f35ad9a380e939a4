package redisstore_test

import (
	"context"
	"log"
	"os"

	"github.com/redis/go-redis/v9"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/store/memstore"
	"github.com/guardhq/guard/store/redisstore"
)

// Sessions and throttling in Redis, everything else in another backend
// (memstore here; pgstore in production).
func ExampleStore_Stores() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	rs, err := redisstore.New(ctx, rdb, redisstore.Options{Prefix: "myapp:guard:"})
	if err != nil {
		log.Fatal(err)
	}
	g, err := guard.New(guard.Config{
		Stores:   rs.Stores(memstore.New().Stores()),
		AuditKey: []byte(os.Getenv("GUARD_AUDIT_KEY")),
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = g
}
