package main

import (
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

// newFuncs returns the helpers of the page templates; relative times are
// computed with now, the console's clock.
func newFuncs(now func() time.Time) template.FuncMap {
	return template.FuncMap{
		"when":     when,
		"date":     func(t time.Time) string { return dateOf(t) },
		"ago":      func(t time.Time) string { return ago(t, now()) },
		"days":     func(d time.Duration) int { return int(d / (24 * time.Hour)) },
		"minutes":  func(d time.Duration) int { return int(d / time.Minute) },
		"hours":    func(d time.Duration) int { return int(d / time.Hour) },
		"kinds":    kinds,
		"kind":     func(k mfa.Kind) string { return kinds([]mfa.Kind{k}) },
		"join":     strings.Join,
		"short":    short,
		"meta":     meta,
		"perm":     func(s rbac.Section, a rbac.Action) string { return string(s) + ":" + string(a) },
		"add":      func(a, b int) int { return a + b },
		"sub":      func(a, b int) int { return a - b },
		"percent":  percent,
		"contains": slices.Contains[[]string],
		"isZero":   func(t time.Time) bool { return t.IsZero() },
		"upper":    strings.ToUpper,
		"abbr":     func(a rbac.Action) string { return strings.ToUpper(string(a)[:1]) },
	}
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2 Jan 2006 15:04 UTC")
}

func dateOf(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2 Jan 2006")
}

// ago says how long ago t was, roughly.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func kinds(ks []mfa.Kind) string {
	names := make([]string, len(ks))
	for i, k := range ks {
		switch k {
		case mfa.KindTOTP:
			names[i] = "app"
		case mfa.KindSMS:
			names[i] = "SMS"
		default:
			names[i] = string(k)
		}
	}
	return strings.Join(names, ", ")
}

func short(s string) string {
	if len(s) > 10 {
		return s[:10] + "…"
	}
	return s
}

// meta shows an audit event's details as "key=value" pairs in key order.
func meta(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}

func percent(n, of int) int {
	if of == 0 {
		return 0
	}
	return n * 100 / of
}
