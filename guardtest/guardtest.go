// Package guardtest is the conformance suite of the facade's own store
// interface, guard.TenantStore. Every backend runs it:
//
//	func TestTenants(t *testing.T) { guardtest.Run(t, func(t *testing.T) guard.TenantStore { return newStore(t) }) }
package guardtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)

func tenant(id string) guard.Tenant {
	return guard.Tenant{ID: id, Name: "Tenant " + id, Version: 1, CreatedAt: t0,
		Policy: guard.Policy{SessionLimit: 2, IdleTimeout: time.Hour, PasswordMinLength: 12, PasswordHistory: 3,
			PasswordMaxAge: 90 * 24 * time.Hour, OnSessionLimit: guard.RefuseNewSession, SessionLifetime: 48 * time.Hour}}
}

func equal(a, b guard.Tenant) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Version == b.Version && a.CreatedAt.Equal(b.CreatedAt) && a.Policy == b.Policy &&
		a.LastReview.Equal(b.LastReview) && a.IdPChangedAt.Equal(b.IdPChangedAt)
}

// mark is one of guard.TenantStore's set-if-newer methods and the field it
// sets.
type mark struct {
	name  string
	set   func(s guard.TenantStore, ctx context.Context, id string, at time.Time) error
	field func(t *guard.Tenant) *time.Time
}

var marks = []mark{
	{"MarkReviewed", guard.TenantStore.MarkReviewed, func(t *guard.Tenant) *time.Time { return &t.LastReview }},
	{"MarkIdPChanged", guard.TenantStore.MarkIdPChanged, func(t *guard.Tenant) *time.Time { return &t.IdPChangedAt }},
}

// Run checks every contract of guard.TenantStore on fresh stores.
func Run(t *testing.T, newStore func(t *testing.T) guard.TenantStore) {
	ctx := context.Background()
	runParityAudit(t, newStore)
	t.Run("CreateAndGetRoundTrip", func(t *testing.T) {
		s := newStore(t)
		want := tenant("acme")
		if err := s.CreateTenant(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Tenant(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if !equal(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
	t.Run("CreateDuplicateIsErrTenantExists", func(t *testing.T) {
		s := newStore(t)
		if err := s.CreateTenant(ctx, tenant("acme")); err != nil {
			t.Fatal(err)
		}
		other := tenant("acme")
		other.Name = "Other"
		if err := s.CreateTenant(ctx, other); !errors.Is(err, guard.ErrTenantExists) {
			t.Fatalf("duplicate create: %v, want ErrTenantExists", err)
		}
		got, _ := s.Tenant(ctx, "acme")
		if got.Name != "Tenant acme" {
			t.Fatalf("duplicate create changed the tenant: %+v", got)
		}
	})
	t.Run("UnknownTenantIsErrTenantNotFound", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Tenant(ctx, "nope"); !errors.Is(err, guard.ErrTenantNotFound) {
			t.Fatalf("Tenant: %v", err)
		}
		if _, err := s.SetPolicy(ctx, "nope", guard.Policy{}, 1); !errors.Is(err, guard.ErrTenantNotFound) {
			t.Fatalf("SetPolicy: %v", err)
		}
	})
	t.Run("SetPolicyReplacesAndIncrementsVersion", func(t *testing.T) {
		s := newStore(t)
		if err := s.CreateTenant(ctx, tenant("acme")); err != nil {
			t.Fatal(err)
		}
		p := guard.Policy{SessionLimit: 5}
		v, err := s.SetPolicy(ctx, "acme", p, 1)
		if err != nil || v != 2 {
			t.Fatalf("SetPolicy = %d, %v; want 2, nil", v, err)
		}
		got, _ := s.Tenant(ctx, "acme")
		if got.Policy != p || got.Version != 2 {
			t.Fatalf("after SetPolicy: %+v", got)
		}
	})
	t.Run("SetPolicyStaleVersionIsErrConflict", func(t *testing.T) {
		s := newStore(t)
		if err := s.CreateTenant(ctx, tenant("acme")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetPolicy(ctx, "acme", guard.Policy{SessionLimit: 5}, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetPolicy(ctx, "acme", guard.Policy{SessionLimit: 9}, 1); !errors.Is(err, guard.ErrConflict) {
			t.Fatalf("stale SetPolicy: %v, want ErrConflict", err)
		}
		got, _ := s.Tenant(ctx, "acme")
		if got.Policy.SessionLimit != 5 || got.Version != 2 {
			t.Fatalf("stale SetPolicy changed the tenant: %+v", got)
		}
	})
	t.Run("DeleteRemovesTheTenant", func(t *testing.T) {
		s := newStore(t)
		if err := s.CreateTenant(ctx, tenant("acme")); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTenant(ctx, "acme", 1); err != nil {
			t.Fatalf("DeleteTenant: %v", err)
		}
		if _, err := s.Tenant(ctx, "acme"); !errors.Is(err, guard.ErrTenantNotFound) {
			t.Fatalf("Tenant after DeleteTenant: %v, want ErrTenantNotFound", err)
		}
		if err := s.CreateTenant(ctx, tenant("acme")); err != nil {
			t.Fatalf("CreateTenant after DeleteTenant: %v", err)
		}
	})
	t.Run("DeleteStaleVersionIsErrConflict", func(t *testing.T) {
		s := newStore(t)
		if err := s.CreateTenant(ctx, tenant("acme")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetPolicy(ctx, "acme", guard.Policy{SessionLimit: 5}, 1); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTenant(ctx, "acme", 1); !errors.Is(err, guard.ErrConflict) {
			t.Fatalf("stale DeleteTenant: %v, want ErrConflict", err)
		}
		if got, err := s.Tenant(ctx, "acme"); err != nil || got.Version != 2 {
			t.Fatalf("stale DeleteTenant changed the tenant: %+v, %v", got, err)
		}
	})
	t.Run("DeleteUnknownIsErrTenantNotFound", func(t *testing.T) {
		s := newStore(t)
		if err := s.DeleteTenant(ctx, "nope", 1); !errors.Is(err, guard.ErrTenantNotFound) {
			t.Fatalf("DeleteTenant: %v, want ErrTenantNotFound", err)
		}
	})
	t.Run("CreateKeepsLastReview", func(t *testing.T) {
		s := newStore(t)
		want := tenant("acme")
		want.LastReview = t0.Add(time.Hour + 7*time.Microsecond)
		want.IdPChangedAt = t0.Add(2*time.Hour + 9*time.Microsecond)
		if err := s.CreateTenant(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Tenant(ctx, "acme")
		if err != nil || !equal(got, want) {
			t.Fatalf("got %+v, %v; want %+v", got, err, want)
		}
		list, err := s.ListTenants(ctx, "", 10)
		if err != nil || len(list) != 1 || !equal(list[0], want) {
			t.Fatalf("ListTenants = %+v, %v; want %+v", list, err, want)
		}
	})
	// "MarkReviewed sets the tenant's LastReview to at if at is after it
	// (set if newer: an older or equal at changes nothing and is no
	// error), in one step, and changes nothing else (not Version). An
	// unknown tenant gives ErrTenantNotFound." And MarkIdPChanged the
	// same of IdPChangedAt.
	for _, m := range marks {
		t.Run(m.name+"SetsIfNewer", func(t *testing.T) {
			s := newStore(t)
			want := tenant("acme")
			other := tenant("other")
			for _, tn := range []guard.Tenant{want, other} {
				if err := s.CreateTenant(ctx, tn); err != nil {
					t.Fatal(err)
				}
			}
			set := func(at time.Time) {
				t.Helper()
				if err := m.set(s, ctx, "acme", at); err != nil {
					t.Fatalf("%s(%v): %v", m.name, at, err)
				}
			}
			check := func(step string) {
				t.Helper()
				if got, err := s.Tenant(ctx, "acme"); err != nil || !equal(got, want) {
					t.Fatalf("%s: got %+v, %v; want %+v", step, got, err, want)
				}
			}
			later := t0.Add(24*time.Hour + 3*time.Microsecond)
			set(later)
			*m.field(&want) = later
			check("first mark")
			set(later.Add(-time.Hour))
			check("older mark")
			set(later)
			check("equal mark")
			set(later.Add(time.Microsecond))
			*m.field(&want) = later.Add(time.Microsecond)
			check("newer mark")
			if got, err := s.Tenant(ctx, "other"); err != nil || !equal(got, other) {
				t.Fatalf("other tenant: %+v, %v", got, err)
			}
			if err := m.set(s, ctx, "nope", later); !errors.Is(err, guard.ErrTenantNotFound) {
				t.Fatalf("%s of an unknown tenant: %v, want ErrTenantNotFound", m.name, err)
			}
			if _, err := s.Tenant(ctx, "nope"); !errors.Is(err, guard.ErrTenantNotFound) {
				t.Fatalf("%s created a tenant: %v", m.name, err)
			}
			// A policy change keeps the mark, and the mark keeps the version.
			v, err := s.SetPolicy(ctx, "acme", guard.Policy{SessionLimit: 9}, 1)
			if err != nil || v != 2 {
				t.Fatalf("SetPolicy = %d, %v", v, err)
			}
			want.Policy, want.Version = guard.Policy{SessionLimit: 9}, 2
			check("after SetPolicy")
		})
	}
	t.Run("ListTenantsOrderedAndPaged", func(t *testing.T) {
		s := newStore(t)
		for _, id := range []string{"c", "a", "e", "b", "d"} {
			if err := s.CreateTenant(ctx, tenant(id)); err != nil {
				t.Fatal(err)
			}
		}
		page, err := s.ListTenants(ctx, "", 2)
		if err != nil || len(page) != 2 || page[0].ID != "a" || page[1].ID != "b" {
			t.Fatalf("first page: %v %v", ids(page), err)
		}
		page, err = s.ListTenants(ctx, "b", 10)
		if err != nil || fmt.Sprint(ids(page)) != "[c d e]" {
			t.Fatalf("after b: %v %v", ids(page), err)
		}
	})
}

func ids(ts []guard.Tenant) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

// RunConcurrent checks the atomicity contracts under concurrent use.
func RunConcurrent(t *testing.T, newStore func(t *testing.T) guard.TenantStore) {
	ctx := context.Background()
	t.Run("ConcurrentSetPolicyOneWinnerPerVersion", func(t *testing.T) {
		s := newStore(t)
		if err := s.CreateTenant(ctx, tenant("acme")); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.SetPolicy(ctx, "acme", guard.Policy{SessionLimit: i + 1}, 1)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, guard.ErrConflict):
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d writers won version 1, want exactly 1", wins.Load())
		}
		got, _ := s.Tenant(ctx, "acme")
		if got.Version != 2 {
			t.Fatalf("version %d, want 2", got.Version)
		}
	})
	for _, m := range marks {
		t.Run("Concurrent"+m.name+"NewestWins", func(t *testing.T) {
			s := newStore(t)
			if err := s.CreateTenant(ctx, tenant("acme")); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Each also races a policy change of its own version.
					if err := m.set(s, ctx, "acme", t0.Add(time.Duration((i*37)%50)*time.Minute)); err != nil {
						t.Error(err)
					}
					if _, err := s.SetPolicy(ctx, "acme", guard.Policy{SessionLimit: i + 1}, int64(i+1)); err != nil &&
						!errors.Is(err, guard.ErrConflict) {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			got, err := s.Tenant(ctx, "acme")
			if err != nil || !m.field(&got).Equal(t0.Add(49*time.Minute)) {
				t.Fatalf("%s: %v, %v; want the newest mark, %v", m.name, *m.field(&got), err, t0.Add(49*time.Minute))
			}
		})
	}
	t.Run("ConcurrentCreateOneWinner", func(t *testing.T) {
		s := newStore(t)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.CreateTenant(ctx, tenant("acme"))
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, guard.ErrTenantExists):
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d creators won, want exactly 1", wins.Load())
		}
	})
}
