package rbac_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// benchTenant fills tenant of e with n users and 100 custom roles: user i
// holds member and custom role i%100.
func benchTenant(b *testing.B, e *rbac.Enforcer, st rbac.PolicyStore, tenant string, users int) {
	b.Helper()
	var add []rbac.Rule
	for r := range 100 {
		add = append(add, rbac.Rule{Type: rbac.RulePermission, Role: fmt.Sprint("role-", r), Section: rbac.BuiltInSections()[r%8], Action: rbac.Actions()[r%6]})
	}
	for i := range users {
		sub := rbac.User(fmt.Sprint("user", i)).String()
		add = append(add,
			rbac.Rule{Type: rbac.RuleGrant, Role: rbac.Member, Subject: sub},
			rbac.Rule{Type: rbac.RuleGrant, Role: fmt.Sprint("role-", i%100), Subject: sub})
	}
	v, _ := st.Version(ctx, tenant)
	if err := st.Update(ctx, tenant, v, nil, add); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkDecide(b *testing.B) {
	st := memstore.NewPolicies()
	e := newEnforcer(b, st)
	benchTenant(b, e, st, "acme", 10_000)
	subs := make([]rbac.Subject, 10_000)
	for i := range subs {
		subs[i] = rbac.User(fmt.Sprint("user", i))
	}
	if _, err := e.Decide(ctx, "acme", subs[0], rbac.Contacts, rbac.Read); err != nil {
		b.Fatal(err)
	}
	b.Run("Warm", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		i := 0
		for b.Loop() {
			d, err := e.Decide(ctx, "acme", subs[i%len(subs)], rbac.Contacts, rbac.Read)
			if err != nil || !d.Allowed {
				b.Fatal(d, err)
			}
			i++
		}
	})
	b.Run("WarmDenied", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		i := 0
		for b.Loop() {
			d, err := e.Decide(ctx, "acme", subs[i%len(subs)], rbac.Billing, rbac.Read)
			if err != nil || d.Allowed {
				b.Fatal(d, err)
			}
			i++
		}
	})
	b.Run("WarmAt", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		i := 0
		for b.Loop() {
			d, err := e.DecideAt(ctx, "acme", 1, subs[i%len(subs)], rbac.Contacts, rbac.Read)
			if err != nil || !d.Allowed {
				b.Fatal(d, err)
			}
			i++
		}
	})
	b.Run("WarmParallel", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				d, err := e.Decide(ctx, "acme", subs[(i*7919)%len(subs)], rbac.Contacts, rbac.Read)
				if err != nil || !d.Allowed {
					b.Error(d, err)
					return
				}
				i++
			}
		})
	})
}

// cpuTime is the CPU time this process has used. On a machine shared with
// other work, cpu-ns/op shows what an operation costs when wall-clock
// ns/op is inflated by waiting for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per op since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkAssignments lists the grants of a tenant of 10,000 users (two
// roles each) and 100 API keys, sorted by subject: what an access review
// reads.
func BenchmarkAssignments(b *testing.B) {
	st := memstore.NewPolicies()
	e := newEnforcer(b, st)
	benchTenant(b, e, st, "acme", 10_000)
	var keys []rbac.Rule
	for i := range 100 {
		keys = append(keys, rbac.Rule{Type: rbac.RuleGrant, Role: rbac.ReportsOnly, Subject: rbac.Key(fmt.Sprintf("k%03d", i)).String()})
	}
	v, _ := st.Version(ctx, "acme")
	if err := st.Update(ctx, "acme", v, nil, keys); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		as, err := e.Assignments(ctx, "acme")
		if err != nil || len(as) != 10_100 {
			b.Fatal(len(as), err)
		}
	}
}
