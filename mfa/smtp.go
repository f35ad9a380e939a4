package mfa

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// DefaultSMTPTimeout bounds one SMTP conversation.
const DefaultSMTPTimeout = 30 * time.Second

// SMTPConfig configures an SMTPSender.
type SMTPConfig struct {
	// Addr is the server's host:port (required), for example
	// "smtp.example.com:587".
	Addr string
	// From is the sender's bare address (required).
	From string
	// Username and Password, when Username is set, authenticate with
	// AUTH PLAIN, which is only ever sent over TLS.
	Username, Password string
	// TLSConfig configures STARTTLS (or ImplicitTLS). Nil means the
	// system roots; ServerName defaults to the host of Addr. The minimum
	// version is raised to TLS 1.2.
	TLSConfig *tls.Config
	// ImplicitTLS connects with TLS from the start (port 465) instead of
	// STARTTLS.
	ImplicitTLS bool
	// InsecureNoTLS sends in clear text, without STARTTLS, and is only
	// accepted when Addr is a loopback address (a mail catcher in
	// development). Otherwise STARTTLS is required: a server that does
	// not offer it gets no message.
	InsecureNoTLS bool
	// LocalName is the name given in EHLO (default "localhost").
	LocalName string
	// Timeout bounds the whole conversation (default 30 s); the context's
	// deadline, if earlier, wins.
	Timeout time.Duration
	// Now and Rand stamp the Date and Message-ID headers (defaults
	// time.Now and crypto/rand.Reader).
	Now  func() time.Time
	Rand io.Reader
}

// SMTPSender is an EmailSender that delivers through an SMTP server with
// net/smtp, one connection per message. It is safe for concurrent use.
type SMTPSender struct {
	cfg  SMTPConfig
	host string
	tls  *tls.Config
	from string
}

var _ EmailSender = (*SMTPSender)(nil)

// NewSMTPSender validates cfg and returns an SMTPSender. A bad field is a
// *ConfigError.
func NewSMTPSender(cfg SMTPConfig) (*SMTPSender, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return nil, &ConfigError{Field: "Addr", Reason: "must be host:port"}
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil || from.Name != "" || from.Address != cfg.From {
		return nil, &ConfigError{Field: "From", Reason: "must be a bare email address"}
	}
	if cfg.InsecureNoTLS {
		if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" {
			return nil, &ConfigError{Field: "InsecureNoTLS", Reason: "is only allowed for a loopback address"}
		}
		if cfg.ImplicitTLS {
			return nil, &ConfigError{Field: "InsecureNoTLS", Reason: "contradicts ImplicitTLS"}
		}
	}
	if cfg.Timeout < 0 {
		return nil, &ConfigError{Field: "Timeout", Reason: "must not be negative"}
	}
	if cfg.LocalName == "" {
		cfg.LocalName = "localhost"
	}
	if strings.ContainsAny(cfg.LocalName, " \r\n") {
		return nil, &ConfigError{Field: "LocalName", Reason: "must be a host name"}
	}
	cfg.Timeout = or(cfg.Timeout, DefaultSMTPTimeout)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	tc := &tls.Config{}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
	return &SMTPSender{cfg: cfg, host: host, tls: tc, from: cfg.From}, nil
}

// SendEmail implements EmailSender. It refuses, before connecting, a To
// that is not a bare address and a Subject with a line break (header
// injection). Failures are *SendError values (Status is the SMTP reply
// code when the server gave one).
func (s *SMTPSender) SendEmail(ctx context.Context, m Message) error {
	to, err := mail.ParseAddress(m.To)
	if err != nil || to.Name != "" || to.Address != m.To {
		return &InputError{Field: "email recipient", Reason: "is not a bare email address"}
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return &InputError{Field: "email subject", Reason: "contains a line break"}
	}
	msg, err := s.compose(m)
	if err != nil {
		return err
	}
	if err := s.deliver(ctx, m.To, msg); err != nil {
		se := &SendError{Channel: "email", Err: err}
		var te *textproto.Error
		if errors.As(err, &te) {
			se.Status = te.Code
		}
		return se
	}
	return nil
}

// compose writes the message: headers, then the text as quoted-printable
// UTF-8.
func (s *SMTPSender) compose(m Message) ([]byte, error) {
	var id [16]byte
	if _, err := io.ReadFull(s.cfg.Rand, id[:]); err != nil {
		return nil, fmt.Errorf("mfa: reading random bytes: %w", err)
	}
	_, domain, _ := strings.Cut(s.from, "@")
	var b bytes.Buffer
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", s.from)
	hdr("To", m.To)
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	hdr("Date", s.cfg.Now().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id[:])+"@"+domain+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	hdr("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(m.Text)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// deliver runs one SMTP conversation.
func (s *SMTPSender) deliver(ctx context.Context, to string, msg []byte) error {
	deadline := time.Now().Add(s.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(deadline)
	// Cancelling ctx interrupts the conversation at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if s.cfg.ImplicitTLS {
		conn = tls.Client(conn, s.tls)
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello(s.cfg.LocalName); err != nil {
		return err
	}
	if !s.cfg.ImplicitTLS && !s.cfg.InsecureNoTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("server does not offer STARTTLS")
		}
		if err := c.StartTLS(s.tls); err != nil {
			return err
		}
	}
	if s.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.host)); err != nil {
			return err
		}
	}
	if err := c.Mail(s.from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
