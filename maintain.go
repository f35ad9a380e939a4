package guard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

// MaintainOptions tune Maintain. Zero fields take the defaults.
type MaintainOptions struct {
	// MetadataMaxAge is the age from which an IdP's metadata, fetched
	// from its URL, is fetched again (default 1 hour).
	MetadataMaxAge time.Duration
}

// MaintenanceReport is what one Maintain run did.
type MaintenanceReport struct {
	Tenants int // tenants looked at
	// Deactivated are the users deactivated as dormant, by tenant.
	Deactivated map[string][]string
	// Purged is the number of audit events purged, by tenant.
	Purged map[string]int
	// MetadataRefreshed lists the tenants whose IdP metadata was fetched
	// again.
	MetadataRefreshed []string
	// KeysRevoked is the number of API keys revoked because their
	// creator is deactivated, by tenant.
	KeysRevoked map[string]int
	// KeysPurged is the number of revoked and expired API keys deleted
	// past Config.APIKeyRetention, by tenant.
	KeysPurged map[string]int
	// SessionsTrimmed is the number of sessions ended because their user
	// had more than the tenant's session limit, by tenant.
	SessionsTrimmed map[string]int
	// SessionsOfDeactivated is the number of live sessions ended because
	// their user is deactivated, by tenant.
	SessionsOfDeactivated map[string]int
	// Failed is the error of each tenant whose chores stopped on one.
	Failed map[string]error
}

// tenantPage is how many tenants Maintain reads at a time.
const tenantPage = 100

// Maintain runs every tenant's scheduled chores, for a host's job (every
// hour, say, on one replica or several: each chore is safe to repeat):
//   - DeactivateDormant, where the tenant's policy turns it on
//     (Policy.AutoDeactivateDormant);
//   - PurgeAudit of the events older than Policy.AuditRetention, where
//     one is set; otherwise (none set, or no events to purge) a purge
//     left unrecorded (the audit store failed between its deletion and
//     its audit.purged event, in a PurgeAudit of Maintain or of the
//     host) is recorded, late, as PurgeAudit does before it purges;
//   - RefreshSSOMetadata of an IdP connection fetched from a URL more
//     than MetadataMaxAge ago (a failed fetch keeps the last good copy);
//   - the API keys revoked or expired more than Config.APIKeyRetention
//     ago (90 days by default; none when negative) deleted, in one store
//     step, and recorded as one apikey.purged event (Meta count and
//     before) when any were; the keys' own history stays in the log. A
//     failure to record after the deletion returns ErrUnavailable, and
//     the keys are gone all the same: nothing of them is left for a late
//     record, so that purge stays off the record;
//   - the API keys of deactivated users revoked (DeactivateUser does it,
//     but keys created before it did, or by a call that raced with it,
//     may be left), each recorded as apikey.revoked with reason
//     creator_deactivated;
//   - the sessions of deactivated users ended, each user's recorded as
//     session.revoked with reason deactivated (DeactivateUser,
//     DeleteUser and ApplyReview end them, but a store failure may have
//     stopped one after the user was deactivated: it returned the error,
//     and the sessions lived on);
//   - the sessions of each user beyond the tenant's session limit
//     ended, the newest kept, each recorded as session.revoked with
//     reason session_limit: SetPolicy does it when it lowers the limit,
//     but a failure may have stopped it part way, a sign-in on a replica
//     that had not yet seen the change may have opened one under the old
//     limit, and a lowered Config.Defaults lowers the limit of tenants
//     that take the default without any SetPolicy. This lists the
//     sessions of every user of the tenant: one session-store call per
//     user.
//
// Each tenant's policy is read from the store when its chores start, not
// from this replica's cache (Config.PolicyCacheTTL): a retention raised,
// or AutoDeactivateDormant switched off, on another replica just before
// is in force.
//
// Only the system may run it (by = System("cron"); anyone else gets
// ErrForbidden, recorded as access.denied with reason system_only); each chore is
// recorded as it is when called alone. A tenant whose chores fail does
// not stop the others: Maintain goes on, and returns the report with the
// failures joined in its error (each also in Failed). A failure to list
// the tenants stops it.
func (g *Guard) Maintain(ctx context.Context, by Principal, o MaintainOptions) (MaintenanceReport, error) {
	if by.Kind != KindSystem {
		return MaintenanceReport{}, g.refused(ctx, by, rbac.Settings, rbac.Manage, reasonSystemOnly)
	}
	if o.MetadataMaxAge <= 0 {
		o.MetadataMaxAge = time.Hour
	}
	rep := MaintenanceReport{Deactivated: map[string][]string{}, Purged: map[string]int{}, KeysRevoked: map[string]int{},
		KeysPurged: map[string]int{}, SessionsTrimmed: map[string]int{}, SessionsOfDeactivated: map[string]int{}, Failed: map[string]error{}}
	var errs []error
	after := ""
	for {
		ts, err := g.stores.Tenants.ListTenants(ctx, after, tenantPage)
		if err != nil {
			return rep, errors.Join(append(errs, unavailable("list tenants", err))...)
		}
		for _, t := range ts {
			rep.Tenants++
			if err := g.maintainTenant(ctx, by, t.ID, o, &rep); err != nil {
				rep.Failed[t.ID] = err
				errs = append(errs, fmt.Errorf("tenant %s: %w", t.ID, err))
			}
			if ctx.Err() != nil {
				return rep, errors.Join(append(errs, ctx.Err())...)
			}
		}
		if len(ts) < tenantPage {
			return rep, errors.Join(errs...)
		}
		after = ts[len(ts)-1].ID
	}
}

// maintainTenant runs the chores of one tenant (see Maintain). The
// tenant's policy is read from the store, not from this replica's cache
// (which it then refreshes, for the chores that read it again): a purge
// cannot be undone, and a retention raised, or AutoDeactivateDormant
// switched off, on another replica a moment ago must be in force.
func (g *Guard) maintainTenant(ctx context.Context, by Principal, tenant string, o MaintainOptions, rep *MaintenanceReport) error {
	g.policies.forget(tenant)
	t, err := g.policies.get(ctx, tenant)
	if err != nil {
		return err
	}
	pol := t.Policy.withDefaults(g.defaults)
	if pol.AutoDeactivateDormant {
		ids, err := g.DeactivateDormant(ctx, by, tenant)
		if len(ids) > 0 {
			rep.Deactivated[tenant] = ids
		}
		if err != nil {
			return err
		}
	}
	purged := false
	if pol.AuditRetention > 0 {
		// Only when there is something to purge: a purge is recorded,
		// and an hourly job would fill the log with empty ones.
		cut := g.now().Add(-pol.AuditRetention)
		old, err := g.audit.Query(ctx, tenant, audit.Query{To: cut, Limit: 1})
		if err != nil {
			return auditErr(err)
		}
		if len(old.Events) > 0 {
			n, err := g.PurgeAudit(ctx, by, tenant, cut)
			if err != nil {
				return err
			}
			rep.Purged[tenant] = n
			purged = true
		}
	}
	if !purged {
		// PurgeAudit records a purge left unrecorded before it purges;
		// without it (nothing to purge, or no retention: the host's own
		// PurgeAudit may have left one), this does.
		if _, err := g.recordLatePurge(ctx, by, tenant); err != nil {
			return err
		}
	}
	n, err := g.purgeKeys(ctx, by, tenant)
	if n > 0 {
		rep.KeysPurged[tenant] = n
	}
	if err != nil {
		return err
	}
	if n, err := g.revokeKeysOfDeactivated(ctx, by, tenant); err != nil {
		return err
	} else if n > 0 {
		rep.KeysRevoked[tenant] = n
	}
	n, err = g.endSessionsOfDeactivated(ctx, by, tenant)
	if n > 0 {
		rep.SessionsOfDeactivated[tenant] = n
	}
	if err != nil {
		return err
	}
	n, err = g.trimSessions(ctx, tenant, pol, t.IdPChangedAt)
	if n > 0 {
		rep.SessionsTrimmed[tenant] = n
	}
	if err != nil {
		return err
	}
	if g.sso == nil {
		return nil
	}
	c, err := g.sso.Connection(ctx, tenant)
	switch {
	case errors.Is(err, sso.ErrNotFound), noSSO(err):
		return nil
	case err != nil:
		return ssoErr("sso connection", err)
	case c.MetadataURL == "" || g.now().Sub(c.MetadataFetchedAt) < o.MetadataMaxAge:
		return nil
	}
	if _, err := g.RefreshSSOMetadata(ctx, tenant); err != nil {
		return err
	}
	rep.MetadataRefreshed = append(rep.MetadataRefreshed, tenant)
	return nil
}

// endSessionsOfDeactivated ends the sessions of the tenant's users who
// are not active, each user's recorded as one session.revoked (Meta
// reason deactivated, sessions_ended), and returns how many live ones it
// ended. Users are read page by page; only a user who is not active costs
// a session-store call.
func (g *Guard) endSessionsOfDeactivated(ctx context.Context, by Principal, tenant string) (int, error) {
	n := 0
	err := g.eachUser(ctx, tenant, func(u auth.UserSummary) error {
		if u.Status == auth.StatusActive {
			return nil
		}
		ended, err := g.endSessions(ctx, by, tenant, u.ID, ReasonDeactivated)
		n += ended
		return err
	})
	return n, err
}

// purgeKeys deletes the tenant's API keys revoked or expired more than
// Config.APIKeyRetention ago (none when it is negative, or without an API
// key store), in one store step, and returns how many. A purge that
// deleted any is recorded as one apikey.purged event (Target the tenant,
// Meta count and before); one that deleted none is not, so an hourly job
// does not fill the log with empty ones. The record follows the deletion
// (its count is known only then): a failure to record returns
// ErrUnavailable with the count, and the keys are gone all the same. No
// trace of them is left to record late, as PurgeAudit does for a purge of
// the audit log, so such a purge stays unrecorded; each purged key's
// history (apikey.created, apikey.revoked) is still in the log. The
// purged keys' roles are taken first (dropPurgedKeyGrants). A store
// failure purges nothing and gives ErrUnavailable.
func (g *Guard) purgeKeys(ctx context.Context, by Principal, tenant string) (int, error) {
	if g.stores.APIKeys == nil || g.keyKeep < 0 {
		return 0, nil
	}
	before := g.now().Add(-g.keyKeep).UTC().Truncate(time.Microsecond)
	if err := g.dropPurgedKeyGrants(ctx, tenant, before); err != nil {
		return 0, err
	}
	n, err := g.stores.APIKeys.PurgeAPIKeys(ctx, tenant, before)
	if err != nil {
		return 0, unavailable("purge api keys", err)
	}
	if n == 0 {
		return 0, nil
	}
	e := g.adminEvent(by, tenant, audit.APIKeyPurged, tenant)
	e.Meta = map[string]string{"count": strconv.Itoa(n), "before": before.Format(time.RFC3339)}
	return n, g.record(ctx, e)
}

// dropPurgedKeyGrants takes the roles of the tenant's API keys that a
// purge with before deletes (revoked or expired before it: an expired key
// is never revoked, so it keeps its roles until then), and of keys no
// longer stored (purged before this step existed), so that no grant
// outlives its key: rbac counts a key holding a role among the holders a
// role's change must be allowed for. The grants are read before the keys:
// a key is stored before it is granted a role, so a grant read first is
// of a key the list then has, unless the key is gone. A failure purges
// nothing (ErrUnavailable); the keys are not usable either way.
func (g *Guard) dropPurgedKeyGrants(ctx context.Context, tenant string, before time.Time) error {
	if g.rbac == nil {
		return nil
	}
	as, err := g.rbac.Assignments(ctx, tenant)
	if err != nil {
		return rbacErr("roles", err)
	}
	var held []rbac.Subject
	for _, a := range as {
		if a.Subject.Kind == rbac.KindKey {
			held = append(held, a.Subject)
		}
	}
	if len(held) == 0 {
		return nil
	}
	ks, err := g.stores.APIKeys.ListAPIKeys(ctx, tenant)
	if err != nil {
		return unavailable("list api keys", err)
	}
	stored := make(map[string]auth.APIKey, len(ks))
	for _, k := range ks {
		stored[k.ID] = k
	}
	for _, sub := range held {
		k, ok := stored[sub.ID]
		if ok && !(!k.RevokedAt.IsZero() && k.RevokedAt.Before(before) || !k.ExpiresAt.IsZero() && k.ExpiresAt.Before(before)) {
			continue
		}
		if err := g.rbac.RemoveGrants(ctx, tenant, sub); err != nil {
			return rbacErr("revoke roles", err)
		}
	}
	return nil
}

// revokeKeysOfDeactivated revokes the live API keys of the tenant whose
// creator is a deactivated user, and returns how many. A creator that is
// not a user (a system label) or no longer exists is left alone: keys
// made by the host have no person to follow.
func (g *Guard) revokeKeysOfDeactivated(ctx context.Context, by Principal, tenant string) (int, error) {
	if g.stores.APIKeys == nil {
		return 0, nil
	}
	ks, err := g.stores.APIKeys.ListAPIKeys(ctx, tenant)
	if err != nil {
		return 0, unavailable("list api keys", err)
	}
	seen := map[string]bool{}
	total := 0
	for _, k := range ks {
		if !k.RevokedAt.IsZero() || k.CreatedBy == "" || seen[k.CreatedBy] {
			continue
		}
		seen[k.CreatedBy] = true
		u, err := g.stores.Users.User(ctx, tenant, k.CreatedBy)
		switch {
		case errors.Is(err, auth.ErrNotFound):
			continue
		case err != nil:
			return total, unavailable("load user", err)
		case u.Status == auth.StatusActive:
			continue
		}
		n, err := g.revokeKeysOf(ctx, by, tenant, k.CreatedBy, "creator_deactivated")
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
