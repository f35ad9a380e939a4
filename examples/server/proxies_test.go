package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// -trusted-proxies makes the console read the client IP from the
// forwarding header of its proxies; without it the header is ignored,
// however it looks.
func TestTrustedProxies(t *testing.T) {
	const forwarded = "198.51.100.7"
	for _, tc := range []struct {
		name    string
		proxies []netip.Prefix
		want    string
	}{
		{"none", nil, "127.0.0.1"},
		{"loopback proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, forwarded},
		{"another proxy", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(nil)
			srv.StartTLS()
			t.Cleanup(srv.Close)
			o := testOptions(t, srv.URL, nil, "")
			o.proxies.TrustedProxies = tc.proxies
			con := newTestConsoleWith(t, o, nil)
			h := con.app.routes()
			srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Header.Set("X-Forwarded-For", forwarded)
				h.ServeHTTP(w, r)
			})
			c := newClientOf(t, srv, con)
			c.signIn(ownerEmail, con.password)
			page, err := con.g.QueryAudit(t.Context(), guard.System("test"), demoTenant, audit.Query{Action: string(audit.LoginSucceeded)})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) != 1 || page.Events[0].IP != tc.want {
				t.Fatalf("login.succeeded events %+v, want one from %s", page.Events, tc.want)
			}
		})
	}
}

// The proxy flags are parsed and checked at start: a bad prefix, one
// trusting every address, or hops or a header without proxies are usage
// errors.
func TestProxyFlags(t *testing.T) {
	o, err := parseFlags([]string{"-trusted-proxies", "10.0.0.0/8, 192.0.2.1", "-trusted-hops", "2", "-proxy-header", "Forwarded"})
	if err != nil {
		t.Fatal(err)
	}
	if got := o.proxies.TrustedProxies; len(got) != 2 || got[0].String() != "10.0.0.0/8" || got[1].String() != "192.0.2.1/32" || o.proxies.TrustedHops != 2 {
		t.Errorf("proxies %+v", o.proxies)
	}
	for _, args := range [][]string{
		{"-trusted-proxies", "0.0.0.0/0"},
		{"-trusted-proxies", "10.0.0.0/8,nonsense"},
		{"-trusted-hops", "1"},
		{"-proxy-header", "forwarded"},
		{"-trusted-proxies", "10.0.0.0/8", "-proxy-header", "x-real-ip"},
		{"-trusted-proxies", "10.0.0.0/8", "-trusted-hops", "-1"},
	} {
		if _, err := parseFlags(args); !errors.Is(err, errUsage) {
			t.Errorf("parseFlags(%s) = %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}
