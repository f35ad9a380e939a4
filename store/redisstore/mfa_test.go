package redisstore_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/mfa/mfatest"
	"github.com/guardhq/guard/store/redisstore"
)

func newMFA(t *testing.T) mfa.Stores {
	s, _, _ := open(t)
	return s.MFAStores()
}

func TestMFA(t *testing.T) { mfatest.Run(t, newMFA) }

func TestMFAConcurrent(t *testing.T) { mfatest.RunConcurrent(t, newMFA) }

// TestMFAStores checks that MFAStores fills the three short-lived roles
// with the store and leaves the tenant-data roles to another backend.
func TestMFAStores(t *testing.T) {
	s, _, _ := open(t)
	st := s.MFAStores()
	if st.Codes != s || st.Rates != s || st.Transactions != s {
		t.Errorf("MFAStores = %+v; want Codes, Rates and Transactions to be the store", st)
	}
	if st.Factors != nil || st.FactorUpdates != nil || st.Enrolments != nil || st.Recovery != nil {
		t.Errorf("MFAStores = %+v; want the factor and recovery roles nil", st)
	}
}

func mfaHash(label string) mfa.Hash { return sha256.Sum256([]byte("redisstore-mfa:" + label)) }

// hexHash is h as the keys and fields hold it (mfa.Hash's String is
// base64url, so %x would not do).
func hexHash(h mfa.Hash) string { return hex.EncodeToString(h[:]) }

func mfaCode(tenant, txn string, tries int) mfa.Code {
	return mfa.Code{
		Tenant: tenant, Txn: txn, UserID: "u", FactorID: "f", Kind: mfa.KindSMS,
		Hash: mfaHash("code-" + tenant + "/" + txn), CreatedAt: base, ExpiresAt: base.Add(10 * time.Minute),
		TriesLeft: tries,
	}
}

func mfaTxn(label string) mfa.Transaction {
	return mfa.Transaction{
		Hash: mfaHash("txn-" + label), Tenant: "t", UserID: "u", Binding: mfaHash("binding-" + label),
		Purpose: "login", Flags: 3, CreatedAt: base, ExpiresAt: base.Add(5 * time.Minute),
	}
}

// TestMFAKeys checks the key layout of the package documentation and that
// every MFA key expires when its data stops mattering (PTTL > 0, at the
// exact millisecond), so that Redis memory stays bounded.
func TestMFAKeys(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	expireTime := func(key string) time.Duration {
		t.Helper()
		if d, err := c.PTTL(ctx, key).Result(); err != nil || d <= 0 {
			t.Errorf("PTTL %s = %v, %v; want > 0", key, d, err)
		}
		d, err := c.PExpireTime(ctx, key).Result()
		if err != nil {
			t.Fatalf("PEXPIRETIME %s: %v", key, err)
		}
		return d
	}
	at := func(t time.Time) time.Duration { return time.Duration(t.UnixMilli()+1) * time.Millisecond }

	// Codes: at ExpiresAt; a wrong try keeps the expiry, a new code
	// replaces it (even with an earlier one).
	code := mfaCode("a:b", "c", 5)
	ck := prefix + "mc:3:a:b:c"
	if err := st.PutCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	if got, want := expireTime(ck), at(code.ExpiresAt); got != want {
		t.Errorf("code expires at %v, want %v (ExpiresAt)", got, want)
	}
	if _, err := st.CheckCode(ctx, "a:b", "c", mfaHash("wrong"), base); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("wrong CheckCode = %v", err)
	}
	if got, want := expireTime(ck), at(code.ExpiresAt); got != want {
		t.Errorf("after a wrong try the code expires at %v, want %v", got, want)
	}
	nu := code
	nu.Hash, nu.ExpiresAt = mfaHash("new"), base.Add(time.Minute+time.Microsecond)
	if err := st.PutCode(ctx, nu); err != nil {
		t.Fatal(err)
	}
	if got, want := expireTime(ck), at(nu.ExpiresAt); got != want {
		t.Errorf("a replaced code expires at %v, want %v (the new ExpiresAt)", got, want)
	}
	// A tenant "a" with transaction "b:c" has another key.
	other := mfaCode("a", "b:c", 5)
	if err := st.PutCode(ctx, other); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Exists(ctx, ck, prefix+"mc:1:a:b:c").Result(); err != nil || n != 2 {
		t.Errorf("EXISTS of the two code keys = %d, %v; want 2", n, err)
	}
	if got, err := st.CheckCode(ctx, "a:b", "c", nu.Hash, base); err != nil || got.Hash != nu.Hash {
		t.Errorf("CheckCode(a:b, c) = %v, want the new code", err)
	}
	if err := st.DeleteCode(ctx, "a", "b:c"); err != nil {
		t.Fatal(err)
	}
	if got := keysOf(t, c, prefix+"mc:*"); len(got) != 0 {
		t.Errorf("code keys left after consume and delete: %q", got)
	}

	// Rates: ClockGrace after the end of the window, which later hits do
	// not move; a new window moves it.
	rk := prefix + "mr:mfa:ip:192.0.2.1"
	if _, err := st.Hit(ctx, "mfa:ip:192.0.2.1", base, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, want := expireTime(rk), at(base.Add(time.Hour+redisstore.ClockGrace)); got != want {
		t.Errorf("rate counter expires at %v, want %v (window end + ClockGrace)", got, want)
	}
	if n, err := st.Hit(ctx, "mfa:ip:192.0.2.1", base.Add(30*time.Minute), time.Hour); err != nil || n != 2 {
		t.Fatalf("second Hit = %d, %v", n, err)
	}
	if got, want := expireTime(rk), at(base.Add(time.Hour+redisstore.ClockGrace)); got != want {
		t.Errorf("after a second hit the rate counter expires at %v, want %v (unchanged)", got, want)
	}
	if n, err := st.Hit(ctx, "mfa:ip:192.0.2.1", base.Add(time.Hour), time.Hour); err != nil || n != 1 {
		t.Fatalf("Hit in the next window = %d, %v", n, err)
	}
	if got, want := expireTime(rk), at(base.Add(2*time.Hour+redisstore.ClockGrace)); got != want {
		t.Errorf("in the next window the rate counter expires at %v, want %v", got, want)
	}

	// Transactions: at ExpiresAt; consuming removes the key.
	x := mfaTxn("a")
	xk := prefix + "mt:" + hexHash(x.Hash)
	if err := st.CreateTransaction(ctx, x); err != nil {
		t.Fatal(err)
	}
	if got, want := expireTime(xk), at(x.ExpiresAt); got != want {
		t.Errorf("transaction expires at %v, want %v (ExpiresAt)", got, want)
	}
	if _, err := st.ConsumeTransaction(ctx, x.Hash); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Exists(ctx, xk).Result(); err != nil || n != 0 {
		t.Errorf("transaction key still there after ConsumeTransaction: %d, %v", n, err)
	}
}

// TestMFAExpiredByRedis lets Redis expire the MFA keys by its clock, at
// real times: a code and a transaction go by themselves; a rate
// counter stays ClockGrace after its window's end.
func TestMFAExpiredByRedis(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	now := time.Now().UTC()
	code := mfaCode("t", "x", 5)
	code.CreatedAt, code.ExpiresAt = now, now.Add(50*time.Millisecond)
	x := mfaTxn("a")
	x.CreatedAt, x.ExpiresAt = now, now.Add(50*time.Millisecond)
	long := mfaTxn("long")
	if err := st.PutCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Hit(ctx, "k", now, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, tx := range []mfa.Transaction{x, long} {
		if err := st.CreateTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if got := keysOf(t, c, prefix+"*"); len(got) != 2 {
		t.Errorf("keys left: %q; want only the long transaction and the rate counter", got)
	}
	if d, err := c.PTTL(ctx, prefix+"mr:k").Result(); err != nil || d <= redisstore.ClockGrace-time.Second || d > redisstore.ClockGrace {
		t.Errorf("PTTL of the rate counter past its window = %v, %v; want ClockGrace less the time since", d, err)
	}
	if _, err := st.Transaction(ctx, long.Hash); err != nil {
		t.Errorf("Transaction(long) = %v", err)
	}
}

// TestMFAAcrossClients checks the once-only rules from two clients of the
// same prefix, as two replicas would run them.
func TestMFAAcrossClients(t *testing.T) {
	const n = 50
	twoStores := func(t *testing.T) [2]*redisstore.Store {
		s1, _, prefix := open(t)
		s2, err := redisstore.New(t.Context(), newClient(t), redisstore.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return [2]*redisstore.Store{s1, s2}
	}
	t.Run("CheckRightCodeOnce", func(t *testing.T) {
		st := twoStores(t)
		for round := range 3 {
			c := mfaCode("t", fmt.Sprint("r", round), 3)
			if err := st[0].PutCode(t.Context(), c); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			ok := 0
			parallel(n, func(i int) {
				got, err := st[i%2].CheckCode(t.Context(), c.Tenant, c.Txn, c.Hash, base.Add(time.Minute))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
					if got.Hash != c.Hash || got.TriesLeft != c.TriesLeft || !got.ExpiresAt.Equal(c.ExpiresAt) {
						t.Errorf("CheckCode %d returned %+v, want the code put", i, got)
					}
				case !errors.Is(err, mfa.ErrNotFound):
					t.Errorf("CheckCode %d: %v", i, err)
				}
			})
			if ok != 1 {
				t.Errorf("round %d: %d of %d concurrent right checks from two clients succeeded, want exactly 1", round, ok, n)
			}
			if _, err := st[1].CheckCode(t.Context(), c.Tenant, c.Txn, c.Hash, base); !errors.Is(err, mfa.ErrNotFound) {
				t.Errorf("round %d: CheckCode after the success = %v, want ErrNotFound", round, err)
			}
		}
	})
	t.Run("WrongTriesNeverExceedLimit", func(t *testing.T) {
		st := twoStores(t)
		c := mfaCode("t", "w", 7)
		if err := st[0].PutCode(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		left := map[int]int{}
		tooMany := 0
		parallel(n, func(i int) {
			got, err := st[i%2].CheckCode(t.Context(), c.Tenant, c.Txn, mfaHash(fmt.Sprint("wrong", i)), base)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, mfa.ErrInvalidCode):
				left[got.TriesLeft]++
			case errors.Is(err, mfa.ErrTooManyTries):
				tooMany++
			default:
				t.Errorf("CheckCode %d: %v", i, err)
			}
		})
		// Each wrong try saw its own count: 6, 5, …, 0 once each.
		for k := range c.TriesLeft {
			if left[k] != 1 {
				t.Errorf("TriesLeft after the wrong tries = %v, want 0..%d once each", left, c.TriesLeft-1)
				break
			}
		}
		if len(left) != c.TriesLeft || tooMany != n-c.TriesLeft {
			t.Errorf("%d wrong and %d too-many, want %d and %d", len(left), tooMany, c.TriesLeft, n-c.TriesLeft)
		}
	})
	t.Run("HitCountsEveryEvent", func(t *testing.T) {
		st := twoStores(t)
		var mu sync.Mutex
		seen := map[int]bool{}
		parallel(n, func(i int) {
			k, err := st[i%2].Hit(t.Context(), "mfa:dest:+447700900123", base.Add(time.Duration(i)*time.Microsecond), time.Hour)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("Hit %d: %v", i, err)
			} else if seen[k] {
				t.Errorf("count %d returned twice", k)
			}
			seen[k] = true
		})
		for k := 1; k <= n; k++ {
			if !seen[k] {
				t.Errorf("count %d never returned; want 1..%d once each", k, n)
			}
		}
	})
	t.Run("ConsumeTransactionOnce", func(t *testing.T) {
		st := twoStores(t)
		for round := range 3 {
			x := mfaTxn(fmt.Sprint("r", round))
			if err := st[1].CreateTransaction(t.Context(), x); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			ok := 0
			parallel(n, func(i int) {
				got, err := st[i%2].ConsumeTransaction(t.Context(), x.Hash)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
					if got.Hash != x.Hash || got.Binding != x.Binding || got.UserID != x.UserID || !got.ExpiresAt.Equal(x.ExpiresAt) {
						t.Errorf("ConsumeTransaction %d returned %+v, want the transaction created", i, got)
					}
				case !errors.Is(err, mfa.ErrNotFound):
					t.Errorf("ConsumeTransaction %d: %v", i, err)
				}
			})
			if ok != 1 {
				t.Errorf("round %d: %d of %d concurrent consumptions from two clients succeeded, want exactly 1", round, ok, n)
			}
		}
	})
	t.Run("CreateTransactionOnce", func(t *testing.T) {
		st := twoStores(t)
		var mu sync.Mutex
		var won []uint32
		parallel(n, func(i int) {
			x := mfaTxn("same")
			x.Flags = uint32(i)
			err := st[i%2].CreateTransaction(t.Context(), x)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, x.Flags)
			case !errors.Is(err, mfa.ErrDuplicate):
				t.Errorf("CreateTransaction %d: %v", i, err)
			}
		})
		if len(won) != 1 {
			t.Fatalf("%d of %d concurrent creations from two clients succeeded, want exactly 1", len(won), n)
		}
		if got, err := st[0].Transaction(t.Context(), mfaHash("txn-same")); err != nil || got.Flags != won[0] {
			t.Errorf("Transaction = flags %d, %v; want the winner's %d", got.Flags, err, won[0])
		}
	})
}

// TestMFARedisDown checks that every MFA method returns an error when
// Redis cannot be reached, and never a sentinel that means an answer.
func TestMFARedisDown(t *testing.T) {
	st, err := redisstore.New(t.Context(), deadClient(t), redisstore.Options{SkipEvictionCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	check := func(what string, err error, result any) {
		t.Helper()
		switch {
		case err == nil:
			t.Errorf("%s with Redis down: no error, result %+v", what, result)
		case errors.Is(err, mfa.ErrNotFound), errors.Is(err, mfa.ErrInvalidCode), errors.Is(err, mfa.ErrExpired),
			errors.Is(err, mfa.ErrTooManyTries), errors.Is(err, mfa.ErrDuplicate):
			t.Errorf("%s with Redis down: %v; a failure must not look like an answer", what, err)
		case !strings.HasPrefix(err.Error(), "redisstore: "):
			t.Errorf("%s with Redis down: %q, want it prefixed redisstore:", what, err)
		case !errors.Is(err, syscall.ECONNREFUSED):
			t.Errorf("%s with Redis down: %v, want it to wrap the connection error", what, err)
		}
	}
	c := mfaCode("t", "x", 5)
	check("PutCode", st.PutCode(ctx, c), nil)
	got, err := st.CheckCode(ctx, "t", "x", c.Hash, base)
	check("CheckCode", err, got)
	check("DeleteCode", st.DeleteCode(ctx, "t", "x"), nil)
	n, err := st.Hit(ctx, "k", base, time.Minute)
	check("Hit", err, n)
	check("Forget", st.Forget(ctx, "k", base, time.Minute), nil)
	x := mfaTxn("a")
	check("CreateTransaction", st.CreateTransaction(ctx, x), nil)
	tx, err := st.Transaction(ctx, x.Hash)
	check("Transaction", err, tx)
	tx, err = st.ConsumeTransaction(ctx, x.Hash)
	check("ConsumeTransaction", err, tx)
}

// TestMFAForeignData checks that MFA keys holding something this package
// did not write give errors, never a code, a count or "not found".
func TestMFAForeignData(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	notAnswer := func(what string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, mfa.ErrNotFound) || errors.Is(err, mfa.ErrInvalidCode) ||
			errors.Is(err, mfa.ErrExpired) || errors.Is(err, mfa.ErrTooManyTries) || errors.Is(err, mfa.ErrDuplicate) {
			t.Errorf("%s of foreign data = %v; want a failure", what, err)
		}
	}
	// Keys of the wrong type.
	for _, k := range []string{prefix + "mc:1:t:s", prefix + "mr:s", prefix + "mt:" + hexHash(mfaHash("s"))} {
		if err := c.Set(ctx, k, "not a hash", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := st.CheckCode(ctx, "t", "s", mfaHash("x"), base)
	notAnswer("CheckCode", err)
	_, err = st.Hit(ctx, "s", base, time.Minute)
	notAnswer("Hit", err)
	notAnswer("Forget", st.Forget(ctx, "s", base, time.Minute))
	_, err = st.Transaction(ctx, mfaHash("s"))
	notAnswer("Transaction", err)
	_, err = st.ConsumeTransaction(ctx, mfaHash("s"))
	notAnswer("ConsumeTransaction", err)
	// CreateTransaction over a foreign key changes nothing.
	if err := st.CreateTransaction(ctx, mfa.Transaction{Hash: mfaHash("s"), CreatedAt: base, ExpiresAt: base}); err == nil {
		t.Error("CreateTransaction over a foreign key succeeded")
	}
	if v, err := c.Get(ctx, prefix+"mt:"+hexHash(mfaHash("s"))).Result(); err != nil || v != "not a hash" {
		t.Errorf("the foreign key holds %q, %v after CreateTransaction; want it unchanged", v, err)
	}

	// Hashes with malformed fields: ErrCorrupt, and nothing consumed.
	good := hexHash(mfaHash("code-t/m"))
	if err := c.HSet(ctx, prefix+"mc:1:t:m", "u", "u", "f", "f", "k", "sms", "h", good, "c", "1", "e", "soon", "n", "5").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CheckCode(ctx, "t", "m", mfaHash("code-t/m"), base); !errors.Is(err, redisstore.ErrCorrupt) {
		t.Errorf("CheckCode of a code with a bad ExpiresAt = %v, want ErrCorrupt", err)
	}
	if err := c.HSet(ctx, prefix+"mc:1:t:m", "e", "4102444800000000", "h", strings.ToUpper(good)[:10]).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CheckCode(ctx, "t", "m", mfaHash("code-t/m"), base); !errors.Is(err, redisstore.ErrCorrupt) {
		t.Errorf("CheckCode of a code with a short hash = %v, want ErrCorrupt", err)
	}
	if v, err := c.HMGet(ctx, prefix+"mc:1:t:m", "n").Result(); err != nil || len(v) != 1 || v[0] != "5" {
		t.Errorf("the malformed code's tries = %v, %v; want it unchanged (5)", v, err)
	}
	if err := c.HSet(ctx, prefix+"mr:m", "n", "x", "e", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Hit(ctx, "m", base, time.Minute); !errors.Is(err, redisstore.ErrCorrupt) {
		t.Errorf("Hit of a malformed counter = %d, %v; want ErrCorrupt", n, err)
	}
	mk := prefix + "mt:" + hexHash(mfaHash("m"))
	if err := c.HSet(ctx, mk, "t", "t", "u", "u", "b", "zz", "p", "", "f", "0", "c", "1", "e", "2").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Transaction(ctx, mfaHash("m")); !errors.Is(err, redisstore.ErrCorrupt) {
		t.Errorf("Transaction with a bad Binding = %v, want ErrCorrupt", err)
	}
	if _, err := st.ConsumeTransaction(ctx, mfaHash("m")); !errors.Is(err, redisstore.ErrCorrupt) {
		t.Errorf("ConsumeTransaction with a bad Binding = %v, want ErrCorrupt", err)
	}
}

// TestMFABadInput checks that times and windows the store cannot keep
// exactly are refused with a typed error, and leave no key.
func TestMFABadInput(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	var inputErr *redisstore.InputError
	past := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	late := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)

	for name, edit := range map[string]func(*mfa.Code){
		"CreatedAtZero":      func(c *mfa.Code) { c.CreatedAt = time.Time{} },
		"ExpiresAtAfter2255": func(c *mfa.Code) { c.ExpiresAt = late },
	} {
		code := mfaCode("t", "x", 5)
		edit(&code)
		if err := st.PutCode(ctx, code); !errors.As(err, &inputErr) {
			t.Errorf("PutCode with %s: %v, want *InputError", name, err)
		}
	}
	code := mfaCode("t", "y", 5)
	if err := st.PutCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CheckCode(ctx, "t", "y", mfaHash("wrong"), past); !errors.As(err, &inputErr) {
		t.Errorf("CheckCode(1900): %v, want *InputError", err)
	}
	// The refused check used no try.
	if got, err := st.CheckCode(ctx, "t", "y", mfaHash("wrong"), base); !errors.Is(err, mfa.ErrInvalidCode) || got.TriesLeft != 4 {
		t.Errorf("CheckCode after a refused one = %d tries left, %v; want 4, ErrInvalidCode", got.TriesLeft, err)
	}

	for _, tc := range []struct {
		name   string
		now    time.Time
		window time.Duration
	}{
		{"ZeroWindow", base, 0},
		{"NegativeWindow", base, -time.Minute},
		{"NowBefore1970", past, time.Minute},
		{"WindowEndAfter2255", base, 200 * 365 * 24 * time.Hour},
	} {
		if n, err := st.Hit(ctx, "k", tc.now, tc.window); !errors.As(err, &inputErr) {
			t.Errorf("Hit with %s = %d, %v; want *InputError", tc.name, n, err)
		}
		if err := st.Forget(ctx, "k", tc.now, tc.window); !errors.As(err, &inputErr) {
			t.Errorf("Forget with %s = %v; want *InputError", tc.name, err)
		}
	}
	if got := keysOf(t, c, prefix+"mr:*"); len(got) != 0 {
		t.Errorf("refused Hits left keys %q", got)
	}

	for name, edit := range map[string]func(*mfa.Transaction){
		"CreatedAtBefore1970": func(x *mfa.Transaction) { x.CreatedAt = past },
		"ExpiresAtZero":       func(x *mfa.Transaction) { x.ExpiresAt = time.Time{} },
	} {
		x := mfaTxn("bad")
		edit(&x)
		if err := st.CreateTransaction(ctx, x); !errors.As(err, &inputErr) {
			t.Errorf("CreateTransaction with %s: %v, want *InputError", name, err)
		}
	}
	if got := keysOf(t, c, prefix+"mt:*"); len(got) != 0 {
		t.Errorf("refused CreateTransactions left keys %q", got)
	}
}

// TestMFAOneRoundTrip checks that each MFA method is one command, hence
// one round trip, once the scripts are loaded.
func TestMFAOneRoundTrip(t *testing.T) {
	cnt := &counter{}
	st, _, _ := open(t, cnt)
	ctx := t.Context()
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	c, x := mfaCode("t", "x", 5), mfaTxn("a")
	for _, tc := range []struct {
		name string
		call func() error
		cmd  string
	}{
		{"PutCode", func() error { return st.PutCode(ctx, c) }, "evalsha"},
		{"CheckCode", func() error { _, err := st.CheckCode(ctx, "t", "x", c.Hash, base); return err }, "evalsha"},
		{"DeleteCode", func() error { return st.DeleteCode(ctx, "t", "x") }, "del"},
		{"Hit", func() error { _, err := st.Hit(ctx, "k", base, time.Minute); return err }, "evalsha"},
		{"Forget", func() error { return st.Forget(ctx, "k", base, time.Minute) }, "evalsha"},
		{"CreateTransaction", func() error { return st.CreateTransaction(ctx, x) }, "evalsha"},
		{"Transaction", func() error { _, err := st.Transaction(ctx, x.Hash); return err }, "hmget"},
		{"ConsumeTransaction", func() error { _, err := st.ConsumeTransaction(ctx, x.Hash); return err }, "evalsha"},
	} {
		cnt.reset()
		if err := tc.call(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if trips, cmds := cnt.counted(); trips != 1 || len(cmds) != 1 || cmds[0] != tc.cmd {
			t.Errorf("%s cost %d round trips, commands %v; want one %s", tc.name, trips, cmds, tc.cmd)
		}
	}
}
