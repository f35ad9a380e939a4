package sso

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
)

func acsRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, spACSURL, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// TestACSForm checks the form of a POST to the ACS. SECURITY-CHECKLIST
// SAML-30: "???" (not base64), base64 of non-XML, base64 of an unrelated
// root and an empty value are each a rejection (ErrRejected, with its
// reason), which a host answers with its one 4xx page and never a 500
// (examples/server: 403 "Single sign-on failed").
func TestACSForm(t *testing.T) {
	k := loadKeys(t)
	good := base64.StdEncoding.EncodeToString(valid().build(k))
	for _, tc := range []struct {
		name string
		req  func() *http.Request
		want Reason // "" accepted
	}{
		{"valid", func() *http.Request { return acsRequest(formPost("SAMLResponse", good, "RelayState", relayState)) }, ""},
		{"GET", func() *http.Request { return httptest.NewRequest(http.MethodGet, spACSURL+"?SAMLResponse=x", nil) }, ReasonMalformed},
		{"content type", func() *http.Request {
			r := acsRequest(formPost("SAMLResponse", good))
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, ReasonMalformed},
		{"declared too large", func() *http.Request {
			r := acsRequest(formPost("SAMLResponse", good))
			r.ContentLength = DefaultMaxBodyBytes + 1
			return r
		}, ReasonBodyTooLarge},
		{"too large", func() *http.Request {
			r := acsRequest(formPost("SAMLResponse", strings.Repeat("A", DefaultMaxBodyBytes)))
			r.ContentLength = -1
			return r
		}, ReasonBodyTooLarge},
		{"artifact", func() *http.Request { return acsRequest(formPost("SAMLart", "AAQAAA")) }, ReasonUnsupportedBinding},
		{"simplesign", func() *http.Request {
			return acsRequest(formPost("SAMLResponse", good, "SigAlg", "x", "Signature", "y"))
		}, ReasonUnsupportedBinding},
		{"two responses", func() *http.Request {
			return acsRequest(formPost("SAMLResponse", good, "SAMLResponse", good))
		}, ReasonMalformed},
		{"two relay states", func() *http.Request {
			return acsRequest(formPost("SAMLResponse", good, "RelayState", "a", "RelayState", "b"))
		}, ReasonMalformed},
		{"no response", func() *http.Request { return acsRequest(formPost("RelayState", relayState)) }, ReasonMalformed},
		{"empty", func() *http.Request { return acsRequest(formPost("SAMLResponse", "")) }, ReasonMalformed},
		{"not base64", func() *http.Request { return acsRequest(formPost("SAMLResponse", "???")) }, ReasonMalformed},
		{"not XML", func() *http.Request {
			return acsRequest(formPost("SAMLResponse", base64.StdEncoding.EncodeToString([]byte("hello, world"))))
		}, ReasonMalformed},
		{"unrelated root", func() *http.Request {
			return acsRequest(formPost("SAMLResponse", base64.StdEncoding.EncodeToString([]byte("<html><body/></html>"))))
		}, ReasonNotResponse},
		{"broken form", func() *http.Request { return acsRequest("SAMLResponse=%zz") }, ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.track(requestID, relayState)
			res, err := e.p.ACS(t.Context(), tenant, tc.req(), "")
			if tc.want == "" {
				if err != nil || res.Email != "alice@corp.example" {
					t.Fatalf("ACS = %+v, %v", res, err)
				}
				return
			}
			wantReason(t, err, tc.want)
		})
	}
}

// TestACSDestinationIgnoresHost: the ACS compares Destination with the
// configured ACS URL, never with the request's Host or X-Forwarded-Host
// (SAML-36). A POST that reached the ACS under another host name is
// accepted when Destination is the configured URL, and refused when
// Destination (and Recipient) name the other host.
func TestACSDestinationIgnoresHost(t *testing.T) {
	k := loadKeys(t)
	const otherHost = "evil.example"
	otherACS := "https://" + otherHost + "/saml/" + tenant + "/acs"
	for _, tc := range []struct {
		name string
		doc  []byte
		want Reason // "" accepted
	}{
		{"destination is the configured ACS", valid().build(k), ""},
		{"destination names the request's host", spec{signAssertion: true, destination: otherACS}.build(k), ReasonDestination},
		{"destination and recipient name the request's host", spec{signAssertion: true, destination: otherACS, recipient: otherACS}.build(k), ReasonDestination},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.track(requestID, relayState)
			body := formPost("SAMLResponse", base64.StdEncoding.EncodeToString(tc.doc), "RelayState", relayState)
			r := httptest.NewRequest(http.MethodPost, otherACS, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("X-Forwarded-Host", otherHost)
			if r.Host != otherHost {
				t.Fatalf("request Host %q, want %q", r.Host, otherHost)
			}
			res, err := e.p.ACS(t.Context(), tenant, r, "")
			if tc.want == "" {
				if err != nil || res.Email != "alice@corp.example" {
					t.Fatalf("ACS = %+v, %v", res, err)
				}
				return
			}
			wantReason(t, err, tc.want)
			if res != nil {
				t.Errorf("a rejected response returned a result")
			}
		})
	}
}

func TestRelayStateAndBinding(t *testing.T) {
	k := loadKeys(t)
	doc := valid().build(k)
	t.Run("relay state mismatch", func(t *testing.T) {
		e := newEnv(t, nil)
		e.track(requestID, relayState)
		_, err := e.post(doc, "another-handle")
		wantReason(t, err, ReasonRelayStateMismatch)
	})
	bound := func(t *testing.T) *env {
		e := newEnv(t, nil)
		r := Request{Tenant: tenant, ID: requestID, Kind: KindLogin, RelayState: relayState, ReturnTo: "/x",
			Binding: bindingHash("browser-cookie"), CreatedAt: t0, Expires: t0.Add(time.Hour)}
		if err := e.st.RememberRequest(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		return e
	}
	t.Run("binding matches", func(t *testing.T) {
		e := bound(t)
		res, err := e.p.ParseResponse(t.Context(), tenant, base64.StdEncoding.EncodeToString(doc), relayState, "browser-cookie")
		if err != nil {
			t.Fatal(err)
		}
		if !res.Bound {
			t.Error("Bound = false for the answer to a request started with a binding")
		}
	})
	t.Run("no binding", func(t *testing.T) {
		e := newEnv(t, nil)
		e.track(requestID, relayState)
		res, err := e.p.ParseResponse(t.Context(), tenant, base64.StdEncoding.EncodeToString(doc), relayState, "browser-cookie")
		if err != nil {
			t.Fatal(err)
		}
		if res.Bound {
			t.Error("Bound = true for the answer to a request started without a binding")
		}
	})
	for _, other := range []string{"", "other-cookie"} {
		t.Run("binding "+other, func(t *testing.T) {
			e := bound(t)
			_, err := e.p.ParseResponse(t.Context(), tenant, base64.StdEncoding.EncodeToString(doc), relayState, other)
			wantReason(t, err, ReasonBindingMismatch)
		})
	}
	t.Run("logout request is not a login", func(t *testing.T) {
		e := newEnv(t, nil)
		r := Request{Tenant: tenant, ID: requestID, Kind: KindLogout, RelayState: relayState, ReturnTo: "/", CreatedAt: t0, Expires: t0.Add(time.Hour)}
		if err := e.st.RememberRequest(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		_, err := e.post(doc, relayState)
		wantReason(t, err, ReasonRequestUnknown)
	})
}

// TestRequestSingleUse: after a successful login, a second, freshly signed
// response to the same request is refused (SAML-33), and so is the same
// response again (SAML-34, caught by the request before the replay
// cache).
func TestRequestSingleUse(t *testing.T) {
	k := loadKeys(t)
	e := newEnv(t, nil)
	e.track(requestID, relayState)
	first := valid().build(k)
	if _, err := e.post(first, relayState); err != nil {
		t.Fatal(err)
	}
	_, err := e.post(spec{signAssertion: true, assertionID: "id-assertion-0002", responseID: "id-response-0002"}.build(k), relayState)
	wantReason(t, err, ReasonRequestUnknown)
	_, err = e.post(first, relayState)
	wantReason(t, err, ReasonRequestUnknown)
	// Even with its request tracked again (another replica, a
	// misbehaving store), the assertion itself is not accepted twice.
	e.track(requestID, relayState)
	_, err = e.post(first, relayState)
	wantReason(t, err, ReasonReplayed)
}

func TestExpiredRequest(t *testing.T) {
	k := loadKeys(t)
	e := newEnv(t, nil)
	e.track(requestID, relayState) // expires at t0+9m
	e.clock.Set(t0.Add(9 * time.Minute))
	// The response itself is still acceptable at that time.
	doc := spec{signAssertion: true, issueInstant: t0.Add(9*time.Minute - 10*time.Second), notOnOrAfter: t0.Add(15 * time.Minute), scdNotOnOrAfter: t0.Add(15 * time.Minute)}.build(k)
	_, err := e.post(doc, relayState)
	wantReason(t, err, ReasonRequestUnknown)
}

func TestIdPInitiated(t *testing.T) {
	k := loadKeys(t)
	unsolicited := spec{signAssertion: true, noInResponseTo: true}.build(k)
	on := func(c *Connection) { c.IdPInitiated = true }
	t.Run("off by default", func(t *testing.T) {
		_, err := newEnv(t, nil).post(unsolicited, "")
		wantReason(t, err, ReasonUnsolicited)
	})
	t.Run("accepted once when on", func(t *testing.T) {
		e := newEnv(t, on)
		res, err := e.post(unsolicited, "/reports/7?tab=a")
		if err != nil {
			t.Fatal(err)
		}
		if !res.IdPInitiated || res.RequestID != "" || res.ReturnTo != "/reports/7?tab=a" {
			t.Errorf("result = %+v", res)
		}
		_, err = e.post(unsolicited, "/reports/7?tab=a")
		wantReason(t, err, ReasonReplayed)
	})
	for _, relay := range []string{"https://evil.test/", "//evil.test", "/\\evil.test", "javascript:alert(1)", "", "x"} {
		t.Run("relay "+relay, func(t *testing.T) {
			res, err := newEnv(t, on).post(unsolicited, relay)
			if err != nil {
				t.Fatal(err)
			}
			if res.ReturnTo != "/" {
				t.Errorf("ReturnTo = %q for RelayState %q, want the default", res.ReturnTo, relay)
			}
		})
	}
	t.Run("InResponseTo still checked", func(t *testing.T) {
		_, err := newEnv(t, on).post(spec{signAssertion: true, inResponseTo: "id-never-sent"}.build(k), relayState)
		wantReason(t, err, ReasonRequestUnknown)
	})
	t.Run("solicited still works", func(t *testing.T) {
		e := newEnv(t, on)
		e.track(requestID, relayState)
		res, err := e.post(valid().build(k), relayState)
		if err != nil || res.IdPInitiated || res.ReturnTo != "/reports" {
			t.Fatalf("= %+v, %v", res, err)
		}
	})
}

// The Response's InResponseTo makes a response the answer to a request
// only where a signature covers it: in a signed Response, or repeated in
// the assertion's bearer confirmation (TestAuditSAML_UnsignedResponse…
// has the unsigned Response around an unsolicited assertion).
func TestResponseInResponseToSigned(t *testing.T) {
	k := loadKeys(t)
	unsolicited := spec{noInResponseTo: true}.assertion(k) // unsigned
	t.Run("signed Response, assertion without InResponseTo", func(t *testing.T) {
		e := newEnv(t, nil)
		e.track(requestID, relayState)
		res, err := e.post(serialize(spec{signResponse: true}.response(k, unsolicited.Copy())), relayState)
		if err != nil || res.RequestID != requestID || res.IdPInitiated {
			t.Fatalf("= %+v, %v; want the answer to %q", res, err, requestID)
		}
	})
	t.Run("unsigned Response, unsolicited assertion, IdP-initiated on", func(t *testing.T) {
		e := newEnv(t, func(c *Connection) { c.IdPInitiated = true })
		e.track(requestID, relayState)
		signed := spec{signAssertion: true, noInResponseTo: true}.assertion(k)
		_, err := e.post(serialize(spec{}.response(k, signed)), relayState)
		wantReason(t, err, ReasonRequestMismatch)
		if _, ok := e.st.replay[[2]string{tenant, "id-assertion-0001"}]; !ok {
			t.Error("the refused assertion's ID is not in the ReplayCache")
		}
	})
	t.Run("refused unsolicited assertion is spent", func(t *testing.T) {
		e := newEnv(t, nil)
		doc := spec{signAssertion: true, noInResponseTo: true}.build(k)
		_, err := e.post(doc, "")
		wantReason(t, err, ReasonUnsolicited)
		// The tenant then allows IdP-initiated login: the assertion
		// refused before is not accepted now.
		e.conn.IdPInitiated = true
		if err := e.st.PutConnection(t.Context(), e.conn); err != nil {
			t.Fatal(err)
		}
		_, err = e.post(doc, "")
		wantReason(t, err, ReasonReplayed)
	})
}

func TestClockSkew(t *testing.T) {
	k := loadKeys(t)
	// NotOnOrAfter 40 s ago: accepted with a 1-minute skew, refused with
	// 30 s; exactly at NotOnOrAfter+skew it is refused.
	doc := spec{signAssertion: true, notOnOrAfter: t0.Add(-38 * time.Second)}.build(k)
	skew := func(d time.Duration) func(*Connection) { return func(c *Connection) { c.ClockSkew = d } }
	e := newEnv(t, skew(time.Minute))
	e.track(requestID, relayState)
	if _, err := e.post(doc, relayState); err != nil {
		t.Errorf("inside the skew: %v", err)
	}
	e = newEnv(t, skew(30*time.Second))
	e.track(requestID, relayState)
	_, err := e.post(doc, relayState)
	wantReason(t, err, ReasonExpired)
	e = newEnv(t, skew(40*time.Second))
	e.track(requestID, relayState)
	_, err = e.post(doc, relayState)
	wantReason(t, err, ReasonExpired)

	// NotBefore in the future by 50 s (the clock reads t0+2s).
	doc = spec{signAssertion: true, notBefore: t0.Add(52 * time.Second)}.build(k)
	e = newEnv(t, skew(time.Minute))
	e.track(requestID, relayState)
	if _, err := e.post(doc, relayState); err != nil {
		t.Errorf("NotBefore inside the skew: %v", err)
	}
	e = newEnv(t, skew(45*time.Second))
	e.track(requestID, relayState)
	_, err = e.post(doc, relayState)
	wantReason(t, err, ReasonNotYetValid)
}

// TestTimeBoundaries checks each time limit at its edge with the frozen
// clock (SECURITY-CHECKLIST SAML-39): accepted exactly at the limit,
// refused one second beyond it. The limits are crewjam's MaxIssueDelay
// (90 s) for IssueInstant, and the connection's skew (DefaultClockSkew, 2
// minutes, or the largest, MaxClockSkew, 3 minutes, which is crewjam's
// own) for NotBefore, NotOnOrAfter (exclusive: refused at NotOnOrAfter
// plus the skew) and an IssueInstant in the future.
func TestTimeBoundaries(t *testing.T) {
	k := loadKeys(t)
	if saml.MaxIssueDelay != 90*time.Second || DefaultClockSkew != 2*time.Minute || MaxClockSkew != saml.MaxClockSkew {
		t.Fatalf("limits changed (MaxIssueDelay %v, skews %v, %v): update the cases", saml.MaxIssueDelay, DefaultClockSkew, MaxClockSkew)
	}
	now := t0.Add(2 * time.Second) // newEnv's clock
	const sec = time.Second
	for _, skew := range []time.Duration{DefaultClockSkew, MaxClockSkew} {
		for _, tc := range []struct {
			name string
			s    spec
			want Reason // "" accepted
		}{
			{"IssueInstant at the maximum issue delay", spec{issueInstant: now.Add(-saml.MaxIssueDelay)}, ""},
			{"IssueInstant one second older", spec{issueInstant: now.Add(-saml.MaxIssueDelay - sec)}, ReasonExpired},
			{"IssueInstant ahead by the skew", spec{issueInstant: now.Add(skew)}, ""},
			{"IssueInstant ahead by one second more", spec{issueInstant: now.Add(skew + sec)}, ReasonNotYetValid},
			{"NotBefore ahead by the skew", spec{notBefore: now.Add(skew)}, ""},
			{"NotBefore ahead by one second more", spec{notBefore: now.Add(skew + sec)}, ReasonNotYetValid},
			{"NotOnOrAfter one second inside the skew", spec{notOnOrAfter: now.Add(-skew + sec)}, ""},
			{"NotOnOrAfter at the skew", spec{notOnOrAfter: now.Add(-skew)}, ReasonExpired},
			{"confirmation NotOnOrAfter one second inside the skew", spec{scdNotOnOrAfter: now.Add(-skew + sec)}, ""},
			{"confirmation NotOnOrAfter at the skew", spec{scdNotOnOrAfter: now.Add(-skew)}, ReasonExpired},
		} {
			t.Run(fmt.Sprintf("%v/%s", skew, tc.name), func(t *testing.T) {
				e := newEnv(t, func(c *Connection) { c.ClockSkew = skew })
				e.track(requestID, relayState)
				if !e.clock.Now().Equal(now) {
					t.Fatalf("clock %v, want %v", e.clock.Now(), now)
				}
				tc.s.signAssertion = true
				res, err := e.post(tc.s.build(k), relayState)
				if tc.want == "" {
					if err != nil || res.Email != "alice@corp.example" {
						t.Fatalf("ACS = %+v, %v", res, err)
					}
					return
				}
				wantReason(t, err, tc.want)
			})
		}
	}
}

func TestReplayUntil(t *testing.T) {
	k := loadKeys(t)
	e := newEnv(t, func(c *Connection) { c.IdPInitiated = true })
	if _, err := e.post(spec{signAssertion: true, noInResponseTo: true}.build(k), ""); err != nil {
		t.Fatal(err)
	}
	until := e.st.replay[[2]string{tenant, "id-assertion-0001"}]
	// Acceptable until IssueInstant+90s+3m (crewjam's limits), kept one
	// skew longer for replicas with other clocks.
	want := t0.Add(saml.MaxIssueDelay + saml.MaxClockSkew + DefaultClockSkew)
	if !until.Equal(want) {
		t.Errorf("replay record until %v, want %v", until, want)
	}
	// The last instant any check accepts is before until.
	e.clock.Set(want.Add(-DefaultClockSkew))
	_, err := e.post(spec{signAssertion: true, noInResponseTo: true}.build(k), "")
	wantReason(t, err, ReasonExpired)
}

func TestNotConfiguredAndMetadata(t *testing.T) {
	k := loadKeys(t)
	doc := valid().build(k)
	e := newEnv(t, nil)
	_, err := e.p.ParseResponse(t.Context(), "other", base64.StdEncoding.EncodeToString(doc), relayState, "")
	wantReason(t, err, ReasonNotConfigured)
	_, err = e.p.ParseResponse(t.Context(), "../acme", base64.StdEncoding.EncodeToString(doc), relayState, "")
	wantReason(t, err, ReasonNotConfigured)

	e = newEnv(t, func(c *Connection) { c.Metadata = idpMetadata(t0.Add(-time.Hour), k.idp.cert) })
	e.track(requestID, relayState)
	_, err = e.post(doc, relayState)
	wantReason(t, err, ReasonMetadataExpired)
	_, err = e.p.StartLogin(t.Context(), tenant, LoginOptions{})
	wantReason(t, err, ReasonMetadataExpired)

	e = newEnv(t, func(c *Connection) { c.Metadata = "<broken" })
	e.track(requestID, relayState)
	_, err = e.post(doc, relayState)
	wantReason(t, err, ReasonMetadataUnavailable)
}

// TestStoreFailure: a store failure is never a rejection: the caller
// fails closed with an error that is not ErrRejected.
func TestStoreFailure(t *testing.T) {
	k := loadKeys(t)
	boom := errors.New("connection reset")
	for _, step := range []string{"connection", "request", "replay"} {
		t.Run(step, func(t *testing.T) {
			e := newEnv(t, nil)
			e.track(requestID, relayState)
			fs := &failingStores{memStores: e.st, step: step, err: boom}
			p, err := New(Config{BaseURL: baseURL, Key: k.sp.key, Certificate: k.sp.cert, Stores: Stores{Connections: fs, Requests: fs, Replay: fs}, Now: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.ParseResponse(t.Context(), tenant, base64.StdEncoding.EncodeToString(valid().build(k)), relayState, "")
			if !errors.Is(err, boom) || errors.Is(err, ErrRejected) {
				t.Errorf("error = %v; want the store failure, not a rejection", err)
			}
		})
	}
}

type failingStores struct {
	*memStores
	step string
	err  error
}

func (f *failingStores) Connection(ctx context.Context, tenant string) (Connection, error) {
	if f.step == "connection" {
		return Connection{}, f.err
	}
	return f.memStores.Connection(ctx, tenant)
}

func (f *failingStores) ConsumeRequest(ctx context.Context, tenant, id string, now time.Time) (Request, error) {
	if f.step == "request" {
		return Request{}, f.err
	}
	return f.memStores.ConsumeRequest(ctx, tenant, id, now)
}

func (f *failingStores) InsertID(ctx context.Context, tenant, id string, until, now time.Time) (bool, error) {
	if f.step == "replay" {
		return false, f.err
	}
	return f.memStores.InsertID(ctx, tenant, id, until, now)
}

func TestEncryptedCBC(t *testing.T) {
	k := loadKeys(t)
	allow := func(c *Connection) { c.AllowCBC = true }
	for _, cipher := range []xmlenc.BlockCipher{xmlenc.AES128CBC, xmlenc.AES192CBC, xmlenc.AES256CBC, xmlenc.TripleDES} {
		t.Run(cipher.Algorithm(), func(t *testing.T) {
			signed := spec{signAssertion: true, signResponse: true, encrypt: true, cipher: cipher}.build(k)
			// Refused by policy (SAML-46), even in a signed Response.
			e := newEnv(t, nil)
			e.track(requestID, relayState)
			_, err := e.post(signed, relayState)
			wantReason(t, err, ReasonWeakEncryption)
			// Allowed: unauthenticated CBC ciphertext is still not
			// decrypted (padding oracles)...
			e = newEnv(t, allow)
			e.track(requestID, relayState)
			_, err = e.post(spec{signAssertion: true, encrypt: true, cipher: cipher}.build(k), relayState)
			wantReason(t, err, ReasonDecryption)
			// ...but in a signed Response it is, except Triple DES,
			// which crewjam's xmlenc does not implement.
			e = newEnv(t, allow)
			e.track(requestID, relayState)
			res, err := e.post(signed, relayState)
			if cipher.Algorithm() == xmlenc.TripleDES.Algorithm() {
				wantReason(t, err, ReasonDecryption)
			} else if err != nil || res.Email != "alice@corp.example" {
				t.Errorf("CBC in a signed response with AllowCBC: %v, %+v", err, res)
			}
		})
	}

	// The plaintext of an allowed CBC assertion gets the checks too, once
	// crewjam has verified the Response's signature.
	e := newEnv(t, allow)
	e.track(requestID, relayState)
	commented := spec{signAssertion: true, signResponse: true, encrypt: true, cipher: xmlenc.AES256CBC,
		nameID: "alice@corp.example.attacker.test", editPlain: func(b []byte) []byte {
			return replaceOnce(b, ">alice@corp.example.attacker.test<", ">alice@corp.example<!---->.attacker.test<")
		}}.build(k)
	_, err := e.post(commented, relayState)
	wantReason(t, err, ReasonComment)

	// AllowCBC is part of the cached connection: changing it alone takes
	// effect on the next response.
	e = newEnv(t, nil)
	e.track(requestID, relayState)
	signed := spec{signAssertion: true, signResponse: true, encrypt: true, cipher: xmlenc.AES128CBC}.build(k)
	_, err = e.post(signed, relayState)
	wantReason(t, err, ReasonWeakEncryption)
	e.conn.AllowCBC = true
	if err := e.st.PutConnection(t.Context(), e.conn); err != nil {
		t.Fatal(err)
	}
	if _, err := e.post(signed, relayState); err != nil {
		t.Errorf("after AllowCBC was turned on: %v", err)
	}

	// AES-GCM needs no opt-in, with the Response signed or not.
	for _, s := range []spec{{signAssertion: true, encrypt: true}, {signResponse: true, encrypt: true, cipher: xmlenc.AES128GCM}} {
		e = newEnv(t, nil)
		e.track(requestID, relayState)
		if _, err := e.post(s.build(k), relayState); err != nil {
			t.Errorf("AES-GCM: %v", err)
		}
	}

	// Encrypted but signed by nobody: refused.
	e = newEnv(t, nil)
	e.track(requestID, relayState)
	_, err = e.post(spec{encrypt: true}.build(k), relayState)
	wantReason(t, err, ReasonUnsigned)
	// SAML-46: a key transport that fails (the ciphertext flipped, or
	// wrapped to another key) and content that fails its authentication
	// give the same reason and detail.
	flip := func(doc []byte, i int) []byte {
		root := parse(doc)
		cv := root.FindElements(".//CipherValue")[i]
		raw, _ := base64.StdEncoding.DecodeString(cv.Text())
		raw[len(raw)-1] ^= 1
		cv.SetText(base64.StdEncoding.EncodeToString(raw))
		return serialize(root)
	}
	good := spec{signAssertion: true, encrypt: true}.build(k)
	otherKey := func() []byte {
		other := k
		other.sp = k.attacker
		return spec{signAssertion: true, encrypt: true}.build(other)
	}()
	var first *RejectError
	for name, doc := range map[string][]byte{"key flipped": flip(good, 0), "data flipped": flip(good, 1), "other key": otherKey} {
		e = newEnv(t, nil)
		e.track(requestID, relayState)
		_, err = e.post(doc, relayState)
		wantReason(t, err, ReasonDecryption)
		var rej *RejectError
		if errors.As(err, &rej) && first != nil && rej.Detail != first.Detail {
			t.Errorf("%s: detail %q, another failure %q", name, rej.Detail, first.Detail)
		}
		if first == nil {
			first = rej
		}
	}
}

func TestCertificateValidity(t *testing.T) {
	k := loadKeys(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "idp.example.test"},
		NotBefore: time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.idp2.key.PublicKey, k.idp2.key)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := x509.ParseCertificate(der)
	signer := &keyPair{key: k.idp2.key, cert: expired}
	doc := spec{signAssertion: true, signer: signer}.build(k)
	meta := func(require bool) func(*Connection) {
		return func(c *Connection) {
			c.Metadata = idpMetadata(time.Time{}, expired)
			c.RequireValidCertificates = require
		}
	}
	e := newEnv(t, meta(false))
	e.track(requestID, relayState)
	if _, err := e.post(doc, relayState); err != nil {
		t.Errorf("expired metadata certificate (not required valid): %v", err)
	}
	e = newEnv(t, meta(true))
	e.track(requestID, relayState)
	_, err = e.post(doc, relayState)
	wantReason(t, err, ReasonCertificateExpired)
}

func TestAttributeMapping(t *testing.T) {
	k := loadKeys(t)
	for _, tc := range []struct {
		name   string
		edit   func(*Connection)
		s      spec
		want   Result // Email, Name, Groups, Roles compared
		reason Reason
	}{
		{name: "defaults", s: valid(), want: Result{Email: "alice@corp.example", Name: "Alice Example",
			Groups: []string{"Staff", "Admins", "Other"}, Roles: []string{"admin", "member"}}},
		{name: "default role", edit: func(c *Connection) { c.GroupRoles = nil; c.DefaultRole = "reports-only" }, s: valid(),
			want: Result{Email: "alice@corp.example", Name: "Alice Example", Groups: []string{"Staff", "Admins", "Other"}, Roles: []string{"reports-only"}}},
		{name: "configured names", edit: func(c *Connection) {
			c.EmailAttribute, c.NameAttribute, c.GroupsAttribute = "work-mail", "label", "teams"
			c.GroupRoles = map[string]string{"blue": "manager"}
		}, s: spec{signAssertion: true, attributes: []saml.Attribute{
			attr("work-mail", "", "  Bob@Corp.Example "), attr("label", "", "Bob B."), attr("teams", "", "red", "blue", "blue", ""),
			attr("mail", "", "wrong@corp.example"),
		}}, want: Result{Email: "bob@corp.example", Name: "Bob B.", Groups: []string{"red", "blue"}, Roles: []string{"manager"}}},
		{name: "friendly names", s: spec{signAssertion: true, attributes: []saml.Attribute{
			attr("urn:x:1", "mail", "carol@corp.example"), attr("urn:x:2", "givenName", "Carol"), attr("urn:x:3", "sn", "Jones"),
		}}, want: Result{Email: "carol@corp.example", Name: "Carol Jones"}},
		{name: "email from NameID", s: spec{signAssertion: true, attributes: []saml.Attribute{}},
			want: Result{Email: "alice@corp.example"}},
		{name: "opaque NameID is not an email", s: spec{signAssertion: true, attributes: []saml.Attribute{},
			nameIDFormat: string(saml.PersistentNameIDFormat), nameID: "a7f3e1"}, reason: ReasonEmailMissing},
		{name: "configured email attribute missing", edit: func(c *Connection) { c.EmailAttribute = "work-mail" }, s: valid(), reason: ReasonEmailMissing},
		{name: "email with display name", s: spec{signAssertion: true, attributes: []saml.Attribute{attr("mail", "", "Eve <eve@corp.example>")}}, reason: ReasonEmailInvalid},
		{name: "email with control character", s: spec{signAssertion: true, attributes: []saml.Attribute{attr("mail", "", "eve\u202e@corp.example")}}, reason: ReasonEmailInvalid},
		{name: "allowed domain", edit: func(c *Connection) { c.AllowedDomains = []string{"CORP.example"} }, s: valid(),
			want: Result{Email: "alice@corp.example", Name: "Alice Example", Groups: []string{"Staff", "Admins", "Other"}, Roles: []string{"admin", "member"}}},
		{name: "subdomain not allowed", edit: func(c *Connection) { c.AllowedDomains = []string{"example"} }, s: valid(), reason: ReasonEmailDomain},
		{name: "email attribute with two addresses", s: spec{signAssertion: true, attributes: []saml.Attribute{
			attr("mail", "", "alice@corp.example", "mallory@corp.example")}}, reason: ReasonEmailAmbiguous},
		{name: "email in two elements of one name", s: spec{signAssertion: true, attributes: []saml.Attribute{
			attr("mail", "", "alice@corp.example"), attr("mail", "", "mallory@corp.example")}}, reason: ReasonEmailAmbiguous},
		{name: "email repeated in one case and another", s: spec{signAssertion: true, attributes: []saml.Attribute{
			attr("mail", "", "", "Alice@Corp.Example"), attr("mail", "", "alice@corp.example ")}},
			want: Result{Email: "alice@corp.example"}},
		{name: "second email value invalid", s: spec{signAssertion: true, attributes: []saml.Attribute{
			attr("mail", "", "alice@corp.example", "Eve <eve@corp.example>")}}, reason: ReasonEmailInvalid},
		{name: "groups split over two elements", edit: func(c *Connection) {
			c.GroupsAttribute = "teams"
			c.GroupRoles = map[string]string{"blue": "manager"}
		}, s: spec{signAssertion: true, attributes: []saml.Attribute{
			attr("mail", "", "bob@corp.example"), attr("teams", "", "red"), attr("teams", "", "blue", "red"),
		}}, want: Result{Email: "bob@corp.example", Groups: []string{"red", "blue"}, Roles: []string{"manager"}}},
		{name: "email attribute by friendly name in two elements", s: spec{signAssertion: true, attributes: []saml.Attribute{
			attr("urn:x:1", "mail", "carol@corp.example"), attr("urn:x:2", "mail", "trent@corp.example")}}, reason: ReasonEmailAmbiguous},
		{name: "bad display name dropped", s: spec{signAssertion: true, attributes: []saml.Attribute{
			attr("mail", "", "dan@corp.example"), attr("displayName", "", "Dan\u202eevil")}},
			want: Result{Email: "dan@corp.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.edit)
			e.track(requestID, relayState)
			res, err := e.post(tc.s.build(k), relayState)
			if tc.reason != "" {
				wantReason(t, err, tc.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Email != tc.want.Email || res.Name != tc.want.Name || !slices.Equal(res.Groups, tc.want.Groups) || !slices.Equal(res.Roles, tc.want.Roles) {
				t.Errorf("got email %q name %q groups %q roles %q; want %q %q %q %q", res.Email, res.Name, res.Groups, res.Roles,
					tc.want.Email, tc.want.Name, tc.want.Groups, tc.want.Roles)
			}
		})
	}
}

func TestResultFields(t *testing.T) {
	k := loadKeys(t)
	e := newEnv(t, func(c *Connection) { c.JIT, c.SyncRoles = true, true })
	e.track(requestID, relayState)
	res, err := e.post(valid().build(k), relayState)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Tenant: tenant, IdPEntityID: idpEntityID, NameID: "alice@corp.example", NameIDFormat: string(saml.EmailAddressNameIDFormat),
		SessionIndex: "session-index-0001", AuthnContext: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
		AssertionID: "id-assertion-0001", JIT: true, SyncRoles: true, RequestID: requestID, ReturnTo: "/reports"}
	got := *res
	got.Email, got.Name, got.Groups, got.Roles, got.AuthnInstant = "", "", nil, nil, time.Time{}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("result\n got %+v\nwant %+v", got, want)
	}
	if !res.AuthnInstant.Equal(t0.Add(-time.Minute)) {
		t.Errorf("AuthnInstant = %v", res.AuthnInstant)
	}
}

// TestConcurrentDelivery posts one response from 50 goroutines: exactly
// one login succeeds, whether the request or the replay cache stops the
// others.
func TestConcurrentDelivery(t *testing.T) {
	k := loadKeys(t)
	for _, mode := range []string{"sp-initiated", "idp-initiated"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, func(c *Connection) { c.IdPInitiated = mode == "idp-initiated" })
			s := valid()
			if mode == "idp-initiated" {
				s.noInResponseTo = true
			} else {
				e.track(requestID, relayState)
			}
			doc := s.build(k)
			const n = 50
			var mu sync.Mutex
			var ok int
			reasons := map[Reason]int{}
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := e.post(doc, relayState)
					mu.Lock()
					defer mu.Unlock()
					var rej *RejectError
					switch {
					case err == nil:
						ok++
					case errors.As(err, &rej):
						reasons[rej.Reason]++
					default:
						t.Errorf("unexpected error: %v", err)
					}
				}()
			}
			wg.Wait()
			if ok != 1 {
				t.Errorf("%d deliveries accepted, want 1 (rejections %v)", ok, reasons)
			}
			for r := range reasons {
				if r != ReasonRequestUnknown && r != ReasonReplayed {
					t.Errorf("unexpected reason %q", r)
				}
			}
		})
	}
}

// TestConcurrentConnectionChanges hammers the parsed-connection cache:
// logins for many tenants (more than the cache holds) while their
// connections are replaced between trusting the IdP's key and trusting
// only another one. Each login is either accepted or refused for its
// signature (never another error, a panic or a race), and once the
// connections settle every login is judged by the settled one.
func TestConcurrentConnectionChanges(t *testing.T) {
	k := loadKeys(t)
	st := newMemStores()
	clk := &clock{now: t0.Add(2 * time.Second)}
	p, err := New(Config{BaseURL: baseURL, Key: k.sp.key, Certificate: k.sp.cert, Stores: st.stores(), Now: clk.Now, MaxCachedTenants: 2})
	if err != nil {
		t.Fatal(err)
	}
	tenants := []string{"t0", "t1", "t2", "t3", "t4"}
	for _, tn := range tenants {
		if err := st.PutConnection(t.Context(), Connection{Tenant: tn, Metadata: idpMetadata(time.Time{}, k.idp.cert)}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// Flip each tenant between trusting idp and trusting only idp2.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			cert := k.idp.cert
			if i%2 == 1 {
				cert = k.idp2.cert
			}
			_ = st.PutConnection(t.Context(), Connection{Tenant: tenants[i%len(tenants)], Metadata: idpMetadata(time.Time{}, cert)})
		}
	}()
	var mu sync.Mutex
	accepted := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				tn := tenants[(g+i)%len(tenants)]
				id := fmt.Sprintf("id-req-%d-%d", g, i)
				_ = st.RememberRequest(t.Context(), Request{Tenant: tn, ID: id, Kind: KindLogin, RelayState: "r", ReturnTo: "/", Expires: t0.Add(time.Hour)})
				s := spec{signAssertion: true, inResponseTo: id, assertionID: "a-" + id, destination: baseURL + "/saml/" + tn + "/acs",
					recipient: baseURL + "/saml/" + tn + "/acs", audiences: []string{baseURL + "/saml/" + tn + "/metadata"}}
				_, err := p.ParseResponse(t.Context(), tn, base64.StdEncoding.EncodeToString(s.build(k)), "r", "")
				var rej *RejectError
				switch {
				case err == nil:
					mu.Lock()
					accepted++
					mu.Unlock()
				case errors.As(err, &rej) && (rej.Reason == ReasonUntrustedCert || rej.Reason == ReasonSignature):
				default:
					t.Errorf("%s: %v", tn, err)
				}
			}
		}()
	}
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d of 160 logins accepted while connections changed", accepted)
	// With every connection settled on idp, every login succeeds.
	for _, tn := range tenants {
		_ = st.PutConnection(t.Context(), Connection{Tenant: tn, Metadata: idpMetadata(time.Time{}, k.idp.cert)})
		id := "id-final-" + tn
		_ = st.RememberRequest(t.Context(), Request{Tenant: tn, ID: id, Kind: KindLogin, RelayState: "r", ReturnTo: "/", Expires: t0.Add(time.Hour)})
		s := spec{signAssertion: true, inResponseTo: id, assertionID: "a-" + id, destination: baseURL + "/saml/" + tn + "/acs",
			recipient: baseURL + "/saml/" + tn + "/acs", audiences: []string{baseURL + "/saml/" + tn + "/metadata"}}
		if _, err := p.ParseResponse(t.Context(), tn, base64.StdEncoding.EncodeToString(s.build(k)), "r", ""); err != nil {
			t.Errorf("%s after settling: %v", tn, err)
		}
	}
}
