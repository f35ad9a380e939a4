package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// The filters of an audit query come from an admin's request
// (Guard.QueryAudit and ExportAudit pass them through). A filter no event
// can hold — invalid UTF-8, longer than MaxFieldSize, an Outcome that is
// neither success nor failure — is bad input: an *audit.InputError naming
// the field, as for a negative Limit, never an empty page that reads as
// "no such events". Export refuses it the same way.
func TestQueryBadFilterIsTyped(t *testing.T) {
	l := newLog(t, memstore.NewAudit())
	record(t, l, loginEvent("acme"))
	for name, q := range map[string]audit.Query{
		"actor not UTF-8":  {Actor: "\xff\xfe"},
		"action not UTF-8": {Action: "login.\xc3"},
		"actor too long":   {Actor: strings.Repeat("a", audit.MaxFieldSize+1)},
		"unknown outcome":  {Outcome: "succes"},
		"From in year 0":   {From: time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC)},
		"To in year 10000": {To: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := l.Query(context.Background(), "acme", q)
			var ie *audit.InputError
			if !errors.As(err, &ie) {
				t.Errorf("Query(%s) = %v; want an *audit.InputError", name, err)
			}
			var b strings.Builder
			if err := l.Export(context.Background(), "acme", q, &b, audit.JSONLines); !errors.As(err, &ie) || b.Len() != 0 {
				t.Errorf("Export(%s) = %v, %d bytes; want an *audit.InputError and nothing written", name, err, b.Len())
			}
			if err := audit.CheckExport("acme", q, audit.JSONLines); !errors.As(err, &ie) {
				t.Errorf("CheckExport(%s) = %v; want the *audit.InputError Export gives", name, err)
			}
		})
	}
}

// A time window that ends before it starts is bad input, not an empty
// result; one that starts where it ends is empty, and fine.
func TestQueryFromAfterToIsTyped(t *testing.T) {
	l := newLog(t, memstore.NewAudit())
	e := record(t, l, loginEvent("acme"))
	q := audit.Query{From: e.Time.Add(1), To: e.Time.Add(-1)}
	_, err := l.Query(context.Background(), "acme", q)
	var ie *audit.InputError
	if !errors.As(err, &ie) || ie.Field != "From" {
		t.Errorf("Query(From after To) = %v; want an *audit.InputError on From", err)
	}
	if p, err := l.Query(context.Background(), "acme", audit.Query{From: e.Time, To: e.Time}); err != nil || len(p.Events) != 0 {
		t.Errorf("Query(From == To) = %v, %v; want an empty page", p.Events, err)
	}
}

// CheckExport tells beforehand what Export refuses for its input (the
// facade records an export only once it knows it will be made), and lets
// every export Export makes through.
func TestCheckExport(t *testing.T) {
	var ie *audit.InputError
	for name, c := range map[string]struct {
		tenant string
		f      audit.Format
	}{
		"no tenant":      {"", audit.CSV},
		"unknown format": {"acme", audit.Format(7)},
	} {
		if err := audit.CheckExport(c.tenant, audit.Query{}, c.f); !errors.As(err, &ie) {
			t.Errorf("CheckExport(%s) = %v; want an *audit.InputError", name, err)
		}
	}
	for _, f := range []audit.Format{audit.JSONLines, audit.CSV} {
		if err := audit.CheckExport("acme", audit.Query{Actor: "u1", Desc: true, After: 3, Limit: 5}, f); err != nil {
			t.Errorf("CheckExport(format %d) = %v; want nil", f, err)
		}
	}
}

// A time bound is refused outside the years 1 to 9999 (where the stores
// would each answer their own way), and within them it bounds as usual:
// the widest window holds every event.
func TestQueryBoundsWithinYears1To9999(t *testing.T) {
	l := newLog(t, memstore.NewAudit())
	record(t, l, loginEvent("acme"))
	q := audit.Query{From: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), To: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}
	if p, err := l.Query(context.Background(), "acme", q); err != nil || len(p.Events) != 1 {
		t.Errorf("Query(years 1 to 9999) = %d events, %v; want the event", len(p.Events), err)
	}
	var ie *audit.InputError
	for field, q := range map[string]audit.Query{
		"From": {From: time.Date(1, 1, 1, 0, 0, 0, 0, time.FixedZone("east", 3600))},
		"To":   {To: time.Date(295000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := l.Query(context.Background(), "acme", q); !errors.As(err, &ie) || ie.Field != field {
			t.Errorf("Query(%s out of bounds) = %v; want an *audit.InputError on %s", field, err, field)
		}
	}
}
