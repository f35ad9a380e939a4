package auth

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testLimit locks after 3 failures for 1, 2, 4, 8, 10, 10… minutes and
// forgets a key after an hour.
var testLimit = Limit{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: 10 * time.Minute}

func sameRecord(a, b Record) bool {
	return a.Failures == b.Failures && a.Last.Equal(b.Last) && a.LockedUntil.Equal(b.LockedUntil) &&
		a.Lockouts == b.Lockouts && a.Permanent == b.Permanent
}

func sameReservation(a, b Reservation) bool {
	return a.Allowed == b.Allowed && a.Failures == b.Failures && a.Locks == b.Locks &&
		a.LockedUntil.Equal(b.LockedUntil) && a.Permanent == b.Permanent && a.Lockouts == b.Lockouts
}

func TestLimitValidate(t *testing.T) {
	with := func(f func(*Limit)) Limit {
		l := testLimit
		f(&l)
		return l
	}
	tests := []struct {
		name  string
		l     Limit
		field string // "" means valid
	}{
		{"Valid", testLimit, ""},
		{"Max1", with(func(l *Limit) { l.Max = 1 }), ""},
		{"MaxLockForEqualsLockFor", with(func(l *Limit) { l.MaxLockFor = l.LockFor }), ""},
		{"Zero", Limit{}, "Max"},
		{"Max0", with(func(l *Limit) { l.Max = 0 }), "Max"},
		{"MaxNegative", with(func(l *Limit) { l.Max = -1 }), "Max"},
		{"ResetAfter0", with(func(l *Limit) { l.ResetAfter = 0 }), "ResetAfter"},
		{"ResetAfterNegative", with(func(l *Limit) { l.ResetAfter = -time.Second }), "ResetAfter"},
		{"LockFor0", with(func(l *Limit) { l.LockFor = 0 }), "LockFor"},
		{"LockForNegative", with(func(l *Limit) { l.LockFor = -time.Minute }), "LockFor"},
		{"MaxLockForBelowLockFor", with(func(l *Limit) { l.MaxLockFor = l.LockFor - 1 }), "MaxLockFor"},
		{"MaxLockFor0", with(func(l *Limit) { l.MaxLockFor = 0 }), "MaxLockFor"},
		{"PermanentAfterNegative", with(func(l *Limit) { l.PermanentAfter = -1 }), "PermanentAfter"},
		// Locks 1, 2, 4, 8, 10 minutes against ResetAfter: lock number
		// PermanentAfter must be shorter than ResetAfter.
		{"PermanentAfterReachable", with(func(l *Limit) { l.PermanentAfter = 5 }), ""},
		{"PermanentAfterReachableAtCap", with(func(l *Limit) { l.PermanentAfter = 1000 }), ""},
		{"PermanentAfterUnreachable", with(func(l *Limit) { l.ResetAfter = 8 * time.Minute; l.PermanentAfter = 4 }), "PermanentAfter"},
		{"PermanentAfterJustReachable", with(func(l *Limit) { l.ResetAfter = 8*time.Minute + 1; l.PermanentAfter = 4 }), ""},
		{"PermanentAfterUnreachableFirstLock", with(func(l *Limit) { l.ResetAfter = time.Minute; l.PermanentAfter = 1 }), "PermanentAfter"},
		{"PermanentAfterZeroIgnoresReset", with(func(l *Limit) { l.ResetAfter = time.Second }), ""},
		{"PermanentAfterHugeMaxLockFor", Limit{Max: 1, ResetAfter: math.MaxInt64, LockFor: 1, MaxLockFor: math.MaxInt64, PermanentAfter: 1000}, "PermanentAfter"},
		{"PermanentAfterHugeReachable", Limit{Max: 1, ResetAfter: math.MaxInt64, LockFor: 1, MaxLockFor: math.MaxInt64, PermanentAfter: 63}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.l.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", tc.l, err)
				}
				return
			}
			var le *InvalidLimitError
			if !errors.As(err, &le) {
				t.Fatalf("Validate(%+v) = %v, want *InvalidLimitError", tc.l, err)
			}
			if le.Field != tc.field {
				t.Errorf("Field = %q, want %q", le.Field, tc.field)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "auth: ") || !strings.Contains(msg, tc.field) {
				t.Errorf("Error() = %q, want the auth: prefix and the field", msg)
			}
		})
	}
}

// step is one Apply call in a scripted sequence.
type step struct {
	at   time.Duration // since t0
	want Reservation
}

func runSteps(t *testing.T, l Limit, r Record, steps []step) Record {
	t.Helper()
	for i, s := range steps {
		now := t0.Add(s.at)
		var got Reservation
		r, got = l.Apply(r, now)
		if !sameReservation(got, s.want) {
			t.Fatalf("step %d at +%v: Apply = %+v, want %+v", i, s.at, got, s.want)
		}
	}
	return r
}

func TestApplyMaxthAttemptAllowedAndLocks(t *testing.T) {
	r := runSteps(t, testLimit, Record{}, []step{
		{0, Reservation{Allowed: true, Failures: 1}},
		{time.Second, Reservation{Allowed: true, Failures: 2}},
		{2 * time.Second, Reservation{Allowed: true, Failures: 3, Locks: true, LockedUntil: t0.Add(2*time.Second + time.Minute), Lockouts: 1}},
	})
	want := Record{Failures: 0, Last: t0.Add(2 * time.Second), LockedUntil: t0.Add(2*time.Second + time.Minute), Lockouts: 1}
	if !sameRecord(r, want) {
		t.Errorf("record after the lock = %+v, want %+v", r, want)
	}
}

func TestApplyMax1(t *testing.T) {
	l := Limit{Max: 1, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	runSteps(t, l, Record{}, []step{
		{0, Reservation{Allowed: true, Failures: 1, Locks: true, LockedUntil: t0.Add(time.Minute), Lockouts: 1}},
		{time.Minute - 1, Reservation{Allowed: false, LockedUntil: t0.Add(time.Minute), Lockouts: 1}},
		{time.Minute, Reservation{Allowed: true, Failures: 1, Locks: true, LockedUntil: t0.Add(3 * time.Minute), Lockouts: 2}},
	})
}

// SECURITY-CHECKLIST LG-10.
func TestApplyLockGrowth(t *testing.T) {
	tests := []struct {
		name  string
		limit Limit
		want  []time.Duration // lock n+1
	}{
		{"CapNotPowerOfTwo", testLimit,
			[]time.Duration{1, 2, 4, 8, 10, 10, 10}},
		{"CapPowerOfTwo", Limit{Max: 2, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: 8 * time.Minute},
			[]time.Duration{1, 2, 4, 8, 8, 8}},
		{"NoGrowth", Limit{Max: 2, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Minute},
			[]time.Duration{1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Record
			now := t0
			for n, minutes := range tc.want {
				var res Reservation
				for i := 1; i <= tc.limit.Max; i++ {
					r, res = tc.limit.Apply(r, now)
					if !res.Allowed || res.Failures != i || res.Locks != (i == tc.limit.Max) {
						t.Fatalf("lock %d, attempt %d: Apply = %+v", n+1, i, res)
					}
				}
				want := now.Add(minutes * time.Minute)
				if !res.LockedUntil.Equal(want) || !r.LockedUntil.Equal(want) || res.Lockouts != n+1 || res.Permanent {
					t.Fatalf("lock %d: reservation %+v, record %+v; want a lock of %d min until %v", n+1, res, r, minutes, want)
				}
				// The key is free again exactly when the lock ends.
				now = res.LockedUntil
			}
		})
	}
}

func TestApplyDuringLock(t *testing.T) {
	l := testLimit
	var r Record
	for range l.Max {
		r, _ = l.Apply(r, t0)
	}
	locked := r
	until := t0.Add(time.Minute)
	for _, at := range []time.Duration{0, time.Nanosecond, time.Second, 30 * time.Second, time.Minute - time.Nanosecond} {
		for range 5 {
			var res Reservation
			r, res = l.Apply(r, t0.Add(at))
			want := Reservation{Allowed: false, LockedUntil: until, Lockouts: 1}
			if !sameReservation(res, want) {
				t.Fatalf("attempt at +%v during the lock: %+v, want %+v", at, res, want)
			}
			if !sameRecord(r, locked) {
				t.Fatalf("attempt at +%v during the lock changed the record to %+v (was %+v)", at, r, locked)
			}
		}
	}
	// The attempts during the lock were not counted.
	_, res := l.Apply(r, until)
	if !res.Allowed || res.Failures != 1 || res.Locks {
		t.Errorf("first attempt after the lock = %+v, want allowed with 1 failure", res)
	}
}

// SECURITY-CHECKLIST LG-10.
func TestApplyForgets(t *testing.T) {
	t.Run("FailuresAfterResetAfter", func(t *testing.T) {
		var r Record
		r, _ = testLimit.Apply(r, t0)
		r, _ = testLimit.Apply(r, t0.Add(10*time.Minute))
		// Counted from the last attempt, not the first.
		if _, res := testLimit.Apply(r, t0.Add(10*time.Minute+time.Hour-1)); res.Failures != 3 || !res.Locks {
			t.Errorf("attempt just before ResetAfter = %+v, want the third failure and a lock", res)
		}
		if _, res := testLimit.Apply(r, t0.Add(10*time.Minute+time.Hour)); !sameReservation(res, Reservation{Allowed: true, Failures: 1}) {
			t.Errorf("attempt at ResetAfter = %+v, want a fresh first failure", res)
		}
	})
	t.Run("LockHistoryAfterResetAfter", func(t *testing.T) {
		var r Record
		for range testLimit.Max {
			r, _ = testLimit.Apply(r, t0)
		}
		// The lock ends at +1m, but the key is remembered until +1h.
		for range testLimit.Max {
			r, _ = testLimit.Apply(r, t0.Add(59*time.Minute))
		}
		if r.Lockouts != 2 || !r.LockedUntil.Equal(t0.Add(61*time.Minute)) {
			t.Fatalf("second lock = %+v, want lock 2 of 2 minutes", r)
		}
		// An hour after the last attempt, the key starts again.
		later := t0.Add(59*time.Minute + time.Hour)
		if !r.Expired(later, testLimit) || r.Expired(later.Add(-1), testLimit) {
			t.Errorf("Expired is not exactly at Last+ResetAfter")
		}
		var res Reservation
		for range testLimit.Max {
			r, res = testLimit.Apply(r, later)
		}
		if res.Lockouts != 1 || !res.LockedUntil.Equal(later.Add(time.Minute)) {
			t.Errorf("lock after forgetting = %+v, want lock 1 of 1 minute", res)
		}
	})
	t.Run("LockLongerThanResetAfter", func(t *testing.T) {
		l := Limit{Max: 1, ResetAfter: 30 * time.Minute, LockFor: time.Hour, MaxLockFor: 4 * time.Hour}
		r, res := l.Apply(Record{}, t0)
		if !res.LockedUntil.Equal(t0.Add(time.Hour)) {
			t.Fatalf("first lock = %+v", res)
		}
		if r.Expired(t0.Add(45*time.Minute), l) {
			t.Error("forgotten during its lock")
		}
		if _, res := l.Apply(r, t0.Add(45*time.Minute)); res.Allowed {
			t.Errorf("attempt during the lock = %+v, want denied", res)
		}
		// The lock outlasts ResetAfter, so the key is forgotten when it
		// ends and the next lock is again lock number 1.
		if !r.Expired(t0.Add(time.Hour), l) {
			t.Error("not forgotten at the end of a lock longer than ResetAfter")
		}
		_, res = l.Apply(r, t0.Add(time.Hour))
		want := Reservation{Allowed: true, Failures: 1, Locks: true, LockedUntil: t0.Add(2 * time.Hour), Lockouts: 1}
		if !sameReservation(res, want) {
			t.Errorf("attempt after the lock = %+v, want %+v", res, want)
		}
	})
}

func TestApplyPermanent(t *testing.T) {
	l := Limit{Max: 2, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: 10 * time.Minute, PermanentAfter: 2}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	r := runSteps(t, l, Record{}, []step{
		{0, Reservation{Allowed: true, Failures: 1}},
		{0, Reservation{Allowed: true, Failures: 2, Locks: true, LockedUntil: t0.Add(time.Minute), Lockouts: 1}},
		{time.Minute, Reservation{Allowed: true, Failures: 1, Lockouts: 1}},
		{time.Minute, Reservation{Allowed: true, Failures: 2, Locks: true, LockedUntil: t0.Add(3 * time.Minute), Lockouts: 2}},
		{2 * time.Minute, Reservation{Allowed: false, LockedUntil: t0.Add(3 * time.Minute), Lockouts: 2}},
		{3 * time.Minute, Reservation{Allowed: true, Failures: 1, Lockouts: 2}},
		// The third lock is permanent; the attempt that starts it is allowed.
		{3 * time.Minute, Reservation{Allowed: true, Failures: 2, Locks: true, Permanent: true, Lockouts: 3}},
		{4 * time.Minute, Reservation{Allowed: false, Permanent: true, Lockouts: 3}},
		{365 * 24 * time.Hour, Reservation{Allowed: false, Permanent: true, Lockouts: 3}},
	})
	if !r.Permanent || !r.LockedUntil.IsZero() || r.Lockouts != 3 {
		t.Errorf("record = %+v, want permanent with no LockedUntil", r)
	}
	far := t0.Add(100 * 365 * 24 * time.Hour)
	if r.Expired(far, l) || !r.ExpiresAt(l).IsZero() {
		t.Errorf("permanent record: Expired = %v, ExpiresAt = %v; want false, zero", r.Expired(far, l), r.ExpiresAt(l))
	}
	if s := StateOf(r, far, l); !s.Permanent || !s.Locked(far) || s.Lockouts != 3 {
		t.Errorf("StateOf = %+v, want permanent and locked", s)
	}
}

func TestApplyNeverPermanentByDefault(t *testing.T) {
	l := Limit{Max: 1, ResetAfter: time.Hour, LockFor: time.Second, MaxLockFor: time.Minute}
	var r Record
	now := t0
	for n := 1; n <= 50; n++ {
		var res Reservation
		r, res = l.Apply(r, now)
		if !res.Allowed || res.Permanent || r.Permanent || res.Lockouts != n {
			t.Fatalf("lock %d: %+v", n, res)
		}
		now = res.LockedUntil
	}
}

func TestApplyPermanentAfter1(t *testing.T) {
	l := Limit{Max: 1, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour, PermanentAfter: 1}
	runSteps(t, l, Record{}, []step{
		{0, Reservation{Allowed: true, Failures: 1, Locks: true, LockedUntil: t0.Add(time.Minute), Lockouts: 1}},
		{time.Minute, Reservation{Allowed: true, Failures: 1, Locks: true, Permanent: true, Lockouts: 2}},
		{time.Hour, Reservation{Allowed: false, Permanent: true, Lockouts: 2}},
	})
}

func TestLockDuration(t *testing.T) {
	l := testLimit
	for n, want := range map[int]time.Duration{
		-1: time.Minute, 0: time.Minute, 1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute,
		4: 8 * time.Minute, 5: 10 * time.Minute, 6: 10 * time.Minute, math.MaxInt: 10 * time.Minute,
	} {
		if got := l.lockDuration(n); got != want {
			t.Errorf("lockDuration(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestLockDurationNoOverflow(t *testing.T) {
	tests := []struct {
		name string
		l    Limit
	}{
		{"OneNanosecond", Limit{LockFor: 1, MaxLockFor: math.MaxInt64}},
		{"OneHour", Limit{LockFor: time.Hour, MaxLockFor: math.MaxInt64}},
		{"Third", Limit{LockFor: math.MaxInt64 / 3, MaxLockFor: math.MaxInt64}},
		{"JustOverHalf", Limit{LockFor: math.MaxInt64/2 + 1, MaxLockFor: math.MaxInt64}},
		{"Max", Limit{LockFor: math.MaxInt64, MaxLockFor: math.MaxInt64}},
		{"CapJustBelowMax", Limit{LockFor: 3, MaxLockFor: math.MaxInt64 - 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prev := time.Duration(0)
			for n := 1; n <= 200; n++ {
				d := tc.l.lockDuration(n)
				if d <= 0 || d < prev || d > tc.l.MaxLockFor {
					t.Fatalf("lockDuration(%d) = %d after %d", n, d, prev)
				}
				prev = d
			}
			if prev != tc.l.MaxLockFor {
				t.Errorf("lockDuration(200) = %d, want the cap %d", prev, tc.l.MaxLockFor)
			}
			if d := tc.l.lockDuration(math.MaxInt); d != tc.l.MaxLockFor {
				t.Errorf("lockDuration(MaxInt) = %d, want %d", d, tc.l.MaxLockFor)
			}
		})
	}
	one := Limit{LockFor: 1, MaxLockFor: math.MaxInt64}
	if d := one.lockDuration(63); d != 1<<62 {
		t.Errorf("lockDuration(63) = %d, want 2^62", d)
	}
	if d := one.lockDuration(64); d != math.MaxInt64 {
		t.Errorf("lockDuration(64) = %d, want MaxInt64 (2^63 would overflow)", d)
	}

	// Apply with such a limit keeps producing growing locks that end in the
	// future, up to the cap. A lock of the cap is as long as ResetAfter, so
	// the key is forgotten when it ends and starts again at lock 1.
	l := Limit{Max: 1, ResetAfter: math.MaxInt64, LockFor: time.Hour, MaxLockFor: math.MaxInt64}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	var r Record
	now := t0
	for n := 1; ; n++ {
		var res Reservation
		r, res = l.Apply(r, now)
		if want := now.Add(l.lockDuration(n)); !res.Allowed || !res.Locks || res.Lockouts != n ||
			!res.LockedUntil.After(now) || !res.LockedUntil.Equal(want) {
			t.Fatalf("lock %d at %v: %+v, want a lock until %v", n, now, res, want)
		}
		if _, res := l.Apply(r, now); res.Allowed {
			t.Fatalf("attempt during lock %d allowed", n)
		}
		now = res.LockedUntil
		if l.lockDuration(n) == math.MaxInt64 {
			if n > 64 {
				t.Fatalf("cap reached only at lock %d", n)
			}
			break
		}
	}
	if _, res := l.Apply(r, now); res.Lockouts != 1 || !res.LockedUntil.Equal(now.Add(time.Hour)) {
		t.Errorf("after a lock as long as ResetAfter: %+v, want lock 1 again", res)
	}
}

func TestRecordExpiry(t *testing.T) {
	l := testLimit
	tests := []struct {
		name      string
		r         Record
		expiresAt time.Time // zero means never
	}{
		{"Zero", Record{}, time.Time{}.Add(time.Hour)},
		{"NotLocked", Record{Failures: 2, Last: t0}, t0.Add(time.Hour)},
		{"ShortLock", Record{Last: t0, LockedUntil: t0.Add(time.Minute), Lockouts: 1}, t0.Add(time.Hour)},
		{"LongLock", Record{Last: t0, LockedUntil: t0.Add(2 * time.Hour), Lockouts: 5}, t0.Add(2 * time.Hour)},
		{"LockEqualsReset", Record{Last: t0, LockedUntil: t0.Add(time.Hour), Lockouts: 1}, t0.Add(time.Hour)},
		{"Permanent", Record{Last: t0, Lockouts: 3, Permanent: true}, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.ExpiresAt(l); !got.Equal(tc.expiresAt) {
				t.Errorf("ExpiresAt = %v, want %v", got, tc.expiresAt)
			}
			for _, now := range []time.Time{t0.Add(-time.Hour), t0, t0.Add(time.Hour - 1), t0.Add(time.Hour), t0.Add(2*time.Hour - 1), t0.Add(2 * time.Hour), t0.Add(1000 * time.Hour)} {
				want := !tc.expiresAt.IsZero() && !now.Before(tc.expiresAt)
				if got := tc.r.Expired(now, l); got != want {
					t.Errorf("Expired(%v) = %v, want %v", now.Sub(t0), got, want)
				}
				s := StateOf(tc.r, now, l)
				if want {
					if s != (State{}) {
						t.Errorf("StateOf(%v) = %+v for a forgotten record, want zero", now.Sub(t0), s)
					}
				} else if s.Failures != tc.r.Failures || !s.LockedUntil.Equal(tc.r.LockedUntil) || s.Lockouts != tc.r.Lockouts || s.Permanent != tc.r.Permanent {
					t.Errorf("StateOf(%v) = %+v, want the record %+v", now.Sub(t0), s, tc.r)
				}
			}
		})
	}
}

func TestStateLocked(t *testing.T) {
	tests := []struct {
		name string
		s    State
		now  time.Time
		want bool
	}{
		{"Zero", State{}, t0, false},
		{"Failures", State{Failures: 5}, t0, false},
		{"BeforeEnd", State{LockedUntil: t0.Add(time.Minute)}, t0, true},
		{"JustBeforeEnd", State{LockedUntil: t0.Add(time.Minute)}, t0.Add(time.Minute - 1), true},
		{"AtEnd", State{LockedUntil: t0.Add(time.Minute)}, t0.Add(time.Minute), false},
		{"Permanent", State{Permanent: true}, t0.Add(1000 * time.Hour), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Locked(tc.now); got != tc.want {
				t.Errorf("Locked = %v, want %v", got, tc.want)
			}
		})
	}
}
