// Command idp is a demo SAML 2.0 identity provider for trying Guard's
// single sign-on locally, built on crewjam/saml's samlidp. It is a demo:
// users live in memory, and it listens on loopback by default.
//
//	go run ./examples/idp -addr 127.0.0.1:8081 -sp-metadata http://127.0.0.1:8080/saml/demo/metadata
//	go run ./examples/server -idp-metadata http://127.0.0.1:8081/metadata
//
// It prints two demo users and their random passwords at start:
// alice@example.com (group "admins") and bob@example.com (group "staff").
// Its metadata is at /metadata, the sign-in endpoint at /sso. The
// service provider's metadata is read from -sp-metadata (a URL or a file)
// at each sign-in (at most once a second), so the two programs can start
// in any order, and a service provider restarted with a new key (the
// example console with -memory) is trusted at once; when it cannot be
// read, the last copy is used.
//
// The signing key is kept in -keys (default: a directory under the
// system's temporary directory), so that a restarted IdP keeps the
// certificate the service provider already trusts. samlidp's
// administrative endpoints (/services, /users, /sessions, /shortcuts)
// are disabled.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"
	"golang.org/x/crypto/bcrypt"
)

// config is the command line.
type config struct {
	addr       string // listen address
	baseURL    string // public URL; default http://addr
	spMetadata string // URL or file of the service provider's metadata
	keyDir     string // where the signing key and certificate are kept
}

// user is a demo user.
type user struct {
	id, email, name, given, surname string
	groups                          []string
	password                        string
}

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:8081", "listen address (HOST:PORT)")
	flag.StringVar(&c.baseURL, "base-url", "", "public URL of the IdP (default http://ADDR)")
	flag.StringVar(&c.spMetadata, "sp-metadata", "http://127.0.0.1:8080/saml/demo/metadata", "URL or file of the service provider's SAML metadata")
	flag.StringVar(&c.keyDir, "keys", filepath.Join(os.TempDir(), "guard-demo-idp"), "directory of the IdP's signing key (created if missing)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, c, func(base string, users []user) {
		fmt.Printf("Demo SAML IdP on %s (metadata: %s/metadata)\n", base, base)
		fmt.Printf("Service provider metadata from %s\n", c.spMetadata)
		for _, u := range users {
			fmt.Printf("  user %-18s password %s  groups %s\n", u.email, u.password, strings.Join(u.groups, ","))
		}
		fmt.Println("(the passwords are random and shown only now)")
	})
	if err != nil {
		log.Fatal(err)
	}
}

// run serves the IdP until ctx is done. ready is called once it listens,
// with its base URL and users.
func run(ctx context.Context, c config, ready func(base string, users []user)) error {
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(c.baseURL, "/")
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	baseURL, err := url.Parse(base)
	if err != nil || baseURL.Host == "" {
		ln.Close()
		return fmt.Errorf("-base-url %q is not an absolute URL", c.baseURL)
	}
	key, cert, err := loadOrCreateKey(c.keyDir)
	if err != nil {
		ln.Close()
		return err
	}
	srv, users, err := newIdP(*baseURL, key, cert, c.spMetadata)
	if err != nil {
		ln.Close()
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdown)
	}()
	ready(base, users)
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newIdP builds the samlidp server with the demo users, its administrative
// endpoints disabled, and service providers read from spMetadata.
func newIdP(base url.URL, key *rsa.PrivateKey, cert *x509.Certificate, spMetadata string) (*samlidp.Server, []user, error) {
	store := &samlidp.MemoryStore{}
	srv, err := samlidp.New(samlidp.Options{
		URL:         base,
		Key:         key,
		Certificate: cert,
		Store:       store,
		Logger:      log.New(os.Stderr, "idp: ", log.LstdFlags),
		AdminMiddleware: func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "the demo IdP's administrative API is disabled", http.StatusForbidden)
			})
		},
	})
	if err != nil {
		return nil, nil, err
	}
	srv.IDP.ServiceProviderProvider = &spSource{src: spMetadata}

	users := []user{
		{id: "alice", email: "alice@example.com", name: "Alice Admin", given: "Alice", surname: "Admin", groups: []string{"admins"}},
		{id: "bob", email: "bob@example.com", name: "Bob Staff", given: "Bob", surname: "Staff", groups: []string{"staff"}},
	}
	for i := range users {
		u := &users[i]
		pw := make([]byte, 12)
		if _, err := rand.Read(pw); err != nil {
			return nil, nil, err
		}
		u.password = base64.RawURLEncoding.EncodeToString(pw)
		hash, err := bcrypt.GenerateFromPassword([]byte(u.password), bcrypt.DefaultCost)
		if err != nil {
			return nil, nil, err
		}
		// Signed in by user name or by email.
		for _, name := range []string{u.id, u.email} {
			if err := store.Put("/users/"+name, samlidp.User{
				Name: u.id, HashedPassword: hash, Groups: u.groups, Email: u.email,
				CommonName: u.name, GivenName: u.given, Surname: u.surname,
			}); err != nil {
				return nil, nil, err
			}
		}
	}
	return srv, users, nil
}

// spSource is the IdP's ServiceProviderProvider: the one service
// provider whose metadata is at src (a URL or a file), read again when a
// request for it arrives (the IdP encrypts assertions to the certificate
// it finds there, so an old copy after the SP changed its key would make
// every sign-in fail), at most every spMaxAge.
type spSource struct {
	src string

	mu      sync.Mutex
	md      *saml.EntityDescriptor
	fetched time.Time
}

func (s *spSource) GetServiceProvider(r *http.Request, id string) (*saml.EntityDescriptor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.md == nil || time.Since(s.fetched) > spMaxAge {
		md, err := s.load(r.Context())
		if err != nil {
			if s.md == nil {
				return nil, fmt.Errorf("reading the service provider's metadata from %s: %w", s.src, err)
			}
			log.Printf("idp: keeping the last service provider metadata: %v", err)
		} else {
			s.md, s.fetched = md, time.Now()
		}
	}
	if s.md.EntityID != id {
		return nil, os.ErrNotExist
	}
	return s.md, nil
}

// spMaxAge is how long a copy of the SP metadata is used without reading
// it again: the requests of one sign-in.
const spMaxAge = time.Second

func (s *spSource) load(ctx context.Context) (*saml.EntityDescriptor, error) {
	var data []byte
	if strings.HasPrefix(s.src, "http://") || strings.HasPrefix(s.src, "https://") {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.src, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("status %s", resp.Status)
		}
		if data, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20)); err != nil {
			return nil, err
		}
	} else {
		var err error
		if data, err = os.ReadFile(s.src); err != nil {
			return nil, err
		}
	}
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(data, &md); err != nil {
		return nil, fmt.Errorf("not SP metadata: %w", err)
	}
	return &md, nil
}

// loadOrCreateKey returns the RSA key and self-signed certificate kept in
// dir, creating them the first time.
func loadOrCreateKey(dir string) (*rsa.PrivateKey, *x509.Certificate, error) {
	keyPath, certPath := filepath.Join(dir, "idp.key.pem"), filepath.Join(dir, "idp.crt.pem")
	if kb, err := os.ReadFile(keyPath); err == nil {
		cb, err := os.ReadFile(certPath)
		if err != nil {
			return nil, nil, err
		}
		kblock, cblock := pemBlock(kb), pemBlock(cb)
		if kblock == nil || cblock == nil {
			return nil, nil, fmt.Errorf("%s: not PEM", dir)
		}
		k, err := x509.ParsePKCS8PrivateKey(kblock.Bytes)
		if err != nil {
			return nil, nil, err
		}
		key, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, nil, fmt.Errorf("%s: not an RSA key", keyPath)
		}
		cert, err := x509.ParseCertificate(cblock.Bytes)
		if err != nil {
			return nil, nil, err
		}
		return key, cert, nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "Guard demo IdP"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

func pemBlock(b []byte) *pem.Block {
	block, _ := pem.Decode(b)
	return block
}
