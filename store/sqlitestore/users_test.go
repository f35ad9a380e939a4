package sqlitestore_test

import (
	"slices"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/auth/authtest"
	"github.com/guardhq/guard/store/sqlitestore"
)

// TestAuthStoresSmallChunks runs the users' conformance suite with
// ListUserSummaries reading two users per query, so that its pages cross
// chunks.
func TestAuthStoresSmallChunks(t *testing.T) {
	t.Parallel()
	authtest.Run(t, authtest.Stores{Users: func(t *testing.T) authtest.Users {
		s := openStore(t)
		sqlitestore.SetSummaryChunk(s, 2)
		return s.Users
	}})
}

// TestUserSummariesAnyBytes stores texts that the suite does not (NUL,
// invalid UTF-8) and texts that look like the header of a packed chunk:
// ListUserSummaries returns them as ListUsers does.
func TestUserSummariesAnyBytes(t *testing.T) {
	s := openStore(t)
	sqlitestore.SetSummaryChunk(s, 3)
	ctx := t.Context()
	at := time.Date(2099, 1, 2, 3, 4, 5, 6000, time.UTC)
	texts := []string{"", "\x00", "a\x00b", "\xff\xfe", "1,2,3,", ",,,,,,,,", "12,", "-1,", "é,\x00,", "9999999999999999999999,"}
	for i, x := range texts {
		u := auth.User{ID: "u" + x + string(rune('a'+i)), Tenant: "t", Email: x + "@" + string(rune('a'+i)), Name: x,
			Status: auth.Status(x), PasswordHash: x, CreatedAt: at.Add(-time.Duration(i) * time.Microsecond)}
		if i%2 == 0 {
			u.LastLoginAt, u.PasswordChangedAt = at, at.Add(time.Hour)
		}
		if i == 3 {
			u.CreatedAt = time.UnixMicro(-1) // before 1970
		}
		if err := s.Users.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{1, 2, 5, 100} {
		var got []auth.UserSummary
		after := ""
		for {
			page, err := s.Users.ListUserSummaries(ctx, "t", after, limit)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if len(page) < limit {
				break
			}
			after = page[len(page)-1].ID
		}
		us, err := s.Users.ListUsers(ctx, "t", "", 100)
		if err != nil || len(us) != len(texts) {
			t.Fatalf("ListUsers = %d users, %v", len(us), err)
		}
		want := make([]auth.UserSummary, len(us))
		for i, u := range us {
			want[i] = u.Summary()
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of %d:\n got %+v\nwant %+v", limit, got, want)
		}
	}
}
