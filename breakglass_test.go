package guard_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

// Naming another break-glass owner takes the break-glass way in from the
// previous one at once: a break-glass sign-in halfway through (password
// done, second factor not yet) is refused when it completes, and the
// previous owner's open session ends at its next request.
func TestBreakGlassHandedOver(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	ann, annSecret := s.userWithTOTP(t, "ann@corp.example", rbac.Owner)
	ben, _ := s.userWithTOTP(t, "ben@corp.example", rbac.Owner)
	setBreakGlass := func(id string) {
		t.Helper()
		tn, _ := s.g.Tenant(ctx, tenantID)
		if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: id}, tn.Version); err != nil {
			t.Fatal(err)
		}
		time.Sleep(600 * time.Millisecond) // past the policy cache
	}
	setBreakGlass(ann.ID)
	start := func() *guard.Pending {
		t.Helper()
		res, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "ann@corp.example", Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
		if err != nil || res.Pending == nil {
			t.Fatalf("Ann's break-glass password step: %+v, %v", res, err)
		}
		return res.Pending
	}
	complete := func(p *guard.Pending, at time.Time) (guard.LoginResult, error) {
		code, err := totp.GenerateCode(annSecret, at)
		if err != nil {
			t.Fatal(err)
		}
		return s.g.CompleteLogin(ctx, guard.SecondFactor{Pending: p.Token, Method: guard.MethodTOTP, Code: code, IP: "203.0.113.5", UserAgent: "test"})
	}
	done, err := complete(start(), time.Now())
	if err != nil || done.Token == "" {
		t.Fatalf("Ann's break-glass sign-in: %+v, %v", done, err)
	}
	halfway := start()

	setBreakGlass(ben.ID)
	if res, err := complete(halfway, time.Now().Add(30*time.Second)); !errors.Is(err, guard.ErrSSORequired) || res.Token != "" {
		t.Errorf("Ann completing a break-glass sign-in after Ben was named: %+v, %v; want ErrSSORequired", res, err)
	}
	if r := s.loginFailures(t); r[guard.ReasonBreakGlassNotOwner] != 1 {
		t.Errorf("login.failed reasons %v, want one %s", r, guard.ReasonBreakGlassNotOwner)
	}
	if _, err := s.g.Authenticate(ctx, done.Token); !errors.Is(err, guard.ErrPolicyChanged) {
		t.Errorf("Ann's break-glass session after Ben was named: %v, want ErrPolicyChanged", err)
	}
}

// Removals of the break-glass owner's factors made at once never take the
// last one: round after round, the owner's two confirmed factors are
// removed from many goroutines at once; one goes, the other stays, and
// exactly the refused removals are on record as failed mfa.removed events
// (reason break_glass_user), beside one success per round.
func TestBreakGlassFactorsRemovedAtOnce(t *testing.T) {
	st := newMem()
	st.MFA.Factors = latentFactors{st.MFA.Factors}
	s := newSSOSiteOn(t, st)
	ctx := t.Context()
	sys := guard.System("test")
	owner, _ := s.userWithTOTP(t, "owner@corp.example", rbac.Owner)
	tn, _ := s.g.Tenant(ctx, tenantID)
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: owner.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	const rounds, n = 25, 12
	refused := 0
	for round := range rounds {
		fs, err := s.g.Factors(ctx, sys, tenantID, owner.ID)
		if err != nil || len(fs) != 1 {
			t.Fatalf("round %d: the owner's factors %v, %v; want one", round, fs, err)
		}
		// A second confirmed factor beside the one the last round left,
		// an email factor every other round (they count too).
		kind, dest := mfa.KindSMS, "+15555550100"
		if round%2 == 1 {
			kind, dest = mfa.KindEmail, "owner@corp.example"
		}
		add := mfa.Factor{ID: fmt.Sprintf("roundFactor%02d", round), Tenant: tenantID, UserID: owner.ID, Kind: kind,
			Label: "Second", Destination: dest, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
		if err := s.stores.MFA.Factors.CreateFactor(ctx, add, 10); err != nil {
			t.Fatal(err)
		}
		if err := s.stores.MFA.FactorUpdates.ConfirmFactor(ctx, tenantID, owner.ID, add.ID, add.CreatedAt, 1, 0); err != nil {
			t.Fatal(err)
		}
		ids := [2]string{fs[0].ID, add.ID}
		var mu sync.Mutex
		var start, done sync.WaitGroup
		removed := 0
		start.Add(1)
		for i := range n {
			done.Go(func() {
				start.Wait()
				err := s.g.RemoveFactor(ctx, sys, tenantID, owner.ID, ids[i%2])
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					removed++
				case errors.Is(err, guard.ErrBreakGlassUser):
					refused++
				case !errors.Is(err, mfa.ErrNotFound):
					t.Errorf("round %d: RemoveFactor(%s): %v", round, ids[i%2], err)
				}
			})
		}
		start.Done()
		done.Wait()
		left, err := s.g.Factors(ctx, sys, tenantID, owner.ID)
		if err != nil || len(left) != 1 || !left[0].Confirmed() || removed != 1 {
			t.Fatalf("round %d: %d removals left the break-glass owner %v, %v; want 1 removal and one confirmed factor", round, removed, left, err)
		}
	}
	page, err := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.MFARemoved), Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var ok, failed int
	for _, e := range page.Events {
		switch {
		case e.Outcome == audit.Success:
			ok++
		case e.Outcome == audit.Failure && e.Reason == "break_glass_user" && e.Target == owner.ID:
			failed++
		default:
			t.Errorf("unexpected mfa.removed event %+v", e)
		}
	}
	if ok != rounds || failed != refused || refused == 0 {
		t.Errorf("mfa.removed on record: %d successes and %d refusals; want %d and the %d refusals returned", ok, failed, rounds, refused)
	}
}

// latentFactors gives each read and removal of factors the latency of a
// round trip to a database, so that requests made at once overlap as they
// do in production.
type latentFactors struct{ mfa.FactorStore }

const roundTrip = time.Millisecond

func (l latentFactors) Factors(ctx context.Context, tenant, userID string) ([]mfa.Factor, error) {
	time.Sleep(roundTrip)
	return l.FactorStore.Factors(ctx, tenant, userID)
}

func (l latentFactors) DeleteFactor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	time.Sleep(roundTrip)
	return l.FactorStore.DeleteFactor(ctx, tenant, userID, id)
}

func (l latentFactors) DeleteFactorKeeping(ctx context.Context, tenant, userID, id string, keep int) (mfa.Factor, error) {
	time.Sleep(roundTrip)
	return l.FactorStore.DeleteFactorKeeping(ctx, tenant, userID, id, keep)
}
