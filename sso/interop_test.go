package sso

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInteropPySAML2 runs a full SP-initiated login against an
// independent IdP implementation: pysaml2 (Debian's python3-pysaml2),
// signing with xmlsec1, on loopback. AuthnRequest from StartLogin →
// pysaml2 parses it and signs a Response and Assertion → ParseResponse
// accepts it. The metadata goes both ways: pysaml2 reads Guard's SP
// metadata, Guard fetches pysaml2's IdP metadata from its URL.
//
// It is skipped when pysaml2 or xmlsec1 is missing; CI installs them with
// sso/testdata/interop/setup.sh. Set GUARD_REQUIRE_INTEROP=1 to make a
// missing prerequisite a failure instead.
func TestInteropPySAML2(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Python IdP")
	}
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import saml2").Run(); err != nil {
		skipInterop(t, "python3-pysaml2 is not installed for "+python)
	}
	if _, err := exec.LookPath("xmlsec1"); err != nil {
		skipInterop(t, "xmlsec1 is not installed")
	}
	k := loadKeys(t)
	dir := t.TempDir()
	st := newMemStores()
	p, err := New(Config{BaseURL: "http://127.0.0.1:1", Key: k.sp.key, Certificate: k.sp.cert, Stores: st.stores(), AllowInsecureMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	spMeta, err := p.Metadata(tenant)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	spFile := write("sp.xml", spMeta)
	keyFile, _ := filepath.Abs(filepath.Join("testdata", "keys", "idp.key.pem"))
	certFile, _ := filepath.Abs(filepath.Join("testdata", "keys", "idp.crt.pem"))

	script, _ := filepath.Abs(filepath.Join("testdata", "interop", "idp.py"))
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, python, script, fmt.Sprint(port), spFile, keyFile, certFile)
	cmd.Dir = dir
	cmd.Stderr = testWriter{t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("pysaml2 IdP did not start")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pysaml2 IdP did not start within 30s")
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	if _, err := p.PutConnection(ctx, Connection{Tenant: tenant, MetadataURL: base + "/metadata",
		GroupRoles: map[string]string{"Admins": "admin"}}); err != nil {
		t.Fatal(err)
	}
	login, err := p.StartLogin(ctx, tenant, LoginOptions{ReturnTo: "/after"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(login.RedirectURL, base+"/sso/redirect?") {
		t.Fatalf("redirect to %s", login.RedirectURL)
	}
	page := readBody(t)(http.Get(login.RedirectURL))
	action, fields := form(t, page)
	if action != "http://127.0.0.1:1/saml/acme/acs" || fields.Get("RelayState") != login.RelayState {
		t.Fatalf("pysaml2 posts to %s with RelayState %q", action, fields.Get("RelayState"))
	}
	if testing.Verbose() {
		raw, _ := base64.StdEncoding.DecodeString(fields.Get("SAMLResponse"))
		t.Logf("pysaml2 response:\n%s", raw)
	}
	res, err := p.ParseResponse(ctx, tenant, fields.Get("SAMLResponse"), fields.Get("RelayState"), "")
	if err != nil {
		t.Fatalf("Guard rejected pysaml2's response: %v", err)
	}
	if res.Email != "alice@corp.example" || res.Name != "Alice Example" || res.ReturnTo != "/after" ||
		res.RequestID != login.RequestID || strings.Join(res.Roles, ",") != "admin" || res.IdPEntityID != base+"/metadata" {
		t.Errorf("result = %+v", res)
	}
	// And only once.
	_, err = p.ParseResponse(ctx, tenant, fields.Get("SAMLResponse"), fields.Get("RelayState"), "")
	wantReason(t, err, ReasonRequestUnknown)
}

func skipInterop(t *testing.T, why string) {
	t.Helper()
	msg := why + "; run sso/testdata/interop/setup.sh (apt-get install python3-pysaml2 xmlsec1)"
	if os.Getenv("GUARD_REQUIRE_INTEROP") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
