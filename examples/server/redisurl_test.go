package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/guardhq/guard/internal/testenv"
)

// -redis takes an address, or a URL for a server that wants a password
// or TLS; the password is never printed, in an error or in the name the
// console gives its stores.
func TestRedisURL(t *testing.T) {
	o, err := redisOptions("rediss://guard:s3cret@redis.internal:6380/2")
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != "redis.internal:6380" || o.Username != "guard" || o.Password != "s3cret" || o.DB != 2 || o.TLSConfig == nil {
		t.Errorf("options %+v", o)
	}
	if o, err := redisOptions("127.0.0.1:6379"); err != nil || o.Addr != "127.0.0.1:6379" || o.TLSConfig != nil {
		t.Errorf("an address: %+v, %v", o, err)
	}
	for _, bad := range []string{"redis://guard:s3cret@h:x/0", "redis://guard:s3cret@h:1/zz", "http://guard:s3cret@h:1", "redis://guard:s3cret@h\x7f:1"} {
		if _, err := redisOptions(bad); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("redisOptions(%q) = %v, want an error without the password", bad, err)
		}
		if _, err := parseFlags([]string{"-redis", bad}); !errors.Is(err, errUsage) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("-redis %q: %v, want a usage error without the password", bad, err)
		}
	}

	// A URL reaches the server; its password stays out of what is printed.
	addr := testenv.Redis(t)
	prefix := "console_url_" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		if keys, _ := rdb.Keys(context.Background(), prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	var out bytes.Buffer
	con, err := newConsole(context.Background(), options{memory: true, redis: "redis://" + addr + "/0", redisPrefix: prefix,
		keys: filepath.Join(t.TempDir(), "keys"), baseURL: "https://console.test", hasher: 1, hasherMemory: 1024, newSPKey: testSPKey}, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	if !strings.Contains(con.backend.name, "Redis at "+addr+" ") {
		t.Errorf("stores %q", con.backend.name)
	}
	_, err = newConsole(context.Background(), options{memory: true, redis: "redis://guard:s3cret@" + addr + "/0",
		keys: filepath.Join(t.TempDir(), "keys"), baseURL: "https://console.test", hasher: 1, hasherMemory: 1024, newSPKey: testSPKey}, &out)
	if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(out.String(), "s3cret") {
		t.Errorf("a password the server refuses: %v (output %q), want an error without the password", err, out.String())
	}
}
