package memstore_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/sso/ssotest"
	"github.com/guardhq/guard/store/memstore"
)

// ssoT0 is the tests' fixed "now", in the future.
var ssoT0 = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)

func newSSO(*testing.T) sso.Stores { return memstore.NewSSO().Stores() }

func TestSSO(t *testing.T) { ssotest.Run(t, newSSO) }

func TestSSOConcurrent(t *testing.T) { ssotest.RunConcurrent(t, newSSO) }

// TestSSOSplitRoles runs the suite with only the cache roles, as a backend
// that keeps requests and the replay cache in Redis would.
func TestSSOSplitRoles(t *testing.T) {
	ssotest.Run(t, func(*testing.T) sso.Stores {
		s := memstore.NewSSO()
		return sso.Stores{Requests: s, Replay: s}
	})
}

func TestSSOReplayBounded(t *testing.T) {
	s := memstore.NewSSOBounded(2000)
	ctx := t.Context()
	// 100,000 distinct assertion IDs, one a millisecond, each kept a
	// second: expired records are swept, so at most the bound is held.
	for i := range 100_000 {
		now := ssoT0.Add(time.Duration(i) * time.Millisecond)
		ok, err := s.InsertID(ctx, "t", fmt.Sprint("id-", i), now.Add(time.Second), now)
		if err != nil || !ok {
			t.Fatalf("InsertID %d = %v, %v", i, ok, err)
		}
	}
	if _, replay := s.Len(); replay > 2000 {
		t.Errorf("%d replay records held, want at most 2000", replay)
	}
	// Live records are never evicted: at the bound a new ID is refused
	// (fail closed) and a live ID is still known.
	s = memstore.NewSSOBounded(2000)
	for i := range 2000 {
		if _, err := s.InsertID(ctx, "t", fmt.Sprint("k", i), ssoT0.Add(time.Hour), ssoT0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.InsertID(ctx, "t", "one-more", ssoT0.Add(time.Hour), ssoT0); !errors.Is(err, sso.ErrFull) {
		t.Errorf("InsertID beyond the bound = %v, want ErrFull", err)
	}
	if ok, err := s.InsertID(ctx, "t", "k7", ssoT0.Add(time.Hour), ssoT0); err != nil || ok {
		t.Errorf("InsertID of a live ID at the bound = %v, %v; want false, nil", ok, err)
	}
	if ok, err := s.InsertID(ctx, "t", "one-more", ssoT0.Add(2*time.Hour), ssoT0.Add(time.Hour)); err != nil || !ok {
		t.Errorf("InsertID after the records expired = %v, %v; want true", ok, err)
	}
}

func TestSSORequestsBounded(t *testing.T) {
	s := memstore.NewSSOBounded(2000)
	ctx := t.Context()
	for i := range 50_000 {
		now := ssoT0.Add(time.Duration(i) * time.Second)
		r := sso.Request{Tenant: "t", ID: fmt.Sprint("id-", i), Kind: sso.KindLogin, CreatedAt: now, Expires: now.Add(10 * time.Minute)}
		if err := s.RememberRequest(ctx, r); err != nil {
			t.Fatalf("RememberRequest %d: %v", i, err)
		}
	}
	// Ten minutes of requests (600) are live; the map is swept when it
	// doubles past 1024.
	if requests, _ := s.Len(); requests > 2*1024 {
		t.Errorf("%d requests held, want at most 2048", requests)
	}
	s = memstore.NewSSOBounded(100)
	for i := range 100 {
		r := sso.Request{Tenant: "t", ID: fmt.Sprint("id-", i), CreatedAt: ssoT0, Expires: ssoT0.Add(time.Hour)}
		if err := s.RememberRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	r := sso.Request{Tenant: "t", ID: "one-more", CreatedAt: ssoT0, Expires: ssoT0.Add(time.Hour)}
	if err := s.RememberRequest(ctx, r); !errors.Is(err, sso.ErrFull) {
		t.Errorf("RememberRequest beyond the bound = %v, want ErrFull", err)
	}
}

func TestSSOSubjectsSwept(t *testing.T) {
	s := memstore.NewSSO()
	ctx := t.Context()
	// 20,000 sign-ins of distinct users, one a second, each subject kept a
	// minute: the expired ones are swept with their index entries.
	for i := range 20_000 {
		now := ssoT0.Add(time.Duration(i) * time.Second)
		sub := sso.Subject{Tenant: "t", UserID: fmt.Sprint("u", i), NameID: fmt.Sprint("n", i), Expires: now.Add(time.Minute)}
		if err := s.PutSubject(ctx, sub, now); err != nil {
			t.Fatal(err)
		}
	}
	if subjects, nameIDs := s.SubjectLen(); subjects > 2*1024 || nameIDs > 2*1024 {
		t.Errorf("%d subjects under %d NameIDs held, want at most 2048", subjects, nameIDs)
	}
	// One user signing in again and again under new NameIDs leaves one
	// subject and one index entry.
	s = memstore.NewSSO()
	for i := range 1000 {
		sub := sso.Subject{Tenant: "t", UserID: "u", NameID: fmt.Sprint("n", i), Expires: ssoT0.Add(time.Hour)}
		if err := s.PutSubject(ctx, sub, ssoT0); err != nil {
			t.Fatal(err)
		}
	}
	if subjects, nameIDs := s.SubjectLen(); subjects != 1 || nameIDs != 1 {
		t.Errorf("%d subjects under %d NameIDs held, want 1 and 1", subjects, nameIDs)
	}
}
