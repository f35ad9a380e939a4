package redisstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
)

// BenchmarkMFA measures the MFA store calls of a sign-in with an emailed
// code, each one round trip (the scripts are loaded first): Hit (a send
// limit), PutCode then CheckCode with the right code, and
// CreateTransaction then ConsumeTransaction.
func BenchmarkMFA(b *testing.B) {
	st, _, _ := open(b)
	ctx := b.Context()
	if err := st.Load(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("Hit", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := st.Hit(ctx, fmt.Sprint("k", i%1000), base, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PutCode+CheckCode", func(b *testing.B) {
		b.ReportAllocs()
		c := mfaCode("t", "x", 5)
		for i := 0; b.Loop(); i++ {
			c.Txn = fmt.Sprint("x", i%1000)
			if err := st.PutCode(ctx, c); err != nil {
				b.Fatal(err)
			}
			if _, err := st.CheckCode(ctx, c.Tenant, c.Txn, c.Hash, base); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CreateTransaction+ConsumeTransaction", func(b *testing.B) {
		b.ReportAllocs()
		x := mfaTxn("bench")
		for i := 0; b.Loop(); i++ {
			x.Hash = mfa.Hash{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)}
			if err := st.CreateTransaction(ctx, x); err != nil {
				b.Fatal(err)
			}
			if _, err := st.ConsumeTransaction(ctx, x.Hash); err != nil {
				b.Fatal(err)
			}
		}
	})
}
