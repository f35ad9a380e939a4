package guard

import (
	"context"
	"time"
)

// recordSSOLogin records that the user of a completed SSO sign-in signed
// in through the IdP (auth.User.LastSSOAt, with LastLoginAt), which is what
// puts them on SSO (see UserAccess.SSO), and updates lr.User to match.
//
// The sign-in itself is done by then: its session exists and its
// login.succeeded event is recorded. A failure to write the time is
// therefore not the sign-in's: the user then counts as not on SSO until
// their next SSO sign-in, so a report lists them among those who would
// need SSO (Adoption.WouldNeedSSO) rather than hiding them.
func (g *Guard) recordSSOLogin(ctx context.Context, lr *LoginResult) {
	if lr.Token == "" || lr.User.ID == "" {
		return
	}
	cur, err := g.stores.UserUpdates.RecordSSOLogin(ctx, lr.User.Tenant, lr.User.ID, g.now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return
	}
	lr.User = userView(cur)
}
