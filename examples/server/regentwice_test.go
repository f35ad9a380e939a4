package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// A double click on "Generate new recovery codes" sends the form twice,
// and the browser shows the second answer. Of two regenerations at once,
// Guard stores one set and refuses the other (ErrConflict): when the
// answer shown is the refused one, the set stored was shown only in the
// answer the browser dropped. These tests make that race happen, on
// purpose, with a recovery store that lets a test overtake a swap of the
// user's set.

// overtakenRecovery is a console's MFA recovery store whose next swaps of
// a user's set (SwapRecoveryCodes, as RegenerateRecoveryCodes stores a
// new set) each first run a function of the test's: another
// regeneration, say, which stores its set in between, so that the real
// store finds the set changed and refuses the swap (mfa.ErrConflict).
type overtakenRecovery struct {
	mfa.RecoveryStore
	mu     sync.Mutex
	before []func() // one per swap to come, in order
}

// overtake runs each of fs before a swap of its own, the next len(fs).
func (s *overtakenRecovery) overtake(fs ...func()) {
	s.mu.Lock()
	s.before = append(s.before, fs...)
	s.mu.Unlock()
}

func (s *overtakenRecovery) SwapRecoveryCodes(ctx context.Context, tenant, userID string, old, hashes []mfa.Hash) error {
	s.mu.Lock()
	var f func()
	if len(s.before) > 0 {
		f, s.before = s.before[0], s.before[1:]
	}
	s.mu.Unlock()
	if f != nil {
		f()
	}
	return s.RecoveryStore.SwapRecoveryCodes(ctx, tenant, userID, old, hashes)
}

// newOvertakenClient is newClient on a console whose recovery store is
// an overtakenRecovery, which it returns.
func newOvertakenClient(t *testing.T) (*client, *overtakenRecovery) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	clock := &testClock{}
	rec := &overtakenRecovery{}
	o := testOptions(t, srv.URL, clock, "")
	o.wrapStores = func(s guard.Stores) guard.Stores {
		rec.RecoveryStore, s.MFA.Recovery = s.MFA.Recovery, rec
		return s
	}
	con := newTestConsoleWith(t, o, nil)
	srv.Config.Handler = con.app.routes()
	c := newClientOf(t, srv, con)
	c.clock = clock
	return c, rec
}

// regenUser signs a new demo tenant user in on c's console, with an
// authenticator app confirmed (and so a first set of recovery codes),
// and returns their client and user ID.
func regenUser(t *testing.T, c *client, email, pw string) (*client, string) {
	t.Helper()
	u := confirmTwiceUser(t, c, email, pw)
	if resp := u.signIn(email, pw); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	_, form := beginApp(t, u, "/account/mfa/totp", url.Values{})
	if resp, page := u.post("/account/mfa/confirm", form); resp.StatusCode != http.StatusOK || len(recoveryCodes(page)) != mfa.DefaultRecoveryCodes {
		t.Fatalf("confirming the app: %d", resp.StatusCode)
	}
	return u, whoID(t, u)
}

// regenEvents returns the outcomes (with their reasons) of the
// mfa.recovery_regenerated events of user, oldest first.
func regenEvents(t *testing.T, con *console, user string) []string {
	t.Helper()
	es := auditEvents(t, con, audit.RecoveryReset)
	slices.SortFunc(es, func(a, b audit.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	var out []string
	for _, e := range es {
		if e.Target == user {
			out = append(out, strings.TrimSuffix(string(e.Outcome)+" "+e.Reason, " "))
		}
	}
	return out
}

// recoverySignIn signs email in on a browser of its own with the
// password and recovery code, and returns the second step's status
// (303: signed in).
func recoverySignIn(t *testing.T, c *client, email, pw, code string) int {
	t.Helper()
	b := newClientOf(t, c.srv, c.con)
	b.clock = c.clock
	if resp := b.signIn(email, pw); resp.Header.Get("Location") != "/login/mfa" {
		t.Fatalf("sign-in went to %q, want /login/mfa", resp.Header.Get("Location"))
	}
	resp, _ := b.post("/login/mfa", url.Values{"method": {"recovery"}, "code": {code}})
	return resp.StatusCode
}

// "Generate new recovery codes" clicked twice: the answer the browser
// shows is the request whose swap the other one overtook. It shows a new
// set all the same (the console asks Guard once more), and that set is
// the one that works: the other answer's set, never seen, does not. The
// audit log holds both regenerations, the refused one (conflict) and the
// retry that stored the set shown.
func TestRecoveryRegeneratedTwice(t *testing.T) {
	c, rec := newOvertakenClient(t)
	const email, pw = "sam@demo.example", "plum tree on the hill 42"
	u, id := regenUser(t, c, email, pw)
	_, page := u.get("/account")
	regen, ok := formFields(page, "/account/recovery")
	if !ok {
		t.Fatal("no form for new recovery codes on the account page")
	}
	before := len(regenEvents(t, c.con, id))

	// The second click's request reads the set, then waits at its swap
	// while the first click's stores a set: the browser dropped that
	// answer, and shows the second's.
	dropped := twinOf(t, u)
	paused, resume := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(resume) })
	t.Cleanup(release) // before srv.Close, which waits for the paused request
	rec.overtake(func() { close(paused); <-resume })
	type answer struct {
		resp *http.Response
		page string
	}
	shown := make(chan answer, 1)
	go func() {
		resp, page := u.post("/account/recovery", regen)
		shown <- answer{resp, page}
	}()
	select {
	case <-paused:
	case <-time.After(30 * time.Second):
		t.Fatal("the second click's regeneration never reached its swap")
	}
	resp, page := dropped.post("/account/recovery", regen)
	release()
	unseen := recoveryCodes(page)
	if resp.StatusCode != http.StatusOK || len(unseen) != mfa.DefaultRecoveryCodes {
		t.Fatalf("the first click: %d with %d recovery codes", resp.StatusCode, len(unseen))
	}
	var a answer
	select {
	case a = <-shown:
	case <-time.After(30 * time.Second):
		t.Fatal("no answer to the second click")
	}
	if a.resp.StatusCode == http.StatusSeeOther {
		_, a.page = u.get(a.resp.Header.Get("Location"))
	}
	codes := recoveryCodes(a.page)
	if a.resp.StatusCode != http.StatusOK || len(codes) != mfa.DefaultRecoveryCodes {
		t.Fatalf("the answer shown: %d (to %q) with %d recovery codes, want 200 with new codes:\n%.3000s",
			a.resp.StatusCode, a.resp.Header.Get("Location"), len(codes), between(a.page, "<main", "</main>"))
	}
	if slices.Contains(codes, unseen[0]) {
		t.Fatal("the answer shown holds a code of the dropped answer")
	}

	if got := recoverySignIn(t, c, email, pw, unseen[0]); got != http.StatusBadRequest {
		t.Errorf("a code of the dropped answer at sign-in: %d, want 400 (that set was replaced)", got)
	}
	if got := recoverySignIn(t, c, email, pw, codes[0]); got != http.StatusSeeOther {
		t.Errorf("a code of the answer shown at sign-in: %d, want 303 (signed in)", got)
	}

	// The second click's regeneration (success on record before its
	// swap, then the conflict), the first click's in between, and the
	// retry.
	got := regenEvents(t, c.con, id)[before:]
	want := []string{"success", "success", "failure conflict", "success"}
	if !slices.Equal(got, want) {
		t.Errorf("mfa.recovery_regenerated events %q, want %q", got, want)
	}
}

// Overtaken twice (three clicks): the console asks Guard once more, not
// again and again; the second refusal is the usual "someone changed
// this" on the account page, and no code is shown.
func TestRecoveryRegeneratedOvertakenTwice(t *testing.T) {
	c, rec := newOvertakenClient(t)
	const email, pw = "sam@demo.example", "plum tree on the hill 42"
	u, id := regenUser(t, c, email, pw)
	before := len(regenEvents(t, c.con, id))
	// Another set stored straight in the store, before each swap.
	other := func() {
		hashes := make([]mfa.Hash, mfa.DefaultRecoveryCodes)
		for i := range hashes {
			rand.Read(hashes[i][:])
		}
		if err := rec.RecoveryStore.ReplaceRecoveryCodes(context.Background(), demoTenant, id, hashes); err != nil {
			t.Error(err)
		}
	}
	rec.overtake(other, other, other)
	resp, page := u.post("/account/recovery", url.Values{})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" || len(recoveryCodes(page)) != 0 {
		t.Fatalf("overtaken twice: %d to %q, want 303 to /account", resp.StatusCode, resp.Header.Get("Location"))
	}
	if msg := flashAfter(u, resp); !strings.Contains(msg, "Someone changed this") {
		t.Errorf("overtaken twice: flash %q", msg)
	}
	rec.mu.Lock()
	left := len(rec.before)
	rec.mu.Unlock()
	if left != 1 {
		t.Errorf("%d swaps tried, want 2 (one retry)", 3-left)
	}
	got := regenEvents(t, c.con, id)[before:]
	want := []string{"success", "failure conflict", "success", "failure conflict"}
	if !slices.Equal(got, want) {
		t.Errorf("mfa.recovery_regenerated events %q, want %q", got, want)
	}
}
