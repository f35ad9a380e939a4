package sso_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/memstore"
)

// spKeyPair returns a throwaway SP key pair; a host loads its own.
func spKeyPair() (*ecdsa.PrivateKey, *x509.Certificate) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "app.example.com"},
		NotBefore: time.Now(), NotAfter: time.Now().AddDate(5, 0, 0)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	return key, cert
}

func ExampleSafeRedirect() {
	for _, target := range []string{"/reports?week=12", "//evil.example", "https://evil.example/", "/\\evil.example"} {
		fmt.Println(target, sso.SafeRedirect(target))
	}
	// Output:
	// /reports?week=12 true
	// //evil.example false
	// https://evil.example/ false
	// /\evil.example false
}

// ExampleProvider_SP shows what a tenant's administrator enters at the
// IdP, or gives it as the metadata URL.
func ExampleProvider_SP() {
	key, cert := spKeyPair()
	p, err := sso.New(sso.Config{
		BaseURL:     "https://app.example.com",
		Key:         key,
		Certificate: cert,
		Stores:      memstore.NewSSO().Stores(),
	})
	if err != nil {
		panic(err)
	}
	sp, _ := p.SP("acme")
	fmt.Println("Entity ID:", sp.EntityID)
	fmt.Println("ACS URL:  ", sp.ACSURL)
	fmt.Println("SLO URL:  ", sp.SLOURL)
	// Output:
	// Entity ID: https://app.example.com/saml/acme/metadata
	// ACS URL:   https://app.example.com/saml/acme/acs
	// SLO URL:   https://app.example.com/saml/acme/slo
}

// ExampleProvider_PutConnection configures a tenant's IdP from metadata
// XML, with group-to-role mapping and just-in-time provisioning limited
// to the company's domain.
func ExampleProvider_PutConnection() {
	key, cert := spKeyPair()
	p, _ := sso.New(sso.Config{BaseURL: "https://app.example.com", Key: key, Certificate: cert, Stores: memstore.NewSSO().Stores(),
		Now: func() time.Time { return time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC) }})
	md, err := os.ReadFile(filepath.Join("testdata", "idp-metadata.xml"))
	if err != nil {
		panic(err)
	}
	c, err := p.PutConnection(context.Background(), sso.Connection{
		Tenant:         "acme",
		Metadata:       string(md),
		GroupRoles:     map[string]string{"Guard Admins": "admin", "Marketing": "member"},
		DefaultRole:    "reports-only",
		JIT:            true,
		AllowedDomains: []string{"acme.example"},
	})
	if err != nil {
		panic(err)
	}
	idp, _ := sso.ParseMetadata([]byte(c.Metadata), time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	fmt.Println("IdP:", idp.EntityID)
	fmt.Println("sign-in at:", idp.SSORedirectURL)
	fmt.Println("signing certificates:", len(idp.Certificates))

	// A metadata document that is not acceptable is refused with the
	// reason, never stored.
	_, err = p.PutConnection(context.Background(), sso.Connection{Tenant: "acme", Metadata: "<html/>"})
	var in *sso.InputError
	fmt.Println(errors.As(err, &in), in.Field)
	// Output:
	// IdP: https://idp.example.test/metadata
	// sign-in at: https://idp.example.test/sso
	// signing certificates: 1
	// true Metadata
}

// ExampleProvider_ACS is the shape of the facade's ACS handler: one
// generic failure for every rejection, the precise reason for the audit
// log, fail closed on anything else.
func ExampleProvider_ACS() {
	var p *sso.Provider // built with sso.New
	handler := func(w http.ResponseWriter, r *http.Request) {
		res, err := p.ACS(r.Context(), r.PathValue("tenant"), r, cookieValue(r, "__Host-guard-sso"))
		var rej *sso.RejectError
		switch {
		case errors.As(err, &rej):
			audit("sso.failed", string(rej.Reason), rej.Detail)
			http.Error(w, sso.ErrRejected.Error(), http.StatusForbidden)
			return
		case err != nil:
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return
		}
		// Find (or, if res.JIT, create) the tenant's user by res.Email,
		// apply the login policy, open the session, audit sso.succeeded.
		http.Redirect(w, r, res.ReturnTo, http.StatusSeeOther)
	}
	_ = handler
}

func cookieValue(r *http.Request, name string) string {
	if c, err := r.Cookie(name); err == nil {
		return c.Value
	}
	return ""
}

func audit(action, reason, detail string) {}
