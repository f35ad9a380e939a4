package mfa_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/memstore"
)

// faultyFactors fails CreateFactor while fail is set.
type faultyFactors struct {
	mfa.FactorStore
	fail atomic.Bool
}

func (s *faultyFactors) CreateFactor(ctx context.Context, f mfa.Factor, max int) error {
	if s.fail.Load() {
		return errors.New("factor store down")
	}
	return s.FactorStore.CreateFactor(ctx, f, max)
}

// faultyCodes fails PutCode while fail is set, and remembers the
// transaction of the last code it was asked to store.
type faultyCodes struct {
	mfa.CodeStore
	fail atomic.Bool
	mu   sync.Mutex
	last string
}

func (s *faultyCodes) PutCode(ctx context.Context, c mfa.Code) error {
	s.mu.Lock()
	s.last = c.Txn
	s.mu.Unlock()
	if s.fail.Load() {
		return errors.New("code store down")
	}
	return s.CodeStore.PutCode(ctx, c)
}

// A BeginOOB that fails, whether the provider (a *SendError) or a store
// (storing the code, or the pending factor once the code went out),
// changes nothing: the pending factor of the kind begun before it, and
// the code sent for that one, still confirm it; the failed one is not
// stored, and a code it sent does not stay behind.
func TestBeginOOBFailureKeepsEarlierPending(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kind  mfa.Kind
		dests [2]string
		fault func(f *fixture, fs *faultyFactors, cs *faultyCodes) func()
	}{
		{"EmailSendError", mfa.KindEmail, [2]string{"ada@example.com", "ada.typo@example.com"},
			func(f *fixture, _ *faultyFactors, _ *faultyCodes) func() {
				f.email.fail = errors.New("mail provider down")
				return func() { f.email.fail = nil }
			}},
		{"SMSSendError", mfa.KindSMS, [2]string{"+447700900123", "+447700900124"},
			func(f *fixture, _ *faultyFactors, _ *faultyCodes) func() {
				f.sms.fail = errors.New("gateway down")
				return func() { f.sms.fail = nil }
			}},
		{"PutCodeFails", mfa.KindEmail, [2]string{"ada@example.com", "ada.typo@example.com"},
			func(_ *fixture, _ *faultyFactors, cs *faultyCodes) func() {
				cs.fail.Store(true)
				return func() { cs.fail.Store(false) }
			}},
		{"CreateFactorFails", mfa.KindSMS, [2]string{"+447700900123", "+447700900124"},
			func(_ *fixture, fs *faultyFactors, _ *faultyCodes) func() {
				fs.fail.Store(true)
				return func() { fs.fail.Store(false) }
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			mem := memstore.NewMFA()
			fs := &faultyFactors{FactorStore: mem}
			cs := &faultyCodes{CodeStore: mem}
			f := newFixture(t, func(c *mfa.Config) {
				c.Stores = mem.Stores()
				c.Stores.Factors, c.Stores.Codes = fs, cs
			})
			s := f.email
			if tc.kind == mfa.KindSMS {
				s = f.sms
			}
			first, res, err := f.m.BeginOOB(ctx, mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: tc.kind, Destination: tc.dests[0]})
			if err != nil || !res.Sent {
				t.Fatalf("first BeginOOB = %+v, %v", res, err)
			}
			code := s.lastCode(t)

			cs.mu.Lock()
			cs.last = ""
			cs.mu.Unlock()
			restore := tc.fault(f, fs, cs)
			_, _, err = f.m.BeginOOB(ctx, mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: tc.kind, Destination: tc.dests[1]})
			restore()
			if err == nil {
				t.Fatal("second BeginOOB with a fault = nil error, want the failure")
			}
			cs.mu.Lock()
			failedTxn := cs.last
			cs.mu.Unlock()

			got, err := f.m.Factors(ctx, "t", "u")
			if err != nil || len(got) != 1 || got[0].ID != first.ID {
				t.Errorf("factors after the failed begin = %+v, %v; want only the first pending one", got, err)
			}
			// No code of the failed enrolment is left (a zero hash finds one
			// as a wrong try, none as ErrNotFound).
			if _, err := mem.CheckCode(ctx, "t", failedTxn, mfa.Hash{}, t0); failedTxn != "" && !errors.Is(err, mfa.ErrNotFound) {
				t.Errorf("code of the failed enrolment: %v, want ErrNotFound (none stored)", err)
			}
			if c, err := f.m.ConfirmOOB(ctx, "t", "u", first.ID, code); err != nil || !c.Confirmed() {
				t.Errorf("ConfirmOOB of the earlier pending factor with its code = %+v, %v; want it confirmed", c, err)
			}
		})
	}
}

// The send happens before the pending factor is stored, so MaxFactors is
// checked first too: a user who has no room for another factor gets
// ErrLimit and no code is sent.
func TestBeginOOBAtMaxFactorsSendsNothing(t *testing.T) {
	f := newFixture(t, func(c *mfa.Config) { c.MaxFactors = 1 })
	f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	sms, mail := f.sms.count(), f.email.count()
	_, res, err := f.m.BeginOOB(t.Context(), mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindEmail, Destination: "ada@example.com"})
	wantErr(t, "BeginOOB beyond MaxFactors", err, mfa.ErrLimit)
	if res.Sent || f.sms.count() != sms || f.email.count() != mail {
		t.Errorf("BeginOOB beyond MaxFactors: %+v, %d sent; want nothing sent", res, f.sms.count()+f.email.count()-sms-mail)
	}
}

// Enrolments of one kind begun at once, some failing to send, leave at
// most one pending factor of the kind, and when one is left, the code
// sent for it confirms it (run with -race).
func TestBeginOOBConcurrentOnePending(t *testing.T) {
	ctx := t.Context()
	var flaky flakySink
	f := newFixture(t, func(c *mfa.Config) {
		c.Email = &flaky
		c.Limits = mfa.SendLimits{PerAccount: 1000, PerIP: 1000, PerDestination: 1000}
	})
	const n = 32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, _, err := f.m.BeginOOB(ctx, mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindEmail, Destination: fmt.Sprintf("ada%d@example.com", i)})
			var se *mfa.SendError
			if err != nil && !errors.As(err, &se) {
				t.Errorf("BeginOOB: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	fs, err := f.m.Factors(ctx, "t", "u")
	if err != nil || len(fs) != 1 {
		t.Fatalf("factors after %d enrolments at once = %+v, %v; want one pending", n, fs, err)
	}
	code, ok := flaky.codeTo(fs[0].Destination)
	if !ok {
		t.Fatalf("the pending factor's destination %q was sent no code", fs[0].Destination)
	}
	if _, err := f.m.ConfirmOOB(ctx, "t", "u", fs[0].ID, code); err != nil {
		t.Errorf("ConfirmOOB of the pending factor left: %v", err)
	}
}

// flakySink fails every other email, and keeps the last code sent to each
// address.
type flakySink struct {
	mu    sync.Mutex
	calls int
	codes map[string]string
}

func (s *flakySink) SendEmail(_ context.Context, m mfa.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls%2 == 0 {
		return errors.New("mail provider down")
	}
	if s.codes == nil {
		s.codes = map[string]string{}
	}
	s.codes[m.To] = codeRE.FindString(m.Text)
	return nil
}

func (s *flakySink) codeTo(addr string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[addr]
	return c, ok
}
