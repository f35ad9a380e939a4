package sso

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/crewjam/saml/samlidp"
)

// spServer is a minimal host application around a Provider, doing what
// the facade's handlers do: start the login, run the ACS, answer with the
// user (here as JSON, instead of opening a session), and single logout.
func spServer(t *testing.T, p func() *Provider) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /saml/{tenant}/metadata", func(w http.ResponseWriter, r *http.Request) {
		b, err := p().Metadata(r.PathValue("tenant"))
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("GET /saml/{tenant}/login", func(w http.ResponseWriter, r *http.Request) {
		login, err := p().StartLogin(r.Context(), r.PathValue("tenant"), LoginOptions{ReturnTo: r.URL.Query().Get("next")})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if login.Form != nil {
			_, _ = w.Write(login.Form.HTML(""))
			return
		}
		http.Redirect(w, r, login.RedirectURL, http.StatusSeeOther)
	})
	mux.HandleFunc("POST /saml/{tenant}/acs", func(w http.ResponseWriter, r *http.Request) {
		res, err := p().ACS(r.Context(), r.PathValue("tenant"), r, "")
		var rej *RejectError
		switch {
		case errors.As(err, &rej):
			t.Logf("ACS rejected: %v", rej)
			http.Error(w, ErrRejected.Error(), http.StatusForbidden)
			return
		case err != nil:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("/saml/{tenant}/slo", func(w http.ResponseWriter, r *http.Request) {
		res, err := p().SLO(r.Context(), r.PathValue("tenant"), r)
		if err != nil {
			t.Logf("SLO rejected: %v", err)
			http.Error(w, ErrRejected.Error(), http.StatusForbidden)
			return
		}
		if res.Request != nil && res.RedirectURL != "" {
			http.Redirect(w, r, res.RedirectURL, http.StatusSeeOther)
			return
		}
		_ = json.NewEncoder(w).Encode(res)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

var inputRE = regexp.MustCompile(`<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
var actionRE = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)

// form reads the action and the named inputs of the first form in page.
func form(t *testing.T, page string) (string, url.Values) {
	t.Helper()
	m := actionRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form in page:\n%s", page)
	}
	v := url.Values{}
	for _, in := range inputRE.FindAllStringSubmatch(page, -1) {
		v.Set(in[1], html.UnescapeString(in[2]))
	}
	return html.UnescapeString(m[1]), v
}

func readBody(t *testing.T) func(*http.Response, error) string {
	return func(resp *http.Response, err error) string { return readBodyOf(t, resp, err) }
}

func readBodyOf(t *testing.T, resp *http.Response, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s\n%s", resp.Request.Method, resp.Request.URL, resp.Status, b)
	}
	return string(b)
}

// TestEndToEndCrewjamIdP runs a whole SP-initiated login against
// crewjam/saml's samlidp, over HTTP on loopback, as a browser would: our
// login route, the IdP's login form, the IdP's signed response posted to
// our ACS. Then single logout through the IdP. Real clocks on both sides.
func TestEndToEndCrewjamIdP(t *testing.T) {
	k := loadKeys(t)
	var p *Provider
	sp := spServer(t, func() *Provider { return p })

	idpSrv := httptest.NewUnstartedServer(nil)
	idpURL, _ := url.Parse("http://" + idpSrv.Listener.Addr().String())
	idp, err := samlidp.New(samlidp.Options{URL: *idpURL, Key: k.idp.key, Certificate: k.idp.cert,
		Store: &samlidp.MemoryStore{}, Logger: log.New(testWriter{t}, "idp: ", 0)})
	if err != nil {
		t.Fatal(err)
	}
	idpSrv.Config.Handler = idp
	idpSrv.Start()
	t.Cleanup(idpSrv.Close)

	st := newMemStores()
	p, err = New(Config{BaseURL: sp.URL, Key: k.sp.key, Certificate: k.sp.cert, Stores: st.stores(), AllowInsecureMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := p.PutConnection(ctx, Connection{Tenant: "acme", MetadataURL: idpURL.String() + "/metadata",
		GroupRoles: map[string]string{"Admins": "admin"}, AllowedDomains: []string{"corp.example"}}); err != nil {
		t.Fatal(err)
	}

	// The IdP's administrator registers the SP from its metadata URL, and
	// a user.
	client := &http.Client{}
	put := func(path, body string) {
		req, _ := http.NewRequest(http.MethodPut, idpURL.String()+path, strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("PUT %s: %s", path, resp.Status)
		}
	}
	md := readBody(t)(client.Get(sp.URL + "/saml/acme/metadata"))
	put("/services/acme", md)
	put("/users/alice", `{"name":"alice","password":"correct horse","email":"Alice@Corp.Example","common_name":"Alice Example","groups":["Admins","Staff"]}`)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	// Our login route redirects to the IdP, which shows its login form.
	page := readBody(t)(browser.Get(sp.URL + "/saml/acme/login?next=/reports/7"))
	action, fields := form(t, page)
	fields.Set("user", "alice")
	fields.Set("password", "correct horse")
	// The IdP answers with an auto-submitting form to our ACS.
	page = readBody(t)(browser.PostForm(action, fields))
	action, fields = form(t, page)
	if action != sp.URL+"/saml/acme/acs" {
		t.Fatalf("the IdP posts to %s", action)
	}
	var res Result
	if err := json.Unmarshal([]byte(readBody(t)(browser.PostForm(action, fields))), &res); err != nil {
		t.Fatal(err)
	}
	if res.Email != "alice@corp.example" || res.Name != "Alice Example" || res.ReturnTo != "/reports/7" ||
		strings.Join(res.Roles, ",") != "admin" || res.IdPEntityID != idpURL.String()+"/metadata" || res.SessionIndex == "" {
		t.Errorf("result = %+v", res)
	}

	// The captured response posted again, from another client, is refused.
	resp, err := http.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("replayed response: %s", resp.Status)
	}

	// Single logout, SP-initiated: Guard's session would be ended first;
	// the IdP ends its own and answers at our SLO URL.
	lo, err := p.StartLogout(ctx, "acme", LogoutOptions{NameID: res.NameID, NameIDFormat: res.NameIDFormat, SessionIndex: res.SessionIndex, ReturnTo: "/signed-out"})
	if err != nil {
		t.Fatal(err)
	}
	var slo SLOResult
	if err := json.Unmarshal([]byte(readBody(t)(browser.Get(lo.RedirectURL))), &slo); err != nil {
		t.Fatal(err)
	}
	if slo.ReturnTo != "/signed-out" {
		t.Errorf("SLO = %+v", slo)
	}
}

// testWriter sends a log to t.Log (seen with -v or on failure).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
