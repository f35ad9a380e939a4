package guard_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// Severity: high (REVIEW-D-3). Confirmations of a user's first factors
// running at once (an authenticator app, an email address and a phone in
// three tabs) each read that the user had no recovery codes before any of
// them stored a set, so each made a set, stored it over the others' and
// returned it: the user was shown three sets and only the one stored last
// worked. Whoever saved another was locked out on losing the device. Every
// set a confirmation returns must work; the others return none.
func TestRecoveryCodeSetsOfFirstFactorsAtOnceAllWork(t *testing.T) {
	for round := 0; round < 25; round++ {
		f := newMFAFixture(t, func(c *guard.Config) { c.Stores.MFA.Recovery = slowReads{c.Stores.MFA.Recovery} })
		f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		en, err := f.g.BeginTOTP(f.ctx, p, "Phone")
		if err != nil {
			t.Fatal(err)
		}
		const addr = "ada.codes@example.test"
		mail, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, addr, "")
		if err != nil {
			t.Fatal(err)
		}
		mailCode := f.out.lastCodeTo(t, addr)
		sms, err := f.g.BeginOOB(f.ctx, p, mfa.KindSMS, "+447700900123", "")
		if err != nil {
			t.Fatal(err)
		}
		smsCode := f.out.lastSMSCode(t)
		confirms := []struct{ id, code string }{{en.Factor.ID, f.code(t, en.Secret)}, {mail.ID, mailCode}, {sms.ID, smsCode}}
		sets := make([][]string, len(confirms))
		var start, done sync.WaitGroup
		start.Add(1)
		for i, c := range confirms {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				var err error
				if sets[i], err = f.g.ConfirmFactor(f.ctx, p, c.id, c.code); err != nil {
					t.Errorf("round %d: ConfirmFactor %d: %v", round, i, err)
				}
			}()
		}
		start.Done()
		done.Wait()
		if t.Failed() {
			t.FailNow()
		}
		wantEverySetWorks(t, f, round, sets)
	}
}

// pendingTOTP signs Ada in with her password, into an enrolment (the
// tenant requires MFA and she has no factor), and begins an authenticator
// app in it.
func (f *mfaFixture) pendingTOTP(t *testing.T) (*guard.Pending, mfa.TOTPEnrolment) {
	t.Helper()
	pend := f.pending(t, adaEmail, ownerPW)
	if !pend.Enrol {
		t.Fatalf("pending sign-in %+v, want an enrolment", pend)
	}
	en, err := f.g.BeginPendingTOTP(f.ctx, pend.Token, "203.0.113.5", "test", "Phone")
	if err != nil {
		t.Fatal(err)
	}
	return pend, en
}

// wantEverySetWorks checks the sets of recovery codes that calls for Ada
// running at once returned: at least one returned, and
// every code of each that was returned signs Ada in (the codes of a set
// stored over by another are refused).
func wantEverySetWorks(t *testing.T, f *mfaFixture, round int, sets [][]string) {
	t.Helper()
	returned := 0
	for _, set := range sets {
		if len(set) > 0 {
			returned++
		}
	}
	if returned == 0 {
		t.Fatalf("round %d: no call returned recovery codes: the user was shown none", round)
	}
	for i, set := range sets {
		for _, c := range set {
			if _, err := f.complete(guard.MethodRecovery, f.pending(t, adaEmail, ownerPW).Token, c); err != nil {
				t.Fatalf("round %d: a recovery code of the set call %d returned (%d sets returned): %v", round, i, returned, err)
			}
		}
	}
}

// slowReads is an mfa.RecoveryStore whose count of codes left takes a
// millisecond, as over a network: a window for other calls to come in
// between the read and what is done with it.
type slowReads struct{ mfa.RecoveryStore }

func (s slowReads) RecoveryCodesLeft(ctx context.Context, tenant, userID string) (int, error) {
	n, err := s.RecoveryStore.RecoveryCodesLeft(ctx, tenant, userID)
	time.Sleep(time.Millisecond)
	return n, err
}

// The same with a pending enrolment at sign-in (an authenticator app,
// CompletePendingEnrolment, once the tenant requires MFA) and an email
// factor confirmed on the account page at once: the set that comes back
// with the new session, and the one ConfirmFactor returns, each work if
// returned.
func TestRecoveryCodeSetsOfPendingAndAccountEnrolmentsAtOnceAllWork(t *testing.T) {
	for round := 0; round < 25; round++ {
		f := newMFAFixture(t, func(c *guard.Config) { c.Stores.MFA.Recovery = slowReads{c.Stores.MFA.Recovery} })
		f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		const addr = "ada.codes@example.test"
		mail, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, addr, "")
		if err != nil {
			t.Fatal(err)
		}
		mailCode := f.out.lastCodeTo(t, addr)
		f.requireMFA(t, 0)
		pend, en := f.pendingTOTP(t)
		appCode := f.code(t, en.Secret)
		sets := make([][]string, 2)
		var start, done sync.WaitGroup
		start.Add(1)
		done.Add(2)
		go func() {
			defer done.Done()
			start.Wait()
			// It may end as expired (the email factor confirmed first ends
			// the pending enrolment); its codes are shown with any error.
			res, _ := f.g.CompletePendingEnrolment(f.ctx, guard.SecondFactor{Pending: pend.Token, FactorID: en.Factor.ID, Code: appCode, IP: "203.0.113.5", UserAgent: "test"})
			sets[0] = res.RecoveryCodes
		}()
		go func() {
			defer done.Done()
			start.Wait()
			var err error
			if sets[1], err = f.g.ConfirmFactor(f.ctx, p, mail.ID, mailCode); err != nil {
				t.Errorf("round %d: ConfirmFactor: %v", round, err)
			}
		}()
		start.Done()
		done.Wait()
		if t.Failed() {
			t.FailNow()
		}
		wantEverySetWorks(t, f, round, sets)
	}
}

// Two or more RegenerateRecoveryCodes of one user at once (two tabs of
// the account page) each stored a set over the others' and returned it:
// the user was shown several sets, each "replacing the old ones", and
// only the one stored last worked. Staged: each call's first use of the
// recovery store (a read of the user's set, or the store of its own) goes
// on only once every call has come that far, so that none stores before
// another has looked. Every set returned must work; the other calls are
// refused (ErrConflict) and return none.
func TestRecoveryCodeSetsRegeneratedAtOnceAllWork(t *testing.T) {
	const calls = 3
	for round := 0; round < 5; round++ {
		br := &barrierRecovery{n: calls, all: make(chan struct{})}
		f := newMFAFixture(t, func(c *guard.Config) {
			br.RecoveryStore = c.Stores.MFA.Recovery
			c.Stores.MFA.Recovery = br
		})
		p, _, _ := f.adaWithApp(t)
		before := len(f.events(t, audit.RecoveryReset)) // the app's first set
		br.on.Store(true)
		sets := make([][]string, calls)
		var done sync.WaitGroup
		for i := range sets {
			done.Add(1)
			go func() {
				defer done.Done()
				var err error
				sets[i], err = f.g.RegenerateRecoveryCodes(f.ctx, p)
				if err != nil && (!errors.Is(err, guard.ErrConflict) || len(sets[i]) != 0) {
					t.Errorf("round %d: RegenerateRecoveryCodes %d = %d codes, %v; want a set, or none and ErrConflict", round, i, len(sets[i]), err)
				}
			}()
		}
		done.Wait()
		if t.Failed() {
			t.FailNow()
		}
		wantEverySetWorks(t, f, round, sets)
		// Each call is on record before its set is stored; one refused
		// as another's set came first says so, so that the log does not
		// show a regeneration done that was not.
		stored := 0
		for i := range sets {
			if len(sets[i]) > 0 {
				stored++
			}
		}
		var ok, failed int
		for _, e := range f.events(t, audit.RecoveryReset)[before:] {
			switch {
			case e.Outcome == audit.Success:
				ok++
			case e.Reason == "conflict":
				failed++
			}
		}
		if conflicts := calls - stored; ok != calls || failed != conflicts {
			t.Errorf("round %d: %d sets stored, %d refused; recorded %d successes and %d failures (conflict), want %d and %d",
				round, stored, conflicts, ok, failed, calls, conflicts)
		}
	}
}

// barrierRecovery holds, once on is set, every read of a set of recovery
// codes (having read) and every set stored (before it is stored) until n
// of them have come; then all go on, and the later ones are not held.
type barrierRecovery struct {
	mfa.RecoveryStore
	n    int
	on   atomic.Bool
	mu   sync.Mutex
	seen int
	all  chan struct{}
}

func (b *barrierRecovery) wait() {
	if !b.on.Load() {
		return
	}
	b.mu.Lock()
	if b.seen++; b.seen == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	<-b.all
}

func (b *barrierRecovery) RecoveryCodes(ctx context.Context, tenant, userID string) ([]mfa.Hash, error) {
	hs, err := b.RecoveryStore.RecoveryCodes(ctx, tenant, userID)
	b.wait()
	return hs, err
}

func (b *barrierRecovery) ReplaceRecoveryCodes(ctx context.Context, tenant, userID string, hashes []mfa.Hash) error {
	b.wait()
	return b.RecoveryStore.ReplaceRecoveryCodes(ctx, tenant, userID, hashes)
}
