package mfa_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
)

const hookSecret = "0123456789abcdef-hook-secret"

type hookCall struct {
	method, auth, ctype string
	body                map[string]string
}

// hookServer is an HTTPS SMS gateway that answers with status.
func hookServer(t *testing.T, status int) (*httptest.Server, func() []hookCall) {
	t.Helper()
	var mu sync.Mutex
	var calls []hookCall
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := hookCall{method: r.Method, auth: r.Header.Get("Authorization"), ctype: r.Header.Get("Content-Type")}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &c.body)
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		if status == http.StatusFound {
			http.Redirect(w, r, "https://elsewhere.example/", status)
			return
		}
		w.WriteHeader(status)
		io.WriteString(w, strings.Repeat("reply body ", 1000))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []hookCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]hookCall(nil), calls...)
	}
}

func newHook(t *testing.T, srv *httptest.Server) *mfa.WebhookSMSSender {
	t.Helper()
	s, err := mfa.NewWebhookSMSSender(mfa.WebhookConfig{URL: srv.URL + "/sms", Secret: hookSecret, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWebhookSMSSender(t *testing.T) {
	srv, calls := hookServer(t, http.StatusAccepted)
	s := newHook(t, srv)
	if err := s.SendSMS(t.Context(), "+447700900123", "Your code is 123456"); err != nil {
		t.Fatalf("SendSMS: %v", err)
	}
	c := calls()
	if len(c) != 1 {
		t.Fatalf("%d calls", len(c))
	}
	if c[0].method != "POST" || c[0].auth != "Bearer "+hookSecret || c[0].ctype != "application/json" ||
		c[0].body["to"] != "+447700900123" || c[0].body["text"] != "Your code is 123456" {
		t.Errorf("call %+v", c[0])
	}
}

func TestWebhookSMSSenderFailures(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusFound, http.StatusNoContent + 100} {
		srv, _ := hookServer(t, status)
		err := newHook(t, srv).SendSMS(t.Context(), "+447700900123", "Your code is 123456")
		var se *mfa.SendError
		if !errors.As(err, &se) || se.Status != status || strings.Contains(err.Error(), "123456") ||
			strings.Contains(err.Error(), hookSecret) {
			t.Errorf("status %d: SendSMS = %v, want a *SendError with the status and no code or secret", status, err)
		}
	}
}

func TestWebhookSMSSenderUnreachable(t *testing.T) {
	srv, _ := hookServer(t, http.StatusOK)
	s := newHook(t, srv)
	srv.Close()
	err := s.SendSMS(t.Context(), "+447700900123", "x")
	var se *mfa.SendError
	if !errors.As(err, &se) || se.Status != 0 || strings.Contains(err.Error(), "/sms") {
		t.Errorf("SendSMS to a closed server = %v", err)
	}
}

func TestWebhookSMSSenderUntrusted(t *testing.T) {
	srv, calls := hookServer(t, http.StatusOK)
	// The default client does not trust the test server's certificate.
	s, err := mfa.NewWebhookSMSSender(mfa.WebhookConfig{URL: srv.URL, Secret: hookSecret})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendSMS(t.Context(), "+447700900123", "x"); err == nil || len(calls()) != 0 {
		t.Errorf("SendSMS to an untrusted server = %v, %d calls", err, len(calls()))
	}
}

func TestWebhookSMSSenderTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s, err := mfa.NewWebhookSMSSender(mfa.WebhookConfig{URL: srv.URL, Secret: hookSecret, Client: srv.Client(), Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.SendSMS(t.Context(), "+447700900123", "x")
	var se *mfa.SendError
	if !errors.As(err, &se) || time.Since(start) > 30*time.Second { // a liveness bound, not a timing: without the Timeout the call would hang
		t.Errorf("SendSMS to a hanging server = %v after %v", err, time.Since(start))
	}
}

func TestWebhookConfig(t *testing.T) {
	for name, cfg := range map[string]mfa.WebhookConfig{
		"NoURL":       {Secret: hookSecret},
		"HTTP":        {URL: "http://sms.example/send", Secret: hookSecret},
		"Relative":    {URL: "/send", Secret: hookSecret},
		"UserInURL":   {URL: "https://u:p@sms.example/send", Secret: hookSecret},
		"NoSecret":    {URL: "https://sms.example/send"},
		"ShortSecret": {URL: "https://sms.example/send", Secret: "short"},
		"SpaceSecret": {URL: "https://sms.example/send", Secret: "0123456789 abcdef"},
		"CRLFSecret":  {URL: "https://sms.example/send", Secret: "0123456789abcdef\r\nX: y"},
		"NegTimeout":  {URL: "https://sms.example/send", Secret: hookSecret, Timeout: -1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := mfa.NewWebhookSMSSender(cfg)
			var ce *mfa.ConfigError
			if !errors.As(err, &ce) || strings.Contains(err.Error(), hookSecret) {
				t.Errorf("NewWebhookSMSSender = %v, want a *ConfigError without the secret", err)
			}
		})
	}
}

// TestWebhookThroughManager sends an SMS login code through the gateway.
func TestWebhookThroughManager(t *testing.T) {
	srv, calls := hookServer(t, http.StatusOK)
	f := newFixture(t, func(c *mfa.Config) { c.SMS = newHook(t, srv) })
	fac, res, err := f.m.BeginOOB(t.Context(), mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindSMS, Destination: "+447700900123"})
	if err != nil || !res.Sent {
		t.Fatalf("BeginOOB = %+v, %v", res, err)
	}
	code := codeRE.FindString(calls()[0].body["text"])
	if _, err := f.m.ConfirmOOB(t.Context(), "t", "u", fac.ID, code); err != nil {
		t.Errorf("ConfirmOOB with the code from the SMS: %v", err)
	}
}
