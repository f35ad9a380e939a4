package rbac_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	casbin "github.com/casbin/casbin/v2"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// The large model of the performance brief: one tenant with 100,000
// users, 1,000 custom roles and 10,000 resources. Resources are host
// sections (Config.Sections "res-0" … "res-9999", six actions each: 60,000
// permissions); each custom role holds 10 random (resource, action)
// permissions, and each user holds 2 random custom roles, every 10th user
// also the built-in member role. Stored: 10,000 permission rows and
// 210,000 grant rows; casbin sees them plus the built-in roles' rows.
const (
	largeUsers     = 100_000
	largeRoles     = 1_000
	largeResources = 10_000
	largeTenant    = "big"
)

type largeModel struct {
	store    *memstore.Policies
	sections []rbac.Section
	users    []rbac.Subject
	built    time.Duration
}

var (
	largeOnce sync.Once
	large     *largeModel
)

func largeSetup(b *testing.B) *largeModel {
	b.Helper()
	largeOnce.Do(func() {
		start := time.Now()
		rng := rand.New(rand.NewPCG(10, 20))
		m := &largeModel{store: memstore.NewPolicies()}
		for i := range largeResources {
			m.sections = append(m.sections, rbac.Section(fmt.Sprint("res-", i)))
		}
		rules := make([]rbac.Rule, 0, largeRoles*10+largeUsers*2+largeUsers/10)
		for r := range largeRoles {
			for range 10 {
				rules = append(rules, rbac.Rule{Type: rbac.RulePermission, Role: fmt.Sprint("role-", r),
					Section: m.sections[rng.IntN(largeResources)], Action: rbac.Actions()[rng.IntN(6)]})
			}
		}
		for u := range largeUsers {
			sub := rbac.User(fmt.Sprint("user-", u))
			m.users = append(m.users, sub)
			for range 2 {
				rules = append(rules, rbac.Rule{Type: rbac.RuleGrant, Role: fmt.Sprint("role-", rng.IntN(largeRoles)), Subject: sub.String()})
			}
			if u%10 == 0 {
				rules = append(rules, rbac.Rule{Type: rbac.RuleGrant, Role: rbac.Member, Subject: sub.String()})
			}
		}
		if err := m.store.Update(ctx, largeTenant, 0, nil, rules); err != nil {
			panic(err)
		}
		m.built = time.Since(start)
		large = m
	})
	return large
}

func (m *largeModel) enforcer(b *testing.B) *rbac.Enforcer {
	b.Helper()
	e, err := rbac.New(rbac.Config{Store: m.store, Sections: m.sections})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// queries returns n random (user, resource, action) triples.
func (m *largeModel) queries(n int) []struct {
	sub rbac.Subject
	sec rbac.Section
	act rbac.Action
} {
	rng := rand.New(rand.NewPCG(30, 40))
	q := make([]struct {
		sub rbac.Subject
		sec rbac.Section
		act rbac.Action
	}, n)
	for i := range q {
		q[i].sub = m.users[rng.IntN(len(m.users))]
		q[i].sec = m.sections[rng.IntN(len(m.sections))]
		q[i].act = rbac.Actions()[rng.IntN(6)]
	}
	return q
}

// retained returns the live heap after a collection.
func retained() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkLargeLoad compares, on the large model, Guard's policy load
// (what a replica does on its first decision for the tenant) with
// casbin's, each iteration a full load. Run it with a small count:
//
//	go test -run '^$' -bench BenchmarkLargeLoad -benchtime 3x ./rbac/
func BenchmarkLargeLoad(b *testing.B) {
	m := largeSetup(b)
	b.Logf("model generated in %v", m.built)

	b.Run("Guard/Load", func(b *testing.B) {
		// A new replica's first decision: the whole policy read through
		// the casbin adapter into a casbin model, compiled into a table.
		b.ReportAllocs()
		var heap uint64
		for b.Loop() {
			before := retained()
			e := m.enforcer(b)
			if _, err := e.Decide(ctx, largeTenant, m.users[0], m.sections[0], rbac.Read); err != nil {
				b.Fatal(err)
			}
			heap = retained() - before
			runtime.KeepAlive(e)
		}
		b.ReportMetric(float64(heap)/(1<<20), "MB-retained")
	})
	b.Run("Casbin/Load", func(b *testing.B) {
		// casbin's own load of the same rows (through the same adapter),
		// including its role links.
		b.ReportAllocs()
		e := m.enforcer(b)
		var heap uint64
		for b.Loop() {
			before := retained()
			ce, err := e.Casbin(ctx, largeTenant)
			if err != nil {
				b.Fatal(err)
			}
			heap = retained() - before
			runtime.KeepAlive(ce)
		}
		b.ReportMetric(float64(heap)/(1<<20), "MB-retained")
	})

}

// BenchmarkLargeDecide compares, on the large model, Guard's warm
// decision, its first decision after a policy change made on another
// replica (Cold), and casbin's plain Enforcer.Enforce:
//
//	go test -run '^$' -bench BenchmarkLargeDecide -benchtime 1s ./rbac/
func BenchmarkLargeDecide(b *testing.B) {
	m := largeSetup(b)
	reader, writer := m.enforcer(b), m.enforcer(b) // two replicas
	q := m.queries(4096)
	for _, e := range []*rbac.Enforcer{reader, writer} { // loaded before timing
		if _, err := e.Decide(ctx, largeTenant, q[0].sub, q[0].sec, q[0].act); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Guard/Warm", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		i := 0
		for b.Loop() {
			x := q[i%len(q)]
			if _, err := reader.Decide(ctx, largeTenant, x.sub, x.sec, x.act); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Guard/Cold", func(b *testing.B) {
		// The first decision after a policy change made on another
		// replica: read the version, fetch the change from the log, apply
		// it to the table, decide. The write itself is not timed.
		b.ReportAllocs()
		// (no cpu-ns/op: the untimed write would be counted)
		i := 0
		for b.Loop() {
			b.StopTimer()
			x := q[i%len(q)]
			role := fmt.Sprint("role-", i%largeRoles)
			var err error
			if i%2 == 0 {
				err = writer.Grant(ctx, writer.AllPerms(), largeTenant, x.sub, role)
			} else {
				err = writer.Revoke(ctx, writer.AllPerms(), largeTenant, q[(i-1)%len(q)].sub, fmt.Sprint("role-", (i-1)%largeRoles))
			}
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := reader.Decide(ctx, largeTenant, x.sub, x.sec, x.act); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Guard/ChangeThenDecide", func(b *testing.B) {
		// As Cold, with the write (Grant or Revoke on the other replica,
		// itself checked against its table) timed too.
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		i := 0
		for b.Loop() {
			x := q[i%len(q)]
			var err error
			if i%2 == 0 {
				err = writer.Grant(ctx, writer.AllPerms(), largeTenant, x.sub, rbac.ReportsOnly)
			} else {
				err = writer.Revoke(ctx, writer.AllPerms(), largeTenant, q[(i-1)%len(q)].sub, rbac.ReportsOnly)
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := reader.Decide(ctx, largeTenant, x.sub, rbac.Reports, rbac.Read); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Casbin/Enforce", func(b *testing.B) {
		// casbin's plain Enforcer.Enforce on the same policy.
		ce, err := reader.Casbin(ctx, largeTenant)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		i := 0
		for b.Loop() {
			x := q[i%len(q)]
			if _, err := ce.Enforce(x.sub.String(), largeTenant, string(x.sec), string(x.act)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkCasbinCached is casbin's CachedEnforcer on a hit, for the
// comparison with BenchmarkDecide/Warm (same tenant shape).
func BenchmarkCasbinCached(b *testing.B) {
	st := memstore.NewPolicies()
	e := newEnforcer(b, st)
	benchTenant(b, e, st, "acme", 10_000)
	plain, err := e.Casbin(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	ce, err := casbin.NewCachedEnforcer(plain.GetModel(), e.Adapter())
	if err != nil {
		b.Fatal(err)
	}
	if err := ce.BuildRoleLinks(); err != nil {
		b.Fatal(err)
	}
	if ok, err := ce.Enforce("user:user1", "acme", "contacts", "read"); err != nil || !ok {
		b.Fatal(ok, err)
	}
	b.ReportAllocs()
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		if _, err := ce.Enforce("user:user1", "acme", "contacts", "read"); err != nil {
			b.Fatal(err)
		}
	}
}
