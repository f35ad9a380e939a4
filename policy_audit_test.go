package guard_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/sso"
)

// Audit of the tenant policy axis: Tenant.Policy, CreateTenant, SetPolicy,
// EffectivePolicy and how each field is enforced.

const betaTenant = "beta"

// betaLogin signs email in to the tenant betaTenant with ownerPW.
func betaLogin(f *mfaFixture, email string) (guard.LoginResult, error) {
	return f.g.Login(f.ctx, guard.LoginRequest{Tenant: betaTenant, Email: email, Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
}

// newBetaWithAda creates the tenant betaTenant with the policy pol, and in
// it Ada (adaEmail, password ownerPW, no second factor), and returns
// Ada's first sign-in.
func newBetaWithAda(t *testing.T, f *mfaFixture, pol guard.Policy) guard.LoginResult {
	t.Helper()
	sys := guard.System("test")
	if _, err := f.g.CreateTenant(f.ctx, sys, betaTenant, "Beta", pol); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.CreateUser(f.ctx, sys, guard.NewUser{Tenant: betaTenant, Email: adaEmail, Name: "Ada", Password: ownerPW}); err != nil {
		t.Fatal(err)
	}
	res, err := betaLogin(f, adaEmail)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Policy.MFARequiredSince: "SetPolicy keeps it; a value given by the
// caller is ignored", and MFAGrace runs "for this long after RequireMFA
// was switched on". CreateTenant stores the caller's MFARequiredSince as
// given: a tenant created with RequireMFA and a MFARequiredSince in the
// future never asks a user without a factor to enrol (the grace period
// never starts, let alone ends), and one created with RequireMFA and a
// grace period but no MFARequiredSince gets no grace at all (the zero
// time plus the grace is long past) — until any later SetPolicy, which
// keeps RequireMFA on, starts the grace period afresh (it treats the zero
// time as "not switched on yet"), letting users without a factor sign in
// without one again for MFAGrace.
func TestAuditPolicy_CreateTenantTakesCallersMFARequiredSince(t *testing.T) {
	sys := guard.System("test")
	t.Run("a time in the future turns RequireMFA off", func(t *testing.T) {
		f := newMFAFixture(t)
		res := newBetaWithAda(t, f, guard.Policy{RequireMFA: true, MFARequiredSince: f.clock.Now().AddDate(50, 0, 0)})
		if res.Pending == nil || !res.Pending.Enrol {
			t.Errorf("sign-in without a factor in a tenant created with RequireMFA and no grace: session %v (flags %b), want a pending enrolment",
				res.Token != "", res.Session.Flags)
		}
		eff, err := f.g.EffectivePolicy(f.ctx, betaTenant)
		if err != nil {
			t.Fatal(err)
		}
		if !eff.MFARequiredSince.Equal(f.clock.Now()) {
			t.Errorf("MFARequiredSince after CreateTenant %v, want the creation time %v (the caller's value ignored)", eff.MFARequiredSince, f.clock.Now())
		}
	})
	t.Run("none given: the grace period is skipped, then restarted by a later change", func(t *testing.T) {
		f := newMFAFixture(t)
		created := f.clock.Now()
		res := newBetaWithAda(t, f, guard.Policy{RequireMFA: true, MFAGrace: 7 * 24 * time.Hour})
		if res.Token == "" || res.Session.Flags&guard.FlagMustEnrol == 0 {
			t.Errorf("sign-in without a factor at the start of the 7-day grace period: pending %v, want a session flagged FlagMustEnrol", res.Pending != nil)
		}
		// Eight days on, the grace period is over; an unrelated change
		// must not open a new one.
		f.clock.Advance(8 * 24 * time.Hour)
		tn, err := f.g.Tenant(f.ctx, betaTenant)
		if err != nil {
			t.Fatal(err)
		}
		p := tn.Policy
		p.PasswordMinLength = 12
		if _, err := f.g.SetPolicy(f.ctx, sys, betaTenant, p, tn.Version); err != nil {
			t.Fatal(err)
		}
		eff, err := f.g.EffectivePolicy(f.ctx, betaTenant)
		if err != nil {
			t.Fatal(err)
		}
		if !eff.MFARequiredSince.Equal(created) {
			t.Errorf("MFARequiredSince after a change of PasswordMinLength %v, want the creation time %v", eff.MFARequiredSince, created)
		}
		res, err = betaLogin(f, adaEmail)
		if err != nil {
			t.Fatal(err)
		}
		if res.Pending == nil || !res.Pending.Enrol {
			t.Errorf("sign-in without a factor 8 days after RequireMFA with a 7-day grace: session %v (flags %b), want a pending enrolment",
				res.Token != "", res.Session.Flags)
		}
	})
}

// CreateTenant validates the policy with Validate only, where SetPolicy
// also refuses what cannot work on this Guard: RequireMFA without
// Config.MFA ("Needs Config.MFA"), RequireSSO without Config.SSO or
// without an IdP connection ("Needs Config.SSO and an IdP connection"; a
// new tenant has none). CreateTenant accepts each, and the tenant is
// locked out: with
// RequireMFA and no MFA, every session ends at its first request
// (mfa_required) and no factor can be enrolled; with RequireSSO and no
// IdP, every password sign-in is refused and no SSO sign-in can start.
func TestAuditPolicy_CreateTenantAcceptsWhatSetPolicyRefuses(t *testing.T) {
	sys := guard.System("test")
	for _, c := range []struct {
		name  string
		pol   guard.Policy
		field string
	}{
		{"RequireMFA without Config.MFA", guard.Policy{RequireMFA: true}, "RequireMFA"},
		{"RequireSSO without Config.SSO", guard.Policy{RequireSSO: true}, "RequireSSO"},
		{"RequireSSO with SSO on but no IdP (a new tenant has none)", guard.Policy{RequireSSO: true}, "RequireSSO"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var g *guard.Guard
			if c.pol.RequireSSO && c.name != "RequireSSO without Config.SSO" {
				g = newSSOSite(t).g // SSO and MFA on; tenantID has an IdP
			} else {
				g = newFixture(t).g
			}
			ctx := t.Context()
			// SetPolicy refuses it on a new tenant.
			if _, err := g.CreateTenant(ctx, sys, "gamma", "Gamma", guard.Policy{}); err != nil {
				t.Fatal(err)
			}
			var pe *guard.PolicyError
			if _, err := g.SetPolicy(ctx, sys, "gamma", c.pol, 1); !errors.As(err, &pe) || pe.Field != c.field {
				t.Fatalf("SetPolicy = %v; the premise (a PolicyError on %s) does not hold", err, c.field)
			}
			_, err := g.CreateTenant(ctx, sys, betaTenant, "Beta", c.pol)
			if !errors.As(err, &pe) || pe.Field != c.field {
				t.Errorf("CreateTenant with %s = %v, want a *PolicyError on %s, as SetPolicy gives", c.name, err, c.field)
			}
			if _, terr := g.Tenant(ctx, betaTenant); err != nil && !errors.Is(terr, guard.ErrTenantNotFound) {
				t.Errorf("tenant after a refused CreateTenant: %v, want ErrTenantNotFound", terr)
			}
		})
	}
}

// Config.Defaults "is the policy of every tenant for the fields its own
// policy leaves zero". New accepts Defaults with RequireMFA, RequireSSO,
// MFAAllowEmail or AutoDeactivateDormant set, and then ignores them
// (Policy.withDefaults fills only the numeric and string fields): a host
// that sets Defaults.RequireMFA believes every tenant requires MFA while
// none does. Either New refuses such Defaults (*PolicyError), or the
// tenants' effective policy takes them.
func TestAuditPolicy_DefaultsSwitchesSilentlyIgnored(t *testing.T) {
	for _, c := range []struct {
		name string
		def  guard.Policy
		on   func(guard.Policy) bool
	}{
		{"RequireMFA", guard.Policy{RequireMFA: true}, func(p guard.Policy) bool { return p.RequireMFA }},
		{"AutoDeactivateDormant", guard.Policy{AutoDeactivateDormant: true}, func(p guard.Policy) bool { return p.AutoDeactivateDormant }},
		{"MFAAllowEmail", guard.Policy{MFAAllowEmail: true}, func(p guard.Policy) bool { return p.MFAAllowEmail }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := guard.Config{Stores: newMem(), AuditKey: auditKey, Hasher: fastHasher, Defaults: c.def}
			g, err := guard.New(cfg)
			var pe *guard.PolicyError
			if errors.As(err, &pe) {
				return // refused: fine
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			if _, err := g.CreateTenant(ctx, guard.System("test"), tenantID, "Acme", guard.Policy{}); err != nil {
				t.Fatal(err)
			}
			eff, err := g.EffectivePolicy(ctx, tenantID)
			if err != nil {
				t.Fatal(err)
			}
			if !c.on(eff) {
				t.Errorf("Config.Defaults with %s on: accepted by New, but the effective policy of a tenant that leaves it zero has it off", c.name)
			}
		})
	}
}

// requiresSSOWithoutIdP reports whether s's tenant requires SSO while it
// has no IdP connection: nobody but a break-glass owner can sign in.
func requiresSSOWithoutIdP(t *testing.T, s *ssoSite) bool {
	t.Helper()
	ctx := t.Context()
	tn, err := s.g.Tenant(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.g.SSOConnection(ctx, guard.System("test"), tenantID)
	if err != nil && !errors.Is(err, sso.ErrNotFound) {
		t.Fatal(err)
	}
	return tn.Policy.RequireSSO && errors.Is(err, sso.ErrNotFound)
}

// Policy.RequireSSO "Needs Config.SSO and an IdP connection": SetPolicy
// refuses it for a tenant without an IdP, and DeleteSSOConnection
// refuses to remove the IdP while the tenant requires SSO ("turn it off
// before removing the IdP"). Each checks the other's state and then
// writes, with nothing ordering the two, so a removal and a switch to
// RequireSSO at once both succeed and leave the tenant requiring SSO with
// no IdP: every password sign-in is refused (ErrSSORequired), no SSO
// sign-in can start, and every open session that is not the break-glass
// owner's ends at its next request — with no break-glass owner named
// (which is allowed), the whole tenant is locked out until the host
// steps in as the system. The break-glass owner's guard rails were made
// to write, then read the other side's (TestBreakGlassNamingRacesFactorRemoval);
// this pair was not. DeleteSSOConnection also reads the policy through
// the cache (keepBreakGlass reads it from the store for this reason), so
// on another replica the window is PolicyCacheTTL long, not microseconds.
func TestAuditPolicy_IdPRemovedWhileSSOIsBeingRequired(t *testing.T) {
	sys := guard.System("test")
	t.Run("the removal comes between SetPolicy's check and its write", func(t *testing.T) {
		st := newMem()
		ts := &hookedPolicy{TenantStore: st.Tenants}
		st.Tenants = ts
		s := newSSOSiteOn(t, st)
		ctx := t.Context()
		tn, err := s.g.Tenant(ctx, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		var delErr error
		ts.hook = func() { delErr = s.g.DeleteSSOConnection(ctx, sys, tenantID) }
		_, setErr := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true}, tn.Version)
		if requiresSSOWithoutIdP(t, s) {
			t.Errorf("SetPolicy(RequireSSO) = %v and DeleteSSOConnection = %v at once: the tenant requires SSO and has no IdP", setErr, delErr)
		}
	})
	t.Run("the removal on a replica whose cache holds the policy from before", func(t *testing.T) {
		s := newSSOSite(t)
		ctx := t.Context()
		spKey, spCert := keyPair(t, "sp")
		g2, err := guard.New(guard.Config{Stores: s.stores, AuditKey: auditKey, Hasher: fastHasher, PolicyCacheTTL: time.Minute,
			MFA: &mfa.Config{Keyring: s.kr, Issuer: "Acme", Email: s.out},
			SSO: &sso.Config{BaseURL: s.srv.URL, Key: spKey, Certificate: spCert, AllowInsecureMetadata: true}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g2.EffectivePolicy(ctx, tenantID); err != nil { // a request on the replica
			t.Fatal(err)
		}
		tn, err := s.g.Tenant(ctx, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true}, tn.Version); err != nil {
			t.Fatal(err)
		}
		err = g2.DeleteSSOConnection(ctx, sys, tenantID)
		var pe *guard.PolicyError
		if !errors.As(err, &pe) || requiresSSOWithoutIdP(t, s) {
			t.Errorf("DeleteSSOConnection on another replica after RequireSSO was switched on: %v, want a *PolicyError and the IdP kept", err)
		}
	})
}

// Adoption.WithSSO (and UserAccess.SSO) count a user on single sign-on
// when "the tenant has an IdP connection and the user signed in through
// it" within DormantAfter (or has no password and signed in through it at
// least once). After the tenant's IdP is replaced by another (another
// entity ID: Tenant.IdPChangedAt, which ends every session the old IdP
// vouched for), users who signed in only through the old IdP are still
// counted on SSO, and left out of WouldNeedSSO: the page an admin reads
// before requiring SSO says nobody would lose access, while nobody has
// yet shown they can sign in through the new IdP. Sign-ins at or before
// Tenant.IdPChangedAt should not count.
func TestAuditPolicy_AdoptionCountsSignInsThroughTheReplacedIdP(t *testing.T) {
	s := newSSOSite(t)
	ctx, sys := t.Context(), guard.System("test")
	pat, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "pat@corp.example", Name: "Pat", Password: ownerPW})
	if err != nil {
		t.Fatal(err)
	}
	s.ssoUser(t, "pat", pat.Email)        // Pat, who has a password, signs in through the IdP
	s.ssoUser(t, "al", "al@corp.example") // Al is provisioned just in time, without a password
	before, err := s.g.MFAAdoption(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if before.WithSSO != 2 || before.WouldNeedSSOTotal != 0 {
		t.Fatalf("adoption before the change of IdP: WithSSO %d, WouldNeedSSOTotal %d; the premise (2, 0) does not hold", before.WithSSO, before.WouldNeedSSOTotal)
	}
	s.replaceIdP(t)
	tn, err := s.g.Tenant(ctx, tenantID)
	if err != nil || tn.IdPChangedAt.IsZero() {
		t.Fatalf("tenant after the change of IdP: %+v, %v; want IdPChangedAt set", tn, err)
	}
	ad, err := s.g.MFAAdoption(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if ad.WithSSO != 0 || ad.WouldNeedSSOTotal != 2 {
		t.Errorf("adoption after the IdP was replaced, before anyone signed in through the new one: WithSSO %d, WouldNeedSSOTotal %d; want 0 and 2",
			ad.WithSSO, ad.WouldNeedSSOTotal)
	}
}

// A tenant's policy can be set at creation as well as by SetPolicy, but
// only SetPolicy's record (tenant.policy_set) says what was set: the
// tenant.created event carries no policy at all. A tenant created with a
// short audit retention, a weak session limit or MFA off leaves no record
// of it, and since tenant.policy_set lists only the fields that differ
// from the policy replaced (with their new values), the first policy
// change of every tenant is recorded against a starting point that is
// nowhere on record (TestAuditMaintain_RetentionChangeNotInThePolicyRecord
// made SetPolicy's record complete; this is its other half). Correct:
// tenant.created lists the fields set, as policyChanges does from the
// zero policy.
func TestAuditPolicy_TenantCreatedRecordsNoPolicy(t *testing.T) {
	f := newFixture(t)
	pol := guard.Policy{SessionLimit: 5, PasswordMinLength: 12, AuditRetention: 30 * 24 * time.Hour}
	if _, err := f.g.CreateTenant(f.ctx, guard.System("test"), betaTenant, "Beta", pol); err != nil {
		t.Fatal(err)
	}
	page, err := f.g.QueryAudit(f.ctx, guard.System("test"), betaTenant, audit.Query{Action: string(audit.TenantCreated)})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 {
		t.Fatalf("%d tenant.created events, want 1", len(page.Events))
	}
	meta := page.Events[0].Meta
	for _, k := range []string{"session_limit", "password_min_length", "audit_retention"} {
		if _, ok := meta[k]; !ok {
			t.Errorf("tenant.created of a tenant created with %s set has Meta %v; want %s", k, meta, k)
		}
	}
}

// Policy.BreakGlassUser is checked only when RequireSSO is on (Validate
// and checkSSOPolicy): otherwise any string is taken, written to the
// store, and then refused by the audit log when SetPolicy records it
// (Meta break_glass_user: not valid UTF-8, or longer than 1024 bytes).
// SetPolicy then puts the previous policy back and answers
// ErrUnavailable: bad input reported as an outage (a host answers 503 and
// pages someone), and not "changing nothing" — the tenant's version moved
// twice and the malformed policy was in force, for every replica to read,
// until the undo. DESIGN: "Bad input … gives a typed error and changes
// nothing". Correct: Validate refuses such a BreakGlassUser (*PolicyError)
// before anything is written.
func TestAuditPolicy_MalformedBreakGlassUserReportedAsOutage(t *testing.T) {
	for name, bg := range map[string]string{
		"not UTF-8":       "\xff\xfe",
		"over 1024 bytes": strings.Repeat("u", 2048),
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			_, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, guard.Policy{BreakGlassUser: bg}, 1)
			var pe *guard.PolicyError
			if !errors.As(err, &pe) {
				t.Errorf("SetPolicy with a BreakGlassUser %s = %v, want a *PolicyError", name, err)
			}
			tn, terr := f.g.Tenant(f.ctx, tenantID)
			if terr != nil {
				t.Fatal(terr)
			}
			if tn.Version != 1 {
				t.Errorf("tenant version after the refused SetPolicy %d, want 1 (nothing changed)", tn.Version)
			}
		})
	}
}
