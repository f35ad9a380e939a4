package main

import (
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"log"
	"net/http"

	guard "github.com/guardhq/guard"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

type app struct {
	g *guard.Guard
}

// maxBody bounds every request body (forms are tiny).
const maxBody = 64 << 10

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.loginForm)
	mux.HandleFunc("POST /login", a.login)
	mux.Handle("POST /logout", guard.RequireSession(http.HandlerFunc(a.logout)))
	mux.Handle("GET /api/whoami", guard.RequireSession(http.HandlerFunc(a.whoami)))

	var h http.Handler = mux
	h = a.g.Middleware(h)
	h = http.NewCrossOriginProtection().Handler(h)
	return securityHeaders(http.MaxBytesHandler(h, maxBody))
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		h.Set("Strict-Transport-Security", "max-age=31536000")
		next.ServeHTTP(w, r)
	})
}

type pageData struct {
	Title  string
	Error  string
	Tenant string
	Email  string
	User   *guard.User
	Sess   string
}

func (a *app) render(w http.ResponseWriter, status int, name string, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		log.Printf("render %s: %v", name, err)
	}
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	p, ok := guard.PrincipalFrom(r.Context())
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	u, err := a.g.User(r.Context(), p, p.Tenant, p.UserID)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.render(w, http.StatusOK, "home.html", pageData{Title: "Signed in", User: &u, Tenant: p.Tenant, Sess: p.SessionID()})
}

func (a *app) loginForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, http.StatusOK, "login.html", pageData{Title: "Sign in", Tenant: demoTenant})
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "Bad request", http.StatusBadRequest)
		return
	}
	tenant, email := r.PostForm.Get("tenant"), r.PostForm.Get("email")
	res, err := a.g.Login(r.Context(), guard.LoginRequest{
		Tenant: tenant, Email: email, Password: r.PostForm.Get("password"),
		IP: a.g.ClientIP(r), UserAgent: r.UserAgent(),
	})
	if err != nil {
		status, msg := http.StatusUnauthorized, "Incorrect email or password."
		switch {
		case errors.Is(err, guard.ErrUnavailable):
			status, msg = http.StatusServiceUnavailable, "Sign-in is unavailable right now. Please try again shortly."
		case errors.Is(err, guard.ErrSessionLimit):
			status, msg = http.StatusConflict, "You are already signed in elsewhere."
		case !errors.Is(err, guard.ErrInvalidCredentials):
			status, msg = http.StatusBadRequest, "Please check the form: "+publicInputError(err)
		}
		a.render(w, status, "login.html", pageData{Title: "Sign in", Error: msg, Tenant: tenant, Email: email})
		return
	}
	a.g.SetSessionCookie(w, res.Token, res.Session)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// publicInputError is the part of a bad-input error safe to show: the
// errors name the field and rule, never the value.
func publicInputError(err error) string {
	return err.Error()
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	p, _ := guard.PrincipalFrom(r.Context())
	if err := a.g.Logout(r.Context(), p); err != nil && !errors.Is(err, guard.ErrUnauthenticated) {
		a.fail(w, err)
		return
	}
	a.g.ClearSessionCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

type whoami struct {
	Tenant    string `json:"tenant"`
	UserID    string `json:"user_id"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	SessionID string `json:"session_id"`
}

func (a *app) whoami(w http.ResponseWriter, r *http.Request) {
	p, _ := guard.PrincipalFrom(r.Context())
	u, err := a.g.User(r.Context(), p, p.Tenant, p.UserID)
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(whoami{Tenant: p.Tenant, UserID: u.ID, Email: u.Email, Name: u.Name, SessionID: p.SessionID()})
}

// fail answers an internal failure with a generic message: no internals
// reach the client.
func (a *app) fail(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, guard.ErrUnavailable) {
		status = http.StatusServiceUnavailable
	}
	log.Printf("request failed: %v", err)
	http.Error(w, http.StatusText(status), status)
}
