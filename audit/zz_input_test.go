package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// TestZZQueryBadFilterIsTyped: the filters of an audit query come from an
// admin's request (Guard.QueryAudit/ExportAudit pass them through). A
// filter no event can ever hold — invalid UTF-8, longer than MaxFieldSize,
// an Outcome that is neither success nor failure, From after To — is bad
// input and should get an *audit.InputError naming the field, as Limit<0
// and a bad tenant do. Today it is accepted and silently returns an empty
// page, which an admin reads as "no such events".
func TestZZQueryBadFilterIsTyped(t *testing.T) {
	l := newLog(t, memstore.NewAudit())
	record(t, l, loginEvent("acme"))
	for name, q := range map[string]audit.Query{
		"actor not UTF-8":  {Actor: "\xff\xfe"},
		"action not UTF-8": {Action: "login.\xc3"},
		"actor too long":   {Actor: strings.Repeat("a", audit.MaxFieldSize+1)},
		"unknown outcome":  {Outcome: "succes"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := l.Query(context.Background(), "acme", q)
			var ie *audit.InputError
			if !errors.As(err, &ie) {
				t.Errorf("Query(%s) = %v; want an *audit.InputError", name, err)
			}
		})
	}
}

// TestZZQueryFromAfterToIsTyped: a time window that ends before it starts
// is bad input, not an empty result.
func TestZZQueryFromAfterToIsTyped(t *testing.T) {
	l := newLog(t, memstore.NewAudit())
	e := record(t, l, loginEvent("acme"))
	q := audit.Query{From: e.Time.Add(1), To: e.Time.Add(-1)}
	_, err := l.Query(context.Background(), "acme", q)
	var ie *audit.InputError
	if !errors.As(err, &ie) {
		t.Errorf("Query(From after To) = %v; want an *audit.InputError", err)
	}
}
