package guard_test

import (
	"errors"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
)

// ListUsers and ListUserAccess take the page cursor (after) from a users
// page's query string: one no user ID can be (a NUL byte, invalid UTF-8,
// longer than auth.MaxIDBytes) is bad input, a *guard.InputError naming
// after, on every backend, never a store outage (ErrUnavailable).
func TestListUsersRefusesMalformedCursor(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, "ann@example.test", "correct horse battery")
	sys := guard.System("test")
	lists := []struct {
		name string
		list func(after string) error
	}{
		{"ListUsers", func(after string) error {
			_, err := f.g.ListUsers(f.ctx, sys, tenantID, after, 10)
			return err
		}},
		{"ListUserAccess", func(after string) error {
			_, err := f.g.ListUserAccess(f.ctx, sys, tenantID, after, 10)
			return err
		}},
	}
	cursors := []struct{ name, after string }{
		{"nul", "user\x00id"},
		{"invalid utf-8", "user\xffid"},
		{"too long", strings.Repeat("a", auth.MaxIDBytes+1)},
	}
	for _, l := range lists {
		if err := l.list(""); err != nil {
			t.Fatalf("%s from the start: %v", l.name, err)
		}
		if err := l.list(strings.Repeat("z", auth.MaxIDBytes)); err != nil {
			t.Errorf("%s after the longest ID: %v", l.name, err)
		}
		for _, c := range cursors {
			t.Run(l.name+"/"+c.name, func(t *testing.T) {
				err := l.list(c.after)
				var ie *guard.InputError
				if !errors.As(err, &ie) || ie.Field != "after" || errors.Is(err, guard.ErrUnavailable) {
					t.Errorf("= %v, want a *guard.InputError for after", err)
				}
			})
		}
	}
}
