package session_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/memstore"
)

// benchManager returns a Manager on a memstore holding n live sessions,
// one per user, and their tokens. The clock stands still, so no request is
// due for a touch: this is the hot path.
func benchManager(b *testing.B, n int) (*session.Manager, []string) {
	b.Helper()
	store := memstore.NewSessions()
	now := func() time.Time { return t0 }
	m, err := session.New(session.Config{Store: store, Index: store, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i], _, _, err = m.Create(context.Background(), session.Options{Tenant: "acme", UserID: fmt.Sprint("user", i)})
		if err != nil {
			b.Fatal(err)
		}
	}
	return m, tokens
}

func BenchmarkManagerAuthenticate(b *testing.B) {
	m, tokens := benchManager(b, 100_000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := m.Authenticate(ctx, tokens[i%len(tokens)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkManagerAuthenticateParallel(b *testing.B) {
	m, tokens := benchManager(b, 100_000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := m.Authenticate(ctx, tokens[(i*7919)%len(tokens)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkManagerCreate(b *testing.B) {
	store := memstore.NewSessions()
	m, err := session.New(session.Config{Store: store, Index: store})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := m.Create(ctx, session.Options{Tenant: "acme", UserID: "u1"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseToken(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := session.ParseToken(token32); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCookieValue(b *testing.B) {
	header := `_ga=GA1.2.3.4; theme="dark"; lang=en-GB; __Host-guard=` + token32 + "; consent=yes"
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := session.CookieValue(header, "__Host-guard"); !ok {
			b.Fatal("cookie not found")
		}
	}
}
