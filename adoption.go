package guard

import (
	"context"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

// Adoption is what a tenant admin sees before requiring MFA: how many
// users use a second factor, and who would have to enrol.
type Adoption struct {
	Users int // users of the tenant (active and deactivated)
	// WithMFA counts users with a confirmed factor that satisfies the
	// tenant's MFA policy (email counts only if the policy allows it).
	WithMFA int
	// WithSSO counts users who sign in by single sign-on.
	WithSSO int
	// Neither counts users with neither.
	Neither int
	// WouldEnrol lists the active users who would have to enrol a factor
	// at their next sign-in if MFA were required now (at most
	// MaxWouldEnrol of them; WouldEnrolTotal counts all).
	WouldEnrol      []User
	WouldEnrolTotal int
}

// MaxWouldEnrol bounds Adoption.WouldEnrol.
const MaxWouldEnrol = 1000

// MFAAdoption counts a tenant's users on MFA, on SSO and on neither, and
// lists who would be forced to enrol if the tenant required MFA: what the
// security page shows before the switch is thrown.
func (g *Guard) MFAAdoption(ctx context.Context, by Principal, tenant string) (Adoption, error) {
	if err := g.may(ctx, by, tenant, rbac.Settings, rbac.Read); err != nil {
		return Adoption{}, err
	}
	pol, err := g.EffectivePolicy(ctx, tenant)
	if err != nil {
		return Adoption{}, err
	}
	var ad Adoption
	idp, err := g.hasIdP(ctx, tenant)
	if err != nil {
		return Adoption{}, err
	}
	enrolled := map[string]bool{}
	if g.mfa != nil {
		after := ""
		for {
			es, err := g.mfa.Enrolments(ctx, tenant, after, mfa.MaxEnrolmentsPage)
			if err != nil {
				return Adoption{}, mfaErr("enrolments", err)
			}
			for _, e := range es {
				if e.Satisfies(pol.MFAAllowEmail) {
					enrolled[e.UserID] = true
				}
			}
			if len(es) < mfa.MaxEnrolmentsPage {
				break
			}
			after = es[len(es)-1].UserID
		}
	}
	after := ""
	for {
		us, err := g.stores.Users.ListUsers(ctx, tenant, after, 1000)
		if err != nil {
			return Adoption{}, unavailable("list users", err)
		}
		for _, u := range us {
			ad.Users++
			// On SSO: no password, in a tenant with an IdP.
			sso := idp && u.PasswordHash == ""
			switch {
			case enrolled[u.ID]:
				ad.WithMFA++
			case sso:
			default:
				ad.Neither++
			}
			if sso {
				ad.WithSSO++
			}
			if !enrolled[u.ID] && !sso && u.Status == auth.StatusActive {
				ad.WouldEnrolTotal++
				if len(ad.WouldEnrol) < MaxWouldEnrol {
					ad.WouldEnrol = append(ad.WouldEnrol, userView(u))
				}
			}
		}
		if len(us) < 1000 {
			break
		}
		after = us[len(us)-1].ID
	}
	return ad, nil
}
