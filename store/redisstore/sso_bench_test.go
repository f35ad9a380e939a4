package redisstore_test

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSSO measures the SAML store calls of a sign-in, each one round
// trip (the scripts are loaded first): RememberRequest then
// ConsumeRequest (StartLogin, then the ACS), and InsertID of a new
// assertion ID and of a replayed one.
func BenchmarkSSO(b *testing.B) {
	st, _, _ := open(b)
	ctx := b.Context()
	if err := st.Load(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("RememberRequest+ConsumeRequest", func(b *testing.B) {
		b.ReportAllocs()
		r := ssoReq("t", "", base.Add(10*time.Minute))
		for i := 0; b.Loop(); i++ {
			r.ID = fmt.Sprint("id-", i)
			if err := st.RememberRequest(ctx, r); err != nil {
				b.Fatal(err)
			}
			if _, err := st.ConsumeRequest(ctx, r.Tenant, r.ID, base); err != nil {
				b.Fatal(err)
			}
		}
	})
	n := 0 // IDs stay new however often the benchmark function is run
	b.Run("InsertID/New", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n++
			if isNew, err := st.InsertID(ctx, "t", fmt.Sprint("_new-", n), base.Add(5*time.Minute), base); err != nil || !isNew {
				b.Fatal(isNew, err)
			}
		}
	})
	b.Run("InsertID/Replayed", func(b *testing.B) {
		b.ReportAllocs()
		if _, err := st.InsertID(ctx, "t", "_seen", base.Add(5*time.Minute), base); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if isNew, err := st.InsertID(ctx, "t", "_seen", base.Add(5*time.Minute), base); err != nil || isNew {
				b.Fatal(isNew, err)
			}
		}
	})
}
