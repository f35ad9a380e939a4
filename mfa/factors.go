package mfa

import (
	"context"
	"errors"
	"slices"
)

// MaxEnrolmentsPage bounds the limit of Manager.Enrolments.
const MaxEnrolmentsPage = 1000

// Factors returns the user's factors, pending and confirmed, oldest first,
// without their sealed secrets.
func (m *Manager) Factors(ctx context.Context, tenant, userID string) ([]Factor, error) {
	if err := checkUser(tenant, userID); err != nil {
		return nil, err
	}
	fs, err := m.st.Factors.Factors(ctx, tenant, userID)
	if err != nil {
		return nil, storeErr("factors", err)
	}
	out := make([]Factor, len(fs))
	for i, f := range fs {
		f.Secret = nil
		out[i] = f
	}
	return out, nil
}

// ConfirmedKinds returns the distinct kinds of the confirmed factors among
// fs, in ascending order (as EnrolmentIndex lists them).
func ConfirmedKinds(fs []Factor) []Kind {
	var kinds []Kind
	for _, f := range fs {
		if f.Confirmed() && !slices.Contains(kinds, f.Kind) {
			kinds = append(kinds, f.Kind)
		}
	}
	slices.Sort(kinds)
	return kinds
}

// RemoveFactor deletes one of the user's factors, pending or confirmed,
// and returns it (without secret) and the number of confirmed factors the
// user has left. Removing the last confirmed factor also removes the
// user's recovery codes. Whether the user may remove it (step-up, a
// tenant that requires MFA) is the caller's decision. ErrNotFound if there
// is no such factor.
func (m *Manager) RemoveFactor(ctx context.Context, tenant, userID, factorID string) (removed Factor, left int, err error) {
	return m.RemoveFactorKeeping(ctx, tenant, userID, factorID, 0)
}

// RemoveFactorKeeping is RemoveFactor for a user who must keep at least
// keep confirmed factors: if the user has fewer than keep confirmed
// factors besides factorID, it returns ErrLastFactor and removes nothing.
// The count and the removal are one atomic store step
// (FactorStore.DeleteFactorKeeping), so concurrent removals of a user's
// factors never leave fewer than keep. A keep of zero or less is
// RemoveFactor.
func (m *Manager) RemoveFactorKeeping(ctx context.Context, tenant, userID, factorID string, keep int) (removed Factor, left int, err error) {
	if err := checkUser(tenant, userID); err != nil {
		return Factor{}, 0, err
	}
	if err := checkFactorID(factorID); err != nil {
		return Factor{}, 0, err
	}
	var f Factor
	if keep > 0 {
		f, err = m.st.Factors.DeleteFactorKeeping(ctx, tenant, userID, factorID, keep)
	} else {
		f, err = m.st.Factors.DeleteFactor(ctx, tenant, userID, factorID)
	}
	if err != nil {
		return Factor{}, 0, storeErr("delete factor", err)
	}
	f.Secret = nil
	if !f.Confirmed() && m.st.Codes != nil {
		_ = m.st.Codes.DeleteCode(ctx, tenant, codeTxn(userID, enrolTxn(factorID)))
	}
	rest, err := m.st.Factors.Factors(ctx, tenant, userID)
	if err != nil {
		return f, 0, storeErr("factors", err)
	}
	for _, r := range rest {
		if r.Confirmed() {
			left++
		}
	}
	if left == 0 {
		if err := m.st.Recovery.ReplaceRecoveryCodes(ctx, tenant, userID, nil); err != nil {
			return f, 0, storeErr("replace recovery codes", err)
		}
	}
	return f, left, nil
}

// DeleteUser removes every factor and the recovery codes of a user that
// is being deleted.
func (m *Manager) DeleteUser(ctx context.Context, tenant, userID string) error {
	if err := checkUser(tenant, userID); err != nil {
		return err
	}
	fs, err := m.st.Factors.Factors(ctx, tenant, userID)
	if err != nil {
		return storeErr("factors", err)
	}
	for _, f := range fs {
		if _, err := m.st.Factors.DeleteFactor(ctx, tenant, userID, f.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return storeErr("delete factor", err)
		}
	}
	if err := m.st.Recovery.ReplaceRecoveryCodes(ctx, tenant, userID, nil); err != nil {
		return storeErr("replace recovery codes", err)
	}
	return nil
}

// Enrolments lists the users of tenant with at least one confirmed factor
// and their kinds, at most limit (1 to MaxEnrolmentsPage) ordered by user
// ID after the user ID after. The facade walks it beside the tenant's
// users (in the same order) to count who uses MFA, SSO or neither, and to
// list who would have to enrol (see Enrolment.Satisfies).
func (m *Manager) Enrolments(ctx context.Context, tenant, after string, limit int) ([]Enrolment, error) {
	if r := checkID(tenant); r != "" {
		return nil, &InputError{Field: "tenant", Reason: r}
	}
	if limit < 1 || limit > MaxEnrolmentsPage {
		return nil, &InputError{Field: "limit", Reason: "must be 1 to 1000"}
	}
	es, err := m.st.Enrolments.Enrolments(ctx, tenant, after, limit)
	if err != nil {
		return nil, storeErr("enrolments", err)
	}
	return es, nil
}

// Reseal re-encrypts under the Keyring's current key every TOTP secret of
// the user that another key sealed, and returns how many it resealed. Run
// it for every user after making a new key current; the old key can be
// dropped once no secret needs it. A secret resealed concurrently by
// someone else is skipped. A secret that cannot be opened gives ErrUnseal
// or ErrUnknownKey and stops the run.
func (m *Manager) Reseal(ctx context.Context, tenant, userID string) (int, error) {
	if err := checkUser(tenant, userID); err != nil {
		return 0, err
	}
	fs, err := m.st.Factors.Factors(ctx, tenant, userID)
	if err != nil {
		return 0, storeErr("factors", err)
	}
	n := 0
	for _, f := range fs {
		if f.Kind != KindTOTP || f.KeyID == m.keys.Current() {
			continue
		}
		aad := secretAAD(f.Tenant, f.UserID, f.ID)
		secret, err := m.keys.Open(f.KeyID, f.Secret, aad)
		if err != nil {
			return n, err
		}
		keyID, sealed, err := m.keys.Seal(secret, aad)
		clear(secret)
		if err != nil {
			return n, err
		}
		switch err := m.st.FactorUpdates.ResealSecret(ctx, tenant, userID, f.ID, f.Secret, keyID, sealed); {
		case err == nil:
			n++
		case errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound):
		default:
			return n, storeErr("reseal secret", err)
		}
	}
	return n, nil
}
