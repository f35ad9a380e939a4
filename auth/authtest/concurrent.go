package authtest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

// attempts is how many goroutines race on one key or one user.
var attempts = []int{50, 200}

func runThrottleConcurrent(t *testing.T, newStore func(t *testing.T) auth.ThrottleStore) {
	t.Helper()
	// The lockout invariant: n parallel attempts on one key get exactly
	// Max reservations, then the key is locked and nothing more counts.
	for _, n := range attempts {
		for _, most := range []int{1, 5} {
			t.Run(fmt.Sprintf("ReserveOneKey/%dAttemptsMax%d", n, most), func(t *testing.T) {
				st := newStore(t)
				lim := auth.Limit{Max: most, ResetAfter: hour, LockFor: mn, MaxLockFor: hour}
				// Each attempt has its own now, a microsecond apart, all
				// well within the lock.
				at := func(i int) time.Time { return base.Add(time.Duration(i) * us) }
				checkOneKey(t, st, defaultKey, lim, reserveParallel(t, st, n, at, lim), at)
			})
		}
	}
	t.Run("ReserveManyKeys", func(t *testing.T) {
		st := newStore(t)
		const keys, each = 20, 20
		lim := auth.Limit{Max: 3, ResetAfter: hour, LockFor: mn, MaxLockFor: hour}
		key := func(k int) string { return fmt.Sprintf("ip:198.51.100.%d", k) }
		at := func(i int) time.Time { return base.Add(time.Duration(i) * us) }
		res := make([]auth.Reservation, keys*each)
		parallel(keys*each, func(i int) {
			r, err := st.Reserve(t.Context(), key(i%keys), at(i), lim)
			if err != nil {
				t.Errorf("Reserve %d: %v", i, err)
			}
			res[i] = r
		})
		if t.Failed() {
			return
		}
		for k := range keys {
			var mine []auth.Reservation
			for i := k; i < len(res); i += keys {
				mine = append(mine, res[i])
			}
			t.Run(key(k), func(t *testing.T) {
				checkOneKey(t, st, key(k), lim, mine, func(j int) time.Time { return at(k + j*keys) })
			})
		}
	})
	t.Run("ReleaseNeverNegative", func(t *testing.T) {
		// Reservations made before a Reset, given back with those made
		// after it, in parallel: the count ends at zero, not below.
		st := newStore(t)
		lim := auth.Limit{Max: attempts[0], ResetAfter: hour, LockFor: mn, MaxLockFor: hour}
		var res []auth.Reservation
		for range attempts[0] - 1 {
			res = append(res, mustReserve(t, st, defaultKey, base, lim))
		}
		if err := st.Reset(t.Context(), defaultKey); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			res = append(res, mustReserve(t, st, defaultKey, base, lim))
		}
		parallel(len(res), func(i int) {
			if err := st.Release(t.Context(), defaultKey, res[i]); err != nil {
				t.Errorf("Release: %v", err)
			}
		})
		if s := mustPeek(t, st, defaultKey, base, lim); s != (auth.State{}) {
			t.Errorf("Peek after more Releases than Reserves since the Reset = %+v, want the zero State", s)
		}
		for i := 1; i <= lim.Max; i++ {
			r := mustReserve(t, st, defaultKey, base, lim)
			if !r.Allowed || r.Failures != i || r.Locks != (i == lim.Max) {
				t.Fatalf("Reserve %d after the Releases = %+v; want Failures %d, locking only at Max %d", i, r, i, lim.Max)
			}
		}
	})
	for _, n := range attempts {
		t.Run(fmt.Sprintf("GiveBackLiftsLock/%d", n), func(t *testing.T) {
			// n attempts at once, Max 5 of them allowed and the last of
			// those locking; then each allowed one is given back, in
			// parallel: the key is as it was, unlocked and with no
			// failures.
			st := newStore(t)
			lim := auth.Limit{Max: 5, ResetAfter: hour, LockFor: mn, MaxLockFor: hour}
			at := func(i int) time.Time { return base.Add(time.Duration(i) * us) }
			res := reserveParallel(t, st, n, at, lim)
			checkOneKey(t, st, defaultKey, lim, res, at)
			parallel(n, func(i int) {
				if err := st.Release(t.Context(), defaultKey, res[i]); err != nil {
					t.Errorf("Release %d: %v", i, err)
				}
			})
			if s := mustPeek(t, st, defaultKey, at(n), lim); s != (auth.State{}) {
				t.Errorf("Peek after every reservation was given back = %+v, want the zero State", s)
			}
			if r := mustReserve(t, st, defaultKey, at(n), lim); !r.Allowed || r.Failures != 1 || r.Lockouts != 0 {
				t.Errorf("Reserve after every reservation was given back = %+v, want allowed, Failures 1, no lock", r)
			}
		})
		for _, keepLocker := range []bool{false, true} {
			t.Run(fmt.Sprintf("GiveBackSomeDuringLock/%d/KeepLocker%v", n, keepLocker), func(t *testing.T) {
				// n attempts at once, all allowed, the last counted
				// locking (its Failures is n, even); then half are given
				// back in parallel, by the parity of their Failures. If
				// the lock's is given back, the lock is lifted and the
				// others kept are the key's failures; if it is kept, the
				// lock stands, and ends as it was set to.
				st := newStore(t)
				lim := auth.Limit{Max: n, ResetAfter: hour, LockFor: mn, MaxLockFor: hour}
				at := func(i int) time.Time { return base.Add(time.Duration(i) * us) }
				res := reserveParallel(t, st, n, at, lim)
				checkOneKey(t, st, defaultKey, lim, res, at)
				var locker auth.Reservation
				for _, r := range res {
					if r.Locks {
						locker = r
					}
				}
				parallel(n, func(i int) {
					if (res[i].Failures%2 == 0) == keepLocker {
						return
					}
					if err := st.Release(t.Context(), defaultKey, res[i]); err != nil {
						t.Errorf("Release %d: %v", i, err)
					}
				})
				s := mustPeek(t, st, defaultKey, at(n), lim)
				switch {
				case !keepLocker && (s.Failures != n/2 || s.Lockouts != 0 || s.Locked(at(n))):
					t.Errorf("Peek = %+v after the lock's reservation and %d others were given back, want %d failures, no lock",
						s, n/2-1, n/2)
				case keepLocker && (s.Failures != 0 || s.Lockouts != 1 || !s.LockedUntil.Equal(locker.LockedUntil)):
					t.Errorf("Peek = %+v after %d reservations counted before the lock were given back, want lock 1 until %v",
						s, n/2, locker.LockedUntil)
				case keepLocker:
					if r := mustReserve(t, st, defaultKey, locker.LockedUntil, lim); !r.Allowed || r.Failures != 1 || r.Lockouts != 1 {
						t.Errorf("Reserve as the lock ends = %+v, want allowed, Failures 1 after lock 1", r)
					}
				}
			})
		}
	}
	runBatchConcurrent(t, newStore)
	t.Run("ReserveAndReleaseBalance", func(t *testing.T) {
		// Each goroutine gives back its own reservation: none is lost.
		st := newStore(t)
		n := attempts[len(attempts)-1]
		lim := auth.Limit{Max: n + 1, ResetAfter: hour, LockFor: mn, MaxLockFor: hour}
		parallel(n, func(i int) {
			r, err := st.Reserve(t.Context(), defaultKey, base, lim)
			if err != nil || !r.Allowed || r.Failures < 1 || r.Failures > n {
				t.Errorf("Reserve %d = %+v, %v; want allowed with Failures 1 to %d", i, r, err, n)
			}
			if err := st.Release(t.Context(), defaultKey, r); err != nil {
				t.Errorf("Release %d: %v", i, err)
			}
		})
		if s := mustPeek(t, st, defaultKey, base, lim); s.Failures != 0 {
			t.Errorf("Failures = %d after %d Reserves each Released, want 0", s.Failures, n)
		}
	})
}

// checkOneKey checks the reservations res of one key, made at at(i) under
// lim in parallel from a zero record: exactly Max were allowed, with
// Failures 1 to Max, the one with Failures Max started lock 1, every other
// one was refused under that lock, and Peek reports it.
func checkOneKey(t *testing.T, st auth.ThrottleStore, key string, lim auth.Limit, res []auth.Reservation, at func(i int) time.Time) {
	t.Helper()
	var failures []int
	var locker auth.Reservation
	lockers := 0
	for i, r := range res {
		if r.Allowed {
			failures = append(failures, r.Failures)
		}
		if r.Locks {
			lockers++
			locker = r
			if want := at(i).Add(lim.LockFor); !r.LockedUntil.Equal(want) || r.Failures != lim.Max || r.Lockouts != 1 || r.Permanent {
				t.Errorf("the locking Reserve = %+v; want Failures %d, lock 1 until %v", r, lim.Max, want)
			}
		}
	}
	slices.Sort(failures)
	want := make([]int, lim.Max)
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(failures, want) {
		t.Fatalf("%d parallel Reserves allowed %d, with Failures %v; want exactly Max = %d, with Failures %v",
			len(res), len(failures), failures, lim.Max, want)
	}
	if lockers != 1 {
		t.Fatalf("%d Reserves started a lock, want exactly 1", lockers)
	}
	for i, r := range res {
		if !r.Allowed && (!r.LockedUntil.Equal(locker.LockedUntil) || r.Lockouts != 1 || r.Failures != 0 || r.Permanent || r.Locks) {
			t.Errorf("refused Reserve %d = %+v; want the lock until %v, Lockouts 1", i, r, locker.LockedUntil)
		}
	}
	now := at(len(res))
	s := mustPeek(t, st, key, now, lim)
	if s.Failures != 0 || s.Lockouts != 1 || s.Permanent || !s.LockedUntil.Equal(locker.LockedUntil) {
		t.Errorf("Peek = %+v, want lock 1 until %v and no failures", s, locker.LockedUntil)
	}
}

// reserveParallel makes n parallel Reserves of defaultKey, number i at
// at(i), and returns their Reservations; it stops the test if one fails.
func reserveParallel(t *testing.T, st auth.ThrottleStore, n int, at func(i int) time.Time, lim auth.Limit) []auth.Reservation {
	t.Helper()
	res := make([]auth.Reservation, n)
	parallel(n, func(i int) {
		r, err := st.Reserve(t.Context(), defaultKey, at(i), lim)
		if err != nil {
			t.Errorf("Reserve %d: %v", i, err)
		}
		res[i] = r
	})
	if t.Failed() {
		t.FailNow()
	}
	return res
}

func mustReserve(t *testing.T, st auth.ThrottleStore, key string, now time.Time, lim auth.Limit) auth.Reservation {
	t.Helper()
	r, err := st.Reserve(t.Context(), key, now, lim)
	if err != nil {
		t.Fatalf("Reserve(%q): %v", key, err)
	}
	return r
}

func mustPeek(t *testing.T, st auth.ThrottleStore, key string, now time.Time, lim auth.Limit) auth.State {
	t.Helper()
	s, err := st.Peek(t.Context(), key, now, lim)
	if err != nil {
		t.Fatalf("Peek(%q): %v", key, err)
	}
	return s
}

func runUsersConcurrent(t *testing.T, newStore func(t *testing.T) Users) {
	t.Helper()
	for _, m := range attempts {
		t.Run(fmt.Sprintf("CreateSameEmail/%d", m), func(t *testing.T) {
			c := &userChecker{t: t, st: newStore(t)}
			us := make([]auth.User, m)
			for i := range us {
				us[i] = mkUser("t", fmt.Sprint("u", i))
				us[i].Email = "same@example.com"
			}
			won := c.race(us, auth.ErrDuplicateEmail)
			c.wantAll("t", won)
		})
	}
	n := attempts[0]
	t.Run("CreateSameID", func(t *testing.T) {
		c := &userChecker{t: t, st: newStore(t)}
		us := make([]auth.User, n)
		for i := range us {
			us[i] = mkUser("t", "same")
			us[i].Email = fmt.Sprintf("u%d@example.com", i)
		}
		won := c.race(us, auth.ErrDuplicateID)
		for _, u := range us {
			if u.Email != won.Email {
				c.wantNoEmail("t", u.Email)
			}
		}
		c.wantAll("t", won)
	})
	t.Run("CreateDistinct", func(t *testing.T) {
		c := &userChecker{t: t, st: newStore(t)}
		us := make([]auth.User, n)
		for i := range us {
			// Two tenants, and the same email in both.
			us[i] = mkUser(fmt.Sprint("t", i%2), fmt.Sprint("u", i))
			us[i].Email = fmt.Sprintf("u%d@example.com", i/2)
		}
		parallel(n, func(i int) {
			if err := c.st.CreateUser(t.Context(), us[i]); err != nil {
				t.Errorf("CreateUser(%s): %v", ref(us[i]), err)
			}
		})
		var t0, t1 []auth.User
		for i, u := range us {
			if i%2 == 0 {
				t0 = append(t0, u)
			} else {
				t1 = append(t1, u)
			}
		}
		c.wantAll("t0", t0...)
		c.wantAll("t1", t1...)
	})
	t.Run("DeleteOnce", func(t *testing.T) {
		c := &userChecker{t: t, st: newStore(t)}
		c.create(mkUser("t", "u"))
		var wins atomic.Int32
		parallel(n, func(i int) {
			err := c.st.DeleteUser(t.Context(), "t", "u")
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, auth.ErrNotFound):
				t.Errorf("DeleteUser %d: %v, want nil or ErrNotFound", i, err)
			}
		})
		if w := wins.Load(); w != 1 {
			t.Errorf("the user was deleted %d times, want exactly once", w)
		}
		c.wantNoID("t", "u")
	})
	t.Run("MoveToSameEmail", func(t *testing.T) {
		// n users each try to move to one email: exactly one gets it, the
		// others keep their own, and the winner's old email is free.
		c := &userChecker{t: t, st: newStore(t)}
		us := make([]auth.User, n)
		for i := range us {
			us[i] = mkUser("t", fmt.Sprint("u", i))
			c.create(us[i])
		}
		const target = "same@example.com"
		var mu sync.Mutex
		var won []int
		parallel(n, func(i int) {
			err := c.st.SetEmail(t.Context(), "t", us[i].ID, target, false)
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, i)
				mu.Unlock()
			case !errors.Is(err, auth.ErrDuplicateEmail):
				t.Errorf("SetEmail(%s) = %v, want nil or ErrDuplicateEmail", ref(us[i]), err)
			}
		})
		if len(won) != 1 {
			t.Fatalf("%d SetEmails to one email succeeded, want exactly 1: %v", len(won), won)
		}
		w := won[0]
		old := us[w].Email
		us[w].Email = target
		c.wantUser(us[w]) // UserByEmail(target) finds the winner
		c.wantNoEmail("t", old)
		for i, u := range us {
			if i != w {
				c.wantUser(u)
			}
		}
		// Another user takes the winner's old email.
		taker := (w + 1) % n
		c.setEmail("t", us[taker].ID, old)
		c.wantNoEmail("t", fmt.Sprint("u", taker, "@example.com"))
		us[taker].Email = old
		c.wantAll("t", us...)
	})
	t.Run("SetEmailRacesCreate", func(t *testing.T) {
		// Half the goroutines create a user with the email, half move an
		// existing user to it: one of them, in all, gets it.
		c := &userChecker{t: t, st: newStore(t)}
		const target = "contested@example.com"
		movers := make([]auth.User, n/2)
		for i := range movers {
			movers[i] = mkUser("t", fmt.Sprint("m", i))
			c.create(movers[i])
		}
		var wins atomic.Int32
		parallel(n, func(i int) {
			var err error
			if i%2 == 0 {
				err = c.st.SetEmail(t.Context(), "t", movers[i/2].ID, target, false)
			} else {
				u := mkUser("t", fmt.Sprint("c", i))
				u.Email = target
				err = c.st.CreateUser(t.Context(), u)
			}
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, auth.ErrDuplicateEmail):
				t.Errorf("goroutine %d: %v, want nil or ErrDuplicateEmail", i, err)
			}
		})
		if w := wins.Load(); w != 1 {
			t.Fatalf("%d of the CreateUsers and SetEmails to one email succeeded, want exactly 1", w)
		}
		got, err := c.st.UserByEmail(t.Context(), "t", target)
		if err != nil {
			t.Fatalf("UserByEmail(%q): %v", target, err)
		}
		// The losing movers are as they were; the users are the movers
		// plus the winner if it was created.
		want := slices.Clone(movers)
		if !strings.HasPrefix(got.ID, "m") {
			want = append(want, mkUser("t", got.ID))
		}
		for i, u := range want {
			if u.ID == got.ID {
				want[i].Email = target
			}
		}
		c.wantAll("t", want...)
	})
	t.Run("RehashOnce", func(t *testing.T) {
		// Logins that all read the same old hash race to replace it.
		c := &userChecker{t: t, st: newStore(t)}
		u := mkUser("t", "u")
		u.PasswordHistory = hashes("h1")
		c.create(u)
		var mu sync.Mutex
		var won []string
		parallel(n, func(i int) {
			h := hashOf(fmt.Sprint("rehash-", i))
			err := c.st.RehashPassword(t.Context(), "t", "u", u.PasswordHash, h)
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, h)
				mu.Unlock()
			case !errors.Is(err, auth.ErrConflict):
				t.Errorf("RehashPassword %d: %v, want nil or ErrConflict", i, err)
			}
		})
		if len(won) != 1 {
			t.Fatalf("%d RehashPasswords succeeded, want exactly 1", len(won))
		}
		u.PasswordHash = won[0]
		c.wantUser(u)
	})
	t.Run("ResetOnce", func(t *testing.T) {
		// Resets from one read of the user race with changes of the
		// status and the expiry mark, each undone at once: at most one
		// reset wins (none if a change was in place each time), and the
		// user ends active, unmarked, with that reset's password or the
		// one read.
		c := &userChecker{t: t, st: newStore(t)}
		u := mkUser("t", "u")
		u.PasswordHistory = hashes("h1")
		u.EmailUnverified = true
		c.create(u)
		read := c.get("t", "u")
		var mu sync.Mutex
		var won []string
		parallel(n, func(i int) {
			var err error
			switch i % 4 {
			case 1:
				if err = c.st.SetStatus(t.Context(), "t", "u", auth.StatusDeactivated); err == nil {
					err = c.st.SetStatus(t.Context(), "t", "u", auth.StatusActive)
				}
			case 3:
				if _, err = c.st.ExpirePassword(t.Context(), "t", "u"); err == nil {
					err = c.st.ClearPasswordExpired(t.Context(), "t", "u")
				}
			default:
				h := hashOf(fmt.Sprint("reset-", i))
				err = c.st.ResetPassword(t.Context(), "t", "u", read, h, base, 3)
				switch {
				case err == nil:
					mu.Lock()
					won = append(won, h)
					mu.Unlock()
				case errors.Is(err, auth.ErrConflict):
					err = nil
				}
			}
			if err != nil {
				t.Errorf("goroutine %d: %v", i, err)
			}
		})
		if len(won) > 1 {
			t.Fatalf("%d ResetPasswords from one read succeeded, want at most 1", len(won))
		}
		if len(won) == 1 {
			u.PasswordHistory = []string{u.PasswordHash, hashOf("h1")}
			u.PasswordHash, u.PasswordChangedAt, u.EmailUnverified = won[0], base, false
		}
		c.wantUser(u)
	})
	t.Run("ChangeOnce", func(t *testing.T) {
		// Password changes and resets from one read of the user race:
		// exactly one wins, and the user has its password (the address
		// verified only if it was a reset).
		c := &userChecker{t: t, st: newStore(t)}
		u := mkUser("t", "u")
		u.PasswordHistory = hashes("h1")
		u.EmailUnverified = true
		c.create(u)
		read := c.get("t", "u")
		var mu sync.Mutex
		var won []string
		var reset bool
		parallel(n, func(i int) {
			var err error
			h := hashOf(fmt.Sprint("change-", i))
			if i%2 == 1 {
				err = c.st.ResetPassword(t.Context(), "t", "u", read, h, base, 3)
			} else {
				err = c.st.ChangePassword(t.Context(), "t", "u", read, h, base, 3)
			}
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, h)
				reset = i%2 == 1
				mu.Unlock()
			case !errors.Is(err, auth.ErrConflict):
				t.Errorf("goroutine %d: %v, want nil or ErrConflict", i, err)
			}
		})
		if len(won) != 1 {
			t.Fatalf("%d ChangePasswords and ResetPasswords from one read succeeded, want exactly 1", len(won))
		}
		u.PasswordHistory = []string{u.PasswordHash, hashOf("h1")}
		u.PasswordHash, u.PasswordChangedAt, u.EmailUnverified = won[0], base, !reset
		c.wantUser(u)
	})
	t.Run("ChangeEmailOnce", func(t *testing.T) {
		// Changes of email and of password from one read of the user
		// race: exactly one wins, and the emails of the others are free.
		c := &userChecker{t: t, st: newStore(t)}
		u := mkUser("t", "u")
		u.PasswordHistory = hashes("h1")
		c.create(u)
		read := c.get("t", "u")
		email := func(i int) string { return fmt.Sprint("e", i, "@example.com") }
		var mu sync.Mutex
		var won []int
		parallel(n, func(i int) {
			var err error
			if i%2 == 1 {
				err = c.st.ChangePassword(t.Context(), "t", "u", read, hashOf(fmt.Sprint("change-", i)), base, 3)
			} else {
				err = c.st.ChangeEmail(t.Context(), "t", "u", read, email(i), true)
			}
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, i)
				mu.Unlock()
			case !errors.Is(err, auth.ErrConflict):
				t.Errorf("goroutine %d: %v, want nil or ErrConflict", i, err)
			}
		})
		if len(won) != 1 {
			t.Fatalf("%d ChangeEmails and ChangePasswords from one read succeeded, want exactly 1: %v", len(won), won)
		}
		if w := won[0]; w%2 == 1 {
			u.PasswordHistory = []string{u.PasswordHash, hashOf("h1")}
			u.PasswordHash, u.PasswordChangedAt = hashOf(fmt.Sprint("change-", w)), base
		} else {
			c.wantNoEmail("t", u.Email)
			u.Email, u.EmailUnverified = email(w), true
		}
		c.wantUser(u)
		for i := 0; i < n; i += 2 {
			if i != won[0] {
				c.wantNoEmail("t", email(i))
			}
		}
		c.wantAll("t", u)
	})
	for _, keep := range []int{3, n + 1} {
		t.Run(fmt.Sprintf("SetPasswordHistory/keep%d", keep), func(t *testing.T) {
			c := &userChecker{t: t, st: newStore(t)}
			u := mkUser("t", "u")
			c.create(u)
			at := func(i int) time.Time { return base.Add(time.Duration(i+1) * us) }
			parallel(n, func(i int) {
				if err := c.st.SetPassword(t.Context(), "t", "u", hashOf(fmt.Sprint("p", i)), at(i), keep); err != nil {
					t.Errorf("SetPassword %d: %v", i, err)
				}
			})
			got := c.get("t", "u")
			// Every call replaced one hash: the history is as long as keep
			// allows, each hash was set once, and no replaced hash is
			// lost.
			valid := map[string]time.Time{u.PasswordHash: u.PasswordChangedAt}
			for i := range n {
				valid[hashOf(fmt.Sprint("p", i))] = at(i)
			}
			all := append([]string{got.PasswordHash}, got.PasswordHistory...)
			seen := make(map[string]bool)
			for _, h := range all {
				if _, ok := valid[h]; !ok || seen[h] {
					t.Fatalf("hash %s and history %s: %s is unknown or repeated",
						hashLabel(got.PasswordHash), hashLabels(got.PasswordHistory), hashLabel(h))
				}
				seen[h] = true
			}
			if want := min(keep, n); len(got.PasswordHistory) != want {
				t.Errorf("history has %d hashes, want %d: %s", len(got.PasswordHistory), want, hashLabels(got.PasswordHistory))
			}
			if got.PasswordHash == u.PasswordHash {
				t.Errorf("the first password is still current")
			}
			if !got.PasswordChangedAt.Equal(valid[got.PasswordHash]) {
				t.Errorf("PasswordChangedAt %v is not that of the current hash %s, %v",
					got.PasswordChangedAt, hashLabel(got.PasswordHash), valid[got.PasswordHash])
			}
			if keep > n && (len(seen) != n+1 || got.PasswordHistory[n-1] != u.PasswordHash) {
				t.Errorf("with room for every hash, history %s must end with the first password %s",
					hashLabels(got.PasswordHistory), hashLabel(u.PasswordHash))
			}
		})
	}
	t.Run("UpdatesLoseNothing", func(t *testing.T) {
		// Each method changes only its own fields, so updates of different
		// fields racing on one user all survive.
		c := &userChecker{t: t, st: newStore(t)}
		u := mkUser("t", "u")
		c.create(u)
		const rounds = 30
		loginAt := func(i int) time.Time { return base.Add(time.Duration(i) * mn) }
		pwAt := func(i int) time.Time { return base.Add(time.Duration(i) * sec) }
		status := func(i int) auth.Status {
			if i%2 == rounds%2 {
				return auth.StatusActive
			}
			return auth.StatusDeactivated
		}
		email := func(i int) string { return fmt.Sprintf("e%d@example.com", i) }
		reactivatedAt := func(i int) time.Time { return base.Add(time.Duration(i) * time.Millisecond) }
		parallel(5, func(g int) {
			for i := range rounds {
				var err error
				switch g {
				case 0:
					err = c.st.SetStatus(t.Context(), "t", "u", status(i))
				case 1:
					var got auth.User
					got, err = c.st.RecordLogin(t.Context(), "t", "u", loginAt(i))
					if err == nil && !got.LastLoginAt.Equal(loginAt(i)) {
						t.Errorf("RecordLogin(%v) returned LastLoginAt %v", loginAt(i), got.LastLoginAt)
					}
				case 2:
					err = c.st.SetPassword(t.Context(), "t", "u", hashOf(fmt.Sprint("p", i)), pwAt(i), rounds+1)
				case 3:
					err = c.st.SetEmail(t.Context(), "t", "u", email(i), false)
				case 4:
					err = c.st.SetReactivatedAt(t.Context(), "t", "u", reactivatedAt(i))
				}
				if err != nil {
					t.Errorf("goroutine %d, round %d: %v", g, i, err)
					return
				}
			}
		})
		u.Status = status(rounds - 1)
		u.Email = email(rounds - 1)
		u.LastLoginAt = loginAt(rounds - 1)
		u.ReactivatedAt = reactivatedAt(rounds - 1)
		u.PasswordHash, u.PasswordChangedAt = hashOf(fmt.Sprint("p", rounds-1)), pwAt(rounds-1)
		u.PasswordHistory = []string{hashOf("u-0")}
		for i := range rounds - 1 {
			u.PasswordHistory = append([]string{hashOf(fmt.Sprint("p", i))}, u.PasswordHistory...)
		}
		if u.Status != auth.StatusDeactivated {
			t.Fatal("suite bug: the last status must differ from the first")
		}
		c.wantUser(u)
	})
	t.Run("ExpireLosesNothing", func(t *testing.T) {
		// ExpirePassword racing the updates of other fields: every one
		// survives, and so does the mark.
		c := &userChecker{t: t, st: newStore(t)}
		u := mkUser("t", "u")
		c.create(u)
		const rounds = 30
		parallel(4, func(g int) {
			for i := range rounds {
				var err error
				switch g {
				case 0:
					err = c.st.SetStatus(t.Context(), "t", "u", auth.StatusDeactivated)
				case 1:
					_, err = c.st.RecordLogin(t.Context(), "t", "u", base.Add(time.Duration(i)*mn))
				case 2:
					err = c.st.SetEmail(t.Context(), "t", "u", fmt.Sprintf("e%d@example.com", i), false)
				case 3:
					_, err = c.st.ExpirePassword(t.Context(), "t", "u")
				}
				if err != nil {
					t.Errorf("goroutine %d, round %d: %v", g, i, err)
					return
				}
			}
		})
		u.Status, u.Email = auth.StatusDeactivated, fmt.Sprintf("e%d@example.com", rounds-1)
		u.LastLoginAt, u.PasswordExpired = base.Add((rounds-1)*mn), true
		c.wantUser(u)
	})
	t.Run("SSOLoginLosesNothing", func(t *testing.T) {
		// RecordSSOLogin racing the updates of other fields: every one
		// survives, and each call returns its own times.
		c := &userChecker{t: t, st: newStore(t)}
		u := mkUser("t", "u")
		c.create(u)
		const rounds = 30
		ssoAt := func(i int) time.Time { return base.Add(time.Duration(i) * mn) }
		parallel(4, func(g int) {
			for i := range rounds {
				var err error
				switch g {
				case 0:
					err = c.st.SetStatus(t.Context(), "t", "u", auth.StatusDeactivated)
				case 1:
					var got auth.User
					got, err = c.st.RecordSSOLogin(t.Context(), "t", "u", ssoAt(i))
					if err == nil && (!got.LastLoginAt.Equal(ssoAt(i)) || !got.LastSSOAt.Equal(ssoAt(i))) {
						t.Errorf("RecordSSOLogin(%v) returned LastLoginAt %v, LastSSOAt %v", ssoAt(i), got.LastLoginAt, got.LastSSOAt)
					}
				case 2:
					err = c.st.SetEmail(t.Context(), "t", "u", fmt.Sprintf("e%d@example.com", i), false)
				case 3:
					_, err = c.st.ExpirePassword(t.Context(), "t", "u")
				}
				if err != nil {
					t.Errorf("goroutine %d, round %d: %v", g, i, err)
					return
				}
			}
		})
		u.Status, u.Email, u.PasswordExpired = auth.StatusDeactivated, fmt.Sprintf("e%d@example.com", rounds-1), true
		u.LastLoginAt, u.LastSSOAt = ssoAt(rounds-1), ssoAt(rounds-1)
		c.wantUser(u)
	})
	t.Run("VerifyEmailRacesSetEmail", func(t *testing.T) {
		// The user moves through unverified addresses while VerifyEmail
		// proves the first one again and again: a proof only clears the
		// flag while the email is the one proved, so the last address,
		// set after every proof that succeeded, stays unverified (a read
		// of the email and a later write of the flag would clear it).
		c := &userChecker{t: t, st: newStore(t)}
		u := mkUser("t", "u")
		c.create(u)
		const rounds = 50
		email := func(i int) string { return fmt.Sprintf("e%d@example.com", i) }
		c.setUnverified("t", "u", email(0))
		parallel(2, func(g int) {
			for i := range rounds {
				var err error
				if g == 0 {
					err = c.st.SetEmail(t.Context(), "t", "u", email(i%2), true)
				} else if err = c.st.VerifyEmail(t.Context(), "t", "u", email(0)); errors.Is(err, auth.ErrConflict) {
					err = nil
				}
				if err != nil {
					t.Errorf("goroutine %d, round %d: %v", g, i, err)
					return
				}
			}
		})
		u.Email, u.EmailUnverified = email((rounds-1)%2), true
		c.wantUser(u)
	})
	t.Run("RecordLoginLeavesLastSSOAt", func(t *testing.T) {
		// Password and SSO sign-ins racing: LastSSOAt is the last SSO
		// sign-in's, whatever the password sign-ins did, and LastLoginAt
		// is the last of either.
		c := &userChecker{t: t, st: newStore(t)}
		u := mkUser("t", "u")
		c.create(u)
		const rounds = 50
		loginAt := func(i int) time.Time { return base.Add(time.Duration(2*i) * sec) }
		ssoAt := func(i int) time.Time { return base.Add(time.Duration(2*i+1) * sec) }
		parallel(2, func(g int) {
			for i := range rounds {
				var err error
				if g == 0 {
					_, err = c.st.RecordLogin(t.Context(), "t", "u", loginAt(i))
				} else {
					_, err = c.st.RecordSSOLogin(t.Context(), "t", "u", ssoAt(i))
				}
				if err != nil {
					t.Errorf("goroutine %d, round %d: %v", g, i, err)
					return
				}
			}
		})
		got := c.get("t", "u")
		if !got.LastSSOAt.Equal(ssoAt(rounds - 1)) {
			t.Errorf("LastSSOAt = %v, want %v", got.LastSSOAt, ssoAt(rounds-1))
		}
		if !got.LastLoginAt.Equal(loginAt(rounds-1)) && !got.LastLoginAt.Equal(ssoAt(rounds-1)) {
			t.Errorf("LastLoginAt = %v, want %v or %v", got.LastLoginAt, loginAt(rounds-1), ssoAt(rounds-1))
		}
	})
	t.Run("RecordLoginReturnsStateAfterIt", func(t *testing.T) {
		// One goroutine records logins one after another while another
		// changes the password one version after another and reads the
		// user back. If the reader saw login k but not k+1, then login
		// k+1 was applied after that password change, and the user it
		// returned must have that password or a later one.
		c := &userChecker{t: t, st: newStore(t)}
		u := mkUser("t", "u")
		u.PasswordHash = hashOf("v0")
		c.create(u)
		const logins, changes = 100, 100
		loginAt := func(k int) time.Time { return base.Add(time.Duration(k+1) * sec) }
		version := func(h string) int {
			var v int
			if _, err := fmt.Sscanf(hashLabel(h), "v%d", &v); err != nil {
				t.Errorf("unexpected hash %s", hashLabel(h))
			}
			return v
		}
		returned := make([]int, logins) // password version each login returned
		seen := make([]int, changes+1)  // last login the reader saw after change j, -1 for none
		parallel(2, func(g int) {
			if g == 0 {
				for k := range logins {
					got, err := c.st.RecordLogin(t.Context(), "t", "u", loginAt(k))
					if err != nil {
						t.Errorf("RecordLogin: %v", err)
						return
					}
					returned[k] = version(got.PasswordHash)
				}
				return
			}
			for j := 1; j <= changes; j++ {
				if err := c.st.SetPassword(t.Context(), "t", "u", hashOf(fmt.Sprint("v", j)), base, 0); err != nil {
					t.Errorf("SetPassword: %v", err)
					return
				}
				got, err := c.st.User(t.Context(), "t", "u")
				if err != nil {
					t.Errorf("User: %v", err)
					return
				}
				seen[j] = -1
				if !got.LastLoginAt.IsZero() {
					seen[j] = int(got.LastLoginAt.Sub(base)/sec) - 1
				}
			}
		})
		if t.Failed() {
			return
		}
		for j := 1; j <= changes; j++ {
			if k := seen[j] + 1; k < logins && returned[k] < j {
				t.Fatalf("RecordLogin %d was applied after password version %d was set and read back, but returned version %d", k, j, returned[k])
			}
		}
	})
	t.Run("ExpirePasswordSetOnce", func(t *testing.T) {
		// Admins expiring the same password at once: exactly one call
		// says it set the flag (only that one may take it back).
		c := &userChecker{t: t, st: newStore(t)}
		c.create(mkUser("t", "u"))
		var sets atomic.Int32
		parallel(n, func(i int) {
			set, err := c.st.ExpirePassword(t.Context(), "t", "u")
			if err != nil {
				t.Errorf("ExpirePassword %d: %v", i, err)
			}
			if set {
				sets.Add(1)
			}
		})
		if s := sets.Load(); s != 1 {
			t.Errorf("%d calls said they set the flag, want exactly 1", s)
		}
	})
	t.Run("DeactivateOnce", func(t *testing.T) {
		// Admins deactivating the same user at once: exactly one call
		// says it changed the status (only that one may undo it).
		c := &userChecker{t: t, st: newStore(t)}
		c.create(mkUser("t", "u"))
		var wins atomic.Int32
		parallel(n, func(i int) {
			changed, err := c.st.Deactivate(t.Context(), "t", "u")
			if err != nil {
				t.Errorf("Deactivate %d: %v", i, err)
			}
			if changed {
				wins.Add(1)
			}
		})
		if w := wins.Load(); w != 1 {
			t.Errorf("%d calls said they deactivated the user, want exactly 1", w)
		}
		if u := c.get("t", "u"); u.Status != auth.StatusDeactivated {
			t.Errorf("status after the calls: %s, want deactivated", u.Status)
		}
	})
	t.Run("DeactivateIdleOnce", func(t *testing.T) {
		// Replicas deactivating the same idle user: one does.
		c := &userChecker{t: t, st: newStore(t)}
		c.create(mkUser("t", "u"))
		var wins atomic.Int32
		parallel(n, func(i int) {
			err := c.st.DeactivateIdle(t.Context(), "t", "u", base)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, auth.ErrConflict):
				t.Errorf("DeactivateIdle %d: %v, want nil or ErrConflict", i, err)
			}
		})
		if w := wins.Load(); w != 1 {
			t.Errorf("the user was deactivated %d times, want exactly once", w)
		}
	})
	t.Run("DeactivateIdleRacesRecordLogin", func(t *testing.T) {
		// A sign-in racing the deactivation: either it comes first and
		// the user stays active, or it comes after and sees the user
		// deactivated; never both a sign-in before and a deactivation.
		for round := range 20 {
			c := &userChecker{t: t, st: newStore(t)}
			c.create(mkUser("t", "u"))
			var derr, lerr error
			var got auth.User
			parallel(2, func(i int) {
				if i == 0 {
					derr = c.st.DeactivateIdle(t.Context(), "t", "u", base)
					return
				}
				got, lerr = c.st.RecordLogin(t.Context(), "t", "u", base.Add(time.Second))
			})
			if lerr != nil || (derr != nil && !errors.Is(derr, auth.ErrConflict)) {
				t.Fatalf("round %d: DeactivateIdle %v, RecordLogin %v", round, derr, lerr)
			}
			final := c.get("t", "u")
			switch {
			case derr == nil && got.Status != auth.StatusDeactivated:
				t.Fatalf("round %d: deactivated as idle, yet a sign-in before it returned %q", round, got.Status)
			case derr != nil && (final.Status != auth.StatusActive || got.Status != auth.StatusActive):
				t.Fatalf("round %d: refused, yet the user is %q (sign-in saw %q)", round, final.Status, got.Status)
			}
		}
	})
	t.Run("DeactivateIdleRacesSetReactivatedAt", func(t *testing.T) {
		// A reactivation time written while the deactivation runs:
		// either it comes first and the user stays active, or after
		// and the user is deactivated; the time is never lost.
		at := base.Add(time.Second)
		for round := range 20 {
			c := &userChecker{t: t, st: newStore(t)}
			u := mkUser("t", "u")
			c.create(u)
			var derr, rerr error
			parallel(2, func(i int) {
				if i == 0 {
					derr = c.st.DeactivateIdle(t.Context(), "t", "u", base)
					return
				}
				rerr = c.st.SetReactivatedAt(t.Context(), "t", "u", at)
			})
			if rerr != nil || (derr != nil && !errors.Is(derr, auth.ErrConflict)) {
				t.Fatalf("round %d: DeactivateIdle %v, SetReactivatedAt %v", round, derr, rerr)
			}
			u.ReactivatedAt = at
			if derr == nil {
				u.Status = auth.StatusDeactivated
			}
			c.wantUser(u)
		}
	})
	t.Run("RecordLoginSeesStatus", func(t *testing.T) {
		// A RecordLogin that starts after SetStatus returned sees the new
		// status, and each returns the user as its own update left it.
		c := &userChecker{t: t, st: newStore(t)}
		c.create(mkUser("t", "u"))
		var deactivated atomic.Bool
		parallel(n+1, func(i int) {
			if i == n/2 {
				if err := c.st.SetStatus(t.Context(), "t", "u", auth.StatusDeactivated); err != nil {
					t.Errorf("SetStatus: %v", err)
				}
				deactivated.Store(true)
				return
			}
			at := base.Add(time.Duration(i) * sec)
			after := deactivated.Load()
			got, err := c.st.RecordLogin(t.Context(), "t", "u", at)
			switch {
			case err != nil:
				t.Errorf("RecordLogin %d: %v", i, err)
			case !got.LastLoginAt.Equal(at):
				t.Errorf("RecordLogin(%v) returned LastLoginAt %v", at, got.LastLoginAt)
			case after && got.Status != auth.StatusDeactivated:
				t.Errorf("RecordLogin %d started after SetStatus returned, but returned status %q", i, got.Status)
			}
		})
		if got := c.get("t", "u"); got.Status != auth.StatusDeactivated {
			t.Errorf("Status = %q, want deactivated", got.Status)
		}
	})
}

// race creates us in parallel and checks that exactly one succeeds and
// every other fails with lose. It returns the winner, stored as given.
func (c *userChecker) race(us []auth.User, lose error) auth.User {
	c.t.Helper()
	var mu sync.Mutex
	var won []auth.User
	parallel(len(us), func(i int) {
		err := c.st.CreateUser(c.t.Context(), us[i])
		switch {
		case err == nil:
			mu.Lock()
			won = append(won, us[i])
			mu.Unlock()
		case !errors.Is(err, lose):
			c.t.Errorf("CreateUser(%s) = %v, want nil or %v", ref(us[i]), err, lose)
		}
	})
	if len(won) != 1 {
		c.t.Fatalf("%d CreateUsers succeeded, want exactly 1: %s", len(won), refs(won))
	}
	c.wantUser(won[0])
	return won[0]
}
