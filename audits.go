package guard

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// The audit log of a tenant is read through these methods, which check who
// asks: a principal reads only its own tenant's log (the system any).
// Nobody can change or delete events through Guard except by the retention
// purge, which leaves a verifiable checkpoint.

// QueryAudit returns one page of a tenant's audit events matching q (see
// audit.Log.Query). A tenant that does not exist is ErrTenantNotFound,
// as for ExportAudit, not an empty page.
func (g *Guard) QueryAudit(ctx context.Context, by Principal, tenant string, q audit.Query) (audit.Page, error) {
	if err := g.may(ctx, by, tenant, rbac.Audit, rbac.Read); err != nil {
		return audit.Page{}, err
	}
	if _, err := g.policies.get(ctx, tenant); err != nil {
		return audit.Page{}, err
	}
	p, err := g.audit.Query(ctx, tenant, q)
	return p, auditErr(err)
}

// VerifyAudit checks a tenant's audit chain and reports the first broken
// event, if any (see audit.Log.Verify). A tenant that does not exist is
// ErrTenantNotFound, not an intact empty chain.
func (g *Guard) VerifyAudit(ctx context.Context, by Principal, tenant string) (audit.Report, error) {
	if err := g.may(ctx, by, tenant, rbac.Audit, rbac.Read); err != nil {
		return audit.Report{}, err
	}
	if _, err := g.policies.get(ctx, tenant); err != nil {
		return audit.Report{}, err
	}
	r, err := g.audit.Verify(ctx, tenant)
	return r, auditErr(err)
}

// ExportAudit writes a tenant's audit events matching q's filters to w as
// JSON Lines or CSV (see audit.Log.Export). The export is itself recorded
// first (audit.exported, Meta: format, and the filters that are set —
// actor, action, outcome, from and to in RFC 3339 with nanoseconds, after
// the cursor, order "desc" for a descending export), so a bulk copy
// of the log leaves a trace in it; when that fails, nothing is exported.
// An export Guard refuses is neither recorded nor started, and nothing is
// written to w: bad input (an empty tenant, a filter no event can hold as
// for QueryAudit, an unknown format) gives the *audit.InputError, and a
// tenant that does not exist ErrTenantNotFound.
func (g *Guard) ExportAudit(ctx context.Context, by Principal, tenant string, q audit.Query, w io.Writer, f audit.Format) error {
	if err := g.may(ctx, by, tenant, rbac.Audit, rbac.Read); err != nil {
		return err
	}
	if err := audit.CheckExport(tenant, q, f); err != nil {
		return err
	}
	if _, err := g.policies.get(ctx, tenant); err != nil {
		return err // ErrTenantNotFound: no audit log to start under it
	}
	e := g.adminEvent(by, tenant, audit.AuditExported, tenant)
	e.Meta = map[string]string{"format": map[audit.Format]string{audit.JSONLines: "jsonl", audit.CSV: "csv"}[f]}
	// The filters exactly as checked (valid UTF-8, within MaxFieldSize):
	// the times to the nanosecond, the cursor and the order too.
	for k, v := range map[string]string{"actor": q.Actor, "action": q.Action, "outcome": string(q.Outcome)} {
		if v != "" {
			e.Meta[k] = v
		}
	}
	for k, t := range map[string]time.Time{"from": q.From, "to": q.To} {
		if !t.IsZero() {
			e.Meta[k] = t.UTC().Format(time.RFC3339Nano)
		}
	}
	if q.After != 0 {
		e.Meta["after"] = strconv.FormatUint(q.After, 10)
	}
	if q.Desc {
		e.Meta["order"] = "desc"
	}
	if err := g.record(ctx, e); err != nil {
		return err
	}
	return auditErr(g.audit.Export(ctx, tenant, q, w, f))
}

// PurgeAudit applies retention: it deletes a tenant's events older than
// before and leaves a checkpoint so the chain still verifies (see
// audit.Log.Purge). Only the system may purge (a retention job): anyone
// else gets ErrForbidden, recorded as access.denied with reason
// system_only. The time of the newest access review on record is first
// kept with the tenant (Tenant.LastReview), so that the review schedule
// does not lose it. The purge is itself recorded (audit.purged, Meta events:
// the number deleted). A purge that another replica made meanwhile, as far
// or further, leaves this one nothing to do: it returns 0, and records
// events 0, rather than failing or counting the events again.
func (g *Guard) PurgeAudit(ctx context.Context, by Principal, tenant string, before time.Time) (int, error) {
	if by.Kind != KindSystem {
		return 0, g.refused(ctx, by, rbac.Audit, rbac.Delete, reasonSystemOnly)
	}
	if err := g.keepLastReview(ctx, tenant); err != nil {
		return 0, err
	}
	n, err := g.audit.Purge(ctx, tenant, before)
	if err != nil {
		return 0, auditErr(err)
	}
	e := g.adminEvent(by, tenant, audit.AuditPurged, tenant)
	e.Meta = map[string]string{"events": strconv.Itoa(n), "before": before.UTC().Format(time.RFC3339)}
	return n, g.record(ctx, e)
}

// keepLastReview keeps the time of tenant's newest access review on record
// with the tenant (TenantStore.MarkReviewed, set if newer) before a purge
// may delete the record: the review schedule (AccessReview) then outlives
// the audit retention. A failure stops the purge.
func (g *Guard) keepLastReview(ctx context.Context, tenant string) error {
	last, err := g.lastReview(ctx, tenant)
	if err != nil || last == nil {
		return err
	}
	err = g.stores.Tenants.MarkReviewed(ctx, tenant, last.Time)
	g.policies.forget(tenant)
	switch {
	case errors.Is(err, ErrTenantNotFound):
		return ErrTenantNotFound
	case err != nil:
		return unavailable("keep the last review", err)
	}
	return nil
}

// auditErr keeps bad input and a missing tenant as they are and reports
// every other failure as ErrUnavailable.
func auditErr(err error) error {
	var ie *audit.InputError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie), errors.Is(err, audit.ErrTampered):
		return err
	case errors.Is(err, ErrTenantNotFound):
		return ErrTenantNotFound
	}
	return unavailable("audit", err)
}
