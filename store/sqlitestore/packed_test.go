package sqlitestore_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
)

// TestEnrolmentsAnyBytes stores user IDs that the suite does not (NUL,
// commas, digits) and factors whose IDs sort otherwise than their kinds:
// Enrolments returns every user once, with their distinct confirmed kinds
// in order, page by page.
func TestEnrolmentsAnyBytes(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	at := time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC)
	add := func(user, id string, kind mfa.Kind, confirmed bool) {
		t.Helper()
		f := mfa.Factor{ID: id, Tenant: "t", UserID: user, Kind: kind, Label: "x", KeyID: "k1", CreatedAt: at}
		if confirmed {
			f.ConfirmedAt = at
		}
		if err := s.MFA.CreateFactor(ctx, f, 0); err != nil {
			t.Fatal(err)
		}
	}
	want := []mfa.Enrolment{
		{UserID: "\x00", Kinds: []mfa.Kind{mfa.KindEmail, mfa.KindSMS, mfa.KindTOTP}},
		{UserID: "1,2,", Kinds: []mfa.Kind{mfa.KindSMS}},
		{UserID: "12", Kinds: []mfa.Kind{mfa.KindEmail, mfa.KindTOTP}},
		{UserID: "a\x00b,", Kinds: []mfa.Kind{mfa.KindTOTP}},
		{UserID: "é", Kinds: []mfa.Kind{mfa.KindSMS}},
	}
	add("\x00", "a", mfa.KindTOTP, true)
	add("\x00", "b", mfa.KindSMS, true)
	add("\x00", "c", mfa.KindEmail, true)
	add("\x00", "d", mfa.KindTOTP, true) // a second app
	add("1,2,", "z", mfa.KindSMS, true)
	add("1,2,", "y", mfa.KindTOTP, false) // pending
	add("12", "2", mfa.KindTOTP, true)
	add("12", "10", mfa.KindEmail, true)
	add("a\x00b,", "x", mfa.KindTOTP, true)
	add("nobody", "x", mfa.KindTOTP, false) // pending only
	add("é", "x", mfa.KindSMS, true)
	other := mfa.Factor{ID: "x", Tenant: "u", UserID: "12", Kind: mfa.KindSMS, Label: "x", KeyID: "k1", CreatedAt: at, ConfirmedAt: at}
	if err := s.MFA.CreateFactor(ctx, other, 0); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 2, 4, 100} {
		var got []mfa.Enrolment
		after := ""
		for range 10 {
			page, err := s.MFA.Enrolments(ctx, "t", after, limit)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if len(page) < limit {
				break
			}
			after = page[len(page)-1].UserID
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Errorf("pages of %d:\n got %q\nwant %q", limit, got, want)
		}
	}
	if got, err := s.MFA.Enrolments(ctx, "t", "\x00", 2); err != nil || len(got) != 2 || got[0].UserID != "1,2," || !slices.Equal(got[1].Kinds, want[2].Kinds) {
		t.Errorf("Enrolments after NUL = %q, %v", got, err)
	}
}
