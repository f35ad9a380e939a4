package pgstore_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/pgstore"
)

// twoReplicas returns two Stores on one fresh schema, each with a pool of
// its own, already connected: two replicas of an application sharing the
// database.
func twoReplicas(t *testing.T) (a, b *pgstore.Store) {
	t.Helper()
	pa, pb := ownPool(t, 6), ownPool(t, 6)
	a = newStoreOn(t, pa, "")
	b = newStoreOn(t, pb, a.Schema())
	warm(t, pa)
	warm(t, pb)
	return a, b
}

// warm opens every connection of p, so that calls racing on p reach the
// server together rather than each after its own connection set-up.
func warm(t *testing.T, p *pgxpool.Pool) {
	t.Helper()
	conns := make([]*pgxpool.Conn, p.Config().MaxConns)
	for i := range conns {
		c, err := p.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	for _, c := range conns {
		c.Release()
	}
}

// parallel runs f(0..n-1) in n goroutines released at once, and waits.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// raceRounds runs f(i, 0..rounds-1) in order in each of n goroutines
// released at once, and reports as a test error the first error of each
// goroutine, which then stops.
func raceRounds(t *testing.T, n, rounds int, f func(i, r int) error) {
	t.Helper()
	errs := make(chan error, n)
	parallel(n, func(i int) {
		for r := range rounds {
			if err := f(i, r); err != nil {
				errs <- fmt.Errorf("goroutine %d, round %d: %w", i, r, err)
				return
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

var replicaNow = time.Date(2099, 1, 1, 9, 0, 0, 123456000, time.UTC)

func TestReplicasSessionLimit(t *testing.T) {
	a, b := twoReplicas(t)
	const n = 100
	for _, policy := range []session.LimitPolicy{session.EvictOldest, session.RefuseNew} {
		t.Run(fmt.Sprint("policy", policy), func(t *testing.T) {
			user := fmt.Sprint("u", policy)
			var created, refused atomic.Int32
			var mu sync.Mutex
			evicted := make(map[session.Hash]int)
			parallel(n, func(i int) {
				st := a
				if i%2 == 1 {
					st = b
				}
				s := session.Session{
					Hash: sha256.Sum256(fmt.Appendf(nil, "%s-%d", user, i)), Tenant: "acme", UserID: user,
					CreatedAt: replicaNow.Add(time.Duration(i%5) * time.Millisecond), LastSeen: replicaNow,
					ExpiresAt: replicaNow.Add(time.Hour), IdleTimeout: time.Hour,
				}
				ev, err := st.Sessions.Create(t.Context(), s, session.Limit{Max: 1, Policy: policy})
				switch {
				case err == nil:
					created.Add(1)
				case policy == session.RefuseNew && errors.Is(err, session.ErrLimit):
					refused.Add(1)
				default:
					t.Errorf("Create %d: %v", i, err)
				}
				mu.Lock()
				for _, e := range ev {
					evicted[e.Hash]++
				}
				mu.Unlock()
			})
			left, err := a.Sessions.ListByUser(t.Context(), "acme", user)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 1 {
				t.Fatalf("%d sessions left, want exactly 1", len(left))
			}
			switch policy {
			case session.EvictOldest:
				if created.Load() != n || len(evicted) != n-1 {
					t.Errorf("%d created, %d distinct evicted; want %d and %d", created.Load(), len(evicted), n, n-1)
				}
				for h, k := range evicted {
					if k != 1 || h == left[0].Hash {
						t.Errorf("session %s evicted %d times (survivor: %v)", h, k, h == left[0].Hash)
					}
				}
			case session.RefuseNew:
				if created.Load() != 1 || refused.Load() != n-1 || len(evicted) != 0 {
					t.Errorf("%d created, %d refused, %d evicted; want 1, %d, 0", created.Load(), refused.Load(), len(evicted), n-1)
				}
			}
		})
	}
}

func TestReplicasThrottle(t *testing.T) {
	a, b := twoReplicas(t)
	lim := auth.Limit{Max: 5, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	const n = 50
	var allowed, locks atomic.Int32
	parallel(n, func(i int) {
		st := a
		if i%2 == 1 {
			st = b
		}
		r, err := st.Throttle.Reserve(t.Context(), "acct:acme:alice@example.com", replicaNow, lim)
		if err != nil {
			t.Errorf("Reserve %d: %v", i, err)
			return
		}
		if r.Allowed {
			allowed.Add(1)
		}
		if r.Locks {
			locks.Add(1)
		}
	})
	if allowed.Load() != int32(lim.Max) || locks.Load() != 1 {
		t.Errorf("%d of %d concurrent Reserves allowed, %d started a lock; want exactly %d and 1", allowed.Load(), n, locks.Load(), lim.Max)
	}
	st, err := b.Throttle.Peek(t.Context(), "acct:acme:alice@example.com", replicaNow, lim)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Locked(replicaNow) || st.Lockouts != 1 || !st.LockedUntil.Equal(replicaNow.Add(time.Minute)) {
		t.Errorf("Peek = %+v, want locked for a minute after one lockout", st)
	}
}

var auditKey = bytes.Repeat([]byte{0x42}, 32)

func TestReplicasAuditChain(t *testing.T) {
	a, b := twoReplicas(t)
	logs := make([]*audit.Log, 2)
	for i, st := range []*pgstore.Store{a, b} {
		l, err := audit.New(audit.Config{Store: st.Audit, Key: auditKey})
		if err != nil {
			t.Fatal(err)
		}
		logs[i] = l
	}
	const n = 400
	var mu sync.Mutex
	seqs := make(map[uint64]int)
	parallel(n, func(i int) {
		e, err := logs[i%2].Record(t.Context(), audit.Event{
			Tenant: "acme", Actor: audit.Actor{Kind: audit.ActorUser, ID: fmt.Sprint("u", i%7)},
			Action: audit.LoginFailed, Outcome: audit.Failure, Reason: "bad_password", IP: "203.0.113.5",
			Meta: map[string]string{"i": fmt.Sprint(i)},
		})
		if err != nil {
			t.Errorf("Record %d: %v", i, err)
			return
		}
		mu.Lock()
		seqs[e.Seq]++
		mu.Unlock()
	})
	if t.Failed() {
		return
	}
	for s := uint64(1); s <= n; s++ {
		if seqs[s] != 1 {
			t.Fatalf("Seq %d given %d times", s, seqs[s])
		}
	}
	for i, l := range logs {
		rep, err := l.Verify(t.Context(), "acme")
		if err != nil {
			t.Fatalf("Verify on replica %d: %v", i, err)
		}
		if !rep.OK || rep.Checked != n || rep.Head.Seq != n {
			t.Errorf("Verify on replica %d = %+v, want OK over %d events", i, rep, n)
		}
	}
}

// Of 20 Replaces from the same version on two replicas, exactly one wins;
// the lists then hold the winner's entry at the next version.
func TestReplicasIPListsReplace(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := t.Context()
	if _, err := a.IPLists.Replace(ctx, "acme", ipfilter.APIKeys, ipfilter.Rules{Entries: []string{"192.0.2.1"}}, 0); err != nil {
		t.Fatal(err)
	}
	// A tenant's first write (prev 0, an INSERT), and a later one (an
	// UPDATE of acme, whose API-key scope is at version 1).
	for _, tc := range []struct {
		tenant string
		prev   uint64
	}{{"globex", 0}, {"acme", 1}} {
		tenant, prev := tc.tenant, tc.prev
		const n = 20
		wins := make([]bool, n)
		parallel(n, func(i int) {
			st := a
			if i%2 == 1 {
				st = b
			}
			entry := fmt.Sprintf("203.0.113.%d", i)
			v, err := st.IPLists.Replace(ctx, tenant, ipfilter.Users, ipfilter.Rules{Entries: []string{entry}}, prev)
			switch {
			case err == nil && v == prev+1:
				wins[i] = true
			case !errors.Is(err, ipfilter.ErrConflict):
				t.Errorf("Replace %d from version %d = %d, %v; want %d or ErrConflict", i, prev, v, err, prev+1)
			}
		})
		var winner []int
		for i, w := range wins {
			if w {
				winner = append(winner, i)
			}
		}
		if len(winner) != 1 {
			t.Fatalf("from version %d: %d Replaces won (%v), want exactly 1", prev, len(winner), winner)
		}
		l, err := b.IPLists.Lists(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("203.0.113.%d", winner[0])
		if l.Version != prev+1 || len(l.Users.Entries) != 1 || l.Users.Entries[0] != want {
			t.Errorf("Lists after the race from version %d = %+v, want version %d with %s", prev, l, prev+1, want)
		}
		if prev == 1 && (len(l.APIKeys.Entries) != 1 || l.APIKeys.Entries[0] != "192.0.2.1") {
			t.Errorf("the other scope changed: %+v", l.APIKeys)
		}
	}
}

// onceAcrossReplicas runs setup on one replica, then call 50 times at
// once, alternating between two replicas, and checks that exactly one call
// succeeds and every other one fails with loser.
func onceAcrossReplicas(t *testing.T, what string, loser error, setup func(st *pgstore.Store) error, call func(st *pgstore.Store) error) {
	t.Helper()
	a, b := twoReplicas(t)
	if err := setup(a); err != nil {
		t.Fatal(err)
	}
	onceOnReplicas(t, a, b, what, loser, call)
}

// onceOnReplicas runs call 50 times at once, alternating between a and b,
// and checks that exactly one call succeeds and every other one fails with
// loser.
func onceOnReplicas(t *testing.T, a, b *pgstore.Store, what string, loser error, call func(st *pgstore.Store) error) {
	t.Helper()
	const n = 50
	var won, lost atomic.Int32
	parallel(n, func(i int) {
		st := a
		if i%2 == 1 {
			st = b
		}
		switch err := call(st); {
		case err == nil:
			won.Add(1)
		case errors.Is(err, loser):
			lost.Add(1)
		default:
			t.Errorf("%s %d: %v", what, i, err)
		}
	})
	if won.Load() != 1 || lost.Load() != n-1 {
		t.Errorf("%d concurrent %s on two replicas: %d succeeded and %d got %v; want 1 and %d", n, what, won.Load(), lost.Load(), loser, n-1)
	}
}

// Of 50 users moving to one email through two replicas, exactly one gets
// it.
func TestReplicasSetEmail(t *testing.T) {
	var next atomic.Int32
	onceAcrossReplicas(t, "SetEmail", auth.ErrDuplicateEmail,
		func(st *pgstore.Store) error {
			for i := range 50 {
				u := auth.User{Tenant: "acme", ID: fmt.Sprint("u", i), Email: fmt.Sprintf("u%d@example.com", i), Status: auth.StatusActive, CreatedAt: replicaNow}
				if err := st.Users.CreateUser(t.Context(), u); err != nil {
					return err
				}
			}
			return nil
		},
		func(st *pgstore.Store) error {
			id := fmt.Sprint("u", next.Add(1)-1)
			return st.Users.SetEmail(t.Context(), "acme", id, "same@example.com", false)
		})
}

// A TOTP step is accepted once, whichever replica sees the code.
func TestReplicasAdvanceStep(t *testing.T) {
	f := mfa.Factor{ID: "f1", Tenant: "acme", UserID: "u1", Kind: mfa.KindTOTP, KeyID: "k1", Secret: []byte("sealed"),
		CreatedAt: replicaNow, ConfirmedAt: replicaNow, LastStep: 100}
	onceAcrossReplicas(t, "AdvanceStep", mfa.ErrReplay,
		func(st *pgstore.Store) error { return st.MFA.CreateFactor(t.Context(), f, 0) },
		func(st *pgstore.Store) error { return st.MFA.AdvanceStep(t.Context(), "acme", "u1", "f1", 101) })
}

// A recovery code is used once.
func TestReplicasUseRecoveryCode(t *testing.T) {
	hs := make([]mfa.Hash, 10)
	for i := range hs {
		hs[i] = sha256.Sum256(fmt.Append(nil, "recovery-", i))
	}
	onceAcrossReplicas(t, "UseRecoveryCode", mfa.ErrNotFound,
		func(st *pgstore.Store) error { return st.MFA.ReplaceRecoveryCodes(t.Context(), "acme", "u1", hs) },
		func(st *pgstore.Store) error {
			left, err := st.MFA.UseRecoveryCode(t.Context(), "acme", "u1", hs[3])
			if err == nil && left != 9 {
				return fmt.Errorf("%d codes left, want 9", left)
			}
			return err
		})
}

// The right one-time code is accepted once.
func TestReplicasCheckCode(t *testing.T) {
	c := mfa.Code{Tenant: "acme", Txn: "txn-1", UserID: "u1", FactorID: "f1", Kind: mfa.KindSMS,
		Hash: sha256.Sum256([]byte("code")), CreatedAt: replicaNow, ExpiresAt: replicaNow.Add(10 * time.Minute), TriesLeft: 5}
	onceAcrossReplicas(t, "CheckCode", mfa.ErrNotFound,
		func(st *pgstore.Store) error { return st.MFA.PutCode(t.Context(), c) },
		func(st *pgstore.Store) error {
			_, err := st.MFA.CheckCode(t.Context(), "acme", "txn-1", c.Hash, replicaNow.Add(time.Minute))
			return err
		})
}

// A pending login is consumed once.
func TestReplicasConsumeTransaction(t *testing.T) {
	x := mfa.Transaction{Hash: sha256.Sum256([]byte("txn")), Tenant: "acme", UserID: "u1", Purpose: "login",
		CreatedAt: replicaNow, ExpiresAt: replicaNow.Add(5 * time.Minute)}
	onceAcrossReplicas(t, "ConsumeTransaction", mfa.ErrNotFound,
		func(st *pgstore.Store) error { return st.MFA.CreateTransaction(t.Context(), x) },
		func(st *pgstore.Store) error {
			got, err := st.MFA.ConsumeTransaction(t.Context(), x.Hash)
			if err == nil && got.UserID != "u1" {
				return fmt.Errorf("consumed %+v", got)
			}
			return err
		})
}

// Concurrent enrolments on two replicas never exceed the limit of
// confirmed factors.
func TestReplicasFactorLimit(t *testing.T) {
	a, b := twoReplicas(t)
	const n, limit = 40, 3
	var created, limited atomic.Int32
	parallel(n, func(i int) {
		st := a
		if i%2 == 1 {
			st = b
		}
		f := mfa.Factor{ID: fmt.Sprint("f", i), Tenant: "acme", UserID: "u1", Kind: mfa.KindTOTP,
			CreatedAt: replicaNow, ConfirmedAt: replicaNow, LastStep: 1}
		switch err := st.MFA.CreateFactor(t.Context(), f, limit); {
		case err == nil:
			created.Add(1)
		case errors.Is(err, mfa.ErrLimit):
			limited.Add(1)
		default:
			t.Errorf("CreateFactor %d: %v", i, err)
		}
	})
	fs, err := b.MFA.Factors(t.Context(), "acme", "u1")
	if err != nil {
		t.Fatal(err)
	}
	if created.Load() != limit || limited.Load() != n-limit || len(fs) != limit {
		t.Errorf("%d created, %d refused, %d stored; want %d, %d, %d", created.Load(), limited.Load(), len(fs), limit, n-limit, limit)
	}
}
