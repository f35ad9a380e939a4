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

const (
	us   = time.Microsecond
	sec  = time.Second
	mn   = time.Minute
	hour = time.Hour
	year = 365 * day
)

// The limits of the scenarios. Each is valid (runThrottle checks).
var (
	// growing allows 3 attempts, then locks for 1, 2, 4 and 8 minutes
	// (the cap); a key is forgotten an hour after its last attempt.
	growing = auth.Limit{Max: 3, ResetAfter: hour, LockFor: mn, MaxLockFor: 8 * mn}
	// strict allows 2 attempts, locks for 1, 2 and 4 minutes, and makes
	// the fourth lock permanent.
	strict = auth.Limit{Max: 2, ResetAfter: hour, LockFor: mn, MaxLockFor: 10 * mn, PermanentAfter: 3}
	// single locks at every attempt, for 30 s growing to an hour.
	single = auth.Limit{Max: 1, ResetAfter: 2 * hour, LockFor: 30 * sec, MaxLockFor: hour}
	// long has locks of 4, 8 and 16 minutes against a ResetAfter of 10:
	// the third lock ends with the key forgotten.
	long = auth.Limit{Max: 2, ResetAfter: 10 * mn, LockFor: 4 * mn, MaxLockFor: hour}
)

// defaultKey is the key of a step that names none: an account key as the
// facade builds them.
const defaultKey = "acct:acme:alice@example.com"

type op int

const (
	opReserve op = iota
	opRelease
	opReset
	opPeek
)

func (o op) String() string {
	return [...]string{"Reserve", "Release", "Reset", "Peek"}[o]
}

// step is one call of a scenario.
type step struct {
	op  op
	at  time.Duration // since base; for Release and Reset, the time of the Peek that follows
	key string        // "" is defaultKey
	lim *auth.Limit   // nil is the scenario's limit
	// which is the reservation a Release gives back (see pick).
	which int
	// want, if set, is what the model gives (see describeRes and
	// describeState): a check of the scenario itself, so that each
	// scenario tests what its name says.
	want string
}

// The step constructors return slices so that a scenario is a list of
// them (see scenario.steps).

// reserve is one Reserve at base+at.
func reserve(at time.Duration, want string) []step {
	return []step{{op: opReserve, at: at, want: want}}
}

// fails is n Reserves at base+at; want describes the last.
func fails(at time.Duration, n int, want string) []step {
	s := make([]step, n)
	for i := range s {
		s[i] = step{op: opReserve, at: at}
	}
	s[n-1].want = want
	return s
}

// Which reservation a Release gives back: which ≥ 0 is the reservation
// made by the key's Reserve number which (from 0, refused ones included,
// given back already or not); latest is the key's most recent allowed
// reservation not given back yet; which ≤ randomPick picks one of those
// by -which. With none to pick, a Release gives back the zero
// Reservation, which counted nothing.
const (
	latest     = -1
	randomPick = -2
)

// release is n Releases, followed by a Peek at base+at, each giving back
// the key's latest reservation not given back yet.
func release(at time.Duration, n int) []step {
	s := make([]step, n)
	for i := range s {
		s[i] = step{op: opRelease, at: at, which: latest}
	}
	return s
}

// giveBack is a Release of the reservations made by the key's Reserves
// number which… (from 0), each followed by a Peek at base+at.
func giveBack(at time.Duration, which ...int) []step {
	s := make([]step, len(which))
	for i, w := range which {
		s[i] = step{op: opRelease, at: at, which: w}
	}
	return s
}

// reset is one Reset, followed by a Peek at base+at.
func reset(at time.Duration) []step { return []step{{op: opReset, at: at}} }

// peek is one Peek at base+at.
func peek(at time.Duration, want string) []step {
	return []step{{op: opPeek, at: at, want: want}}
}

// on makes steps act on key.
func on(key string, steps []step) []step {
	steps = slices.Clone(steps)
	for i := range steps {
		steps[i].key = key
	}
	return steps
}

// with makes steps use l instead of the scenario's limit.
func with(l auth.Limit, steps []step) []step {
	steps = slices.Clone(steps)
	for i := range steps {
		steps[i].lim = &l
	}
	return steps
}

// toPermanent takes a key under strict to its permanent lock, at base+7m.
func toPermanent() [][]step {
	return [][]step{
		fails(0, 2, "ok 2, lock 1 for 1m0s"),
		fails(mn, 2, "ok 2, lock 2 for 2m0s"),
		fails(3*mn, 2, "ok 2, lock 3 for 4m0s"),
		fails(7*mn, 2, "ok 2, lock 4 forever"),
	}
}

// scenario is a named sequence of steps under a limit.
type scenario struct {
	name  string
	lim   auth.Limit
	steps [][]step
}

var reserveScenarios = []scenario{
	{"AllowedUpToMaxThenLocked", growing, [][]step{
		fails(0, 2, "ok 2"),
		reserve(sec, "ok 3, lock 1 for 1m0s"),
		reserve(2*sec, "locked, 59s left"),
		reserve(2*sec, "locked, 59s left"),
	}},
	{"MaxOneLocksAtFirstAttempt", single, [][]step{
		reserve(0, "ok 1, lock 1 for 30s"),
		reserve(30*sec-us, "locked, 1µs left"),
		reserve(30*sec, "ok 1, lock 2 for 1m0s"),
	}},
	{"LockEndsAtLockedUntil", growing, [][]step{
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		reserve(mn-us, "locked, 1µs left"),
		peek(mn, "0 failures, 1 locks, lock ended 0s ago"),
		reserve(mn, "ok 1 after 1 locks"),
	}},
	{"LocksGrowDoubling", growing, [][]step{
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		fails(mn, 3, "ok 3, lock 2 for 2m0s"),
		fails(3*mn, 3, "ok 3, lock 3 for 4m0s"),
		reserve(7*mn-us, "locked, 1µs left"),
		fails(7*mn, 3, "ok 3, lock 4 for 8m0s"),
	}},
	{"LocksCappedAtMaxLockFor", growing, [][]step{
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		fails(mn, 3, "ok 3, lock 2 for 2m0s"),
		fails(3*mn, 3, "ok 3, lock 3 for 4m0s"),
		fails(7*mn, 3, "ok 3, lock 4 for 8m0s"),
		fails(15*mn, 3, "ok 3, lock 5 for 8m0s"),
		fails(23*mn, 3, "ok 3, lock 6 for 8m0s"),
		reserve(31*mn-us, "locked, 1µs left"),
	}},
	{"PermanentAfterK", strict, slices.Concat(toPermanent(), [][]step{
		reserve(7*mn+sec, "locked forever"),
		reserve(hour, "locked forever"),
		peek(10*year, "0 failures, 4 locks, locked forever"),
		reserve(10*year, "locked forever"),
	})},
	{"AttemptsDuringLockNotCounted", growing, [][]step{
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		reserve(sec, "locked, 59s left"),
		reserve(30*sec, "locked, 30s left"),
		fails(mn-us, 5, "locked, 1µs left"),
		// The lock ended when it was set to, and it was still lock 1.
		reserve(mn, "ok 1 after 1 locks"),
		fails(mn, 2, "ok 3, lock 2 for 2m0s"),
	}},
	{"AttemptsDuringLockDoNotDelayForgetting", growing, [][]step{
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		reserve(30*sec, "locked, 30s left"),
		reserve(mn-us, "locked, 1µs left"),
		peek(hour-us, "0 failures, 1 locks, lock ended 58m59.999999s ago"),
		reserve(hour, "ok 1"),
	}},
	{"ForgottenAfterResetAfter", growing, [][]step{
		reserve(0, "ok 1"),
		reserve(10*mn, "ok 2"),
		peek(70*mn-us, "2 failures"),
		peek(70*mn, "zero"),
		reserve(70*mn, "ok 1"),
	}},
	{"ForgettingRestartsLockHistory", growing, [][]step{
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		fails(mn, 3, "ok 3, lock 2 for 2m0s"),
		peek(61*mn-us, "0 failures, 2 locks, lock ended 57m59.999999s ago"),
		reserve(61*mn, "ok 1"),
		fails(61*mn, 2, "ok 3, lock 1 for 1m0s"),
	}},
	{"TimeLockedCountsTowardsResetAfter", long, [][]step{
		fails(0, 2, "ok 2, lock 1 for 4m0s"),
		peek(10*mn-us, "0 failures, 1 locks, lock ended 5m59.999999s ago"),
		reserve(10*mn, "ok 1"),
	}},
	{"LockAsLongAsResetAfterEndsForgotten", long, [][]step{
		fails(0, 2, "ok 2, lock 1 for 4m0s"),
		fails(4*mn, 2, "ok 2, lock 2 for 8m0s"),
		fails(12*mn, 2, "ok 2, lock 3 for 16m0s"),
		peek(28*mn-us, "0 failures, 3 locks, locked, 1µs left"),
		peek(28*mn, "zero"),
		reserve(28*mn, "ok 1"),
		reserve(28*mn, "ok 2, lock 1 for 4m0s"),
	}},
	{"LimitOfEachCall", growing, [][]step{
		// One key, reserved under different limits (the facade drops
		// PermanentAfter for an email that is not an account): each call
		// applies the limit it is given.
		reserve(0, "ok 1"),
		with(strict, reserve(sec, "ok 2, lock 1 for 1m0s")),
		reserve(mn+sec, "ok 1 after 1 locks"),
		with(single, reserve(mn+2*sec, "ok 2, lock 2 for 1m0s")),
		with(long, peek(2*mn+2*sec, "0 failures, 2 locks, lock ended 0s ago")),
		with(strict, fails(2*mn+2*sec, 2, "ok 2, lock 3 for 4m0s")),
	}},
	{"EarlierTimeFromAnotherReplica", growing, [][]step{
		// Replicas' clocks differ a little: Reserve applies the rule at
		// the now it is given, even if an earlier call had a later one.
		reserve(10*sec, "ok 1"),
		reserve(9*sec, "ok 2"),
		reserve(9*sec+500*time.Millisecond, "ok 3, lock 1 for 1m0s"),
		reserve(9*sec, "locked, 1m0.5s left"),
		reserve(mn+9*sec+500*time.Millisecond, "ok 1 after 1 locks"),
	}},
}

var releaseScenarios = []scenario{
	{"GivesBackOne", growing, [][]step{
		fails(0, 2, "ok 2"),
		release(sec, 1),
		peek(sec, "1 failures"),
		reserve(2*sec, "ok 2"),
		reserve(3*sec, "ok 3, lock 1 for 1m0s"),
	}},
	{"NeverBelowZero", growing, [][]step{
		// Given back after a Reset: off the count started again, never
		// below zero.
		fails(0, 2, "ok 2"),
		reset(sec),
		reserve(sec, "ok 1"),
		giveBack(sec, 0, 1),
		peek(sec, "zero"),
		fails(2*sec, 2, "ok 2"),
		reserve(2*sec, "ok 3, lock 1 for 1m0s"),
	}},
	{"LiftsLockItStarted", growing, [][]step{
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		release(sec, 1),
		peek(sec, "2 failures"),
		reserve(2*sec, "ok 3, lock 1 for 1m0s"),
	}},
	{"LiftsLockOfTheKeysLaterLock", growing, [][]step{
		// The growing wait goes back too.
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		fails(mn, 3, "ok 3, lock 2 for 2m0s"),
		release(mn+sec, 1),
		peek(mn+sec, "2 failures, 1 locks"),
		reserve(mn+2*sec, "ok 3, lock 2 for 2m0s"),
	}},
	{"DoesNotLiftLockOfAnother", growing, [][]step{
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		giveBack(sec, 0, 1),
		peek(sec, "0 failures, 1 locks, locked, 59s left"),
		reserve(30*sec, "locked, 30s left"),
		reserve(mn, "ok 1 after 1 locks"),
	}},
	{"LockRestoresFailuresLessThoseGivenBack", growing, [][]step{
		// Given back during the lock, then the lock's own: as if the
		// lock's had been given back first.
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		giveBack(sec, 0),
		peek(sec, "0 failures, 1 locks, locked, 59s left"),
		giveBack(sec, 2),
		peek(sec, "1 failures"),
		giveBack(sec, 1),
		peek(sec, "zero"),
		fails(2*sec, 2, "ok 2"),
		reserve(2*sec, "ok 3, lock 1 for 1m0s"),
	}},
	{"AllGivenBackInAnyOrder", growing, [][]step{
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		release(sec, 3),
		peek(sec, "zero"),
		fails(2*sec, 3, "ok 3, lock 1 for 1m0s"),
		giveBack(3*sec, 3, 4),
		peek(3*sec, "0 failures, 1 locks, locked, 59s left"),
		giveBack(3*sec, 5),
		peek(3*sec, "zero"),
	}},
	{"LockNoLongerCurrent", growing, [][]step{
		// A reservation was counted after the lock ended: the lock is
		// over, and stays on the key's record.
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		reserve(mn, "ok 1 after 1 locks"),
		giveBack(mn, 2),
		peek(mn, "1 failures, 1 locks, lock ended 0s ago"),
		fails(mn+sec, 2, "ok 3, lock 2 for 2m0s"),
	}},
	{"LiftsPermanentLockItStarted", strict, slices.Concat(toPermanent(), [][]step{
		release(8*mn, 1),
		peek(8*mn, "1 failures, 3 locks"),
		reserve(9*mn, "ok 2, lock 4 forever"),
	})},
	{"DoesNotLiftPermanentLockOfAnother", strict, slices.Concat(toPermanent(), [][]step{
		giveBack(8*mn, 6),
		reserve(year, "locked forever"),
	})},
	{"RefusedReservationChangesNothing", growing, [][]step{
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		reserve(sec, "locked, 59s left"),
		giveBack(sec, 3),
		peek(sec, "0 failures, 1 locks, locked, 59s left"),
	}},
	{"ForgetsEarlierFailuresOnTime", growing, [][]step{
		// The time of the last attempt goes back with the reservation:
		// successes do not keep older failures from being forgotten.
		reserve(0, "ok 1"),
		reserve(10*mn, "ok 2"),
		release(10*mn, 1),
		peek(60*mn-us, "1 failures"),
		peek(60*mn, "zero"),
		reserve(60*mn, "ok 1"),
	}},
	{"KeepsTimeOfAttemptCountedAfter", growing, [][]step{
		reserve(0, "ok 1"),
		reserve(10*mn, "ok 2"),
		giveBack(10*mn, 0),
		peek(70*mn-us, "1 failures"),
		peek(70*mn, "zero"),
	}},
	{"KeepsTimeOfAttemptCountedInSameInstant", growing, [][]step{
		reserve(10*mn, "ok 1"),
		reserve(10*mn, "ok 2"),
		giveBack(10*mn, 0),
		peek(70*mn-us, "1 failures"),
		giveBack(10*mn, 1),
		peek(10*mn, "zero"),
	}},
	{"UnknownKeyIsNoError", growing, [][]step{
		release(0, 2),
		peek(0, "zero"),
		on(ipKey, reserve(0, "ok 1")),
		on(ipKey, reset(0)),
		on(ipKey, release(0, 1)),
		on(ipKey, peek(0, "zero")),
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
	}},
	{"ForgottenKey", growing, [][]step{
		fails(0, 2, "ok 2"),
		release(hour, 1),
		peek(hour, "zero"),
		reserve(hour, "ok 1"),
	}},
}

var resetScenarios = []scenario{
	{"ForgetsFailures", growing, [][]step{
		fails(0, 2, "ok 2"),
		reset(sec),
		peek(sec, "zero"),
		fails(sec, 2, "ok 2"),
		reserve(sec, "ok 3, lock 1 for 1m0s"),
	}},
	{"LiftsTemporaryLockAndHistory", growing, [][]step{
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		fails(mn, 3, "ok 3, lock 2 for 2m0s"),
		reset(mn + 30*sec),
		peek(mn+30*sec, "zero"),
		reserve(mn+30*sec, "ok 1"),
		fails(mn+30*sec, 2, "ok 3, lock 1 for 1m0s"),
	}},
	{"LiftsPermanentLock", strict, slices.Concat(toPermanent(), [][]step{
		reset(10 * year),
		peek(10*year, "zero"),
		reserve(10*year, "ok 1"),
		reserve(10*year, "ok 2, lock 1 for 1m0s"),
	})},
	{"UnknownKeyIsNoError", growing, [][]step{
		reset(0),
		reset(0),
		peek(0, "zero"),
		reserve(0, "ok 1"),
	}},
}

var peekScenarios = []scenario{
	{"UnknownKeyIsZero", strict, [][]step{
		peek(0, "zero"),
		peek(10*year, "zero"),
		with(growing, peek(-year, "zero")),
	}},
	{"ForgottenKeyIsZero", growing, [][]step{
		fails(0, 2, "ok 2"),
		peek(hour, "zero"),
		fails(2*hour, 3, "ok 3, lock 1 for 1m0s"),
		peek(3*hour, "zero"),
	}},
	{"ReportsLock", strict, [][]step{
		reserve(0, "ok 1"),
		peek(0, "1 failures"),
		reserve(sec, "ok 2, lock 1 for 1m0s"),
		peek(sec, "0 failures, 1 locks, locked, 1m0s left"),
		peek(mn, "0 failures, 1 locks, locked, 1s left"),
		peek(mn+sec, "0 failures, 1 locks, lock ended 0s ago"),
	}},
	{"ChangesNothing", growing, [][]step{
		reserve(0, "ok 1"),
		peek(0, "1 failures"),
		peek(0, "1 failures"),
		peek(sec, "1 failures"),
		peek(hour-us, "1 failures"),
		reserve(hour-us, "ok 2"),
		reserve(hour-us, "ok 3, lock 1 for 1m0s"),
		peek(hour, "0 failures, 1 locks, locked, 59.999999s left"),
		peek(hour+mn-2*us, "0 failures, 1 locks, locked, 1µs left"),
		peek(hour+mn-us, "0 failures, 1 locks, lock ended 0s ago"),
		peek(hour+mn, "0 failures, 1 locks, lock ended 1µs ago"),
		reserve(hour+mn-us, "ok 1 after 1 locks"),
	}},
}

// The keys of keyScenarios: distinct, though alike.
var (
	ipKey      = "ip:192.0.2.1"
	similarKey = []string{"acct:acme:alice@example.com ", "acct:acme:alice@example.co", "ACCT:acme:alice@example.com",
		"acct:acme:alice@example.com:2", "ip:192.0.2.10", "ip:192.0.2.1/32", "ключ:ü", strings.Repeat("k", 600)}
)

var keyScenarios = []scenario{
	{"Independent", growing, [][]step{
		fails(0, 3, "ok 3, lock 1 for 1m0s"),
		on(ipKey, reserve(sec, "ok 1")),
		on(ipKey, with(single, reserve(sec, "ok 2, lock 1 for 30s"))),
		reserve(2*sec, "locked, 58s left"),
		on(ipKey, reset(3*sec)),
		reserve(3*sec, "locked, 57s left"),
		on(ipKey, reserve(4*sec, "ok 1")),
		release(4*sec, 1),
		on(ipKey, peek(4*sec, "1 failures")),
		reset(5 * sec),
		on(ipKey, peek(5*sec, "1 failures")),
		on(ipKey, release(6*sec, 1)),
		on(ipKey, peek(6*sec, "zero")),
		peek(6*sec, "zero"),
	}},
	{"SimilarKeysDistinct", growing, func() [][]step {
		steps := [][]step{fails(0, 3, "ok 3, lock 1 for 1m0s")}
		for _, k := range similarKey {
			steps = append(steps, on(k, peek(sec, "zero")), on(k, reserve(sec, "ok 1")))
		}
		for _, k := range similarKey {
			steps = append(steps, on(k, fails(2*sec, 2, "ok 3, lock 1 for 1m0s")))
		}
		return append(steps, reset(3*sec), reserve(3*sec, "ok 1"), on(similarKey[0], reserve(3*sec, "locked, 59s left")))
	}()},
}

// randomScenario is 300 random steps on two keys under lim, from a fixed
// seed: time moves on by nothing, a microsecond, a second, up to the
// longest lock, or up to one and a half ResetAfter.
func randomScenario(name string, seed uint64, lim auth.Limit) scenario {
	rng := rand.New(rand.NewPCG(seed, 0x617574687465737))
	keys := []string{defaultKey, ipKey}
	var steps []step
	var at time.Duration
	for range 300 {
		at += wait(rng, lim)
		s := step{at: at, key: keys[rng.IntN(len(keys))]}
		switch r := rng.IntN(100); {
		case r < 70:
			s.op = opReserve
		case r < 84:
			s.op, s.which = opRelease, randomPick-rng.IntN(1000)
		case r < 96:
			s.op = opPeek
		default:
			s.op = opReset
		}
		steps = append(steps, s)
	}
	return scenario{name, lim, [][]step{steps}}
}

// wait is a random time between two steps under lim: nothing, a
// microsecond, a second, up to the longest lock, or up to one and a half
// ResetAfter.
func wait(rng *rand.Rand, lim auth.Limit) time.Duration {
	switch r := rng.IntN(100); {
	case r < 35:
		return 0
	case r < 50:
		return us
	case r < 70:
		return sec
	case r < 92:
		return time.Duration(rng.Int64N(int64(lim.MaxLockFor/us)+2)) * us
	default:
		return time.Duration(rng.Int64N(int64(lim.ResetAfter*3/2/us))) * us
	}
}

var randomScenarios = []scenario{
	randomScenario("RandomGrowing", 1, growing),
	randomScenario("RandomStrict", 2, strict),
	randomScenario("RandomSingle", 3, single),
	randomScenario("RandomLong", 4, long),
}

// tests turns scenarios into subtests.
func tests(scenarios []scenario) []test[*throttleChecker] {
	ts := make([]test[*throttleChecker], len(scenarios))
	for i, sc := range scenarios {
		ts[i] = test[*throttleChecker]{sc.name, func(t *testing.T, c *throttleChecker) { c.run(sc) }}
	}
	return ts
}

func runThrottle(t *testing.T, newStore func(t *testing.T) auth.ThrottleStore) {
	t.Helper()
	for _, l := range []auth.Limit{growing, strict, single, long} {
		if err := l.Validate(); err != nil {
			t.Fatalf("suite bug: %+v: %v", l, err)
		}
	}
	runGroups(t, []group[*throttleChecker]{
		{"Reserve", tests(reserveScenarios)},
		{"Release", tests(releaseScenarios)},
		{"Reset", tests(resetScenarios)},
		{"Peek", tests(peekScenarios)},
		{"Keys", tests(keyScenarios)},
		{"FollowsApply", tests(randomScenarios)},
		{"ReserveAll", reserveAllTests},
		{"Settle", settleTests},
		{"BatchesFollowApply", batchScenarios},
	}, func(t *testing.T) *throttleChecker {
		st := newStore(t)
		return &throttleChecker{t: t, st: st, batch: auth.BatchThrottle(st), model: make(map[string]auth.Record),
			made: make(map[string][]*made)}
	})
}

// throttleChecker runs scenarios against a store and a model of it: the
// records that Limit.Apply, Record.GiveBack (Release) and Reset make.
// batch is the store as auth.BatchThrottle gives it. made lists each
// key's reservations, in the order made.
type throttleChecker struct {
	t     *testing.T
	st    auth.ThrottleStore
	batch auth.BatchThrottleStore
	model map[string]auth.Record
	made  map[string][]*made
}

// made is one reservation as the model and the store made it; back is
// set once it is given back.
type made struct {
	model, store auth.Reservation
	back         bool
}

// add records the reservation of key that the model and the store made.
func (c *throttleChecker) add(key string, model, store auth.Reservation) {
	c.made[key] = append(c.made[key], &made{model: model, store: store})
}

// pick returns the reservation of key that which names (see latest), and
// marks it given back; nil gives back the zero Reservation.
func (c *throttleChecker) pick(key string, which int) *made {
	all := c.made[key]
	if which >= 0 {
		if which >= len(all) {
			c.t.Fatalf("suite bug: %.20q has no reservation %d", key, which)
		}
		all[which].back = true
		return all[which]
	}
	var out []*made
	for _, m := range all {
		if m.model.Allowed && !m.back {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil
	}
	m := out[len(out)-1]
	if which <= randomPick {
		m = out[(randomPick-which)%len(out)]
	}
	m.back = true
	return m
}

// giveBack applies a give-back of m to the model of key and returns the
// Reservation the store gives back (both zero for nil).
func (c *throttleChecker) giveBack(key string, m *made) auth.Reservation {
	if m == nil {
		m = &made{}
	}
	if r, ok := c.model[key]; ok {
		c.model[key] = r.GiveBack(m.model)
	}
	return m.store
}

// run runs the steps of sc in order, checks each result against the model,
// and follows every step but a Peek with a Peek at its time, which must
// agree with the model too and change nothing.
func (c *throttleChecker) run(sc scenario) {
	c.t.Helper()
	ctx := c.t.Context()
	for i, s := range slices.Concat(sc.steps...) {
		key, lim, now := s.key, sc.lim, base.Add(s.at)
		if key == "" {
			key = defaultKey
		}
		if s.lim != nil {
			lim = *s.lim
		}
		where := fmt.Sprintf("step %d, %s(%.20q) at %s", i, s.op, key, offset(s.at))
		switch s.op {
		case opReserve:
			rec, want := lim.Apply(c.model[key], now)
			c.model[key] = rec
			c.wantScenario(where, s.want, describeRes(want, now))
			got, err := c.st.Reserve(ctx, key, now, lim)
			if err != nil {
				c.t.Fatalf("%s: %v", where, err)
			}
			if d := diffRes(got, want); d != "" {
				c.t.Fatalf("%s = %s (%s), want %s (%s)", where, describeRes(got, now), d, describeRes(want, now), c.history(sc, i))
			}
			c.add(key, want, got)
		case opRelease:
			if err := c.st.Release(ctx, key, c.giveBack(key, c.pick(key, s.which))); err != nil {
				c.t.Fatalf("%s: %v", where, err)
			}
		case opReset:
			delete(c.model, key)
			if err := c.st.Reset(ctx, key); err != nil {
				c.t.Fatalf("%s: %v", where, err)
			}
		case opPeek:
			c.wantScenario(where, s.want, describeState(auth.StateOf(c.model[key], now, lim), now))
		}
		if s.op != opPeek {
			where = fmt.Sprintf("%s, then Peek", where)
		}
		c.wantState(where, key, now, lim, sc, i)
	}
}

// wantScenario checks a step's description against the model.
func (c *throttleChecker) wantScenario(where, want, model string) {
	c.t.Helper()
	if want != "" && want != model {
		c.t.Fatalf("suite bug: %s: the scenario expects %q, Limit.Apply gives %q", where, want, model)
	}
}

// wantState checks that Peek of key at now agrees with the model.
func (c *throttleChecker) wantState(where, key string, now time.Time, lim auth.Limit, sc scenario, i int) {
	c.t.Helper()
	c.wantPeek(where, key, now, lim, func() string { return c.history(sc, i) })
}

// wantPeek checks that Peek of key at now agrees with the model; history
// describes the steps so far, for a failure message.
func (c *throttleChecker) wantPeek(where, key string, now time.Time, lim auth.Limit, history func() string) {
	c.t.Helper()
	want := auth.StateOf(c.model[key], now, lim)
	got, err := c.st.Peek(c.t.Context(), key, now, lim)
	if err != nil {
		c.t.Fatalf("%s: %v", where, err)
	}
	if d := diffState(got, want); d != "" {
		c.t.Fatalf("%s = %s (%s), want %s (%s)", where, describeState(got, now), d, describeState(want, now), history())
	}
}

// history lists the steps up to step i, for failure messages.
func (c *throttleChecker) history(sc scenario, i int) string {
	steps := slices.Concat(sc.steps...)[:i+1]
	l := make([]string, 0, len(steps))
	for _, s := range steps[max(0, len(steps)-12):] {
		k := ""
		if s.key != "" {
			k = fmt.Sprintf(" %.20q", s.key)
		}
		if s.op == opRelease {
			k += fmt.Sprintf(" #%d", s.which)
		}
		l = append(l, fmt.Sprintf("%s%s at %s", s.op, k, offset(s.at)))
	}
	more := ""
	if len(steps) > 12 {
		more = "…, "
	}
	return fmt.Sprintf("after %s%s", more, strings.Join(l, ", "))
}

// describeRes describes a reservation made at now, as the scenarios'
// want strings do: "ok 2", "ok 3, lock 1 for 1m0s", "ok 2, lock 4
// forever", "ok 1 after 1 locks", "locked, 30s left", "locked forever".
func describeRes(r auth.Reservation, now time.Time) string {
	if !r.Allowed {
		if r.Permanent {
			return "locked forever"
		}
		return fmt.Sprintf("locked, %v left", r.LockedUntil.Sub(now))
	}
	s := fmt.Sprintf("ok %d", r.Failures)
	switch {
	case r.Locks && r.Permanent:
		s += fmt.Sprintf(", lock %d forever", r.Lockouts)
	case r.Locks:
		s += fmt.Sprintf(", lock %d for %v", r.Lockouts, r.LockedUntil.Sub(now))
	case r.Lockouts > 0:
		s += fmt.Sprintf(" after %d locks", r.Lockouts)
	}
	return s
}

// describeState describes what Peek reports at now: "zero", "2 failures",
// "0 failures, 1 locks, locked, 59s left", "… lock ended 1s ago", "…
// locked forever".
func describeState(s auth.State, now time.Time) string {
	if s.Failures == 0 && s.Lockouts == 0 && !s.Permanent && s.LockedUntil.IsZero() {
		return "zero"
	}
	parts := []string{fmt.Sprintf("%d failures", s.Failures)}
	if s.Lockouts > 0 {
		parts = append(parts, fmt.Sprintf("%d locks", s.Lockouts))
	}
	switch {
	case s.Permanent:
		parts = append(parts, "locked forever")
	case s.LockedUntil.IsZero():
	case now.Before(s.LockedUntil):
		parts = append(parts, fmt.Sprintf("locked, %v left", s.LockedUntil.Sub(now)))
	default:
		parts = append(parts, fmt.Sprintf("lock ended %v ago", now.Sub(s.LockedUntil)))
	}
	return strings.Join(parts, ", ")
}

// diffRes lists the fields in which got differs from want, or returns "".
func diffRes(got, want auth.Reservation) string {
	var d []string
	if got.Allowed != want.Allowed {
		d = append(d, fmt.Sprintf("Allowed %v", got.Allowed))
	}
	if got.Failures != want.Failures {
		d = append(d, fmt.Sprintf("Failures %d, want %d", got.Failures, want.Failures))
	}
	if got.Locks != want.Locks {
		d = append(d, fmt.Sprintf("Locks %v", got.Locks))
	}
	if !got.LockedUntil.Equal(want.LockedUntil) {
		d = append(d, fmt.Sprintf("LockedUntil %v, want %v", got.LockedUntil, want.LockedUntil))
	}
	if got.Permanent != want.Permanent {
		d = append(d, fmt.Sprintf("Permanent %v", got.Permanent))
	}
	if got.Lockouts != want.Lockouts {
		d = append(d, fmt.Sprintf("Lockouts %d, want %d", got.Lockouts, want.Lockouts))
	}
	return strings.Join(d, "; ")
}

// diffState lists the fields in which got differs from want, or returns "".
func diffState(got, want auth.State) string {
	var d []string
	if got.Failures != want.Failures {
		d = append(d, fmt.Sprintf("Failures %d, want %d", got.Failures, want.Failures))
	}
	if !got.LockedUntil.Equal(want.LockedUntil) {
		d = append(d, fmt.Sprintf("LockedUntil %v, want %v", got.LockedUntil, want.LockedUntil))
	}
	if got.Lockouts != want.Lockouts {
		d = append(d, fmt.Sprintf("Lockouts %d, want %d", got.Lockouts, want.Lockouts))
	}
	if got.Permanent != want.Permanent {
		d = append(d, fmt.Sprintf("Permanent %v", got.Permanent))
	}
	return strings.Join(d, "; ")
}

// offset writes base+d.
func offset(d time.Duration) string {
	if d < 0 {
		return "base-" + (-d).String()
	}
	return "base+" + d.String()
}
