package sqlitestore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/sqlitestore"
)

// The stores keep only what is still needed: forgotten throttle records and
// sessions that are no longer live are deleted.

var sweepLimit = auth.Limit{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Minute}

// permanentLimit locks a key for good at its second lock.
var permanentLimit = auth.Limit{Max: 1, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Minute, PermanentAfter: 1}

func mustLen(t *testing.T, what string, n int, err error, want int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if n != want {
		t.Fatalf("%s = %d, want %d", what, n, want)
	}
}

func reserve(t *testing.T, s *sqlitestore.Store, key string, at time.Time, lim auth.Limit) auth.Reservation {
	t.Helper()
	r, err := s.Throttle.Reserve(context.Background(), key, at, lim)
	if err != nil {
		t.Fatalf("Reserve(%s): %v", key, err)
	}
	return r
}

func TestThrottleSweep(t *testing.T) {
	s := openStore(t)
	sqlitestore.SetSweepEvery(s, 0)
	ctx := context.Background()
	for i := range 100 {
		reserve(t, s, fmt.Sprint("ip:", i), t0.Add(time.Duration(i)*time.Second), sweepLimit)
	}
	reserve(t, s, "perm", t0, permanentLimit)
	if r := reserve(t, s, "perm", t0.Add(2*time.Minute), permanentLimit); !r.Permanent {
		t.Fatalf("second lock = %+v, want permanent", r)
	}
	n, err := s.Throttle.Len(ctx)
	mustLen(t, "Len", n, err, 101)

	// Within ResetAfter of their last attempt, nothing is forgotten.
	d, err := s.Throttle.Sweep(ctx, t0.Add(time.Hour))
	mustLen(t, "Sweep an hour later", int(d), err, 1) // ip:0 reached ResetAfter exactly
	if st, err := s.Throttle.Peek(ctx, "ip:1", t0.Add(time.Hour), sweepLimit); err != nil || st.Failures != 1 {
		t.Fatalf("Peek of a kept key = %+v, %v", st, err)
	}
	d, err = s.Throttle.Sweep(ctx, t0.Add(3*time.Hour))
	mustLen(t, "Sweep three hours later", int(d), err, 99)
	n, err = s.Throttle.Len(ctx)
	mustLen(t, "Len after sweeping", n, err, 1)
	// The permanent lock is kept until Reset.
	if st, err := s.Throttle.Peek(ctx, "perm", t0.Add(1000*time.Hour), permanentLimit); err != nil || !st.Permanent {
		t.Fatalf("Peek of the permanent key = %+v, %v", st, err)
	}
	if err := s.Throttle.Reset(ctx, "perm"); err != nil {
		t.Fatal(err)
	}
	n, err = s.Throttle.Len(ctx)
	mustLen(t, "Len after Reset", n, err, 0)
}

func TestThrottleSweepsWhileReserving(t *testing.T) {
	// Every 10th Reserve sweeps: an attacker spraying new keys cannot
	// grow the table beyond what is still within ResetAfter.
	s := openStore(t)
	sqlitestore.SetSweepEvery(s, 10)
	ctx := context.Background()
	for round := range 5 {
		at := t0.Add(time.Duration(round) * 2 * time.Hour)
		for i := range 10 {
			reserve(t, s, fmt.Sprintf("ip:%d:%d", round, i), at, sweepLimit)
		}
		n, err := s.Throttle.Len(ctx)
		mustLen(t, fmt.Sprint("Len after round ", round), n, err, 10)
	}
}

// The tombstone of an evicted session goes when the session would have
// ended: by DeleteExpired, and by the sweep of an unrelated Create.
func TestSessionTombstonesDeleted(t *testing.T) {
	for _, sweep := range []bool{false, true} {
		t.Run(fmt.Sprint("sweep=", sweep), func(t *testing.T) {
			s := openStore(t)
			sqlitestore.SetSweepEvery(s, 0)
			ctx := context.Background()
			a := mkSession(1, "a", t0, time.Hour)
			if _, err := s.Sessions.Create(ctx, a, session.Limit{}); err != nil {
				t.Fatal(err)
			}
			if ev, err := s.Sessions.Create(ctx, mkSession(2, "a", t0.Add(time.Minute), time.Hour), session.Limit{Max: 1}); err != nil || len(ev) != 1 {
				t.Fatalf("Create = %d evicted, %v; want 1", len(ev), err)
			}
			gc := func(at time.Time, i int) int64 {
				t.Helper()
				if !sweep {
					n, err := s.Sessions.DeleteExpired(ctx, at)
					if err != nil {
						t.Fatal(err)
					}
					return n
				}
				sqlitestore.SetSweepEvery(s, 1)
				defer sqlitestore.SetSweepEvery(s, 0)
				if _, err := s.Sessions.Create(ctx, mkSession(10+i, "other", at, 24*time.Hour), session.Limit{}); err != nil {
					t.Fatal(err)
				}
				return -1
			}
			gc(a.EndsAt().Add(-time.Microsecond), 0)
			if _, err := s.Sessions.Lookup(ctx, a.Hash); !errors.Is(err, session.ErrEvicted) {
				t.Fatalf("Lookup before the tombstone ends: %v, want ErrEvicted", err)
			}
			// At a's end only the tombstone goes: b, created at +1m, is
			// live until +61m.
			if n := gc(a.EndsAt(), 1); !sweep && n != 1 {
				t.Errorf("DeleteExpired deleted %d rows, want 1 (the tombstone)", n)
			}
			if _, err := s.Sessions.Lookup(ctx, a.Hash); !errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrEvicted) {
				t.Errorf("Lookup after the tombstone ended: %v, want plain ErrNotFound", err)
			}
		})
	}
}

func mkSession(i int, user string, at time.Time, idle time.Duration) session.Session {
	return session.Session{Hash: session.Hash{byte(i), 1}, Tenant: "acme", UserID: user, CreatedAt: at, LastSeen: at,
		ExpiresAt: at.Add(7 * 24 * time.Hour), IdleTimeout: idle}
}

func TestSessionsDeleteExpired(t *testing.T) {
	s := openStore(t)
	sqlitestore.SetSweepEvery(s, 0)
	ctx := context.Background()
	create := func(ss session.Session) {
		t.Helper()
		if _, err := s.Sessions.Create(ctx, ss, session.Limit{}); err != nil {
			t.Fatal(err)
		}
	}
	idle := mkSession(1, "a", t0, time.Hour)
	subMicro := mkSession(2, "b", t0, time.Hour+500*time.Nanosecond) // live until 500 ns after the hour
	touched := mkSession(3, "c", t0, time.Hour)
	absolute := mkSession(4, "d", t0, 24*time.Hour)
	absolute.ExpiresAt = t0.Add(10 * time.Minute)
	for _, ss := range []session.Session{idle, subMicro, touched, absolute} {
		create(ss)
	}
	if err := s.Sessions.Touch(ctx, touched.Hash, t0.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at   time.Time
		gone []session.Session
	}{
		{t0.Add(10*time.Minute - time.Microsecond), nil},
		{t0.Add(10 * time.Minute), []session.Session{absolute}},
		{t0.Add(time.Hour - time.Microsecond), nil},
		{t0.Add(time.Hour), []session.Session{idle}},
		{t0.Add(time.Hour + time.Microsecond), []session.Session{subMicro}},
		{t0.Add(90*time.Minute - time.Microsecond), nil},
		{t0.Add(90 * time.Minute), []session.Session{touched}},
	}
	left := 4
	for _, st := range steps {
		n, err := s.Sessions.DeleteExpired(ctx, st.at)
		mustLen(t, fmt.Sprint("DeleteExpired at +", st.at.Sub(t0)), int(n), err, len(st.gone))
		for _, g := range st.gone {
			if _, err := s.Sessions.Lookup(ctx, g.Hash); err == nil {
				t.Fatalf("session of %s still stored at +%v", g.UserID, st.at.Sub(t0))
			}
		}
		left -= len(st.gone)
		n2, err := s.Sessions.Len(ctx)
		mustLen(t, "Len", n2, err, left)
	}
}

func TestSessionsSweepWhileCreating(t *testing.T) {
	s := openStore(t)
	sqlitestore.SetSweepEvery(s, 5)
	ctx := context.Background()
	for i := range 4 {
		if _, err := s.Sessions.Create(ctx, mkSession(i, fmt.Sprint("u", i), t0, time.Hour), session.Limit{Max: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// The fifth Create, two hours later, sweeps the four idle sessions
	// of users who never came back.
	if _, err := s.Sessions.Create(ctx, mkSession(9, "u9", t0.Add(2*time.Hour), time.Hour), session.Limit{Max: 1}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Sessions.Len(ctx)
	mustLen(t, "Len after the sweep", n, err, 1)
}

// rows counts the rows of table in s's database.
func rows(t *testing.T, s *sqlitestore.Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// One-time codes, rate windows and pending logins are kept only while
// they may still be used: a client spraying new transactions or rate keys
// cannot grow the tables beyond what is still live.
func TestMFASweepsWhileWriting(t *testing.T) {
	s := openStore(t)
	sqlitestore.SetSweepEvery(s, 10)
	ctx := context.Background()
	for round := range 5 {
		at := t0.Add(time.Duration(round) * time.Hour)
		for i := range 10 {
			txn := fmt.Sprintf("txn-%d-%d", round, i)
			c := mfa.Code{Tenant: "acme", Txn: txn, UserID: "u", FactorID: "f", Kind: mfa.KindEmail,
				Hash: sha256.Sum256([]byte(txn)), CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute), TriesLeft: 5}
			if err := s.MFA.PutCode(ctx, c); err != nil {
				t.Fatal(err)
			}
			if _, err := s.MFA.Hit(ctx, "mfa:ip:"+txn, at, 10*time.Minute); err != nil {
				t.Fatal(err)
			}
			x := mfa.Transaction{Hash: sha256.Sum256([]byte("t" + txn)), Tenant: "acme", UserID: "u",
				CreatedAt: at, ExpiresAt: at.Add(5 * time.Minute)}
			if err := s.MFA.CreateTransaction(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		// The tenth write of each kind swept the previous round's rows.
		for _, table := range []string{"guard_mfa_codes", "guard_mfa_rates", "guard_mfa_transactions"} {
			mustLen(t, fmt.Sprintf("%s after round %d", table, round), rows(t, s, table), nil, 10)
		}
	}
	// A live code is never swept: the last round's codes still work.
	c, err := s.MFA.CheckCode(ctx, "acme", "txn-4-3", sha256.Sum256([]byte("txn-4-3")), t0.Add(4*time.Hour+time.Minute))
	if err != nil || c.Txn != "txn-4-3" {
		t.Fatalf("CheckCode of a live code after sweeps = %+v, %v", c, err)
	}
}

func TestMFASweep(t *testing.T) {
	s := openStore(t)
	sqlitestore.SetSweepEvery(s, 0)
	ctx := context.Background()
	for i := range 20 {
		at := t0.Add(time.Duration(i) * time.Minute)
		txn := fmt.Sprint("txn-", i)
		if err := s.MFA.PutCode(ctx, mfa.Code{Tenant: "acme", Txn: txn, CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MFA.Hit(ctx, txn, at, 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.MFA.CreateTransaction(ctx, mfa.Transaction{Hash: sha256.Sum256([]byte(txn)), CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	// Rows of minute i expire at +10m+i. At +20 min, those that expired
	// SweepGrace (5 min) or more before, minutes 0..5, are deleted: six
	// of each kind. Those of minutes 6..9 have expired too, but within
	// the grace: they are kept for a replica whose clock is behind.
	n, err := s.MFA.Sweep(ctx, t0.Add(20*time.Minute))
	mustLen(t, "Sweep at +20m", int(n), err, 18)
	for _, table := range []string{"guard_mfa_codes", "guard_mfa_rates", "guard_mfa_transactions"} {
		mustLen(t, table, rows(t, s, table), nil, 14)
	}
	if _, err := s.MFA.Transaction(ctx, sha256.Sum256([]byte("txn-6"))); err != nil {
		t.Errorf("a transaction expired within the grace was swept: %v", err)
	}
	n, err = s.MFA.Sweep(ctx, t0.Add(time.Hour))
	mustLen(t, "Sweep an hour later", int(n), err, 42)
}

// Each tenant's policy log keeps the latest changes only: with a history
// of MinHistory, the table holds MinHistory changes per tenant however
// many updates there were, Changes from within them works, and older ones
// are reported gone.
func TestPolicyHistoryBounded(t *testing.T) {
	s := openStore(t)
	sqlitestore.SetPolicyHistory(s, rbac.MinHistory)
	ctx := context.Background()
	const n = rbac.MinHistory + 36
	for _, tenant := range []string{"acme", "globex"} {
		for i := range n {
			r := rbac.Rule{Type: rbac.RuleGrant, Role: "member", Subject: fmt.Sprint("user:u", i)}
			if err := s.Policies.Update(ctx, tenant, uint64(i), nil, []rbac.Rule{r}); err != nil {
				t.Fatalf("Update %d: %v", i, err)
			}
		}
	}
	mustLen(t, "changes kept", rows(t, s, "guard_rbac_changes"), nil, 2*rbac.MinHistory)
	since := uint64(n - rbac.MinHistory)
	ch, err := s.Policies.Changes(ctx, "acme", since)
	if err != nil || len(ch) != rbac.MinHistory || ch[0].Version != since+1 || ch[len(ch)-1].Version != n {
		t.Fatalf("Changes(%d) = %d changes, %v; want %d from %d to %d", since, len(ch), err, rbac.MinHistory, since+1, n)
	}
	for _, since := range []uint64{0, 1, n - rbac.MinHistory - 1} {
		if ch, err := s.Policies.Changes(ctx, "acme", since); !errors.Is(err, rbac.ErrHistoryGone) {
			t.Errorf("Changes(%d) = %d changes, %v; want ErrHistoryGone", since, len(ch), err)
		}
	}
	rules, v, err := s.Policies.Policy(ctx, "acme")
	if err != nil || v != n || len(rules) != n {
		t.Errorf("Policy = %d rules at version %d, %v; want %d at %d", len(rules), v, err, n, n)
	}
}

// Tracked SSO requests, replay records and subjects are kept only while
// they may still be used, and SweepGrace longer.
func TestSSOSweeps(t *testing.T) {
	s := openStore(t)
	sqlitestore.SetSweepEvery(s, 10)
	ctx := context.Background()
	for round := range 4 {
		at := t0.Add(time.Duration(round) * time.Hour)
		for i := range 10 {
			id := fmt.Sprintf("id-%d-%d", round, i)
			if err := s.SSO.RememberRequest(ctx, sso.Request{Tenant: "acme", ID: id, CreatedAt: at, Expires: at.Add(5 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
			if ok, err := s.SSO.InsertID(ctx, "acme", "_"+id, at.Add(10*time.Minute), at); err != nil || !ok {
				t.Fatalf("InsertID = %v, %v", ok, err)
			}
			sub := sso.Subject{Tenant: "acme", UserID: "u-" + id, IdP: "idp", NameID: "n", Expires: at.Add(10 * time.Minute)}
			if err := s.SSO.PutSubject(ctx, sub, at); err != nil {
				t.Fatal(err)
			}
		}
		mustLen(t, fmt.Sprint("requests after round ", round), rows(t, s, "guard_sso_requests"), nil, 10)
		mustLen(t, fmt.Sprint("replay records after round ", round), rows(t, s, "guard_sso_replay"), nil, 10)
		mustLen(t, fmt.Sprint("subjects after round ", round), rows(t, s, "guard_sso_subjects"), nil, 10)
	}
	// The live records are kept: the last round's IDs are still replays,
	// its subjects still found.
	if ok, err := s.SSO.InsertID(ctx, "acme", "_id-3-9", t0.Add(4*time.Hour), t0.Add(3*time.Hour+time.Minute)); err != nil || ok {
		t.Errorf("InsertID of a live ID after sweeps = %v, %v; want not new", ok, err)
	}
	subs, err := s.SSO.SubjectsByNameID(ctx, "acme", "idp", "n", t0.Add(3*time.Hour+time.Minute))
	mustLen(t, "live subjects after sweeps", len(subs), err, 10)
	// Records that expired less than SweepGrace ago are kept, though a
	// subject is no longer found.
	late := t0.Add(3*time.Hour + 10*time.Minute + sqlitestore.SweepGrace - time.Microsecond)
	n, err := s.SSO.Sweep(ctx, late)
	mustLen(t, "Sweep within SweepGrace of the last expiries", int(n), err, 10) // the requests, expired 5 minutes before
	mustLen(t, "subjects within SweepGrace of their expiry", rows(t, s, "guard_sso_subjects"), nil, 10)
	if _, err := s.SSO.Subject(ctx, "acme", "u-id-3-0", late); !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("Subject expired within SweepGrace: %v, want ErrNotFound", err)
	}
	n, err = s.SSO.Sweep(ctx, t0.Add(5*time.Hour))
	mustLen(t, "Sweep", int(n), err, 20)
}
