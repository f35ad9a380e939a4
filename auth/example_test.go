package auth_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/guardhq/guard/auth"
)

func ExamplePolicy_Check() {
	var p auth.Policy // the defaults: 8 to 128 code points, common passwords refused
	user := auth.Context{Email: "ada.lovelace@example.test", Name: "Ada Lovelace"}
	for _, pw := range []string{
		"short",
		"dragon2026!",
		"my ada.lovelace secret",
		"lovelace-analytical",
		"correct horse battery staple",
	} {
		err := p.Check(pw, user)
		var pe *auth.PolicyError
		if errors.As(err, &pe) {
			fmt.Printf("refused: %s (%v)\n", pe.Rule, err)
			continue
		}
		fmt.Println("accepted")
	}
	// Output:
	// refused: too_short (auth: password rejected: too short)
	// refused: common (auth: password rejected: too common)
	// refused: contains_email (auth: password rejected: contains the email address)
	// refused: contains_name (auth: password rejected: contains the user's name)
	// accepted
}

func ExampleCanonicalEmail() {
	for _, in := range []string{" Ada.Lovelace@Example.TEST ", "Ada <ada@example.test>", "ada\u200b@example.test"} {
		email, err := auth.CanonicalEmail(in)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(email)
	}
	// Output:
	// ada.lovelace@example.test
	// auth: invalid email: contains space or control characters
	// auth: invalid email: contains space or control characters
}

func ExampleParsePHC() {
	p, err := auth.ParsePHC("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("m=%d KiB t=%d p=%d salt=%q hash=%d bytes\n", p.Memory, p.Time, p.Threads, p.Salt, len(p.Hash))

	_, err = auth.ParsePHC("$argon2id$v=19$m=19456,t=0,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA")
	fmt.Println(err)
	// Output:
	// m=19456 KiB t=2 p=1 salt="somesalt" hash=32 bytes
	// auth: malformed password hash: time: out of range
}

func ExampleLimit_Apply() {
	lim := auth.Limit{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var r auth.Record
	var res auth.Reservation
	for i := 1; i <= 4; i++ {
		r, res = lim.Apply(r, now)
		fmt.Printf("attempt %d: allowed=%v failures=%d locks=%v\n", i, res.Allowed, res.Failures, res.Locks)
	}
	fmt.Println("locked for", res.LockedUntil.Sub(now))
	// Output:
	// attempt 1: allowed=true failures=1 locks=false
	// attempt 2: allowed=true failures=2 locks=false
	// attempt 3: allowed=true failures=3 locks=true
	// attempt 4: allowed=false failures=0 locks=false
	// locked for 1m0s
}
