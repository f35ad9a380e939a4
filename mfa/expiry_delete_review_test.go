package mfa_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/memstore"
)

// confirmingStore is a memstore whose Factor lets a hook run once it has
// read the factor: the other request of a double submit, whose
// confirmation lands right after this request's read of the factor (and
// before anything this request does next, such as a deletion).
type confirmingStore struct {
	*memstore.MFA
	before func()
}

func (s *confirmingStore) Factor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	f, err := s.MFA.Factor(ctx, tenant, userID, id)
	if s.before != nil {
		s.before()
		s.before = nil
	}
	return f, err
}

// TestConfirmExpiredDeletesOnlyPending: ConfirmTOTP and ConfirmOOB delete
// a pending factor found begun more than EnrolTTL ago ("it is then
// deleted"), by ID, unconditionally. A confirmation of the same factor by
// another request (a form submitted twice at the 15-minute mark; a
// replica whose clock is a little behind) that lands between the read and
// the deletion is wiped out: the confirmed factor, reported enrolled (and
// audited, with recovery codes shown, by the facade), disappears without
// a removal, its recovery codes left behind.
func TestConfirmExpiredDeletesOnlyPending(t *testing.T) {
	for _, kind := range []mfa.Kind{mfa.KindTOTP, mfa.KindEmail} {
		t.Run(string(kind), func(t *testing.T) {
			mem := memstore.NewMFA()
			cs := &confirmingStore{MFA: mem}
			st := mem.Stores()
			st.Factors = cs
			f := newFixture(t, func(c *mfa.Config) { c.Stores = st })
			ctx := context.Background()
			var id, code string
			if kind == mfa.KindTOTP {
				e, err := f.m.BeginTOTP(ctx, "t", "u", "u@example.com", "")
				if err != nil {
					t.Fatal(err)
				}
				id = e.Factor.ID
				f.clk.Add(mfa.DefaultEnrolTTL)
				code = codeAt(t, e.Secret, f.clk.Now())
			} else {
				fac, _, err := f.m.BeginOOB(ctx, mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindEmail, Destination: "u@example.com"})
				if err != nil {
					t.Fatal(err)
				}
				id, code = fac.ID, f.email.lastCode(t)
				f.clk.Add(mfa.DefaultEnrolTTL)
			}
			// The other request, a moment earlier by its clock, confirms.
			cs.before = func() {
				if err := mem.ConfirmFactor(ctx, "t", "u", id, t0.Add(mfa.DefaultEnrolTTL-time.Millisecond), 1, 0); err != nil {
					t.Fatalf("the other request's confirmation: %v", err)
				}
			}
			var err error
			if kind == mfa.KindTOTP {
				_, err = f.m.ConfirmTOTP(ctx, "t", "u", id, code)
			} else {
				_, err = f.m.ConfirmOOB(ctx, "t", "u", id, code)
			}
			if !errors.Is(err, mfa.ErrExpired) {
				t.Fatalf("Confirm at EnrolTTL = %v, want ErrExpired", err)
			}
			got, err := mem.Factor(ctx, "t", "u", id)
			if err != nil || !got.Confirmed() {
				t.Errorf("the factor another request confirmed = %+v, %v; want it kept, confirmed (only a pending factor is the expired enrolment to delete)", got, err)
			}
		})
	}
}
