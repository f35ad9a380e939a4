// Command server is Guard's evaluation console: a small web application
// wired the way a host application wires Guard.
//
//	go run ./examples/server
//
// It creates a demo tenant and an owner account whose random password is
// printed once at start (there is no built-in admin/admin), and serves a
// sign-in page, sign-out, and GET /api/whoami. Everything is kept in
// memory (store/memstore) and lost when it stops.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/store/memstore"
)

const (
	demoTenant = "demo"
	ownerEmail = "owner@demo.example"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (HOST:PORT)")
	flag.Parse()
	if err := run(*addr); err != nil {
		log.Fatal(err)
	}
}

func run(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	app, password, err := newApp(ctx)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("Guard example console on http://%s/\n", ln.Addr())
	fmt.Printf("Sign in to tenant %q as %s with password: %s\n", demoTenant, ownerEmail, password)
	fmt.Println("(the password is random and shown only now)")

	srv := &http.Server{Handler: app.routes(), ReadHeaderTimeout: 10 * time.Second}
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

// newApp builds the Guard on the in-memory stores and creates the demo
// tenant and its owner. It returns the owner's one-time password.
func newApp(ctx context.Context) (*app, string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, "", err
	}
	g, err := guard.New(guard.Config{Stores: memstore.New().Stores(), AuditKey: key})
	if err != nil {
		return nil, "", err
	}
	sys := guard.System("bootstrap")
	if _, err := g.CreateTenant(ctx, sys, demoTenant, "Demo Ltd", guard.Policy{}); err != nil {
		return nil, "", err
	}
	password := randomPassword()
	if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: demoTenant, Email: ownerEmail, Name: "Demo Owner", Password: password, Roles: []string{"owner"}}); err != nil {
		return nil, "", err
	}
	return &app{g: g}, password, nil
}

// randomPassword returns 24 characters from a 32-letter alphabet: 120 bits.
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
