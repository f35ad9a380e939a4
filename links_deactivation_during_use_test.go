package guard_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
)

// checkHook runs a function once, right after the next CheckCode of a
// transaction whose name starts with prefix has consumed its code (the
// right hash): what lands between a link's check and the write it allows.
type checkHook struct {
	mfa.CodeStore
	mu     sync.Mutex
	prefix string
	after  func()
}

func (h *checkHook) set(prefix string, fn func()) {
	h.mu.Lock()
	h.prefix, h.after = prefix, fn
	h.mu.Unlock()
}

func (h *checkHook) CheckCode(ctx context.Context, tenant, txn string, hash mfa.Hash, now time.Time) (mfa.Code, error) {
	c, err := h.CodeStore.CheckCode(ctx, tenant, txn, hash, now)
	if err != nil {
		return c, err
	}
	h.mu.Lock()
	var fn func()
	if h.after != nil && strings.HasPrefix(txn, h.prefix) {
		fn, h.after = h.after, nil
	}
	h.mu.Unlock()
	if fn != nil {
		fn()
	}
	return c, err
}

// A deactivation voids the user's links, a reactivation after it does not
// bring them back, and so a deactivation and a reactivation that both land
// while a reset or an email-change link is in use (out of the store, its
// checks under way) void it too: the reset, or the change of address, is
// refused and changes nothing, though the email, password, status and
// expiry mark are again as the link was checked against.
func TestDeactivationDuringLinkUseVoidsIt(t *testing.T) {
	sys := guard.System("admin")
	cycle := func(t *testing.T, f *mfaFixture, id string) {
		if err := f.g.DeactivateUser(f.ctx, sys, tenantID, id); err != nil {
			t.Error(err)
		}
		if err := f.g.ReactivateUser(f.ctx, sys, tenantID, id); err != nil {
			t.Error(err)
		}
	}
	t.Run("ResetPassword", func(t *testing.T) {
		hook := &breachHook{}
		f := newMFAFixture(t, func(c *guard.Config) { c.BreachCheck = hook })
		ada := f.createUser(t, adaEmail, ownerPW)
		link := f.forgot(t, adaEmail)
		hook.set(func() bool { cycle(t, f, ada.ID); return false })
		const stolen = "the intruder's own passphrase"
		if err := f.g.ResetPassword(f.ctx, resetTo(link, stolen)); !errors.Is(err, guard.ErrInvalidResetToken) {
			t.Errorf("ResetPassword with a link the user's deactivation voided while it ran = %v, want ErrInvalidResetToken", err)
		}
		if _, err := f.login(adaEmail, stolen); err == nil {
			t.Error("the password set through a link voided by the deactivation signs in")
		}
	})
	t.Run("ConfirmEmailChange", func(t *testing.T) {
		codes := &checkHook{}
		f := newMFAFixture(t, manySessions, func(c *guard.Config) {
			codes.CodeStore = c.Stores.MFA.Codes
			c.Stores.MFA.Codes = codes
		})
		ada := f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		if err := f.g.RequestEmailChange(f.ctx, p, newAdaEmail); err != nil {
			t.Fatal(err)
		}
		sent := f.mailTo(newAdaEmail)
		if len(sent) != 1 {
			t.Fatalf("%d mails to the new address, want the link", len(sent))
		}
		link := changeLink(t, sent[0])
		codes.set("email:", func() { cycle(t, f, ada.ID) })
		if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(link)); err == nil {
			t.Error("ConfirmEmailChange with a link the user's deactivation voided while it ran = nil, want refused")
		}
		u, err := f.g.User(f.ctx, sys, tenantID, ada.ID)
		if err != nil {
			t.Fatal(err)
		}
		if u.Email != adaEmail || u.Status != auth.StatusActive {
			t.Errorf("user after the refused confirmation: email %q status %q, want %q active", u.Email, u.Status, adaEmail)
		}
	})
}
