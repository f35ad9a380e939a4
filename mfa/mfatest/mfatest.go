// Package mfatest checks that a backend keeps the storage contracts of
// package mfa: FactorStore, FactorUpdater, EnrolmentIndex, RecoveryStore,
// CodeStore, RateStore and TransactionStore. Every backend's tests call Run
// and RunConcurrent:
//
//	func TestMFA(t *testing.T) {
//		mfatest.Run(t, func(t *testing.T) mfa.Stores { return memstore.NewMFA().Stores() })
//		mfatest.RunConcurrent(t, func(t *testing.T) mfa.Stores { return memstore.NewMFA().Stores() })
//	}
//
// Each sentence of the interfaces' doc comments has a named subtest. Every
// subtest asks newStores for fresh, empty stores. A backend that
// implements only some roles leaves the others nil: their subtests are
// skipped (Factors, FactorUpdates and Enrolments go together).
//
// The suite never reads the clock: records carry fixed times in the year
// 2099, so a store that drops expired records by its own clock (a Redis
// TTL) keeps them for the length of the test, and a store that judges
// expiry by its own clock instead of the now it is given fails. Times are
// given at microsecond precision and must come back as the same instant
// (time.Time.Equal); the location may differ. A nil and an empty Secret
// are equal.
package mfatest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
)

// base is the suite's "now": fixed, to the microsecond, in the future.
var base = time.Date(2099, 1, 1, 9, 0, 0, 123456000, time.UTC)

// hashOf returns a fixed hash for label.
func hashOf(label string) mfa.Hash { return sha256.Sum256([]byte("mfatest:" + label)) }

type test struct {
	name string
	run  func(t *testing.T, st mfa.Stores)
}

type group struct {
	name  string
	needs func(mfa.Stores) bool
	tests []test
}

func hasFactors(s mfa.Stores) bool {
	return s.Factors != nil && s.FactorUpdates != nil && s.Enrolments != nil
}

var groups = []group{
	{"CreateFactor", hasFactors, createFactorTests},
	{"Factor", hasFactors, factorTests},
	{"Factors", hasFactors, factorsTests},
	{"DeleteFactor", hasFactors, deleteFactorTests},
	{"DeleteFactorKeeping", hasFactors, deleteKeepingTests},
	{"ConfirmFactor", hasFactors, confirmTests},
	{"AdvanceStep", hasFactors, advanceTests},
	{"ResealSecret", hasFactors, resealTests},
	{"FactorUpdaterNotFound", hasFactors, updaterNotFoundTests},
	{"Enrolments", hasFactors, enrolmentTests},
	{"Recovery", func(s mfa.Stores) bool { return s.Recovery != nil }, recoveryTests},
	{"Codes", func(s mfa.Stores) bool { return s.Codes != nil }, codeTests},
	{"Rates", func(s mfa.Stores) bool { return s.Rates != nil }, rateTests},
	{"Transactions", func(s mfa.Stores) bool { return s.Transactions != nil }, transactionTests},
}

// Run runs the conformance tests of every role newStores provides, one
// fresh set of empty stores per subtest.
func Run(t *testing.T, newStores func(t *testing.T) mfa.Stores) {
	t.Helper()
	runParityAudit(t, newStores)
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					st := newStores(t)
					if !g.needs(st) {
						t.Skip("the backend does not implement this role")
					}
					tc.run(t, st)
				})
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Factors

// totp returns a TOTP factor of tenant/user with the given id, created at
// base+offset, pending.
func totp(tenant, user, id string, offset time.Duration) mfa.Factor {
	return mfa.Factor{
		ID:        id,
		Tenant:    tenant,
		UserID:    user,
		Kind:      mfa.KindTOTP,
		Label:     "app " + id,
		KeyID:     "k1",
		Secret:    []byte("sealed-secret-of-" + id),
		CreatedAt: base.Add(offset),
	}
}

func oob(kind mfa.Kind, tenant, user, id string, offset time.Duration) mfa.Factor {
	f := mfa.Factor{
		ID:        id,
		Tenant:    tenant,
		UserID:    user,
		Kind:      kind,
		Label:     string(kind) + " " + id,
		CreatedAt: base.Add(offset),
	}
	if kind == mfa.KindSMS {
		f.Destination = "+447700900123"
	} else {
		f.Destination = "user@example.com"
	}
	return f
}

func confirmed(f mfa.Factor, step int64) mfa.Factor {
	f.ConfirmedAt = f.CreatedAt.Add(time.Minute)
	f.LastStep = step
	return f
}

func create(t *testing.T, st mfa.Stores, f mfa.Factor, max int) {
	t.Helper()
	if err := st.Factors.CreateFactor(t.Context(), f, max); err != nil {
		t.Fatalf("CreateFactor(%s, max %d): %v", f.ID, max, err)
	}
}

func createErr(t *testing.T, st mfa.Stores, f mfa.Factor, max int, want error) {
	t.Helper()
	if err := st.Factors.CreateFactor(t.Context(), f, max); !errors.Is(err, want) {
		t.Errorf("CreateFactor(%s, max %d) = %v, want %v", f.ID, max, err, want)
	}
}

// wantFactor checks that Factor returns f exactly.
func wantFactor(t *testing.T, st mfa.Stores, f mfa.Factor) {
	t.Helper()
	got, err := st.Factors.Factor(t.Context(), f.Tenant, f.UserID, f.ID)
	if err != nil {
		t.Errorf("Factor(%s): %v", f.ID, err)
		return
	}
	if d := diffFactor(got, f); d != "" {
		t.Errorf("Factor(%s) returned %s", f.ID, d)
	}
}

func wantNoFactor(t *testing.T, st mfa.Stores, tenant, user, id string) {
	t.Helper()
	if f, err := st.Factors.Factor(t.Context(), tenant, user, id); !errors.Is(err, mfa.ErrNotFound) {
		t.Errorf("Factor(%q, %q, %q) = %s, %v; want ErrNotFound", tenant, user, id, f.ID, err)
	}
}

// wantFactors checks Factors, order included.
func wantFactors(t *testing.T, st mfa.Stores, tenant, user string, want ...mfa.Factor) {
	t.Helper()
	got, err := st.Factors.Factors(t.Context(), tenant, user)
	if err != nil {
		t.Errorf("Factors(%q, %q): %v", tenant, user, err)
		return
	}
	if got == nil && len(want) == 0 {
		return
	}
	if len(got) != len(want) {
		t.Errorf("Factors(%q, %q) = %s, want %s", tenant, user, ids(got), ids(want))
		return
	}
	for i := range got {
		if d := diffFactor(got[i], want[i]); d != "" {
			t.Errorf("Factors(%q, %q)[%d] = %s (whole list %s, want %s)", tenant, user, i, d, ids(got), ids(want))
		}
	}
}

func ids(fs []mfa.Factor) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.ID
	}
	return "[" + strings.Join(s, " ") + "]"
}

func diffFactor(got, want mfa.Factor) string {
	var d []string
	cmpS := func(name, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s %q, want %q", name, g, w))
		}
	}
	cmpS("ID", got.ID, want.ID)
	cmpS("Tenant", got.Tenant, want.Tenant)
	cmpS("UserID", got.UserID, want.UserID)
	cmpS("Kind", string(got.Kind), string(want.Kind))
	cmpS("Label", got.Label, want.Label)
	cmpS("Destination", got.Destination, want.Destination)
	cmpS("KeyID", got.KeyID, want.KeyID)
	if !bytes.Equal(got.Secret, want.Secret) {
		d = append(d, fmt.Sprintf("Secret %q, want %q", got.Secret, want.Secret))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		d = append(d, fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if !got.ConfirmedAt.Equal(want.ConfirmedAt) {
		d = append(d, fmt.Sprintf("ConfirmedAt %v, want %v", got.ConfirmedAt, want.ConfirmedAt))
	}
	if got.LastStep != want.LastStep {
		d = append(d, fmt.Sprintf("LastStep %d, want %d", got.LastStep, want.LastStep))
	}
	return strings.Join(d, "; ")
}

var createFactorTests = []test{
	{"StoresEveryField", func(t *testing.T, st mfa.Stores) {
		zone := time.FixedZone("UTC+05:30", 5*3600+30*60)
		f := mfa.Factor{
			ID:          "AbC-_123xyzAbC-_123xyz",
			Tenant:      "tenant-ü",
			UserID:      "user-1",
			Kind:        mfa.KindTOTP,
			Label:       "Téléphone \u2603",
			KeyID:       "key-2099",
			Secret:      []byte{0, 1, 2, 0xff, 0xfe, 0, 'x'},
			CreatedAt:   base.In(zone).Add(987 * time.Microsecond),
			ConfirmedAt: base.In(zone).Add(time.Minute + 5*time.Microsecond),
			LastStep:    4102444800/30 + 7,
		}
		create(t, st, f, 0)
		wantFactor(t, st, f)
		s := oob(mfa.KindSMS, "tenant-ü", "user-1", "sms-1", time.Hour)
		create(t, st, s, 0)
		wantFactor(t, st, s)
		e := oob(mfa.KindEmail, "tenant-ü", "user-1", "email-1", 2*time.Hour)
		e.Destination = "Ünïcødé.user+tag@example.com"
		create(t, st, e, 0)
		wantFactor(t, st, e)
	}},
	{"VoidsPendingOfSameKind", func(t *testing.T, st mfa.Stores) {
		a := totp("t", "u", "a", 0)
		b := totp("t", "u", "b", time.Minute)
		create(t, st, a, 0)
		create(t, st, b, 0)
		wantNoFactor(t, st, "t", "u", "a")
		wantFactors(t, st, "t", "u", b)
	}},
	{"KeepsPendingOfOtherKinds", func(t *testing.T, st mfa.Stores) {
		s := oob(mfa.KindSMS, "t", "u", "s", 0)
		e := oob(mfa.KindEmail, "t", "u", "e", time.Second)
		a := totp("t", "u", "a", 2*time.Second)
		create(t, st, s, 0)
		create(t, st, e, 0)
		create(t, st, a, 0)
		wantFactors(t, st, "t", "u", s, e, a)
	}},
	{"KeepsConfirmedOfSameKind", func(t *testing.T, st mfa.Stores) {
		c := confirmed(totp("t", "u", "c", 0), 5)
		p := totp("t", "u", "p", time.Minute)
		create(t, st, c, 0)
		create(t, st, p, 0)
		wantFactors(t, st, "t", "u", c, p)
	}},
	{"VoidsOnlyTheUsersOwnPending", func(t *testing.T, st mfa.Stores) {
		other := totp("t", "v", "o", 0)
		otherTenant := totp("t2", "u", "o2", 0)
		create(t, st, other, 0)
		create(t, st, otherTenant, 0)
		create(t, st, totp("t", "u", "mine", time.Minute), 0)
		wantFactor(t, st, other)
		wantFactor(t, st, otherTenant)
	}},
	{"Duplicate", func(t *testing.T, st mfa.Stores) {
		p := oob(mfa.KindSMS, "t", "u", "p", 0)
		c := confirmed(totp("t", "u", "c", time.Second), 3)
		create(t, st, p, 0)
		create(t, st, c, 0)
		// Same ID as the confirmed factor, as a pending SMS factor that
		// would void p: refused, and p is still there.
		dup := oob(mfa.KindSMS, "t", "u", "c", time.Hour)
		createErr(t, st, dup, 0, mfa.ErrDuplicate)
		createErr(t, st, oob(mfa.KindSMS, "t", "u", "p", time.Hour), 0, mfa.ErrDuplicate)
		wantFactors(t, st, "t", "u", p, c)
	}},
	{"SameIDOtherUser", func(t *testing.T, st mfa.Stores) {
		a := totp("t", "u", "same", 0)
		b := totp("t", "v", "same", time.Second)
		c := totp("t2", "u", "same", 2*time.Second)
		create(t, st, a, 0)
		create(t, st, b, 0)
		create(t, st, c, 0)
		wantFactor(t, st, a)
		wantFactor(t, st, b)
		wantFactor(t, st, c)
	}},
	{"LimitCountsConfirmed", func(t *testing.T, st mfa.Stores) {
		c1 := confirmed(totp("t", "u", "c1", 0), 1)
		c2 := confirmed(oob(mfa.KindSMS, "t", "u", "c2", time.Second), 0)
		create(t, st, c1, 2)
		create(t, st, c2, 2)
		createErr(t, st, totp("t", "u", "n", time.Minute), 2, mfa.ErrLimit)
		createErr(t, st, totp("t", "u", "n", time.Minute), 1, mfa.ErrLimit)
		wantNoFactor(t, st, "t", "u", "n")
		// Under the limit (3) it is admitted; another user is not counted.
		create(t, st, totp("t", "u", "n", time.Minute), 3)
		create(t, st, totp("t", "v", "x", time.Minute), 1)
	}},
	{"LimitIgnoresPending", func(t *testing.T, st mfa.Stores) {
		create(t, st, totp("t", "u", "p1", 0), 0)
		create(t, st, oob(mfa.KindSMS, "t", "u", "p2", time.Second), 0)
		create(t, st, oob(mfa.KindEmail, "t", "u", "p3", 2*time.Second), 1)
	}},
	{"LimitChangesNothing", func(t *testing.T, st mfa.Stores) {
		c := confirmed(oob(mfa.KindSMS, "t", "u", "c", 0), 0)
		p := totp("t", "u", "p", time.Second)
		create(t, st, c, 0)
		create(t, st, p, 0)
		// Would void p, but the limit refuses it first.
		createErr(t, st, totp("t", "u", "n", time.Minute), 1, mfa.ErrLimit)
		wantFactors(t, st, "t", "u", c, p)
	}},
	{"ZeroMaxIsNoLimit", func(t *testing.T, st mfa.Stores) {
		for i := range 12 {
			create(t, st, confirmed(totp("t", "u", fmt.Sprint("f", i), time.Duration(i)*time.Second), 1), 0)
		}
		fs, err := st.Factors.Factors(t.Context(), "t", "u")
		if err != nil || len(fs) != 12 {
			t.Errorf("Factors = %d factors, %v; want 12", len(fs), err)
		}
	}},
}

var factorTests = []test{
	{"PendingAndConfirmed", func(t *testing.T, st mfa.Stores) {
		p := totp("t", "u", "p", 0)
		c := confirmed(oob(mfa.KindSMS, "t", "u", "c", time.Second), 0)
		create(t, st, p, 0)
		create(t, st, c, 0)
		wantFactor(t, st, p)
		wantFactor(t, st, c)
	}},
	{"NotFound", func(t *testing.T, st mfa.Stores) {
		wantNoFactor(t, st, "t", "u", "nope")
		create(t, st, totp("t", "u", "a", 0), 0)
		wantNoFactor(t, st, "t", "u", "b")
	}},
	{"ScopedByTenantAndUser", func(t *testing.T, st mfa.Stores) {
		create(t, st, totp("t", "u", "a", 0), 0)
		wantNoFactor(t, st, "t", "v", "a")
		wantNoFactor(t, st, "t2", "u", "a")
		wantNoFactor(t, st, "", "", "a")
	}},
}

var factorsTests = []test{
	{"OldestFirst", func(t *testing.T, st mfa.Stores) {
		a := confirmed(totp("t", "u", "a", 3*time.Second), 1)
		b := confirmed(totp("t", "u", "b", 1*time.Second), 1)
		c := oob(mfa.KindSMS, "t", "u", "c", 2*time.Second)
		d := confirmed(oob(mfa.KindEmail, "t", "u", "d", 0), 0)
		for _, f := range []mfa.Factor{a, b, c, d} {
			create(t, st, f, 0)
		}
		wantFactors(t, st, "t", "u", d, b, c, a)
	}},
	{"TieBrokenByID", func(t *testing.T, st mfa.Stores) {
		var want []mfa.Factor
		for _, id := range []string{"m", "b", "z", "a"} {
			f := confirmed(totp("t", "u", id, 0), 1)
			create(t, st, f, 0)
			want = append(want, f)
		}
		slices.SortFunc(want, func(x, y mfa.Factor) int { return strings.Compare(x.ID, y.ID) })
		wantFactors(t, st, "t", "u", want...)
	}},
	{"Empty", func(t *testing.T, st mfa.Stores) {
		wantFactors(t, st, "t", "u")
		create(t, st, totp("t", "v", "a", 0), 0)
		wantFactors(t, st, "t", "u")
		wantFactors(t, st, "t2", "v")
	}},
}

var deleteFactorTests = []test{
	{"ReturnsAndRemoves", func(t *testing.T, st mfa.Stores) {
		a := confirmed(totp("t", "u", "a", 0), 9)
		b := oob(mfa.KindSMS, "t", "u", "b", time.Second)
		create(t, st, a, 0)
		create(t, st, b, 0)
		got, err := st.Factors.DeleteFactor(t.Context(), "t", "u", "a")
		if err != nil {
			t.Fatalf("DeleteFactor: %v", err)
		}
		if d := diffFactor(got, a); d != "" {
			t.Errorf("DeleteFactor returned %s", d)
		}
		wantNoFactor(t, st, "t", "u", "a")
		wantFactors(t, st, "t", "u", b)
	}},
	{"NotFound", func(t *testing.T, st mfa.Stores) {
		a := totp("t", "u", "a", 0)
		create(t, st, a, 0)
		for _, k := range [][3]string{{"t", "u", "b"}, {"t", "v", "a"}, {"t2", "u", "a"}} {
			if _, err := st.Factors.DeleteFactor(t.Context(), k[0], k[1], k[2]); !errors.Is(err, mfa.ErrNotFound) {
				t.Errorf("DeleteFactor(%q) = %v, want ErrNotFound", k, err)
			}
		}
		wantFactor(t, st, a)
		if _, err := st.Factors.DeleteFactor(t.Context(), "t", "u", "a"); err != nil {
			t.Fatalf("DeleteFactor: %v", err)
		}
		if _, err := st.Factors.DeleteFactor(t.Context(), "t", "u", "a"); !errors.Is(err, mfa.ErrNotFound) {
			t.Errorf("second DeleteFactor = %v, want ErrNotFound", err)
		}
	}},
}

// deleteKeeping calls DeleteFactorKeeping and checks its error (nil: it
// must return the factor want).
func deleteKeeping(t *testing.T, st mfa.Stores, want mfa.Factor, keep int, wantErr error) {
	t.Helper()
	got, err := st.Factors.DeleteFactorKeeping(t.Context(), want.Tenant, want.UserID, want.ID, keep)
	switch {
	case wantErr != nil && !errors.Is(err, wantErr):
		t.Errorf("DeleteFactorKeeping(%s, keep %d) = %v, want %v", want.ID, keep, err, wantErr)
	case wantErr == nil && err != nil:
		t.Errorf("DeleteFactorKeeping(%s, keep %d): %v", want.ID, keep, err)
	case wantErr == nil:
		if d := diffFactor(got, want); d != "" {
			t.Errorf("DeleteFactorKeeping(%s, keep %d) returned %s", want.ID, keep, d)
		}
	}
}

var deleteKeepingTests = []test{
	{"ReturnsAndRemoves", func(t *testing.T, st mfa.Stores) {
		a := confirmed(totp("t", "u", "a", 0), 9)
		b := confirmed(oob(mfa.KindSMS, "t", "u", "b", time.Second), 0)
		p := totp("t", "u", "p", 2*time.Second)
		for _, f := range []mfa.Factor{a, b, p} {
			create(t, st, f, 0)
		}
		deleteKeeping(t, st, a, 1, nil)
		wantNoFactor(t, st, "t", "u", "a")
		wantFactors(t, st, "t", "u", b, p)
		deleteKeeping(t, st, p, 1, nil)
		wantFactors(t, st, "t", "u", b)
	}},
	{"RefusesTheLast", func(t *testing.T, st mfa.Stores) {
		a := confirmed(totp("t", "u", "a", 0), 9)
		p := totp("t", "u", "p", time.Second)
		create(t, st, a, 0)
		create(t, st, p, 0)
		deleteKeeping(t, st, a, 1, mfa.ErrLastFactor)
		wantFactors(t, st, "t", "u", a, p)
	}},
	{"RefusesBelowKeep", func(t *testing.T, st mfa.Stores) {
		a := confirmed(totp("t", "u", "a", 0), 9)
		b := confirmed(oob(mfa.KindSMS, "t", "u", "b", time.Second), 0)
		c := confirmed(oob(mfa.KindEmail, "t", "u", "c", 2*time.Second), 0)
		for _, f := range []mfa.Factor{a, b, c} {
			create(t, st, f, 0)
		}
		deleteKeeping(t, st, a, 3, mfa.ErrLastFactor)
		wantFactors(t, st, "t", "u", a, b, c)
		deleteKeeping(t, st, a, 2, nil)
		deleteKeeping(t, st, b, 2, mfa.ErrLastFactor)
		wantFactors(t, st, "t", "u", b, c)
	}},
	{"RefusesAPendingFactorBelowKeep", func(t *testing.T, st mfa.Stores) {
		// The user has fewer than keep confirmed factors besides it, so
		// even a pending factor stays.
		p := totp("t", "u", "p", 0)
		create(t, st, p, 0)
		deleteKeeping(t, st, p, 1, mfa.ErrLastFactor)
		wantFactors(t, st, "t", "u", p)
		a := confirmed(oob(mfa.KindSMS, "t", "u", "a", time.Second), 0)
		create(t, st, a, 0)
		deleteKeeping(t, st, p, 1, nil)
		wantFactors(t, st, "t", "u", a)
	}},
	{"PendingFactorsDoNotCount", func(t *testing.T, st mfa.Stores) {
		a := confirmed(totp("t", "u", "a", 0), 9)
		p := oob(mfa.KindSMS, "t", "u", "p", time.Second)
		q := oob(mfa.KindEmail, "t", "u", "q", 2*time.Second)
		for _, f := range []mfa.Factor{a, p, q} {
			create(t, st, f, 0)
		}
		deleteKeeping(t, st, a, 1, mfa.ErrLastFactor)
		wantFactors(t, st, "t", "u", a, p, q)
	}},
	{"EveryKindCounts", func(t *testing.T, st mfa.Stores) {
		for _, k := range []mfa.Kind{mfa.KindTOTP, mfa.KindSMS, mfa.KindEmail} {
			u := "u-" + string(k)
			a := confirmed(totp("t", u, "a", 0), 9)
			o := confirmed(oob(k, "t", u, "o", time.Second), 0)
			if k == mfa.KindTOTP {
				o = confirmed(totp("t", u, "o", time.Second), 0)
			}
			create(t, st, a, 0)
			create(t, st, o, 0)
			deleteKeeping(t, st, a, 1, nil)
			deleteKeeping(t, st, o, 1, mfa.ErrLastFactor)
			wantFactors(t, st, "t", u, o)
		}
	}},
	{"CountsOnlyTheUser", func(t *testing.T, st mfa.Stores) {
		a := confirmed(totp("t", "u", "a", 0), 9)
		create(t, st, a, 0)
		for _, k := range [][2]string{{"t", "v"}, {"t2", "u"}} {
			create(t, st, confirmed(totp(k[0], k[1], "b", 0), 0), 0)
		}
		deleteKeeping(t, st, a, 1, mfa.ErrLastFactor)
		wantFactors(t, st, "t", "u", a)
	}},
	{"NotFound", func(t *testing.T, st mfa.Stores) {
		a := confirmed(totp("t", "u", "a", 0), 9)
		b := confirmed(totp("t", "u", "b", time.Second), 0)
		create(t, st, a, 0)
		create(t, st, b, 0)
		for _, k := range [][3]string{{"t", "u", "c"}, {"t", "v", "a"}, {"t2", "u", "a"}} {
			if _, err := st.Factors.DeleteFactorKeeping(t.Context(), k[0], k[1], k[2], 1); !errors.Is(err, mfa.ErrNotFound) {
				t.Errorf("DeleteFactorKeeping(%q, keep 1) = %v, want ErrNotFound", k, err)
			}
		}
		wantFactors(t, st, "t", "u", a, b)
		deleteKeeping(t, st, a, 1, nil)
		deleteKeeping(t, st, a, 1, mfa.ErrNotFound)
	}},
	{"KeepZeroKeepsNothing", func(t *testing.T, st mfa.Stores) {
		a := confirmed(totp("t", "u", "a", 0), 9)
		b := confirmed(totp("t", "u", "b", time.Second), 0)
		create(t, st, a, 0)
		create(t, st, b, 0)
		deleteKeeping(t, st, a, 0, nil)
		deleteKeeping(t, st, b, -1, nil)
		wantFactors(t, st, "t", "u")
	}},
}

var updaterNotFoundTests = []test{
	{"EveryMethod", func(t *testing.T, st mfa.Stores) {
		a := confirmed(totp("t", "u", "a", 0), 1)
		create(t, st, a, 0)
		for _, k := range [][3]string{{"t", "u", "b"}, {"t", "v", "a"}, {"t2", "u", "a"}} {
			ctx := t.Context()
			if err := st.FactorUpdates.ConfirmFactor(ctx, k[0], k[1], k[2], base, 1, 0); !errors.Is(err, mfa.ErrNotFound) {
				t.Errorf("ConfirmFactor(%q) = %v, want ErrNotFound", k, err)
			}
			if err := st.FactorUpdates.AdvanceStep(ctx, k[0], k[1], k[2], 99); !errors.Is(err, mfa.ErrNotFound) {
				t.Errorf("AdvanceStep(%q) = %v, want ErrNotFound", k, err)
			}
			if err := st.FactorUpdates.ResealSecret(ctx, k[0], k[1], k[2], a.Secret, "k2", []byte("x")); !errors.Is(err, mfa.ErrNotFound) {
				t.Errorf("ResealSecret(%q) = %v, want ErrNotFound", k, err)
			}
		}
		wantFactor(t, st, a)
	}},
}

var confirmTests = []test{
	{"SetsConfirmedAtAndLastStep", func(t *testing.T, st mfa.Stores) {
		p := totp("t", "u", "p", 0)
		other := totp("t", "v", "p", 0)
		create(t, st, p, 0)
		create(t, st, other, 0)
		at := base.Add(90*time.Second + 7*time.Microsecond)
		if err := st.FactorUpdates.ConfirmFactor(t.Context(), "t", "u", "p", at, 136986301, 0); err != nil {
			t.Fatalf("ConfirmFactor: %v", err)
		}
		want := p
		want.ConfirmedAt, want.LastStep = at, 136986301
		wantFactor(t, st, want)
		wantFactor(t, st, other)
		// An SMS factor is confirmed with step 0.
		s := oob(mfa.KindSMS, "t", "u", "s", 0)
		create(t, st, s, 0)
		if err := st.FactorUpdates.ConfirmFactor(t.Context(), "t", "u", "s", at, 0, 0); err != nil {
			t.Fatalf("ConfirmFactor: %v", err)
		}
		s.ConfirmedAt = at
		wantFactor(t, st, s)
	}},
	{"AlreadyConfirmed", func(t *testing.T, st mfa.Stores) {
		c := confirmed(totp("t", "u", "c", 0), 10)
		create(t, st, c, 0)
		if err := st.FactorUpdates.ConfirmFactor(t.Context(), "t", "u", "c", base.Add(time.Hour), 20, 0); !errors.Is(err, mfa.ErrConflict) {
			t.Errorf("ConfirmFactor of a confirmed factor = %v, want ErrConflict", err)
		}
		// Already confirmed is a conflict, whatever the limit.
		if err := st.FactorUpdates.ConfirmFactor(t.Context(), "t", "u", "c", base.Add(time.Hour), 20, 1); !errors.Is(err, mfa.ErrConflict) {
			t.Errorf("ConfirmFactor of a confirmed factor at the limit = %v, want ErrConflict", err)
		}
		wantFactor(t, st, c)
	}},
	{"LimitCountsConfirmed", func(t *testing.T, st mfa.Stores) {
		c1 := confirmed(totp("t", "u", "c1", 0), 1)
		c2 := confirmed(oob(mfa.KindSMS, "t", "u", "c2", time.Second), 0)
		p := oob(mfa.KindEmail, "t", "u", "p", 2*time.Second)
		other := oob(mfa.KindEmail, "t", "v", "p", 2*time.Second)
		for _, f := range []mfa.Factor{c1, c2, p, other} {
			create(t, st, f, 0)
		}
		at := base.Add(time.Hour)
		for _, max := range []int{1, 2} {
			if err := st.FactorUpdates.ConfirmFactor(t.Context(), "t", "u", "p", at, 0, max); !errors.Is(err, mfa.ErrLimit) {
				t.Errorf("ConfirmFactor with 2 confirmed factors, max %d = %v, want ErrLimit", max, err)
			}
		}
		wantFactors(t, st, "t", "u", c1, c2, p)
		// Another user's factors are not counted.
		if err := st.FactorUpdates.ConfirmFactor(t.Context(), "t", "v", "p", at, 0, 1); err != nil {
			t.Errorf("ConfirmFactor of another user's factor, max 1: %v", err)
		}
		// Under the limit (3) it is confirmed.
		if err := st.FactorUpdates.ConfirmFactor(t.Context(), "t", "u", "p", at, 0, 3); err != nil {
			t.Errorf("ConfirmFactor with 2 confirmed factors, max 3: %v", err)
		}
		p.ConfirmedAt = at
		wantFactor(t, st, p)
	}},
	{"LimitIgnoresPending", func(t *testing.T, st mfa.Stores) {
		create(t, st, totp("t", "u", "p1", 0), 0)
		create(t, st, oob(mfa.KindSMS, "t", "u", "p2", time.Second), 0)
		if err := st.FactorUpdates.ConfirmFactor(t.Context(), "t", "u", "p1", base.Add(time.Hour), 5, 1); err != nil {
			t.Errorf("ConfirmFactor with no confirmed factor and another pending, max 1: %v", err)
		}
		if err := st.FactorUpdates.ConfirmFactor(t.Context(), "t", "u", "p2", base.Add(time.Hour), 0, 1); !errors.Is(err, mfa.ErrLimit) {
			t.Errorf("ConfirmFactor with 1 confirmed factor, max 1 = %v, want ErrLimit", err)
		}
	}},
	{"ZeroMaxIsNoLimit", func(t *testing.T, st mfa.Stores) {
		for i := range 12 {
			create(t, st, confirmed(totp("t", "u", fmt.Sprint("f", i), time.Duration(i)*time.Second), 1), 0)
		}
		create(t, st, oob(mfa.KindSMS, "t", "u", "p", time.Minute), 0)
		if err := st.FactorUpdates.ConfirmFactor(t.Context(), "t", "u", "p", base.Add(time.Hour), 0, 0); err != nil {
			t.Errorf("ConfirmFactor with 12 confirmed factors, max 0: %v", err)
		}
	}},
	{"LimitNotFound", func(t *testing.T, st mfa.Stores) {
		create(t, st, confirmed(totp("t", "u", "c", 0), 1), 0)
		if err := st.FactorUpdates.ConfirmFactor(t.Context(), "t", "u", "x", base.Add(time.Hour), 0, 1); !errors.Is(err, mfa.ErrNotFound) {
			t.Errorf("ConfirmFactor of no factor at the limit = %v, want ErrNotFound", err)
		}
	}},
}

func advance(t *testing.T, st mfa.Stores, f mfa.Factor, step int64, want error) {
	t.Helper()
	err := st.FactorUpdates.AdvanceStep(t.Context(), f.Tenant, f.UserID, f.ID, step)
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Errorf("AdvanceStep(%s, %d) = %v, want %v", f.ID, step, err, want)
	}
}

var advanceTests = []test{
	{"SetIfNewer", func(t *testing.T, st mfa.Stores) {
		f := confirmed(totp("t", "u", "f", 0), 100)
		create(t, st, f, 0)
		advance(t, st, f, 101, nil)
		f.LastStep = 101
		wantFactor(t, st, f)
		advance(t, st, f, 150, nil) // a jump is fine
		f.LastStep = 150
		wantFactor(t, st, f)
	}},
	{"SameStepIsReplay", func(t *testing.T, st mfa.Stores) {
		f := confirmed(totp("t", "u", "f", 0), 100)
		create(t, st, f, 0)
		advance(t, st, f, 100, mfa.ErrReplay)
		advance(t, st, f, 101, nil)
		advance(t, st, f, 101, mfa.ErrReplay)
		f.LastStep = 101
		wantFactor(t, st, f)
	}},
	{"EarlierStepIsReplay", func(t *testing.T, st mfa.Stores) {
		f := confirmed(totp("t", "u", "f", 0), 100)
		create(t, st, f, 0)
		advance(t, st, f, 99, mfa.ErrReplay)
		advance(t, st, f, 0, mfa.ErrReplay)
		advance(t, st, f, -5, mfa.ErrReplay)
		wantFactor(t, st, f)
	}},
	{"FromZero", func(t *testing.T, st mfa.Stores) {
		f := confirmed(oob(mfa.KindSMS, "t", "u", "f", 0), 0)
		create(t, st, f, 0)
		advance(t, st, f, 0, mfa.ErrReplay)
		advance(t, st, f, 1, nil)
	}},
	{"PendingIsNotFound", func(t *testing.T, st mfa.Stores) {
		p := totp("t", "u", "p", 0)
		create(t, st, p, 0)
		advance(t, st, p, 5, mfa.ErrNotFound)
		wantFactor(t, st, p)
	}},
	{"PerFactor", func(t *testing.T, st mfa.Stores) {
		a := confirmed(totp("t", "u", "a", 0), 100)
		b := confirmed(totp("t", "u", "b", time.Second), 100)
		c := confirmed(totp("t", "v", "a", 0), 100)
		for _, f := range []mfa.Factor{a, b, c} {
			create(t, st, f, 0)
		}
		advance(t, st, a, 200, nil)
		advance(t, st, b, 101, nil)
		advance(t, st, c, 101, nil)
	}},
}

var resealTests = []test{
	{"ReplacesKeyIDAndSecret", func(t *testing.T, st mfa.Stores) {
		f := confirmed(totp("t", "u", "f", 0), 42)
		create(t, st, f, 0)
		if err := st.FactorUpdates.ResealSecret(t.Context(), "t", "u", "f", bytes.Clone(f.Secret), "k2", []byte("resealed")); err != nil {
			t.Fatalf("ResealSecret: %v", err)
		}
		want := f
		want.KeyID, want.Secret = "k2", []byte("resealed")
		wantFactor(t, st, want)
	}},
	{"OtherFieldsLeftAlone", func(t *testing.T, st mfa.Stores) {
		p := totp("t", "u", "p", 0) // pending stays pending
		create(t, st, p, 0)
		if err := st.FactorUpdates.ResealSecret(t.Context(), "t", "u", "p", p.Secret, "k3", []byte{9, 9}); err != nil {
			t.Fatalf("ResealSecret: %v", err)
		}
		p.KeyID, p.Secret = "k3", []byte{9, 9}
		wantFactor(t, st, p)
	}},
	{"StaleOldIsConflict", func(t *testing.T, st mfa.Stores) {
		f := confirmed(totp("t", "u", "f", 0), 42)
		create(t, st, f, 0)
		for _, old := range [][]byte{[]byte("something else"), f.Secret[:len(f.Secret)-1], nil} {
			if err := st.FactorUpdates.ResealSecret(t.Context(), "t", "u", "f", old, "k2", []byte("x")); !errors.Is(err, mfa.ErrConflict) {
				t.Errorf("ResealSecret with a stale old secret = %v, want ErrConflict", err)
			}
		}
		wantFactor(t, st, f)
		// After a reseal, the first secret is stale.
		if err := st.FactorUpdates.ResealSecret(t.Context(), "t", "u", "f", f.Secret, "k2", []byte("new")); err != nil {
			t.Fatalf("ResealSecret: %v", err)
		}
		if err := st.FactorUpdates.ResealSecret(t.Context(), "t", "u", "f", f.Secret, "k3", []byte("newer")); !errors.Is(err, mfa.ErrConflict) {
			t.Errorf("second ResealSecret from the same old secret = %v, want ErrConflict", err)
		}
	}},
}

func wantEnrolments(t *testing.T, st mfa.Stores, tenant, after string, limit int, want ...mfa.Enrolment) {
	t.Helper()
	got, err := st.Enrolments.Enrolments(t.Context(), tenant, after, limit)
	if err != nil {
		t.Errorf("Enrolments(%q, %q, %d): %v", tenant, after, limit, err)
		return
	}
	f := func(es []mfa.Enrolment) string {
		var b strings.Builder
		for _, e := range es {
			fmt.Fprintf(&b, "%s%v ", e.UserID, e.Kinds)
		}
		return b.String()
	}
	if f(got) != f(want) {
		t.Errorf("Enrolments(%q, %q, %d) = %s, want %s", tenant, after, limit, f(got), f(want))
	}
}

var enrolmentTests = []test{
	{"DistinctKindsAscending", func(t *testing.T, st mfa.Stores) {
		create(t, st, confirmed(totp("t", "u", "a", 0), 1), 0)
		create(t, st, confirmed(totp("t", "u", "b", time.Second), 1), 0)
		create(t, st, confirmed(oob(mfa.KindSMS, "t", "u", "c", 2*time.Second), 0), 0)
		create(t, st, confirmed(oob(mfa.KindEmail, "t", "u", "d", 3*time.Second), 0), 0)
		create(t, st, confirmed(oob(mfa.KindSMS, "t", "u", "e", 4*time.Second), 0), 0)
		wantEnrolments(t, st, "t", "", 10, mfa.Enrolment{UserID: "u", Kinds: []mfa.Kind{mfa.KindEmail, mfa.KindSMS, mfa.KindTOTP}})
	}},
	{"PendingNotCounted", func(t *testing.T, st mfa.Stores) {
		create(t, st, totp("t", "only-pending", "a", 0), 0)
		create(t, st, confirmed(oob(mfa.KindSMS, "t", "mixed", "b", 0), 0), 0)
		create(t, st, totp("t", "mixed", "c", time.Second), 0)
		wantEnrolments(t, st, "t", "", 10, mfa.Enrolment{UserID: "mixed", Kinds: []mfa.Kind{mfa.KindSMS}})
	}},
	{"PagedByUserID", func(t *testing.T, st mfa.Stores) {
		users := []string{"u3", "u1", "u5", "u2", "u4"}
		for i, u := range users {
			create(t, st, confirmed(totp("t", u, "f", time.Duration(i)*time.Second), 1), 0)
		}
		create(t, st, totp("t", "u25", "p", 0), 0) // pending only: skipped
		e := func(u string) mfa.Enrolment { return mfa.Enrolment{UserID: u, Kinds: []mfa.Kind{mfa.KindTOTP}} }
		wantEnrolments(t, st, "t", "", 2, e("u1"), e("u2"))
		wantEnrolments(t, st, "t", "u2", 2, e("u3"), e("u4"))
		wantEnrolments(t, st, "t", "u4", 2, e("u5"))
		wantEnrolments(t, st, "t", "u5", 2)
		wantEnrolments(t, st, "t", "u25", 1, e("u3")) // after a user without enrolment
		wantEnrolments(t, st, "t", "", 100, e("u1"), e("u2"), e("u3"), e("u4"), e("u5"))
	}},
	{"ScopedByTenant", func(t *testing.T, st mfa.Stores) {
		create(t, st, confirmed(totp("t1", "u", "f", 0), 1), 0)
		create(t, st, confirmed(oob(mfa.KindEmail, "t2", "u", "f", 0), 0), 0)
		wantEnrolments(t, st, "t1", "", 10, mfa.Enrolment{UserID: "u", Kinds: []mfa.Kind{mfa.KindTOTP}})
		wantEnrolments(t, st, "t2", "", 10, mfa.Enrolment{UserID: "u", Kinds: []mfa.Kind{mfa.KindEmail}})
		wantEnrolments(t, st, "t3", "", 10)
	}},
	{"DeletedFactorsGone", func(t *testing.T, st mfa.Stores) {
		create(t, st, confirmed(totp("t", "u", "f", 0), 1), 0)
		if _, err := st.Factors.DeleteFactor(t.Context(), "t", "u", "f"); err != nil {
			t.Fatal(err)
		}
		wantEnrolments(t, st, "t", "", 10)
	}},
}

// ---------------------------------------------------------------------------
// Recovery codes

func hashes(prefix string, n int) []mfa.Hash {
	hs := make([]mfa.Hash, n)
	for i := range hs {
		hs[i] = hashOf(fmt.Sprint(prefix, i))
	}
	return hs
}

func replace(t *testing.T, st mfa.Stores, tenant, user string, hs []mfa.Hash) {
	t.Helper()
	if err := st.Recovery.ReplaceRecoveryCodes(t.Context(), tenant, user, hs); err != nil {
		t.Fatalf("ReplaceRecoveryCodes: %v", err)
	}
}

func use(t *testing.T, st mfa.Stores, tenant, user string, h mfa.Hash, wantLeft int, want error) {
	t.Helper()
	left, err := st.Recovery.UseRecoveryCode(t.Context(), tenant, user, h)
	if want != nil {
		if !errors.Is(err, want) {
			t.Errorf("UseRecoveryCode = %d, %v; want %v", left, err, want)
		}
		return
	}
	if err != nil || left != wantLeft {
		t.Errorf("UseRecoveryCode = %d, %v; want %d left", left, err, wantLeft)
	}
}

func wantLeft(t *testing.T, st mfa.Stores, tenant, user string, want int) {
	t.Helper()
	n, err := st.Recovery.RecoveryCodesLeft(t.Context(), tenant, user)
	if err != nil || n != want {
		t.Errorf("RecoveryCodesLeft(%q, %q) = %d, %v; want %d", tenant, user, n, err, want)
	}
}

var recoveryTests = []test{
	{"ReplaceStoresTheSet", func(t *testing.T, st mfa.Stores) {
		replace(t, st, "t", "u", hashes("a", 10))
		wantLeft(t, st, "t", "u", 10)
	}},
	{"ReplaceVoidsEarlierSet", func(t *testing.T, st mfa.Stores) {
		old := hashes("old", 10)
		replace(t, st, "t", "u", old)
		use(t, st, "t", "u", old[0], 9, nil)
		nu := hashes("new", 10)
		replace(t, st, "t", "u", nu)
		wantLeft(t, st, "t", "u", 10)
		for _, h := range old {
			use(t, st, "t", "u", h, 0, mfa.ErrNotFound)
		}
		use(t, st, "t", "u", nu[3], 9, nil)
	}},
	{"EmptyRemovesTheSet", func(t *testing.T, st mfa.Stores) {
		hs := hashes("a", 10)
		replace(t, st, "t", "u", hs)
		replace(t, st, "t", "u", nil)
		wantLeft(t, st, "t", "u", 0)
		use(t, st, "t", "u", hs[0], 0, mfa.ErrNotFound)
		replace(t, st, "t", "u", hs)
		replace(t, st, "t", "u", []mfa.Hash{})
		wantLeft(t, st, "t", "u", 0)
	}},
	{"UseRemovesAndCounts", func(t *testing.T, st mfa.Stores) {
		hs := hashes("a", 10)
		replace(t, st, "t", "u", hs)
		for i, h := range hs {
			use(t, st, "t", "u", h, 9-i, nil)
		}
		wantLeft(t, st, "t", "u", 0)
	}},
	{"UseTwiceIsNotFound", func(t *testing.T, st mfa.Stores) {
		hs := hashes("a", 3)
		replace(t, st, "t", "u", hs)
		use(t, st, "t", "u", hs[1], 2, nil)
		use(t, st, "t", "u", hs[1], 0, mfa.ErrNotFound)
		wantLeft(t, st, "t", "u", 2)
	}},
	{"UnknownHashChangesNothing", func(t *testing.T, st mfa.Stores) {
		replace(t, st, "t", "u", hashes("a", 3))
		use(t, st, "t", "u", hashOf("other"), 0, mfa.ErrNotFound)
		use(t, st, "t", "nobody", hashOf("a0"), 0, mfa.ErrNotFound)
		wantLeft(t, st, "t", "u", 3)
	}},
	{"ScopedByTenantAndUser", func(t *testing.T, st mfa.Stores) {
		hs := hashes("a", 3)
		replace(t, st, "t", "u", hs)
		replace(t, st, "t", "v", hashes("b", 2))
		use(t, st, "t", "v", hs[0], 0, mfa.ErrNotFound)
		use(t, st, "t2", "u", hs[0], 0, mfa.ErrNotFound)
		wantLeft(t, st, "t", "v", 2)
		wantLeft(t, st, "t2", "u", 0)
		replace(t, st, "t", "v", nil)
		wantLeft(t, st, "t", "u", 3)
	}},
	{"LeftWithoutSet", func(t *testing.T, st mfa.Stores) {
		wantLeft(t, st, "t", "u", 0)
	}},
	{"CodesReadsTheSet", func(t *testing.T, st mfa.Stores) {
		hs := hashes("a", 10)
		replace(t, st, "t", "u", hs)
		wantCodes(t, st, "t", "u", hs...)
		use(t, st, "t", "u", hs[3], 9, nil)
		wantCodes(t, st, "t", "u", slices.Delete(slices.Clone(hs), 3, 4)...)
		replace(t, st, "t", "v", hashes("b", 2))
		wantCodes(t, st, "t", "u", slices.Delete(slices.Clone(hs), 3, 4)...)
	}},
	{"CodesWithoutSet", func(t *testing.T, st mfa.Stores) {
		wantCodes(t, st, "t", "u")
		hs := hashes("a", 1)
		replace(t, st, "t", "u", hs)
		use(t, st, "t", "u", hs[0], 0, nil)
		wantCodes(t, st, "t", "u")
		replace(t, st, "t", "u", hs)
		replace(t, st, "t", "u", nil)
		wantCodes(t, st, "t", "u")
	}},
	{"SwapFromNoSet", func(t *testing.T, st mfa.Stores) {
		hs := hashes("a", 10)
		swap(t, st, "t", "u", nil, hs, nil)
		wantCodes(t, st, "t", "u", hs...)
		use(t, st, "t", "u", hs[0], 9, nil)
	}},
	{"SwapFromAllUsed", func(t *testing.T, st mfa.Stores) {
		old := hashes("old", 2)
		replace(t, st, "t", "u", old)
		use(t, st, "t", "u", old[0], 1, nil)
		use(t, st, "t", "u", old[1], 0, nil)
		nu := hashes("new", 10)
		swap(t, st, "t", "u", []mfa.Hash{}, nu, nil)
		wantCodes(t, st, "t", "u", nu...)
	}},
	{"SwapFromTheSetRead", func(t *testing.T, st mfa.Stores) {
		old := hashes("old", 10)
		replace(t, st, "t", "u", old)
		use(t, st, "t", "u", old[0], 9, nil)
		read := slices.Clone(old[1:])
		slices.Reverse(read) // in any order
		nu := hashes("new", 10)
		swap(t, st, "t", "u", read, nu, nil)
		wantCodes(t, st, "t", "u", nu...)
		for _, h := range old {
			use(t, st, "t", "u", h, 0, mfa.ErrNotFound)
		}
		use(t, st, "t", "u", nu[3], 9, nil)
	}},
	{"SwapToEmptyRemovesTheSet", func(t *testing.T, st mfa.Stores) {
		hs := hashes("a", 3)
		replace(t, st, "t", "u", hs)
		swap(t, st, "t", "u", hs, nil, nil)
		wantLeft(t, st, "t", "u", 0)
		wantCodes(t, st, "t", "u")
		use(t, st, "t", "u", hs[0], 0, mfa.ErrNotFound)
		swap(t, st, "t", "u", nil, hs, nil)
		wantLeft(t, st, "t", "u", 3)
	}},
	{"SwapFromAnotherSetConflicts", func(t *testing.T, st mfa.Stores) {
		a, b, c := hashes("a", 10), hashes("b", 10), hashes("c", 10)
		replace(t, st, "t", "u", a)
		swap(t, st, "t", "u", b, c, mfa.ErrConflict)
		swap(t, st, "t", "u", nil, c, mfa.ErrConflict)                     // a set where none was read
		swap(t, st, "t", "u", a[:9], c, mfa.ErrConflict)                   // a code more than read
		swap(t, st, "t", "u", slices.Concat(a, b[:1]), c, mfa.ErrConflict) // a code less than read
		swap(t, st, "t", "u", a, a[:0], nil)
		swap(t, st, "t", "u", a, c, mfa.ErrConflict) // no set where one was read
		wantCodes(t, st, "t", "u")
		replace(t, st, "t", "u", a)
		use(t, st, "t", "u", a[5], 9, nil)
		swap(t, st, "t", "u", a, c, mfa.ErrConflict) // a code used since the read
		wantCodes(t, st, "t", "u", slices.Delete(slices.Clone(a), 5, 6)...)
		use(t, st, "t", "u", c[0], 0, mfa.ErrNotFound)
	}},
	{"SwapScopedByTenantAndUser", func(t *testing.T, st mfa.Stores) {
		a, b, c := hashes("a", 3), hashes("b", 3), hashes("c", 3)
		replace(t, st, "t", "u", a)
		swap(t, st, "t", "v", nil, b, nil)
		swap(t, st, "t2", "u", nil, c, nil)
		swap(t, st, "t", "v", a, c, mfa.ErrConflict)
		wantCodes(t, st, "t", "u", a...)
		wantCodes(t, st, "t", "v", b...)
		wantCodes(t, st, "t2", "u", c...)
	}},
}

func swap(t *testing.T, st mfa.Stores, tenant, user string, old, hs []mfa.Hash, want error) {
	t.Helper()
	err := st.Recovery.SwapRecoveryCodes(t.Context(), tenant, user, old, hs)
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Errorf("SwapRecoveryCodes(%q, %q, %d codes read, %d new) = %v, want %v", tenant, user, len(old), len(hs), err, want)
	}
}

func wantCodes(t *testing.T, st mfa.Stores, tenant, user string, want ...mfa.Hash) {
	t.Helper()
	got, err := st.Recovery.RecoveryCodes(t.Context(), tenant, user)
	if err != nil {
		t.Errorf("RecoveryCodes(%q, %q): %v", tenant, user, err)
		return
	}
	cmpHash := func(a, b mfa.Hash) int { return bytes.Compare(a[:], b[:]) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, cmpHash)
	slices.SortFunc(want, cmpHash)
	if !slices.Equal(got, want) {
		t.Errorf("RecoveryCodes(%q, %q) = %d hashes, want the %d of the set", tenant, user, len(got), len(want))
	}
}

// ---------------------------------------------------------------------------
// One-time codes

func code(txn string, tries int) mfa.Code {
	return mfa.Code{
		Tenant:    "t",
		Txn:       txn,
		UserID:    "u",
		FactorID:  "f-" + txn,
		Kind:      mfa.KindSMS,
		Hash:      hashOf("code-" + txn),
		CreatedAt: base,
		ExpiresAt: base.Add(10 * time.Minute),
		TriesLeft: tries,
	}
}

func put(t *testing.T, st mfa.Stores, c mfa.Code) {
	t.Helper()
	if err := st.Codes.PutCode(t.Context(), c); err != nil {
		t.Fatalf("PutCode(%s): %v", c.Txn, err)
	}
}

// check runs CheckCode and compares the error, and the returned code when
// wantCode is not nil.
func check(t *testing.T, st mfa.Stores, tenant, txn string, h mfa.Hash, now time.Time, want error, wantCode *mfa.Code) {
	t.Helper()
	got, err := st.Codes.CheckCode(t.Context(), tenant, txn, h, now)
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Errorf("CheckCode(%q, %q) = %v, want %v", tenant, txn, err, want)
		return
	}
	if wantCode != nil {
		if d := diffCode(got, *wantCode); d != "" {
			t.Errorf("CheckCode(%q, %q) returned %s", tenant, txn, d)
		}
	}
}

func diffCode(got, want mfa.Code) string {
	var d []string
	if got.Tenant != want.Tenant || got.Txn != want.Txn || got.UserID != want.UserID ||
		got.FactorID != want.FactorID || got.Kind != want.Kind {
		d = append(d, fmt.Sprintf("identity %q/%q/%q/%q/%q, want %q/%q/%q/%q/%q",
			got.Tenant, got.Txn, got.UserID, got.FactorID, got.Kind,
			want.Tenant, want.Txn, want.UserID, want.FactorID, want.Kind))
	}
	if got.Hash != want.Hash {
		d = append(d, "another Hash")
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		d = append(d, fmt.Sprintf("times %v..%v, want %v..%v", got.CreatedAt, got.ExpiresAt, want.CreatedAt, want.ExpiresAt))
	}
	if got.TriesLeft != want.TriesLeft {
		d = append(d, fmt.Sprintf("TriesLeft %d, want %d", got.TriesLeft, want.TriesLeft))
	}
	return strings.Join(d, "; ")
}

var codeTests = []test{
	{"RightHashConsumes", func(t *testing.T, st mfa.Stores) {
		zone := time.FixedZone("UTC-03:00", -3*3600)
		c := code("a", 5)
		c.Tenant, c.UserID, c.Kind = "tenant-ü", "user-ü", mfa.KindEmail
		c.CreatedAt = base.In(zone).Add(3 * time.Microsecond)
		c.ExpiresAt = c.CreatedAt.Add(10 * time.Minute)
		put(t, st, c)
		check(t, st, c.Tenant, "a", c.Hash, base.Add(time.Minute), nil, &c)
		check(t, st, c.Tenant, "a", c.Hash, base.Add(time.Minute), mfa.ErrNotFound, nil)
	}},
	{"NoCodeIsNotFound", func(t *testing.T, st mfa.Stores) {
		check(t, st, "t", "none", hashOf("x"), base, mfa.ErrNotFound, nil)
		put(t, st, code("a", 5))
		check(t, st, "t", "b", hashOf("code-a"), base, mfa.ErrNotFound, nil)
		check(t, st, "t2", "a", hashOf("code-a"), base, mfa.ErrNotFound, nil)
	}},
	{"BoundToTransaction", func(t *testing.T, st mfa.Stores) {
		a, b := code("A", 5), code("B", 5)
		put(t, st, a)
		put(t, st, b)
		// A's code presented in B is a wrong code there.
		wb := b
		wb.TriesLeft = 4
		check(t, st, "t", "B", a.Hash, base, mfa.ErrInvalidCode, &wb)
		check(t, st, "t", "A", a.Hash, base, nil, &a)
		check(t, st, "t", "B", b.Hash, base, nil, &wb)
	}},
	{"NewCodeVoidsOld", func(t *testing.T, st mfa.Stores) {
		old := code("a", 5)
		put(t, st, old)
		nu := code("a", 5)
		nu.Hash = hashOf("newer")
		nu.CreatedAt = base.Add(time.Minute)
		nu.ExpiresAt = nu.CreatedAt.Add(10 * time.Minute)
		put(t, st, nu)
		want := nu
		want.TriesLeft = 4
		check(t, st, "t", "a", old.Hash, base.Add(2*time.Minute), mfa.ErrInvalidCode, &want)
		check(t, st, "t", "a", nu.Hash, base.Add(2*time.Minute), nil, &want)
	}},
	{"NewCodeReplacesAnyState", func(t *testing.T, st mfa.Stores) {
		// Exhausted.
		c := code("a", 1)
		put(t, st, c)
		check(t, st, "t", "a", hashOf("wrong"), base, mfa.ErrInvalidCode, nil)
		check(t, st, "t", "a", c.Hash, base, mfa.ErrTooManyTries, nil)
		fresh := code("a", 5)
		put(t, st, fresh)
		check(t, st, "t", "a", fresh.Hash, base, nil, &fresh)
		// Expired.
		e := code("b", 5)
		e.ExpiresAt = base.Add(time.Minute)
		put(t, st, e)
		check(t, st, "t", "b", e.Hash, base.Add(time.Hour), mfa.ErrExpired, nil)
		f2 := code("b", 5)
		f2.CreatedAt, f2.ExpiresAt = base.Add(time.Hour), base.Add(time.Hour+10*time.Minute)
		put(t, st, f2)
		check(t, st, "t", "b", f2.Hash, base.Add(time.Hour+time.Minute), nil, &f2)
		// Consumed, then sent again.
		put(t, st, fresh)
		check(t, st, "t", "a", fresh.Hash, base, nil, &fresh)
	}},
	{"ExpiredAtExpiresAt", func(t *testing.T, st mfa.Stores) {
		c := code("a", 5)
		put(t, st, c)
		check(t, st, "t", "a", c.Hash, c.ExpiresAt, mfa.ErrExpired, nil)
		c2 := code("b", 5)
		put(t, st, c2)
		check(t, st, "t", "b", c2.Hash, c2.ExpiresAt.Add(time.Hour), mfa.ErrExpired, nil)
		c3 := code("c", 5)
		put(t, st, c3)
		check(t, st, "t", "c", hashOf("wrong"), c3.ExpiresAt, mfa.ErrExpired, nil)
	}},
	{"ExpiredGivesTheCode", func(t *testing.T, st mfa.Stores) {
		// The code as it was, whatever the hash: its kind tells the
		// caller which factor sent it.
		c := code("a", 5)
		c.Kind = mfa.KindEmail
		put(t, st, c)
		check(t, st, "t", "a", hashOf("wrong"), c.ExpiresAt, mfa.ErrExpired, &c)
		c2 := code("b", 3)
		put(t, st, c2)
		check(t, st, "t", "b", c2.Hash, c2.ExpiresAt.Add(time.Hour), mfa.ErrExpired, &c2)
	}},
	{"NoTriesLeftGivesTheCode", func(t *testing.T, st mfa.Stores) {
		c := code("a", 1)
		c.Kind = mfa.KindEmail
		put(t, st, c)
		spent := c
		spent.TriesLeft = 0
		check(t, st, "t", "a", hashOf("wrong"), base, mfa.ErrInvalidCode, &spent)
		check(t, st, "t", "a", c.Hash, base, mfa.ErrTooManyTries, &spent)
		check(t, st, "t", "a", hashOf("wrong"), base, mfa.ErrTooManyTries, &spent)
	}},
	{"LiveJustBeforeExpiresAt", func(t *testing.T, st mfa.Stores) {
		c := code("a", 5)
		put(t, st, c)
		check(t, st, "t", "a", c.Hash, c.ExpiresAt.Add(-time.Microsecond), nil, &c)
	}},
	{"ExpiryByGivenNow", func(t *testing.T, st mfa.Stores) {
		// Given a now before CreatedAt, the code is live whatever the
		// store's clock says; given one after ExpiresAt it is expired.
		c := code("a", 5)
		put(t, st, c)
		check(t, st, "t", "a", c.Hash, base.Add(-time.Hour), nil, &c)
	}},
	{"WrongUsesOneTry", func(t *testing.T, st mfa.Stores) {
		c := code("a", 5)
		put(t, st, c)
		for i := 4; i >= 0; i-- {
			w := c
			w.TriesLeft = i
			check(t, st, "t", "a", hashOf(fmt.Sprint("wrong", i)), base, mfa.ErrInvalidCode, &w)
		}
	}},
	{"NoTriesLeftRefusesRightCode", func(t *testing.T, st mfa.Stores) {
		c := code("a", 5)
		put(t, st, c)
		for range 5 {
			check(t, st, "t", "a", hashOf("wrong"), base, mfa.ErrInvalidCode, nil)
		}
		for range 3 {
			check(t, st, "t", "a", c.Hash, base, mfa.ErrTooManyTries, nil)
			check(t, st, "t", "a", hashOf("wrong"), base, mfa.ErrTooManyTries, nil)
		}
		z := code("z", 0)
		put(t, st, z)
		check(t, st, "t", "z", z.Hash, base, mfa.ErrTooManyTries, nil)
	}},
	{"NoTriesLeftStaysAsItIs", func(t *testing.T, st mfa.Stores) {
		c := code("a", 1)
		put(t, st, c)
		check(t, st, "t", "a", hashOf("wrong"), base, mfa.ErrInvalidCode, nil)
		check(t, st, "t", "a", c.Hash, base, mfa.ErrTooManyTries, nil)
		// Still there: expiry is still reported, not ErrNotFound.
		check(t, st, "t", "a", c.Hash, c.ExpiresAt, mfa.ErrExpired, nil)
	}},
	{"RightAfterWrongTries", func(t *testing.T, st mfa.Stores) {
		c := code("a", 5)
		put(t, st, c)
		for range 4 {
			check(t, st, "t", "a", hashOf("wrong"), base, mfa.ErrInvalidCode, nil)
		}
		w := c
		w.TriesLeft = 1
		check(t, st, "t", "a", c.Hash, base, nil, &w)
	}},
	{"DeleteCode", func(t *testing.T, st mfa.Stores) {
		c := code("a", 5)
		put(t, st, c)
		put(t, st, code("b", 5))
		if err := st.Codes.DeleteCode(t.Context(), "t", "a"); err != nil {
			t.Fatalf("DeleteCode: %v", err)
		}
		check(t, st, "t", "a", c.Hash, base, mfa.ErrNotFound, nil)
		check(t, st, "t", "b", hashOf("code-b"), base, nil, nil)
	}},
	{"DeleteMissingCode", func(t *testing.T, st mfa.Stores) {
		if err := st.Codes.DeleteCode(t.Context(), "t", "never"); err != nil {
			t.Errorf("DeleteCode of no code = %v, want nil", err)
		}
	}},
}

// ---------------------------------------------------------------------------
// Rates

func hit(t *testing.T, st mfa.Stores, key string, now time.Time, window time.Duration, want int) {
	t.Helper()
	n, err := st.Rates.Hit(t.Context(), key, now, window)
	if err != nil || n != want {
		t.Errorf("Hit(%q, +%v) = %d, %v; want %d", key, now.Sub(base), n, err, want)
	}
}

func forget(t *testing.T, st mfa.Stores, key string, opened time.Time, window time.Duration) {
	t.Helper()
	if err := st.Rates.Forget(t.Context(), key, opened, window); err != nil {
		t.Errorf("Forget(%q, +%v): %v", key, opened.Sub(base), err)
	}
}

var rateTests = []test{
	{"FirstEventCountsOne", func(t *testing.T, st mfa.Stores) {
		hit(t, st, "k", base, time.Hour, 1)
	}},
	{"EachEventCountsOneMore", func(t *testing.T, st mfa.Stores) {
		for i := 1; i <= 25; i++ {
			hit(t, st, "k", base.Add(time.Duration(i)*time.Minute), time.Hour, i)
		}
	}},
	{"WindowFromFirstEvent", func(t *testing.T, st mfa.Stores) {
		hit(t, st, "k", base, time.Hour, 1)
		hit(t, st, "k", base.Add(59*time.Minute), time.Hour, 2)
		// The window ends an hour after its first event, not its last.
		hit(t, st, "k", base.Add(time.Hour), time.Hour, 1)
		hit(t, st, "k", base.Add(time.Hour+time.Minute), time.Hour, 2)
	}},
	{"NewWindowAtItsEnd", func(t *testing.T, st mfa.Stores) {
		hit(t, st, "a", base, time.Minute, 1)
		hit(t, st, "a", base.Add(time.Minute-time.Microsecond), time.Minute, 2)
		hit(t, st, "a", base.Add(time.Minute), time.Minute, 1)
		hit(t, st, "b", base, time.Minute, 1)
		hit(t, st, "b", base.Add(24*time.Hour), time.Minute, 1)
	}},
	{"KeysIndependent", func(t *testing.T, st mfa.Stores) {
		hit(t, st, "a", base, time.Hour, 1)
		hit(t, st, "a", base, time.Hour, 2)
		hit(t, st, "b", base, time.Hour, 1)
		hit(t, st, "mfa:ip:x", base, time.Minute, 1)
		hit(t, st, "a", base, time.Hour, 3)
		hit(t, st, "b", base, time.Hour, 2)
	}},
	{"WindowByGivenNow", func(t *testing.T, st mfa.Stores) {
		// The window is judged by the now given, not the store's clock.
		hit(t, st, "k", base, time.Second, 1)
		hit(t, st, "k", base.Add(500*time.Millisecond), time.Second, 2)
	}},
	{"ForgetEndsTheWindow", func(t *testing.T, st mfa.Stores) {
		hit(t, st, "k", base, time.Hour, 1)
		hit(t, st, "k", base.Add(time.Minute), time.Hour, 2)
		forget(t, st, "k", base, time.Hour)
		// The next Hit opens a new window, from its own time.
		hit(t, st, "k", base.Add(2*time.Minute), time.Hour, 1)
		hit(t, st, "k", base.Add(2*time.Minute+59*time.Minute), time.Hour, 2)
		hit(t, st, "k", base.Add(2*time.Minute+time.Hour), time.Hour, 1)
	}},
	{"ForgetLeavesWindowOpenedAtAnotherTime", func(t *testing.T, st mfa.Stores) {
		hit(t, st, "k", base, time.Hour, 1)
		forget(t, st, "k", base.Add(time.Second), time.Hour)
		forget(t, st, "k", base.Add(-time.Microsecond), time.Hour)
		hit(t, st, "k", base.Add(time.Minute), time.Hour, 2)
		// A window opened once the one named had ended stays.
		hit(t, st, "a", base, time.Minute, 1)
		hit(t, st, "a", base.Add(time.Minute), time.Minute, 1)
		forget(t, st, "a", base, time.Minute)
		hit(t, st, "a", base.Add(time.Minute+time.Second), time.Minute, 2)
	}},
	{"ForgetWithoutWindow", func(t *testing.T, st mfa.Stores) {
		forget(t, st, "never", base, time.Hour)
		hit(t, st, "never", base, time.Hour, 1)
	}},
	{"ForgetKeysIndependent", func(t *testing.T, st mfa.Stores) {
		hit(t, st, "a", base, time.Hour, 1)
		hit(t, st, "b", base, time.Hour, 1)
		forget(t, st, "a", base, time.Hour)
		hit(t, st, "b", base, time.Hour, 2)
		hit(t, st, "a", base, time.Hour, 1)
	}},
	{"ForgetRoundsAsHit", func(t *testing.T, st mfa.Stores) {
		// Times and windows finer than a microsecond: Forget finds the
		// window where Hit put it.
		at, w := base.Add(500*time.Nanosecond), time.Hour+500*time.Nanosecond
		hit(t, st, "k", at, w, 1)
		hit(t, st, "k", at, w, 2)
		forget(t, st, "k", at, w)
		hit(t, st, "k", at, w, 1)
	}},
}

// ---------------------------------------------------------------------------
// Transactions

func txn(label string) mfa.Transaction {
	return mfa.Transaction{
		Hash:      hashOf("txn-" + label),
		Tenant:    "t",
		UserID:    "u",
		Binding:   hashOf("binding-" + label),
		Purpose:   "login",
		Flags:     0x5,
		CreatedAt: base,
		ExpiresAt: base.Add(5 * time.Minute),
	}
}

func diffTxn(got, want mfa.Transaction) string {
	var d []string
	if got.Hash != want.Hash || got.Binding != want.Binding {
		d = append(d, "another Hash or Binding")
	}
	if got.Tenant != want.Tenant || got.UserID != want.UserID || got.Purpose != want.Purpose || got.Flags != want.Flags {
		d = append(d, fmt.Sprintf("%q/%q/%q/%#x, want %q/%q/%q/%#x", got.Tenant, got.UserID, got.Purpose, got.Flags,
			want.Tenant, want.UserID, want.Purpose, want.Flags))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		d = append(d, fmt.Sprintf("times %v..%v, want %v..%v", got.CreatedAt, got.ExpiresAt, want.CreatedAt, want.ExpiresAt))
	}
	return strings.Join(d, "; ")
}

func createTxn(t *testing.T, st mfa.Stores, x mfa.Transaction) {
	t.Helper()
	if err := st.Transactions.CreateTransaction(t.Context(), x); err != nil {
		t.Fatalf("CreateTransaction: %v", err)
	}
}

func wantTxn(t *testing.T, st mfa.Stores, x mfa.Transaction) {
	t.Helper()
	got, err := st.Transactions.Transaction(t.Context(), x.Hash)
	if err != nil {
		t.Errorf("Transaction: %v", err)
		return
	}
	if d := diffTxn(got, x); d != "" {
		t.Errorf("Transaction returned %s", d)
	}
}

func wantNoTxn(t *testing.T, st mfa.Stores, h mfa.Hash) {
	t.Helper()
	if _, err := st.Transactions.Transaction(t.Context(), h); !errors.Is(err, mfa.ErrNotFound) {
		t.Errorf("Transaction = %v, want ErrNotFound", err)
	}
}

var transactionTests = []test{
	{"StoresEveryField", func(t *testing.T, st mfa.Stores) {
		zone := time.FixedZone("UTC+09:00", 9*3600)
		x := txn("a")
		x.Tenant, x.UserID, x.Purpose, x.Flags = "tenant-ü", "user-\u2603", "enrol-required", 0xffffffff
		x.CreatedAt = base.In(zone).Add(17 * time.Microsecond)
		x.ExpiresAt = x.CreatedAt.Add(5*time.Minute + time.Microsecond)
		createTxn(t, st, x)
		wantTxn(t, st, x)
		y := txn("b")
		y.Binding, y.Purpose, y.Flags = mfa.Hash{}, "", 0
		createTxn(t, st, y)
		wantTxn(t, st, y)
	}},
	{"Duplicate", func(t *testing.T, st mfa.Stores) {
		x := txn("a")
		createTxn(t, st, x)
		dup := txn("a")
		dup.UserID, dup.Purpose = "other", "other"
		if err := st.Transactions.CreateTransaction(t.Context(), dup); !errors.Is(err, mfa.ErrDuplicate) {
			t.Errorf("CreateTransaction of an existing hash = %v, want ErrDuplicate", err)
		}
		wantTxn(t, st, x)
	}},
	{"NotFound", func(t *testing.T, st mfa.Stores) {
		wantNoTxn(t, st, hashOf("never"))
		createTxn(t, st, txn("a"))
		wantNoTxn(t, st, hashOf("never"))
	}},
	{"ConsumeRemovesAndReturns", func(t *testing.T, st mfa.Stores) {
		x, y := txn("a"), txn("b")
		createTxn(t, st, x)
		createTxn(t, st, y)
		got, err := st.Transactions.ConsumeTransaction(t.Context(), x.Hash)
		if err != nil {
			t.Fatalf("ConsumeTransaction: %v", err)
		}
		if d := diffTxn(got, x); d != "" {
			t.Errorf("ConsumeTransaction returned %s", d)
		}
		wantNoTxn(t, st, x.Hash)
		wantTxn(t, st, y)
	}},
	{"ConsumeTwiceIsNotFound", func(t *testing.T, st mfa.Stores) {
		x := txn("a")
		createTxn(t, st, x)
		if _, err := st.Transactions.ConsumeTransaction(t.Context(), x.Hash); err != nil {
			t.Fatalf("ConsumeTransaction: %v", err)
		}
		if _, err := st.Transactions.ConsumeTransaction(t.Context(), x.Hash); !errors.Is(err, mfa.ErrNotFound) {
			t.Errorf("second ConsumeTransaction = %v, want ErrNotFound", err)
		}
		if _, err := st.Transactions.ConsumeTransaction(t.Context(), hashOf("never")); !errors.Is(err, mfa.ErrNotFound) {
			t.Errorf("ConsumeTransaction of an unknown hash = %v, want ErrNotFound", err)
		}
	}},
}

// ---------------------------------------------------------------------------
// Concurrency

// RunConcurrent checks the "exactly one of concurrent calls" sentences of
// the contracts by hammering one fresh store per subtest from many
// goroutines. Run it with -race.
func RunConcurrent(t *testing.T, newStores func(t *testing.T) mfa.Stores) {
	t.Helper()
	const n = 50
	run := func(name string, needs func(mfa.Stores) bool, fn func(t *testing.T, st mfa.Stores)) {
		t.Run(name, func(t *testing.T) {
			st := newStores(t)
			if !needs(st) {
				t.Skip("the backend does not implement this role")
			}
			fn(t, st)
		})
	}
	run("AdvanceSameStep", hasFactors, func(t *testing.T, st mfa.Stores) {
		f := confirmed(totp("t", "u", "f", 0), 100)
		create(t, st, f, 0)
		for round := int64(1); round <= 5; round++ {
			var ok, replay int
			var mu sync.Mutex
			parallel(n, func(int) {
				err := st.FactorUpdates.AdvanceStep(t.Context(), "t", "u", "f", 100+round)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, mfa.ErrReplay):
					replay++
				default:
					t.Errorf("AdvanceStep: %v", err)
				}
			})
			if ok != 1 || replay != n-1 {
				t.Errorf("round %d: %d advances succeeded and %d were replays, want 1 and %d", round, ok, replay, n-1)
			}
		}
	})
	run("AdvanceManySteps", hasFactors, func(t *testing.T, st mfa.Stores) {
		f := confirmed(totp("t", "u", "f", 0), 0)
		create(t, st, f, 0)
		var mu sync.Mutex
		var won []int64
		parallel(n, func(i int) {
			step := int64(1 + i%10) // ten steps, five callers each
			err := st.FactorUpdates.AdvanceStep(t.Context(), "t", "u", "f", step)
			if err == nil {
				mu.Lock()
				won = append(won, step)
				mu.Unlock()
			} else if !errors.Is(err, mfa.ErrReplay) {
				t.Errorf("AdvanceStep: %v", err)
			}
		})
		// No step was accepted twice, and the last step stored is the
		// highest accepted (no lost update).
		seen := map[int64]bool{}
		var top int64
		for _, s := range won {
			if seen[s] {
				t.Errorf("step %d accepted twice", s)
			}
			seen[s] = true
			top = max(top, s)
		}
		got, err := st.Factors.Factor(t.Context(), "t", "u", "f")
		if err != nil || got.LastStep != top || top != 10 {
			t.Errorf("LastStep = %d, %v; want the highest accepted step %d (10)", got.LastStep, err, top)
		}
	})
	// n goroutines delete n different confirmed factors of one user with
	// keep 1 (then 2, then 3): exactly keep factors are left, and every
	// other call deleted its factor.
	run("DeleteKeeping", hasFactors, func(t *testing.T, st mfa.Stores) {
		for keep := 1; keep <= 3; keep++ {
			u := fmt.Sprintf("u%d", keep)
			var fs []mfa.Factor
			for i := range n {
				f := confirmed(oob(mfa.KindEmail, "t", u, fmt.Sprintf("f%02d", i), time.Duration(i)*time.Second), 0)
				create(t, st, f, 0)
				fs = append(fs, f)
			}
			var ok, refused int
			var mu sync.Mutex
			parallel(n, func(i int) {
				_, err := st.Factors.DeleteFactorKeeping(t.Context(), "t", u, fs[i].ID, keep)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, mfa.ErrLastFactor):
					refused++
				default:
					t.Errorf("DeleteFactorKeeping(%s): %v", fs[i].ID, err)
				}
			})
			left, err := st.Factors.Factors(t.Context(), "t", u)
			if err != nil || len(left) != keep || ok != n-keep || refused != keep {
				t.Errorf("keep %d: %d deletions and %d refusals left %s, %v; want %d, %d and %d factors",
					keep, ok, refused, ids(left), err, n-keep, keep, keep)
			}
		}
	})
	// Pairs of goroutines delete the two confirmed factors of one user
	// with keep 1, many times over: one is always left.
	run("DeleteKeepingPairs", hasFactors, func(t *testing.T, st mfa.Stores) {
		for round := range n {
			u := fmt.Sprintf("u%d", round)
			a := confirmed(totp("t", u, "a", 0), 1)
			b := confirmed(oob(mfa.KindSMS, "t", u, "b", time.Second), 0)
			create(t, st, a, 0)
			create(t, st, b, 0)
			var ok int
			var mu sync.Mutex
			parallel(4, func(i int) {
				id := []string{"a", "b"}[i%2]
				_, err := st.Factors.DeleteFactorKeeping(t.Context(), "t", u, id, 1)
				switch {
				case err == nil:
					mu.Lock()
					ok++
					mu.Unlock()
				case !errors.Is(err, mfa.ErrLastFactor) && !errors.Is(err, mfa.ErrNotFound):
					t.Errorf("DeleteFactorKeeping(%s): %v", id, err)
				}
			})
			if left, err := st.Factors.Factors(t.Context(), "t", u); err != nil || len(left) != 1 || ok != 1 {
				t.Fatalf("round %d: %d deletions left %s, %v; want 1 and one factor", round, ok, ids(left), err)
			}
		}
	})
	run("ConfirmOnce", hasFactors, func(t *testing.T, st mfa.Stores) {
		create(t, st, totp("t", "u", "p", 0), 0)
		var ok int
		var mu sync.Mutex
		parallel(n, func(i int) {
			err := st.FactorUpdates.ConfirmFactor(t.Context(), "t", "u", "p", base.Add(time.Duration(i)*time.Second), int64(i+1), 0)
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, mfa.ErrConflict) {
				t.Errorf("ConfirmFactor: %v", err)
			}
		})
		if ok != 1 {
			t.Errorf("%d ConfirmFactor calls succeeded, want 1", ok)
		}
	})
	run("UseRecoveryCodeOnce", func(s mfa.Stores) bool { return s.Recovery != nil }, func(t *testing.T, st mfa.Stores) {
		hs := hashes("r", 10)
		replace(t, st, "t", "u", hs)
		var ok int
		var mu sync.Mutex
		parallel(n, func(int) {
			left, err := st.Recovery.UseRecoveryCode(t.Context(), "t", "u", hs[4])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
				if left != 9 {
					t.Errorf("UseRecoveryCode left %d, want 9", left)
				}
			case !errors.Is(err, mfa.ErrNotFound):
				t.Errorf("UseRecoveryCode: %v", err)
			}
		})
		if ok != 1 {
			t.Errorf("%d of %d concurrent uses of one recovery code succeeded, want exactly 1", ok, n)
		}
		wantLeft(t, st, "t", "u", 9)
	})
	run("SwapRecoveryCodesOnce", func(s mfa.Stores) bool { return s.Recovery != nil }, func(t *testing.T, st mfa.Stores) {
		for round, old := range [][]mfa.Hash{nil, hashes("old", 10)} {
			replace(t, st, "t", "u", old)
			var won []int
			var mu sync.Mutex
			parallel(n, func(i int) {
				err := st.Recovery.SwapRecoveryCodes(t.Context(), "t", "u", old, hashes(fmt.Sprint("new", round, "-", i, "-"), 10))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won = append(won, i)
				case !errors.Is(err, mfa.ErrConflict):
					t.Errorf("SwapRecoveryCodes: %v", err)
				}
			})
			if len(won) != 1 {
				t.Fatalf("%d of %d concurrent swaps from one set succeeded, want exactly 1", len(won), n)
			}
			wantCodes(t, st, "t", "u", hashes(fmt.Sprint("new", round, "-", won[0], "-"), 10)...)
		}
	})
	run("UseEveryRecoveryCode", func(s mfa.Stores) bool { return s.Recovery != nil }, func(t *testing.T, st mfa.Stores) {
		hs := hashes("r", 10)
		replace(t, st, "t", "u", hs)
		var mu sync.Mutex
		var lefts []int
		parallel(n, func(i int) {
			left, err := st.Recovery.UseRecoveryCode(t.Context(), "t", "u", hs[i%10])
			if err == nil {
				mu.Lock()
				lefts = append(lefts, left)
				mu.Unlock()
			} else if !errors.Is(err, mfa.ErrNotFound) {
				t.Errorf("UseRecoveryCode: %v", err)
			}
		})
		sort.Ints(lefts)
		if fmt.Sprint(lefts) != "[0 1 2 3 4 5 6 7 8 9]" {
			t.Errorf("counts left after each successful use = %v, want 0..9 once each", lefts)
		}
	})
	run("CheckRightCodeOnce", func(s mfa.Stores) bool { return s.Codes != nil }, func(t *testing.T, st mfa.Stores) {
		c := code("a", 5)
		put(t, st, c)
		var ok int
		var mu sync.Mutex
		parallel(n, func(int) {
			_, err := st.Codes.CheckCode(t.Context(), "t", "a", c.Hash, base)
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, mfa.ErrNotFound) {
				t.Errorf("CheckCode: %v", err)
			}
		})
		if ok != 1 {
			t.Errorf("%d of %d concurrent checks of the right code succeeded, want exactly 1", ok, n)
		}
	})
	run("WrongTriesNeverExceedLimit", func(s mfa.Stores) bool { return s.Codes != nil }, func(t *testing.T, st mfa.Stores) {
		c := code("a", 5)
		put(t, st, c)
		var wrong, tooMany int
		var mu sync.Mutex
		parallel(n, func(i int) {
			_, err := st.Codes.CheckCode(t.Context(), "t", "a", hashOf(fmt.Sprint("wrong", i)), base)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, mfa.ErrInvalidCode):
				wrong++
			case errors.Is(err, mfa.ErrTooManyTries):
				tooMany++
			default:
				t.Errorf("CheckCode: %v", err)
			}
		})
		if wrong != 5 || tooMany != n-5 {
			t.Errorf("%d wrong and %d too-many, want 5 and %d", wrong, tooMany, n-5)
		}
		check(t, st, "t", "a", c.Hash, base, mfa.ErrTooManyTries, nil)
	})
	run("RightAmongWrong", func(s mfa.Stores) bool { return s.Codes != nil }, func(t *testing.T, st mfa.Stores) {
		// Ten right and forty wrong checks at once, two tries: at most one
		// succeeds, and a success never follows the second wrong try.
		for round := range 5 {
			txn := fmt.Sprint("r", round)
			c := code(txn, 2)
			put(t, st, c)
			var ok, wrong int
			var mu sync.Mutex
			parallel(n, func(i int) {
				h := hashOf(fmt.Sprint("wrong", i))
				if i%5 == 0 {
					h = c.Hash
				}
				_, err := st.Codes.CheckCode(t.Context(), "t", txn, h, base)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, mfa.ErrInvalidCode):
					wrong++
				case errors.Is(err, mfa.ErrTooManyTries), errors.Is(err, mfa.ErrNotFound):
				default:
					t.Errorf("CheckCode: %v", err)
				}
			})
			if ok > 1 || wrong > 2 {
				t.Errorf("round %d: %d successes and %d wrong tries counted, want at most 1 and 2", round, ok, wrong)
			}
		}
	})
	run("HitCountsEveryEvent", func(s mfa.Stores) bool { return s.Rates != nil }, func(t *testing.T, st mfa.Stores) {
		counts := parallelHits(t, st, "k", n, nil)
		sort.Ints(counts)
		for i, c := range counts {
			if c != i+1 {
				t.Fatalf("concurrent Hit counts = %v, want 1..%d once each", counts, n)
			}
		}
	})
	run("ForgetBetweenHits", func(s mfa.Stores) bool { return s.Rates != nil }, func(t *testing.T, st mfa.Stores) {
		for round := range 5 {
			key := fmt.Sprint("k", round)
			hit(t, st, key, base, time.Hour, 1)
			counts := parallelHits(t, st, key, n, func() { forget(t, st, key, base, time.Hour) })
			if !splitCounts(counts) {
				t.Errorf("round %d: Hit counts around a Forget = %v; want 2, 3, … before it and 1, 2, … after it, once each", round, counts)
			}
		}
	})
	run("ConsumeTransactionOnce", func(s mfa.Stores) bool { return s.Transactions != nil }, func(t *testing.T, st mfa.Stores) {
		x := txn("a")
		createTxn(t, st, x)
		var ok int
		var mu sync.Mutex
		parallel(n, func(int) {
			_, err := st.Transactions.ConsumeTransaction(t.Context(), x.Hash)
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, mfa.ErrNotFound) {
				t.Errorf("ConsumeTransaction: %v", err)
			}
		})
		if ok != 1 {
			t.Errorf("%d of %d concurrent consumptions succeeded, want exactly 1", ok, n)
		}
	})
	run("CreateTransactionOnce", func(s mfa.Stores) bool { return s.Transactions != nil }, func(t *testing.T, st mfa.Stores) {
		var ok int
		var mu sync.Mutex
		parallel(n, func(i int) {
			x := txn("same")
			x.Flags = uint32(i)
			err := st.Transactions.CreateTransaction(t.Context(), x)
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, mfa.ErrDuplicate) {
				t.Errorf("CreateTransaction: %v", err)
			}
		})
		if ok != 1 {
			t.Errorf("%d of %d concurrent creations of one hash succeeded, want exactly 1", ok, n)
		}
	})
	run("ConfirmFactorLimit", hasFactors, func(t *testing.T, st mfa.Stores) {
		// Each round: a user with two pending factors (SMS and email),
		// confirmed at once by many callers, and confirmed TOTP factors
		// (which void no pending one) created at once, under max 2: never
		// more than 2 confirmed.
		kinds := []mfa.Kind{mfa.KindSMS, mfa.KindEmail}
		for round := range 5 {
			u := fmt.Sprint("u", round)
			for i, k := range kinds {
				create(t, st, oob(k, "t", u, string(k), time.Duration(i)*time.Second), 0)
			}
			parallel(n, func(i int) {
				var err error
				if i%2 == 0 {
					err = st.FactorUpdates.ConfirmFactor(t.Context(), "t", u, string(kinds[i/2%2]), base.Add(time.Hour), 0, 2)
					if errors.Is(err, mfa.ErrConflict) {
						err = nil
					}
				} else {
					err = st.Factors.CreateFactor(t.Context(), confirmed(totp("t", u, fmt.Sprint("c", i), time.Minute), 1), 2)
				}
				if err != nil && !errors.Is(err, mfa.ErrLimit) {
					t.Errorf("round %d: %v", round, err)
				}
			})
			fs, err := st.Factors.Factors(t.Context(), "t", u)
			if err != nil {
				t.Fatal(err)
			}
			c := 0
			for _, f := range fs {
				if f.Confirmed() {
					c++
				}
			}
			if c != 2 {
				t.Errorf("round %d: %d confirmed factors, want exactly 2 (max 2)", round, c)
			}
		}
	})
	run("CreateFactorLimit", hasFactors, func(t *testing.T, st mfa.Stores) {
		// Concurrent creations of confirmed factors under max 3: never
		// more than 3 confirmed factors.
		parallel(n, func(i int) {
			f := confirmed(totp("t", "u", fmt.Sprint("f", i), time.Duration(i)*time.Second), 1)
			if err := st.Factors.CreateFactor(t.Context(), f, 3); err != nil && !errors.Is(err, mfa.ErrLimit) {
				t.Errorf("CreateFactor: %v", err)
			}
		})
		fs, err := st.Factors.Factors(t.Context(), "t", "u")
		if err != nil || len(fs) != 3 {
			t.Errorf("Factors = %d, %v; want exactly 3", len(fs), err)
		}
	})
}

// parallelHits makes n concurrent Hits of key at base, in windows of an
// hour, with also (unless nil) called at the same time, and returns their
// counts.
func parallelHits(t *testing.T, st mfa.Stores, key string, n int, also func()) []int {
	var mu sync.Mutex
	var counts []int
	parallel(n+1, func(i int) {
		if i == n {
			if also != nil {
				also()
			}
			return
		}
		c, err := st.Rates.Hit(t.Context(), key, base, time.Hour)
		if err != nil {
			t.Errorf("Hit: %v", err)
			return
		}
		mu.Lock()
		counts = append(counts, c)
		mu.Unlock()
	})
	return counts
}

// splitCounts reports whether counts, sorted, are the counts of Hits
// made some in a window that had counted one (2, 3, …) and the others in
// a new window (1, 2, …).
func splitCounts(counts []int) bool {
	sort.Ints(counts)
	for before := range len(counts) + 1 {
		want := make([]int, 0, len(counts))
		for v := range before {
			want = append(want, v+2)
		}
		for v := range len(counts) - before {
			want = append(want, v+1)
		}
		sort.Ints(want)
		if slices.Equal(want, counts) {
			return true
		}
	}
	return false
}

// parallel runs fn(0..n-1) in n goroutines released at once.
func parallel(n int, fn func(i int)) {
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			fn(i)
		}()
	}
	start.Done()
	done.Wait()
}
