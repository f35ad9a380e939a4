package mfa_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/guardhq/guard/mfa"
)

// testCert returns a self-signed certificate for 127.0.0.1 and localhost
// and a pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mfa smtp test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, pool
}

// received is one message the test server accepted.
type received struct {
	from, to string
	data     []byte
	tls      bool // the message came over TLS
	user     string
}

// mailServer is a real SMTP server (emersion/go-smtp) that keeps what it
// receives. Only PLAIN auth with user "guard" and password "s3cret" works.
type mailServer struct {
	addr  string
	mu    sync.Mutex
	got   []received
	auths int // successful AUTH commands
}

type mailSession struct {
	srv  *mailServer
	conn *smtp.Conn
	user string
	msg  received
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "guard" || pass != "s3cret" {
			return smtp.ErrAuthFailed
		}
		s.user = user
		s.srv.mu.Lock()
		s.srv.auths++
		s.srv.mu.Unlock()
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.msg = received{from: from, user: s.user}
	_, s.msg.tls = s.conn.TLSConnectionState()
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.msg.to = to; return nil }

func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = b
	s.srv.mu.Lock()
	s.srv.got = append(s.srv.got, s.msg)
	s.srv.mu.Unlock()
	return nil
}

func (s *mailSession) Reset()        {}
func (s *mailSession) Logout() error { return nil }

// startMailServer starts a server on 127.0.0.1. With cert nil it offers
// no STARTTLS; with implicit set it speaks TLS from the start.
func startMailServer(t *testing.T, cert *tls.Certificate, implicit bool) *mailServer {
	t.Helper()
	ms := &mailServer{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mailSession{srv: ms, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	var l net.Listener
	var err error
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	if implicit {
		l, err = tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	ms.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ms
}

func (ms *mailServer) messages() []received {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]received(nil), ms.got...)
}

func (ms *mailServer) authCount() int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.auths
}

func newSMTP(t *testing.T, cfg mfa.SMTPConfig) *mfa.SMTPSender {
	t.Helper()
	s, err := mfa.NewSMTPSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSMTPSenderSTARTTLS(t *testing.T) {
	cert, pool := testCert(t)
	ms := startMailServer(t, &cert, false)
	s := newSMTP(t, mfa.SMTPConfig{
		Addr:      ms.addr,
		From:      "no-reply@guard.example",
		Username:  "guard",
		Password:  "s3cret",
		TLSConfig: &tls.Config{RootCAs: pool},
		Now:       func() time.Time { return t0 },
	})
	text := "Your verification code is 123456.\n\nIt expires in 10 minutes. Ünïcödé ✓ and a long line " + strings.Repeat("x", 100) + "\n.\nend"
	err := s.SendEmail(t.Context(), mfa.Message{To: "ada@example.com", Subject: "Your code – Guard", Text: text})
	if err != nil {
		t.Fatalf("SendEmail: %v", err)
	}
	got := ms.messages()
	if len(got) != 1 {
		t.Fatalf("%d messages received, want 1", len(got))
	}
	r := got[0]
	if r.from != "no-reply@guard.example" || r.to != "ada@example.com" || !r.tls || r.user != "guard" {
		t.Errorf("received from %q to %q, tls %v, user %q", r.from, r.to, r.tls, r.user)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(r.data))
	if err != nil {
		t.Fatalf("received an unreadable message: %v\n%s", err, r.data)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subject != "Your code – Guard" || msg.Header.Get("To") != "ada@example.com" ||
		msg.Header.Get("Content-Transfer-Encoding") != "quoted-printable" || msg.Header.Get("Message-Id") == "" {
		t.Errorf("headers %v (subject %q)", msg.Header, subject)
	}
	if d, err := msg.Header.Date(); err != nil || !d.Equal(t0) {
		t.Errorf("Date %v, %v", d, err)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if strings.TrimSuffix(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n") != text {
		t.Errorf("body %q, want %q", body, text)
	}
}

func TestSMTPSenderRequiresSTARTTLS(t *testing.T) {
	ms := startMailServer(t, nil, false) // no STARTTLS offered
	s := newSMTP(t, mfa.SMTPConfig{Addr: ms.addr, From: "a@guard.example", Username: "guard", Password: "s3cret"})
	err := s.SendEmail(t.Context(), mfa.Message{To: "ada@example.com", Subject: "s", Text: "123456"})
	var se *mfa.SendError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("SendEmail to a server without STARTTLS = %v, want a *SendError", err)
	}
	if len(ms.messages()) != 0 || ms.authCount() != 0 {
		t.Errorf("a message or the credentials went in clear text")
	}
}

func TestSMTPSenderUntrustedCertificate(t *testing.T) {
	cert, _ := testCert(t)
	ms := startMailServer(t, &cert, false)
	s := newSMTP(t, mfa.SMTPConfig{Addr: ms.addr, From: "a@guard.example", Username: "guard", Password: "s3cret"})
	err := s.SendEmail(t.Context(), mfa.Message{To: "ada@example.com", Subject: "s", Text: "123456"})
	var se *mfa.SendError
	if !errors.As(err, &se) || len(ms.messages()) != 0 || ms.authCount() != 0 {
		t.Errorf("SendEmail to an untrusted server = %v (%d messages, %d auths)", err, len(ms.messages()), ms.authCount())
	}
}

func TestSMTPSenderWrongPassword(t *testing.T) {
	cert, pool := testCert(t)
	ms := startMailServer(t, &cert, false)
	s := newSMTP(t, mfa.SMTPConfig{Addr: ms.addr, From: "a@guard.example", Username: "guard", Password: "wrong",
		TLSConfig: &tls.Config{RootCAs: pool}})
	err := s.SendEmail(t.Context(), mfa.Message{To: "ada@example.com", Subject: "s", Text: "123456"})
	var se *mfa.SendError
	if !errors.As(err, &se) || se.Status != 535 || strings.Contains(err.Error(), "wrong") {
		t.Errorf("SendEmail with a wrong password = %v (status %v), want a *SendError with status 535", err, se)
	}
	if len(ms.messages()) != 0 {
		t.Error("a message was delivered")
	}
}

func TestSMTPSenderImplicitTLS(t *testing.T) {
	cert, pool := testCert(t)
	ms := startMailServer(t, &cert, true)
	s := newSMTP(t, mfa.SMTPConfig{Addr: ms.addr, From: "a@guard.example", ImplicitTLS: true, TLSConfig: &tls.Config{RootCAs: pool}})
	if err := s.SendEmail(t.Context(), mfa.Message{To: "ada@example.com", Subject: "s", Text: "123456"}); err != nil {
		t.Fatalf("SendEmail: %v", err)
	}
	if m := ms.messages(); len(m) != 1 || !m[0].tls {
		t.Errorf("received %+v", m)
	}
}

func TestSMTPSenderInsecureLoopback(t *testing.T) {
	ms := startMailServer(t, nil, false)
	s := newSMTP(t, mfa.SMTPConfig{Addr: ms.addr, From: "a@guard.example", InsecureNoTLS: true})
	if err := s.SendEmail(t.Context(), mfa.Message{To: "ada@example.com", Subject: "s", Text: "123456"}); err != nil {
		t.Fatalf("SendEmail: %v", err)
	}
	if m := ms.messages(); len(m) != 1 || m[0].tls {
		t.Errorf("received %+v", m)
	}
}

func TestSMTPSenderTimeout(t *testing.T) {
	// A server that accepts and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s := newSMTP(t, mfa.SMTPConfig{Addr: l.Addr().String(), From: "a@guard.example", Timeout: 200 * time.Millisecond})
	start := time.Now()
	err = s.SendEmail(t.Context(), mfa.Message{To: "ada@example.com", Subject: "s", Text: "123456"})
	var se *mfa.SendError
	if !errors.As(err, &se) || time.Since(start) > 30*time.Second { // a liveness bound, not a timing: without the Timeout the call would hang
		t.Errorf("SendEmail to a silent server = %v after %v", err, time.Since(start))
	}
}

func TestSMTPSenderRefusesBadMessages(t *testing.T) {
	ms := startMailServer(t, nil, false)
	s := newSMTP(t, mfa.SMTPConfig{Addr: ms.addr, From: "a@guard.example", InsecureNoTLS: true})
	for _, m := range []mfa.Message{
		{To: "ada@example.com\r\nBcc: eve@example.com", Subject: "s"},
		{To: "Ada <ada@example.com>", Subject: "s"},
		{To: "ada@example.com, eve@example.com", Subject: "s"},
		{To: "", Subject: "s"},
		{To: "ada@example.com", Subject: "s\r\nBcc: eve@example.com"},
		{To: "ada@example.com", Subject: "s\nX: y"},
	} {
		err := s.SendEmail(t.Context(), m)
		wantInputError(t, "SendEmail", err)
	}
	if len(ms.messages()) != 0 {
		t.Error("a bad message was delivered")
	}
}

func TestSMTPConfig(t *testing.T) {
	for name, cfg := range map[string]mfa.SMTPConfig{
		"NoAddr":           {From: "a@b.example"},
		"NoPort":           {Addr: "smtp.example.com", From: "a@b.example"},
		"NoFrom":           {Addr: "smtp.example.com:587"},
		"DisplayFrom":      {Addr: "smtp.example.com:587", From: "A <a@b.example>"},
		"InsecureRemote":   {Addr: "smtp.example.com:25", From: "a@b.example", InsecureNoTLS: true},
		"InsecureImplicit": {Addr: "127.0.0.1:25", From: "a@b.example", InsecureNoTLS: true, ImplicitTLS: true},
		"NegativeTimeout":  {Addr: "smtp.example.com:587", From: "a@b.example", Timeout: -1},
		"BadLocalName":     {Addr: "smtp.example.com:587", From: "a@b.example", LocalName: "a\r\nb"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := mfa.NewSMTPSender(cfg)
			var ce *mfa.ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("NewSMTPSender = %v, want a *ConfigError", err)
			}
		})
	}
}

// TestSMTPThroughManager sends a login code through the real server.
func TestSMTPThroughManager(t *testing.T) {
	cert, pool := testCert(t)
	ms := startMailServer(t, &cert, false)
	s := newSMTP(t, mfa.SMTPConfig{Addr: ms.addr, From: "a@guard.example", Username: "guard", Password: "s3cret", TLSConfig: &tls.Config{RootCAs: pool}})
	f := newFixture(t, func(c *mfa.Config) { c.Email = s })
	fac, res, err := f.m.BeginOOB(t.Context(), mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindEmail, Destination: "ada@example.com"})
	if err != nil || !res.Sent {
		t.Fatalf("BeginOOB = %+v, %v", res, err)
	}
	m := ms.messages()
	if len(m) != 1 {
		t.Fatalf("%d messages", len(m))
	}
	msg, _ := mail.ReadMessage(bytes.NewReader(m[0].data))
	body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	code := codeRE.FindString(string(body))
	if _, err := f.m.ConfirmOOB(t.Context(), "t", "u", fac.ID, code); err != nil {
		t.Errorf("ConfirmOOB with the code from the mail: %v", err)
	}
}
