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
// tenant that does not exist ErrTenantNotFound. An export that a purge
// overtook (ErrUnavailable wrapping audit.ErrConflict) leaves a partial
// export in w: discard it and export again.
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
// system_only. A tenant that does not exist is ErrTenantNotFound, as for
// ExportAudit: nothing is purged or recorded. The time of the newest
// access review on record is first kept with the tenant
// (Tenant.LastReview), so that the review schedule does not lose it. The
// purge is itself recorded (audit.purged, Meta before, through: the Seq of
// the checkpoint it left, and events: the number deleted from the newest
// purge on record to through; when the checkpoint cannot be read, no
// through and the number it deleted itself, which it returns in any case).
// A purge that another replica made meanwhile, as far or further, leaves
// this one nothing to do: it returns 0, and records events 0 (and no
// through), rather than failing or counting the events again.
//
// The record follows the deletion (its count is known only then), so a
// failure between the two (the audit store down a moment) leaves the
// deletion unrecorded, and PurgeAudit returns ErrUnavailable. Such a purge
// is recorded late, once its checkpoint is 10 minutes old, by the next
// PurgeAudit of the tenant (before it purges anything) or the next
// Maintain: audit.purged with reason recorded_late, Meta through (the
// checkpoint's Seq), purged_at (its time) and events, counted from the
// newest purge still on record, or from the chain's start when none is
// (their records were purged since). A PurgeAudit that comes sooner and
// purges further counts it in its own record instead (events from the
// newest purge on record). Two replicas finding the same unrecorded purge
// at once may both count it, as may two replicas purging further at once.
func (g *Guard) PurgeAudit(ctx context.Context, by Principal, tenant string, before time.Time) (int, error) {
	if by.Kind != KindSystem {
		return 0, g.refused(ctx, by, rbac.Audit, rbac.Delete, reasonSystemOnly)
	}
	if _, err := g.policies.get(ctx, tenant); err != nil {
		return 0, err // ErrTenantNotFound: no audit log to start under it
	}
	if err := g.keepLastReview(ctx, tenant); err != nil {
		return 0, err
	}
	from, err := g.recordLatePurge(ctx, by, tenant)
	if err != nil {
		return 0, err
	}
	n, err := g.audit.Purge(ctx, tenant, before)
	if err != nil {
		return 0, auditErr(err)
	}
	e := g.adminEvent(by, tenant, audit.AuditPurged, tenant)
	e.Meta = map[string]string{"events": strconv.Itoa(n), "before": before.UTC().Format(time.RFC3339)}
	if n > 0 {
		// The checkpoint this purge left (or one further, if another
		// replica purged further a moment after), and the events from
		// the newest purge on record to it: a purge before this one whose
		// record is missing, and which this one's checkpoint replaces, is
		// counted here. Without it (a store failure, which the record
		// most likely meets too), the record still counts as the purge's.
		if cp, err := g.audit.Checkpoint(ctx, tenant); err == nil {
			e.Meta["events"] = strconv.FormatUint(cp.Seq-min(from, cp.Seq), 10)
			e.Meta["through"] = strconv.FormatUint(cp.Seq, 10)
		}
	}
	return n, g.record(ctx, e)
}

// latePurgeAfter is how long after a purge recordLatePurge takes it for
// unrecorded: the purging replica records it a moment after the deletion,
// and replicas' clocks differ a little.
const latePurgeAfter = 10 * time.Minute

// reasonRecordedLate is the Reason of an audit.purged event that
// recordLatePurge records.
const reasonRecordedLate = "recorded_late"

// recordLatePurge records a purge of tenant's audit log whose own
// audit.purged event is missing (the audit store failed between the
// deletion and its record): a checkpoint left more than latePurgeAfter
// ago, and no audit.purged event after it, counting events (Meta events
// not 0), whose Meta through is at or past its Seq (one recorded before
// through was kept counts as its record); only the newest such event is
// looked at. It records audit.purged with
// reason recorded_late, by, Meta through (the checkpoint's Seq), purged_at
// (its time) and events: the events from the through of the newest purge
// on record below it, or from the chain's start when no purge is on record
// any longer (their records were purged too), to the checkpoint. Two
// replicas finding the same missing record at once may both record it.
//
// It returns the Seq from which the next purge's record counts its events:
// the checkpoint's, once it is on record; for a checkpoint left less than
// latePurgeAfter ago and not on record, where its missing record counts
// from, so that a purge further (which replaces the checkpoint) counts its
// events too, rather than leaving them never on record.
func (g *Guard) recordLatePurge(ctx context.Context, by Principal, tenant string) (uint64, error) {
	cp, err := g.audit.Checkpoint(ctx, tenant)
	if err != nil {
		return 0, auditErr(err)
	}
	if cp.Seq == 0 {
		return 0, nil
	}
	// Only events after the checkpoint: Query never returns those it
	// purged. They are few: the records of the last purges.
	p, err := g.audit.Query(ctx, tenant, audit.Query{Action: string(audit.AuditPurged), Outcome: audit.Success,
		Desc: true, Limit: audit.MaxLimit})
	if err != nil {
		return 0, auditErr(err)
	}
	// The newest purge on record (newest first) decides: one below the
	// checkpoint means the last purge is missing; older records, with or
	// without through, say nothing of it.
	var from uint64
	for _, e := range p.Events {
		if e.Meta["events"] == "0" {
			continue
		}
		through, err := strconv.ParseUint(e.Meta["through"], 10, 64)
		if err != nil || through >= cp.Seq {
			return cp.Seq, nil // on record
		}
		from = through
		break
	}
	if g.now().Sub(cp.At) < latePurgeAfter {
		return from, nil // its record may be on its way
	}
	e := g.adminEvent(by, tenant, audit.AuditPurged, tenant)
	e.Reason = reasonRecordedLate
	e.Meta = map[string]string{"events": strconv.FormatUint(cp.Seq-from, 10), "through": strconv.FormatUint(cp.Seq, 10),
		"purged_at": cp.At.UTC().Format(time.RFC3339Nano)}
	if err := g.record(ctx, e); err != nil {
		return 0, err
	}
	return cp.Seq, nil
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
