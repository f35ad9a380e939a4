package ipfilter_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/guardhq/guard/ipfilter"
)

// Restore puts back rules as Lists returned them, without parsing them
// again: a list stored under older, looser rules (an unspecified address)
// comes back as it was, in force at once; it refuses to overwrite a
// change made since the version it is given, and bad arguments.
func TestRestorePutsBackStoredRules(t *testing.T) {
	ctx := context.Background()
	st := newFake()
	f := newFilter(t, st, ipfilter.Config{})
	legacy := ipfilter.Rules{Entries: []string{"203.0.113.0/24", "0.0.0.0"}, ReportOnly: true}
	v0, err := st.Replace(ctx, "t1", ipfilter.Users, legacy, 0)
	if err != nil {
		t.Fatal(err)
	}
	ap := replace(t, f, "t1", ipfilter.Users, false, "198.51.100.0/24")
	v, err := f.Restore(ctx, "t1", ipfilter.Users, legacy, ap.Version)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if v <= ap.Version || v <= v0 {
		t.Errorf("Restore gave version %d after %d, want a new version", v, ap.Version)
	}
	l, err := f.Lists(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Rules(ipfilter.Users); !slices.Equal(got.Entries, legacy.Entries) || !got.ReportOnly || l.Version != v {
		t.Errorf("after Restore: %+v at %d, want %+v at %d", got, l.Version, legacy, v)
	}
	if _, err := f.Restore(ctx, "t1", ipfilter.Users, ipfilter.Rules{}, ap.Version); !errors.Is(err, ipfilter.ErrConflict) {
		t.Errorf("Restore on a stale version: %v, want ErrConflict", err)
	}
	var ie *ipfilter.InputError
	if _, err := f.Restore(ctx, "", ipfilter.Users, ipfilter.Rules{}, v); !errors.As(err, &ie) {
		t.Errorf("Restore without a tenant: %v, want an *InputError", err)
	}
	if _, err := f.Restore(ctx, "t1", ipfilter.Scope(99), ipfilter.Rules{}, v); !errors.As(err, &ie) {
		t.Errorf("Restore of an invalid scope: %v, want an *InputError", err)
	}
	if l2, _ := f.Lists(ctx, "t1"); l2.Version != v {
		t.Errorf("refused Restores moved the version to %d, want %d", l2.Version, v)
	}
}
