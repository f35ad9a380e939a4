package auth_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

// rangeServer is a Pwned Passwords range API over a fixed corpus
// (password → count), with padding lines, that records what it is asked.
type rangeServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	reply    func(w http.ResponseWriter, prefix string) bool // overrides the answer when it returns true
}

func sha1Hex(pw string) string {
	s := sha1.Sum([]byte(pw))
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

func newRangeServer(t *testing.T, corpus map[string]int) *rangeServer {
	t.Helper()
	rs := &rangeServer{}
	byPrefix := map[string][]string{}
	for pw, n := range corpus {
		h := sha1Hex(pw)
		byPrefix[h[:5]] = append(byPrefix[h[:5]], fmt.Sprintf("%s:%d", h[5:], n))
	}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		rs.requests = append(rs.requests, r.Clone(context.Background()))
		reply := rs.reply
		rs.mu.Unlock()
		prefix, ok := strings.CutPrefix(r.URL.Path, "/range/")
		if !ok || len(prefix) != 5 {
			http.NotFound(w, r)
			return
		}
		if reply != nil && reply(w, prefix) {
			return
		}
		lines := append([]string{}, byPrefix[prefix]...)
		if r.Header.Get("Add-Padding") == "true" {
			for i := range 3 {
				lines = append(lines, fmt.Sprintf("%035X:0", i))
			}
		}
		fmt.Fprint(w, strings.Join(lines, "\r\n"))
	}))
	t.Cleanup(rs.Close)
	return rs
}

func (rs *rangeServer) setReply(f func(w http.ResponseWriter, prefix string) bool) {
	rs.mu.Lock()
	rs.reply = f
	rs.mu.Unlock()
}

func newRangeAPI(t *testing.T, cfg auth.RangeAPIConfig) *auth.RangeAPI {
	t.Helper()
	a, err := auth.NewRangeAPI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRangeAPI(t *testing.T) {
	const breached, rare, clean = "Summer-2019-password", "seen once in a leak", "quiet walrus embroidery"
	rs := newRangeServer(t, map[string]int{breached: 4200, rare: 1})
	ctx := context.Background()
	a := newRangeAPI(t, auth.RangeAPIConfig{BaseURL: rs.URL})
	for pw, want := range map[string]bool{breached: true, rare: true, clean: false} {
		got, err := a.Breached(ctx, pw)
		if err != nil || got != want {
			t.Errorf("Breached(%q) = %v, %v; want %v", pw, got, err, want)
		}
	}
	if got, err := newRangeAPI(t, auth.RangeAPIConfig{BaseURL: rs.URL, MinCount: 2}).Breached(ctx, rare); err != nil || got {
		t.Errorf("MinCount 2, a password seen once: %v, %v; want false", got, err)
	}

	// k-anonymity: only 5 hex digits of the hash leave the process, with
	// a request for padding; never the password or the rest of its hash.
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, r := range rs.requests {
		dump := r.URL.String() + fmt.Sprint(r.Header)
		for _, pw := range []string{breached, rare, clean} {
			if strings.Contains(dump, pw) || strings.Contains(dump, sha1Hex(pw)[5:]) {
				t.Errorf("request %s carries the password or its hash", r.URL)
			}
		}
		if r.Header.Get("Add-Padding") != "true" || len(strings.TrimPrefix(r.URL.Path, "/range/")) != 5 {
			t.Errorf("request %s, Add-Padding %q", r.URL, r.Header.Get("Add-Padding"))
		}
	}
}

// A padding line (count 0) never matches, even for the password's own
// suffix.
func TestRangeAPIPaddingNeverMatches(t *testing.T) {
	const pw = "a padded password"
	rs := newRangeServer(t, map[string]int{pw: 0})
	if got, err := newRangeAPI(t, auth.RangeAPIConfig{BaseURL: rs.URL}).Breached(context.Background(), pw); err != nil || got {
		t.Errorf("Breached with a count of 0 = %v, %v; want false", got, err)
	}
}

// Every way of not getting a well-formed answer is an error wrapping
// ErrBreachCheck, never "not breached".
func TestRangeAPIFailures(t *testing.T) {
	rs := newRangeServer(t, nil)
	a := newRangeAPI(t, auth.RangeAPIConfig{BaseURL: rs.URL, Timeout: 200 * time.Millisecond})
	// Another service, which answers "not breached" for every prefix.
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%035X:0\r\n", 1)
	}))
	defer elsewhere.Close()
	cases := map[string]func(w http.ResponseWriter, prefix string) bool{
		"redirect": func(w http.ResponseWriter, prefix string) bool {
			w.Header().Set("Location", elsewhere.URL+"/range/"+prefix)
			w.WriteHeader(http.StatusFound)
			return true
		},
		"status 503": func(w http.ResponseWriter, _ string) bool { w.WriteHeader(503); return true },
		"status 429": func(w http.ResponseWriter, _ string) bool { w.WriteHeader(429); return true },
		"slow":       func(w http.ResponseWriter, _ string) bool { time.Sleep(400 * time.Millisecond); return true },
		"html":       func(w http.ResponseWriter, _ string) bool { fmt.Fprint(w, "<html>maintenance</html>"); return true },
		"short hash": func(w http.ResponseWriter, _ string) bool { fmt.Fprint(w, "ABCDEF:12\r\n"); return true },
		"bad count":  func(w http.ResponseWriter, _ string) bool { fmt.Fprintf(w, "%035X:many\r\n", 1); return true },
		"huge": func(w http.ResponseWriter, _ string) bool {
			line := fmt.Sprintf("%035X:1\r\n", 7)
			fmt.Fprint(w, strings.Repeat(line, auth.MaxRangeReply/len(line)+2))
			return true
		},
		"long line": func(w http.ResponseWriter, _ string) bool { fmt.Fprint(w, strings.Repeat("A", 4096)); return true },
	}
	for name, reply := range cases {
		rs.setReply(reply)
		got, err := a.Breached(context.Background(), "any password at all")
		if !errors.Is(err, auth.ErrBreachCheck) || got {
			t.Errorf("%s: Breached = %v, %v; want an ErrBreachCheck", name, got, err)
		}
		if err != nil && strings.Contains(err.Error(), sha1Hex("any password at all")[5:]) {
			t.Errorf("%s: the error holds the hash: %v", name, err)
		}
	}
	rs.Close()
	if _, err := a.Breached(context.Background(), "x"); !errors.Is(err, auth.ErrBreachCheck) {
		t.Errorf("server gone: %v, want ErrBreachCheck", err)
	}
}

func TestNewRangeAPIConfig(t *testing.T) {
	if a, err := auth.NewRangeAPI(auth.RangeAPIConfig{}); err != nil || a == nil {
		t.Errorf("defaults: %v", err)
	}
	for _, cfg := range []auth.RangeAPIConfig{
		{BaseURL: "http://pwned.example"},
		{BaseURL: "ftp://pwned.example"},
		{BaseURL: "/range"},
		{BaseURL: "https://user:pw@pwned.example"},
		{BaseURL: "https://pwned.example/?x=1"},
		{MinCount: -1},
		{Timeout: -time.Second},
	} {
		var ce *auth.ConfigError
		if _, err := auth.NewRangeAPI(cfg); !errors.As(err, &ce) {
			t.Errorf("NewRangeAPI(%+v) = %v, want a *ConfigError", cfg, err)
		}
	}
	if _, err := auth.NewRangeAPI(auth.RangeAPIConfig{BaseURL: "http://127.0.0.1:9999"}); err != nil {
		t.Errorf("http on loopback: %v", err)
	}
}

func FuzzParseRange(f *testing.F) {
	f.Add("0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:2", "0018A45C4D1DEF81644B54AB7F969B88D65")
	f.Add("", "")
	f.Add(":\n:\r\n", "x")
	f.Add("0018A45C4D1DEF81644B54AB7F969B88D65:-1", "0018A45C4D1DEF81644B54AB7F969B88D65")
	f.Fuzz(func(t *testing.T, body, suffix string) {
		n, err := auth.ParseRange(strings.NewReader(body), suffix)
		if err != nil {
			if !errors.Is(err, auth.ErrBreachCheck) || n != 0 {
				t.Fatalf("ParseRange = %d, %v", n, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("negative count %d", n)
		}
		if n > 0 && !strings.Contains(strings.ToUpper(body), strings.ToUpper(suffix)+":") {
			t.Fatalf("count %d for a suffix not in the answer", n)
		}
	})
}
