package main

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// headerCount is a ResponseRecorder that counts the handler's calls of
// WriteHeader: net/http logs "superfluous response.WriteHeader call" for
// every one after the first, and the answer is then the first one's,
// with whatever the later ones wrote added to its body.
type headerCount struct {
	*httptest.ResponseRecorder
	n int
}

func (h *headerCount) WriteHeader(code int) {
	h.n++
	h.ResponseRecorder.WriteHeader(code)
}

// A form that cannot be read (a malformed escape) on the pages that
// check a cookie first (sending a sign-in code, confirming an email
// change) is answered once, as TestUnreadableFormAnsweredOnce wants of
// the others: 400 "The form could not be read.", one page.
func TestUnreadableCookieFormAnsweredOnce(t *testing.T) {
	c, _ := newClient(t)
	h := c.con.app.routes()
	state := base64.RawURLEncoding.EncodeToString([]byte(`{"t":"pending","tn":"` + demoTenant + `"}`))
	link := base64.RawURLEncoding.EncodeToString([]byte(url.Values{"tenant": {demoTenant}, "user": {"u"}, "email": {"new@demo.example"},
		"token": {"t"}}.Encode()))
	for path, cookie := range map[string]string{"/login/mfa/send": pendingCookie + "=" + state, "/email/confirm": emailCookie + "=" + link} {
		r := httptest.NewRequest(http.MethodPost, c.srv.URL+path, strings.NewReader("factor=%zz"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set("Cookie", cookie)
		w := &headerCount{ResponseRecorder: httptest.NewRecorder()}
		h.ServeHTTP(w, r)
		body := w.Body.String()
		if w.n != 1 || w.Code != http.StatusBadRequest || !strings.Contains(body, "The form could not be read.") || strings.Count(body, "</html>") != 1 {
			t.Errorf("%s with an unreadable form: WriteHeader called %d times, %d, %d pages\n%s",
				path, w.n, w.Code, strings.Count(body, "</html>"), body)
		}
	}
}
