package sqlitestore_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/sqlitestore"
)

// The once-only invariants of the stores hold across processes: two
// Stores opened separately on one file (two replicas, each with its own
// pool, writer connection and write gate) race on the same rows, and
// exactly one call wins. TestTwoProcesses shows that two processes behave
// as two Opens do.

// replicas opens one file twice.
func replicas(t *testing.T) [2]*sqlitestore.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "guard.db")
	return [2]*sqlitestore.Store{openFile(t, path), openFile(t, path)}
}

// raceOnce runs call(i, store) in n goroutines released at once, the even
// ones on the first replica and the odd ones on the second, and checks
// that exactly one returned nil and every other returned an error that
// lost reports as losing the race.
func raceOnce(t *testing.T, rs [2]*sqlitestore.Store, n int, call func(i int, s *sqlitestore.Store) error, lost func(error) bool) {
	t.Helper()
	var won atomic.Int32
	var perReplica [2]atomic.Int32
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			err := call(i, rs[i%2])
			switch {
			case err == nil:
				won.Add(1)
				perReplica[i%2].Add(1)
			case !lost(err):
				t.Errorf("call %d on replica %d: %v", i, i%2, err)
			}
		}()
	}
	start.Done()
	done.Wait()
	if w := won.Load(); w != 1 {
		t.Fatalf("%d of %d concurrent calls on two replicas succeeded (%d and %d), want exactly 1",
			w, n, perReplica[0].Load(), perReplica[1].Load())
	}
}

func TestReplicasAdvanceStepOnce(t *testing.T) {
	rs := replicas(t)
	ctx := t.Context()
	f := mfa.Factor{ID: "f", Tenant: "acme", UserID: "u", Kind: mfa.KindTOTP, Secret: []byte("sealed"),
		CreatedAt: t0, ConfirmedAt: t0, LastStep: 1000}
	if err := rs[0].MFA.CreateFactor(ctx, f, 0); err != nil {
		t.Fatal(err)
	}
	for step := int64(1001); step <= 1003; step++ {
		raceOnce(t, rs, 50, func(_ int, s *sqlitestore.Store) error {
			return s.MFA.AdvanceStep(ctx, "acme", "u", "f", step)
		}, func(err error) bool { return errors.Is(err, mfa.ErrReplay) })
		for _, s := range rs {
			if got, err := s.MFA.Factor(ctx, "acme", "u", "f"); err != nil || got.LastStep != step {
				t.Fatalf("LastStep = %d, %v; want %d", got.LastStep, err, step)
			}
		}
	}
}

func TestReplicasUseRecoveryCodeOnce(t *testing.T) {
	rs := replicas(t)
	ctx := t.Context()
	hs := make([]mfa.Hash, 10)
	for i := range hs {
		hs[i] = sha256.Sum256([]byte(fmt.Sprint("recovery", i)))
	}
	if err := rs[1].MFA.ReplaceRecoveryCodes(ctx, "acme", "u", hs); err != nil {
		t.Fatal(err)
	}
	raceOnce(t, rs, 50, func(_ int, s *sqlitestore.Store) error {
		left, err := s.MFA.UseRecoveryCode(ctx, "acme", "u", hs[7])
		if err == nil && left != 9 {
			t.Errorf("UseRecoveryCode left %d, want 9", left)
		}
		return err
	}, func(err error) bool { return errors.Is(err, mfa.ErrNotFound) })
	if n, err := rs[0].MFA.RecoveryCodesLeft(ctx, "acme", "u"); err != nil || n != 9 {
		t.Errorf("RecoveryCodesLeft = %d, %v; want 9", n, err)
	}
}

func TestReplicasCheckCodeOnce(t *testing.T) {
	rs := replicas(t)
	ctx := t.Context()
	c := mfa.Code{Tenant: "acme", Txn: "txn", UserID: "u", FactorID: "f", Kind: mfa.KindSMS,
		Hash: sha256.Sum256([]byte("123456")), CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute), TriesLeft: 5}
	if err := rs[0].MFA.PutCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	raceOnce(t, rs, 50, func(_ int, s *sqlitestore.Store) error {
		_, err := s.MFA.CheckCode(ctx, "acme", "txn", c.Hash, t0.Add(time.Minute))
		return err
	}, func(err error) bool { return errors.Is(err, mfa.ErrNotFound) })

	// Wrong codes racing on two replicas never use more tries than the
	// code had.
	c.Txn = "txn2"
	if err := rs[1].MFA.PutCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	var wrong, tooMany atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			_, err := rs[i%2].MFA.CheckCode(ctx, "acme", "txn2", sha256.Sum256([]byte(fmt.Sprint(i))), t0.Add(time.Minute))
			switch {
			case errors.Is(err, mfa.ErrInvalidCode):
				wrong.Add(1)
			case errors.Is(err, mfa.ErrTooManyTries):
				tooMany.Add(1)
			default:
				t.Errorf("CheckCode of a wrong code: %v", err)
			}
		})
	}
	wg.Wait()
	if wrong.Load() != 5 || tooMany.Load() != 45 {
		t.Errorf("%d wrong and %d too-many, want 5 and 45", wrong.Load(), tooMany.Load())
	}
}

func TestReplicasConsumeTransactionOnce(t *testing.T) {
	rs := replicas(t)
	ctx := t.Context()
	x := mfa.Transaction{Hash: sha256.Sum256([]byte("pending")), Tenant: "acme", UserID: "u", Purpose: "login",
		CreatedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
	if err := rs[0].MFA.CreateTransaction(ctx, x); err != nil {
		t.Fatal(err)
	}
	raceOnce(t, rs, 50, func(_ int, s *sqlitestore.Store) error {
		got, err := s.MFA.ConsumeTransaction(ctx, x.Hash)
		if err == nil && (got.UserID != "u" || !got.ExpiresAt.Equal(x.ExpiresAt)) {
			t.Errorf("ConsumeTransaction = %+v", got)
		}
		return err
	}, func(err error) bool { return errors.Is(err, mfa.ErrNotFound) })
	// And of concurrent creations of one hash, exactly one stores it.
	raceOnce(t, rs, 50, func(i int, s *sqlitestore.Store) error {
		y := x
		y.Flags = uint32(i)
		return s.MFA.CreateTransaction(ctx, y)
	}, func(err error) bool { return errors.Is(err, mfa.ErrDuplicate) })
}

func TestReplicasReplaceOnce(t *testing.T) {
	rs := replicas(t)
	ctx := t.Context()
	// From version 0 (the INSERT that creates the tenant's row), then from
	// a later version (the compare-and-set UPDATE), on either scope.
	for prev := uint64(0); prev < 3; prev++ {
		var winner atomic.Value
		raceOnce(t, rs, 20, func(i int, s *sqlitestore.Store) error {
			entry := fmt.Sprintf("10.0.%d.%d/32", prev, i)
			v, err := s.IPLists.Replace(ctx, "acme", ipfilter.Scopes[prev%2], ipfilter.Rules{Entries: []string{entry}}, prev)
			if err == nil {
				winner.Store(entry)
				if v != prev+1 {
					t.Errorf("Replace(prev %d) returned version %d", prev, v)
				}
			}
			return err
		}, func(err error) bool { return errors.Is(err, ipfilter.ErrConflict) })
		for _, s := range rs {
			l, err := s.IPLists.Lists(ctx, "acme")
			if err != nil || l.Version != prev+1 || l.Rules(ipfilter.Scopes[prev%2]).Entries[0] != winner.Load() {
				t.Fatalf("Lists after the race from %d = %+v, %v; want version %d with %v", prev, l, err, prev+1, winner.Load())
			}
		}
	}
}

func TestReplicasPolicyUpdateOnce(t *testing.T) {
	rs := replicas(t)
	ctx := t.Context()
	grant := func(i int) rbac.Rule {
		return rbac.Rule{Type: rbac.RuleGrant, Role: "member", Subject: fmt.Sprint("user:u", i)}
	}
	for expect := uint64(0); expect < 3; expect++ {
		var winner atomic.Int64
		raceOnce(t, rs, 20, func(i int, s *sqlitestore.Store) error {
			err := s.Policies.Update(ctx, "acme", expect, nil, []rbac.Rule{grant(100*int(expect) + i)})
			if err == nil {
				winner.Store(int64(100*int(expect) + i))
			}
			return err
		}, func(err error) bool { return errors.Is(err, rbac.ErrConflict) })
		ch, err := rs[int(expect)%2].Policies.Changes(ctx, "acme", expect)
		if err != nil || len(ch) != 1 || ch[0].Version != expect+1 || len(ch[0].Add) != 1 || ch[0].Add[0] != grant(int(winner.Load())) {
			t.Fatalf("Changes(%d) after the race = %+v, %v; want the winner's rule only", expect, ch, err)
		}
	}
	rules, v, err := rs[1].Policies.Policy(ctx, "acme")
	if err != nil || v != 3 || len(rules) != 3 {
		t.Errorf("Policy = %d rules at version %d, %v; want the 3 winners' rules at 3", len(rules), v, err)
	}
}

func TestReplicasConsumeApprovalOnce(t *testing.T) {
	rs := replicas(t)
	ctx := t.Context()
	a := rbac.Approval{ID: "a1", Tenant: "acme", Requester: rbac.User("alice"), Permission: rbac.P(rbac.Campaigns, rbac.Send),
		Target: "c-1", PayloadHash: sha256.Sum256([]byte("payload")), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour),
		Status: rbac.StatusPending}
	if err := rs[0].Approvals.CreateApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	// Decided once, by one of many approvers on two replicas.
	raceOnce(t, rs, 50, func(i int, s *sqlitestore.Store) error {
		_, err := s.Approvals.DecideApproval(ctx, "acme", "a1", rbac.User(fmt.Sprint("approver", i)), rbac.StatusApproved, t0.Add(time.Minute))
		return err
	}, func(err error) bool { return errors.Is(err, rbac.ErrNotPending) })
	claim := rbac.Claim{Requester: a.Requester, Permission: a.Permission, Target: a.Target, PayloadHash: a.PayloadHash}
	raceOnce(t, rs, 50, func(i int, s *sqlitestore.Store) error {
		got, err := s.Approvals.ConsumeApproval(ctx, "acme", "a1", claim, t0.Add(2*time.Minute+time.Duration(i)*time.Microsecond))
		if err == nil && (got.Status != rbac.StatusConsumed || got.Decider.ID == "") {
			t.Errorf("ConsumeApproval = %+v", got)
		}
		return err
	}, func(err error) bool { return errors.Is(err, rbac.ErrConsumed) })
	if got, err := rs[1].Approvals.Approval(ctx, "acme", "a1"); err != nil || got.Status != rbac.StatusConsumed {
		t.Errorf("Approval after the race = %+v, %v; want consumed", got, err)
	}
}

func TestReplicasSSOOnce(t *testing.T) {
	rs := replicas(t)
	ctx := t.Context()
	// An assertion ID is accepted once, whichever replica it is posted to.
	raceOnce(t, rs, 50, func(_ int, s *sqlitestore.Store) error {
		isNew, err := s.SSO.InsertID(ctx, "acme", "_assertion-1", t0.Add(time.Hour), t0)
		if err == nil && !isNew {
			return sso.ErrDuplicate // the replay, refused
		}
		return err
	}, func(err error) bool { return errors.Is(err, sso.ErrDuplicate) })
	// A tracked request is answered once.
	r := sso.Request{Tenant: "acme", ID: "id-1", Kind: sso.KindLogin, RelayState: "rs", CreatedAt: t0, Expires: t0.Add(5 * time.Minute)}
	if err := rs[0].SSO.RememberRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	raceOnce(t, rs, 50, func(_ int, s *sqlitestore.Store) error {
		_, err := s.SSO.ConsumeRequest(ctx, "acme", "id-1", t0.Add(time.Minute))
		return err
	}, func(err error) bool { return errors.Is(err, sso.ErrNotFound) })
}

func TestReplicasSetEmailOnce(t *testing.T) {
	rs := replicas(t)
	ctx := t.Context()
	// Fifty users move to one email through two replicas: the unique
	// index gives it to exactly one.
	const n = 50
	for i := range n {
		u := auth.User{Tenant: "acme", ID: fmt.Sprint("u", i), Email: fmt.Sprintf("u%d@example.com", i), Status: auth.StatusActive, CreatedAt: t0}
		if err := rs[i%2].Users.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	raceOnce(t, rs, n, func(i int, s *sqlitestore.Store) error {
		return s.Users.SetEmail(ctx, "acme", fmt.Sprint("u", i), "same@example.com", false)
	}, func(err error) bool { return errors.Is(err, auth.ErrDuplicateEmail) })
	won, err := rs[1].Users.UserByEmail(ctx, "acme", "same@example.com")
	if err != nil {
		t.Fatalf("UserByEmail after the race: %v", err)
	}
	if _, err := rs[0].Users.UserByEmail(ctx, "acme", won.ID+"@example.com"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("the winner's old email still finds a user: %v", err)
	}
}

// A replica whose clock is ahead sweeps a replay record only SweepGrace
// after it ran out by its own clock, so a replica whose clock is behind
// (by less than that) still refuses the assertion it considers live.
func TestReplicasReplayWithClockSkew(t *testing.T) {
	rs := replicas(t)
	ctx := t.Context()
	sqlitestore.SetSweepEvery(rs[0], 1) // every InsertID of the fast replica sweeps
	until := t0.Add(10 * time.Minute)
	if ok, err := rs[1].SSO.InsertID(ctx, "acme", "_captured", until, t0); err != nil || !ok {
		t.Fatalf("InsertID = %v, %v", ok, err)
	}
	fast := until.Add(clockLead)
	if ok, err := rs[0].SSO.InsertID(ctx, "acme", "_other", fast.Add(time.Hour), fast); err != nil || !ok {
		t.Fatalf("InsertID on the fast replica = %v, %v", ok, err)
	}
	slow := until.Add(-time.Second) // the slow replica's now: the record is live
	if ok, err := rs[1].SSO.InsertID(ctx, "acme", "_captured", slow.Add(time.Hour), slow); err != nil || ok {
		t.Errorf("replay on the slow replica after a sweep by the fast one = %v, %v; want refused", ok, err)
	}
	// Past the grace, the record is garbage and goes.
	late := until.Add(sqlitestore.SweepGrace)
	if _, err := rs[0].SSO.InsertID(ctx, "acme", "_late", late.Add(time.Hour), late); err != nil {
		t.Fatal(err)
	}
	if n := rows(t, rs[0], "guard_sso_replay"); n != 2 {
		t.Errorf("%d replay records after a sweep past the grace, want 2 (_other and _late)", n)
	}
}

// clockLead is a clock lead within sqlitestore.SweepGrace.
const clockLead = sqlitestore.SweepGrace - time.Minute
