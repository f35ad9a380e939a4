package authtest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

// The multi-key calls of auth.BatchThrottleStore, run on the store as
// auth.BatchThrottle gives it (the store itself when it has them, else the
// loop of single-key calls that defines them) and checked against the
// model of throttle.go: ReserveAll is Limit.Apply of each key in order up
// to the first refused one, Settle is Record.GiveBack (Release) or Reset
// of each key in order.

// batchChecker runs multi-key calls on a throttleChecker and logs them for
// failure messages.
type batchChecker struct {
	*throttleChecker
	log  []string
	lims map[string]auth.Limit // the limit each key was last reserved under, for Peek
}

func newBatchChecker(c *throttleChecker) *batchChecker {
	return &batchChecker{throttleChecker: c, lims: make(map[string]auth.Limit)}
}

// history lists the last calls, for failure messages.
func (c *batchChecker) history() string {
	l := c.log[max(0, len(c.log)-12):]
	more := ""
	if len(c.log) > 12 {
		more = "…, "
	}
	return "after " + more + strings.Join(l, ", ")
}

// limit is the limit key is peeked under.
func (c *batchChecker) limit(key string) auth.Limit {
	if l, ok := c.lims[key]; ok {
		return l
	}
	return growing
}

// reserveAll calls ReserveAll(keys) at base+at and checks its Reservations
// against the model; want, if given, is what the model gives (see
// describeRes), one per Reservation. Then it Peeks every key of the call.
func (c *batchChecker) reserveAll(at time.Duration, keys []auth.ThrottleKey, want ...string) {
	c.t.Helper()
	now := base.Add(at)
	where := fmt.Sprintf("ReserveAll(%s) at %s", describeKeys(keys), offset(at))
	c.log = append(c.log, where)
	var model []auth.Reservation
	for _, k := range keys {
		rec, r := k.Limit.Apply(c.model[k.Key], now)
		c.model[k.Key] = rec
		c.lims[k.Key] = k.Limit
		model = append(model, r)
		if !r.Allowed {
			break
		}
	}
	if want != nil {
		c.wantScenario(where, strings.Join(want, "; "), describeAll(model, now))
	}
	got, err := c.batch.ReserveAll(c.t.Context(), now, keys)
	if err != nil {
		c.t.Fatalf("%s: %v", where, err)
	}
	if len(got) != len(model) {
		c.t.Fatalf("%s = %d Reservations [%s], want %d [%s] (%s)",
			where, len(got), describeAll(got, now), len(model), describeAll(model, now), c.history())
	}
	for i := range model {
		if d := diffRes(got[i], model[i]); d != "" {
			c.t.Fatalf("%s: Reservation %d of %.20q = %s (%s), want %s (%s)",
				where, i, keys[i].Key, describeRes(got[i], now), d, describeRes(model[i], now), c.history())
		}
		c.add(keys[i].Key, model[i], got[i])
	}
	c.peekAll(where, now, keys)
}

// settleKey is one key of a Settle: reset, or give back the reservation
// which names (see latest).
type settleKey struct {
	key   string
	reset bool
	which int
}

// settle calls Settle(keys), then Peeks every key of the call at base+at.
func (c *batchChecker) settle(at time.Duration, keys ...settleKey) {
	c.t.Helper()
	now := base.Add(at)
	names := make([]string, len(keys))
	ss := make([]auth.Settlement, len(keys))
	for i, k := range keys {
		ss[i] = auth.Settlement{Key: k.key, Reset: k.reset}
		if k.reset {
			names[i] = fmt.Sprintf("reset %.20q", k.key)
			delete(c.model, k.key)
		} else {
			names[i] = fmt.Sprintf("release %.20q #%d", k.key, k.which)
			ss[i].Reservation = c.giveBack(k.key, c.pick(k.key, k.which))
		}
	}
	where := fmt.Sprintf("Settle(%s) at %s", strings.Join(names, ", "), offset(at))
	c.log = append(c.log, where)
	if err := c.batch.Settle(c.t.Context(), ss); err != nil {
		c.t.Fatalf("%s: %v", where, err)
	}
	tk := make([]auth.ThrottleKey, len(keys))
	for i, k := range keys {
		tk[i] = auth.ThrottleKey{Key: k.key, Limit: c.limit(k.key)}
	}
	c.peekAll(where, now, tk)
}

// peekAll checks Peek of every key at now against the model.
func (c *batchChecker) peekAll(where string, now time.Time, keys []auth.ThrottleKey) {
	c.t.Helper()
	for _, k := range keys {
		c.wantPeek(fmt.Sprintf("%s, then Peek(%.20q)", where, k.Key), k.Key, now, k.Limit, c.history)
	}
}

// describeKeys writes keys as `"ip:192.0.2.1" 3/1h0m0s, …` (key,
// Limit.Max and ResetAfter).
func describeKeys(keys []auth.ThrottleKey) string {
	l := make([]string, len(keys))
	for i, k := range keys {
		l[i] = fmt.Sprintf("%.20q %d/%v", k.Key, k.Limit.Max, k.Limit.ResetAfter)
	}
	return strings.Join(l, ", ")
}

// describeAll describes reservations made at now, joined by "; ".
func describeAll(rs []auth.Reservation, now time.Time) string {
	l := make([]string, len(rs))
	for i, r := range rs {
		l[i] = describeRes(r, now)
	}
	return strings.Join(l, "; ")
}

// tk is a ThrottleKey.
func tk(key string, lim auth.Limit) auth.ThrottleKey { return auth.ThrottleKey{Key: key, Limit: lim} }

// keys lists ThrottleKeys.
func keys(k ...auth.ThrottleKey) []auth.ThrottleKey { return k }

// releaseKey, releaseAt and resetKey are settleKeys: give back key's
// latest reservation, its reservation number which, or reset it.
func releaseKey(key string) settleKey           { return settleKey{key: key, which: latest} }
func releaseAt(key string, which int) settleKey { return settleKey{key: key, which: which} }
func resetKey(key string) settleKey             { return settleKey{key: key, reset: true} }

// batchTest is a subtest on a fresh store through a batchChecker.
func batchTest(name string, f func(c *batchChecker)) test[*throttleChecker] {
	return test[*throttleChecker]{name, func(t *testing.T, c *throttleChecker) { f(newBatchChecker(c)) }}
}

var otherKey = similarKey[0]

var reserveAllTests = []test[*throttleChecker]{
	batchTest("EachKeyAsReserve", func(c *batchChecker) {
		// Each key under its own limit, as two Reserves would.
		ip, acct := tk(ipKey, growing), tk(defaultKey, strict)
		c.reserveAll(0, keys(ip, acct), "ok 1", "ok 1")
		c.reserveAll(sec, keys(ip, acct), "ok 2", "ok 2, lock 1 for 1m0s")
		c.reserveAll(mn+sec, keys(ip, acct), "ok 3, lock 1 for 1m0s", "ok 1 after 1 locks")
		c.reserveAll(mn+sec, keys(acct, ip), "ok 2, lock 2 for 2m0s", "locked, 1m0s left")
	}),
	batchTest("StopsAtFirstRefused", func(c *batchChecker) {
		// The IP is locked: the account is not counted.
		c.reserveAll(0, keys(tk(ipKey, single)), "ok 1, lock 1 for 30s")
		c.reserveAll(sec, keys(tk(ipKey, single), tk(defaultKey, growing)), "locked, 29s left")
		c.reserveAll(sec, keys(tk(defaultKey, growing), tk(ipKey, single), tk(otherKey, growing)), "ok 1", "locked, 29s left")
		// The account is locked: the IP before it stays counted.
		c.reserveAll(2*sec, keys(tk(defaultKey, growing), tk(defaultKey, growing)), "ok 2", "ok 3, lock 1 for 1m0s")
		c.reserveAll(30*sec, keys(tk(ipKey, single), tk(defaultKey, growing), tk(otherKey, growing)),
			"ok 1, lock 2 for 1m0s", "locked, 32s left")
	}),
	batchTest("KeyListedTwice", func(c *batchChecker) {
		k := tk(defaultKey, growing)
		c.reserveAll(0, keys(k, k), "ok 1", "ok 2")
		c.reserveAll(sec, keys(k, k, k), "ok 3, lock 1 for 1m0s", "locked, 1m0s left")
		c.reserveAll(mn+sec, keys(k, tk(defaultKey, single)), "ok 1 after 1 locks", "ok 2, lock 2 for 1m0s")
	}),
	batchTest("NoKeys", func(c *batchChecker) {
		c.reserveAll(0, keys(tk(defaultKey, growing)), "ok 1")
		c.reserveAll(sec, nil)
		c.reserveAll(sec, []auth.ThrottleKey{})
		c.peekAll("after ReserveAll of no keys", base.Add(sec), keys(tk(defaultKey, growing)))
	}),
	batchTest("ForgottenKeys", func(c *batchChecker) {
		ip, acct := tk(ipKey, growing), tk(defaultKey, long)
		c.reserveAll(0, keys(ip, acct), "ok 1", "ok 1")
		c.reserveAll(sec, keys(acct), "ok 2, lock 1 for 4m0s")
		c.reserveAll(hour+sec, keys(ip, acct), "ok 1", "ok 1")
	}),
}

var settleTests = []test[*throttleChecker]{
	batchTest("ReleasesAndResets", func(c *batchChecker) {
		ip, acct := tk(ipKey, growing), tk(defaultKey, growing)
		c.reserveAll(0, keys(ip, acct), "ok 1", "ok 1")
		c.reserveAll(sec, keys(ip, acct), "ok 2", "ok 2")
		c.settle(sec, releaseKey(ipKey), resetKey(defaultKey))
		c.reserveAll(2*sec, keys(ip, acct), "ok 2", "ok 1")
		c.settle(2*sec, resetKey(ipKey), releaseKey(defaultKey))
		c.reserveAll(3*sec, keys(ip, acct), "ok 1", "ok 1")
	}),
	batchTest("ReleaseLiftsOwnLockResetLiftsAny", func(c *batchChecker) {
		c.reserveAll(0, keys(tk(defaultKey, single)), "ok 1, lock 1 for 30s")
		c.settle(sec, releaseKey(defaultKey))
		c.reserveAll(2*sec, keys(tk(defaultKey, single)), "ok 1, lock 1 for 30s")
		c.reserveAll(3*sec, keys(tk(defaultKey, single)), "locked, 29s left")
		c.settle(3*sec, resetKey(defaultKey))
		c.reserveAll(3*sec, keys(tk(defaultKey, single)), "ok 1, lock 1 for 30s")
		c.reserveAll(year, keys(tk(ipKey, strict), tk(ipKey, strict)), "ok 1", "ok 2, lock 1 for 1m0s")
		c.settle(year, releaseAt(ipKey, 0))
		c.reserveAll(year+sec, keys(tk(ipKey, strict)), "locked, 59s left")
		c.settle(year+sec, releaseAt(ipKey, 1), releaseAt(ipKey, 2))
		c.reserveAll(year+2*sec, keys(tk(ipKey, strict)), "ok 1")
	}),
	batchTest("KeyListedTwice", func(c *batchChecker) {
		k := tk(defaultKey, growing)
		c.reserveAll(0, keys(k, k), "ok 1", "ok 2")
		c.settle(sec, releaseKey(defaultKey), releaseKey(defaultKey), releaseKey(defaultKey))
		c.reserveAll(sec, keys(k), "ok 1")
		c.settle(sec, resetKey(defaultKey), releaseKey(defaultKey))
		c.reserveAll(sec, keys(k), "ok 1")
	}),
	batchTest("UnknownAndNoKeys", func(c *batchChecker) {
		c.settle(0, releaseKey(defaultKey), resetKey(ipKey), releaseKey(otherKey), resetKey(otherKey))
		c.settle(0)
		if err := c.batch.Settle(c.t.Context(), nil); err != nil {
			c.t.Fatalf("Settle(nil): %v", err)
		}
		c.reserveAll(sec, keys(tk(defaultKey, growing), tk(ipKey, growing)), "ok 1", "ok 1")
		c.settle(sec)
		c.peekAll("after Settle of no keys", base.Add(sec), keys(tk(defaultKey, growing), tk(ipKey, growing)))
	}),
}

// batchScenario is 300 random multi-key calls (and a few single-key ones)
// on three keys, from a fixed seed: ReserveAll of one to three keys (a key
// may come twice); Settle of one to three keys, a quarter of them reset.
// Each key keeps its ResetAfter, as the facade's keys do (a store may
// forget a record by the limit of its last write), but the first two
// switch between growing and strict, as an account's PermanentAfter
// depends on whether it exists.
func batchScenario(name string, seed uint64) test[*throttleChecker] {
	return batchTest(name, func(c *batchChecker) {
		rng := rand.New(rand.NewPCG(seed, 0x6261746368))
		names := []string{ipKey, defaultKey, otherKey}
		lims := [][]auth.Limit{{growing, strict}, {strict, growing}, {single}}
		var at time.Duration
		for range 300 {
			at += wait(rng, []auth.Limit{growing, single, long}[rng.IntN(3)])
			n := 1 + rng.IntN(3)
			switch r := rng.IntN(100); {
			case r < 60:
				ks := make([]auth.ThrottleKey, n)
				for i := range ks {
					k := rng.IntN(len(names))
					ks[i] = tk(names[k], lims[k][rng.IntN(len(lims[k]))])
				}
				c.reserveAll(at, ks)
			case r < 90:
				ss := make([]settleKey, n)
				for i := range ss {
					ss[i] = settleKey{key: names[rng.IntN(len(names))], reset: rng.IntN(4) == 0, which: randomPick - rng.IntN(1000)}
				}
				c.settle(at, ss...)
			default:
				// A single-key Reserve between the batches.
				k := rng.IntN(len(names))
				key, lim := names[k], lims[k][0]
				rec, want := lim.Apply(c.model[key], base.Add(at))
				c.model[key] = rec
				c.lims[key] = lim
				where := fmt.Sprintf("Reserve(%.20q) at %s", key, offset(at))
				c.log = append(c.log, where)
				got, err := c.st.Reserve(c.t.Context(), key, base.Add(at), lim)
				if err != nil {
					c.t.Fatalf("%s: %v", where, err)
				}
				if d := diffRes(got, want); d != "" {
					c.t.Fatalf("%s = %s (%s), want %s (%s)", where, describeRes(got, base.Add(at)), d, describeRes(want, base.Add(at)), c.history())
				}
			}
		}
		for _, k := range names {
			c.peekAll("at the end", base.Add(at), keys(tk(k, c.limit(k))))
		}
	})
}

var batchScenarios = []test[*throttleChecker]{
	batchScenario("Random1", 1),
	batchScenario("Random2", 2),
	batchScenario("Random3", 3),
	batchScenario("Random4", 4),
}

// runBatchConcurrent checks the multi-key calls under concurrency: pairs
// of keys reserved together never get more than either key's limit, and
// calls on pairs that share keys (listed in the same order) neither
// deadlock nor fail nor lose a count.
func runBatchConcurrent(t *testing.T, newStore func(t *testing.T) auth.ThrottleStore) {
	t.Helper()
	const acct = defaultKey
	for _, n := range attempts {
		for _, pc := range []struct {
			name     string
			ip, acct auth.Limit
		}{
			// The IP locks after 7 attempts, 3 of which reach the
			// account, which locks after 3.
			{"IPLocksFirst", auth.Limit{Max: 7, ResetAfter: hour, LockFor: mn, MaxLockFor: hour},
				auth.Limit{Max: 3, ResetAfter: hour, LockFor: mn, MaxLockFor: hour}},
			// The IP never locks; the account locks after 5.
			{"AccountLocks", auth.Limit{Max: n + 1, ResetAfter: hour, LockFor: mn, MaxLockFor: hour},
				auth.Limit{Max: 5, ResetAfter: hour, LockFor: mn, MaxLockFor: hour}},
		} {
			t.Run(fmt.Sprintf("ReserveAllOnePair/%s/%d", pc.name, n), func(t *testing.T) {
				st := auth.BatchThrottle(newStore(t))
				at := func(i int) time.Time { return base.Add(time.Duration(i) * us) }
				res := make([][]auth.Reservation, n)
				parallel(n, func(i int) {
					r, err := st.ReserveAll(t.Context(), at(i), keys(tk(ipKey, pc.ip), tk(acct, pc.acct)))
					if err != nil {
						t.Errorf("ReserveAll %d: %v", i, err)
					}
					res[i] = r
				})
				if t.Failed() {
					return
				}
				var ipRes, acctRes []auth.Reservation
				var acctAt []time.Time
				for i, r := range res {
					if len(r) == 0 || len(r) > 2 || (len(r) == 1) == r[0].Allowed {
						t.Fatalf("ReserveAll %d = %+v: want the IP's Reservation, then the account's if the IP was allowed", i, r)
					}
					ipRes = append(ipRes, r[0])
					if len(r) == 2 {
						acctRes = append(acctRes, r[1])
						acctAt = append(acctAt, at(i))
					}
				}
				if pc.ip.Max <= n {
					checkOneKey(t, st, ipKey, pc.ip, ipRes, at)
				} else {
					var failures []int
					for _, r := range ipRes {
						if !r.Allowed || r.Locks {
							t.Fatalf("IP Reservation %+v: want allowed, no lock", r)
						}
						failures = append(failures, r.Failures)
					}
					slices.Sort(failures)
					for i, f := range failures {
						if f != i+1 {
							t.Fatalf("IP Failures %v, want 1 to %d once each", failures, n)
						}
					}
				}
				checkOneKey(t, st, acct, pc.acct, acctRes, func(j int) time.Time {
					if j < len(acctAt) {
						return acctAt[j]
					}
					return at(n)
				})
			})
		}
	}
	runBurstOfSuccesses(t, newStore)
	t.Run("OverlappingPairs", func(t *testing.T) {
		// Goroutines reserve and settle pairs of 3 IPs and 3 accounts,
		// the IP always first, each settling its own reservations (the
		// account reset or released); a quarter use the single-key calls
		// instead. No call fails, and as every reservation is given back
		// or reset after it was made, every key ends with no failures.
		st := auth.BatchThrottle(newStore(t))
		const ips, accts, rounds = 3, 3, 4
		n := attempts[len(attempts)-1]
		lim := auth.Limit{Max: 1 << 20, ResetAfter: hour, LockFor: mn, MaxLockFor: hour}
		ipOf := func(i int) string { return fmt.Sprintf("ip:203.0.113.%d", i%ips) }
		acctOf := func(i int) string { return fmt.Sprintf("acct:acme:u%d@example.com", i/ips%accts) }
		parallel(n, func(i int) {
			ctx, ip, acct := t.Context(), ipOf(i), acctOf(i)
			for r := range rounds {
				now := base.Add(time.Duration(r) * sec)
				reset := (i+r)%2 == 0
				if i%4 == 3 {
					if !singleCalls(t, st, i, now, lim, ip, acct, reset) {
						return
					}
					continue
				}
				res, err := st.ReserveAll(ctx, now, keys(tk(ip, lim), tk(acct, lim)))
				if err != nil || len(res) != 2 || !res[0].Allowed || !res[1].Allowed {
					t.Errorf("goroutine %d: ReserveAll(%q, %q) = %+v, %v; want both allowed", i, ip, acct, res, err)
					return
				}
				if err := st.Settle(ctx, []auth.Settlement{{Key: ip, Reservation: res[0]}, {Key: acct, Reset: reset, Reservation: res[1]}}); err != nil {
					t.Errorf("goroutine %d: Settle(%q, %q): %v", i, ip, acct, err)
					return
				}
			}
		})
		if t.Failed() {
			return
		}
		for i := range max(ips, accts) {
			for _, k := range []string{ipOf(i), acctOf(i * ips)} {
				if s := mustPeek(t, st, k, base.Add(rounds*sec), lim); s != (auth.State{}) {
					t.Errorf("Peek(%q) = %+v, want the zero State: a reservation was lost or given back twice", k, s)
				}
			}
		}
	})
}

// runBurstOfSuccesses is n sign-ins from one client IP at once, each
// with its own account, all reserved before any is settled: the IP's
// reservation that reaches its Max starts a lock. Each sign-in succeeds:
// its IP reservation is given back and its account reset, in parallel.
// The lock is lifted and the IP has no failures.
func runBurstOfSuccesses(t *testing.T, newStore func(t *testing.T) auth.ThrottleStore) {
	for _, n := range attempts {
		t.Run(fmt.Sprintf("BurstOfSuccesses/%d", n), func(t *testing.T) {
			st := auth.BatchThrottle(newStore(t))
			ipLim := auth.Limit{Max: n, ResetAfter: hour, LockFor: mn, MaxLockFor: hour}
			acctLim := auth.Limit{Max: 5, ResetAfter: hour, LockFor: mn, MaxLockFor: hour}
			acct := func(i int) string { return fmt.Sprintf("acct:acme:u%d@example.com", i) }
			at := func(i int) time.Time { return base.Add(time.Duration(i) * us) }
			res := make([][]auth.Reservation, n)
			parallel(n, func(i int) {
				r, err := st.ReserveAll(t.Context(), at(i), keys(tk(ipKey, ipLim), tk(acct(i), acctLim)))
				if err != nil || len(r) != 2 || !r[0].Allowed || !r[1].Allowed {
					t.Errorf("ReserveAll %d = %+v, %v; want both allowed", i, r, err)
				}
				res[i] = r
			})
			if t.Failed() {
				return
			}
			lockers := 0
			for _, r := range res {
				if r[0].Locks {
					lockers++
				}
			}
			if lockers != 1 {
				t.Fatalf("%d of %d reservations of an IP with Max %d started a lock, want 1", lockers, n, n)
			}
			parallel(n, func(i int) {
				if err := st.Settle(t.Context(), []auth.Settlement{{Key: ipKey, Reservation: res[i][0]},
					{Key: acct(i), Reset: true}}); err != nil {
					t.Errorf("Settle %d: %v", i, err)
				}
			})
			if s := mustPeek(t, st, ipKey, at(n), ipLim); s != (auth.State{}) {
				t.Errorf("Peek of the IP after %d successes = %+v, want the zero State", n, s)
			}
			if r := mustReserve(t, st, ipKey, at(n), ipLim); !r.Allowed || r.Failures != 1 || r.Lockouts != 0 {
				t.Errorf("Reserve of the IP after %d successes = %+v, want allowed, Failures 1, no lock", n, r)
			}
		})
	}
}

// singleCalls reserves ip then acct with Reserve, then releases ip and
// releases or resets acct; it reports whether every call succeeded.
func singleCalls(t *testing.T, st auth.ThrottleStore, i int, now time.Time, lim auth.Limit, ip, acct string, reset bool) bool {
	ctx := t.Context()
	var res [2]auth.Reservation
	for j, k := range []string{ip, acct} {
		r, err := st.Reserve(ctx, k, now, lim)
		if err != nil || !r.Allowed {
			t.Errorf("goroutine %d: Reserve(%q) = %+v, %v; want allowed", i, k, r, err)
			return false
		}
		res[j] = r
	}
	err := st.Release(ctx, ip, res[0])
	switch {
	case err != nil:
	case reset:
		err = st.Reset(ctx, acct)
	default:
		err = st.Release(ctx, acct, res[1])
	}
	if err != nil {
		t.Errorf("goroutine %d: %v", i, err)
		return false
	}
	return true
}
