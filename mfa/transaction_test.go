package mfa_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
)

func TestTransaction(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	token, x, err := f.m.StartTransaction(ctx, mfa.TransactionOptions{Tenant: "t", UserID: "u", Binding: "cookie-value", Purpose: "login", Flags: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 43 || strings.Contains(x.ID(), token) || x.ExpiresAt != t0.Add(5*time.Minute) {
		t.Errorf("token %q, transaction %+v", token, x)
	}
	got, err := f.m.LookupTransaction(ctx, token, "cookie-value")
	if err != nil || got.UserID != "u" || got.Purpose != "login" || got.Flags != 3 || got.Hash != x.Hash {
		t.Errorf("LookupTransaction = %+v, %v", got, err)
	}
	// Another client (binding) cannot use it, and that does not end it.
	_, err = f.m.LookupTransaction(ctx, token, "other-cookie")
	wantErr(t, "LookupTransaction from another client", err, mfa.ErrNotFound)
	_, err = f.m.ConsumeTransaction(ctx, token, "")
	wantErr(t, "ConsumeTransaction without the binding", err, mfa.ErrNotFound)
	// Consumed once.
	if _, err := f.m.ConsumeTransaction(ctx, token, "cookie-value"); err != nil {
		t.Fatalf("ConsumeTransaction: %v", err)
	}
	_, err = f.m.ConsumeTransaction(ctx, token, "cookie-value")
	wantErr(t, "second ConsumeTransaction", err, mfa.ErrNotFound)
	_, err = f.m.LookupTransaction(ctx, token, "cookie-value")
	wantErr(t, "LookupTransaction after consumption", err, mfa.ErrNotFound)
}

func TestTransactionExpiry(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	token, _, _ := f.m.StartTransaction(ctx, mfa.TransactionOptions{Tenant: "t", UserID: "u"})
	f.clk.Add(5*time.Minute - time.Microsecond)
	if _, err := f.m.LookupTransaction(ctx, token, ""); err != nil {
		t.Errorf("LookupTransaction just before expiry: %v", err)
	}
	f.clk.Add(time.Microsecond)
	_, err := f.m.LookupTransaction(ctx, token, "")
	wantErr(t, "LookupTransaction at expiry", err, mfa.ErrExpired)
	_, err = f.m.LookupTransaction(ctx, token, "")
	wantErr(t, "LookupTransaction after the expired one was dropped", err, mfa.ErrNotFound)
	// A custom TTL.
	token, _, _ = f.m.StartTransaction(ctx, mfa.TransactionOptions{Tenant: "t", UserID: "u", TTL: time.Minute})
	f.clk.Add(time.Minute)
	_, err = f.m.ConsumeTransaction(ctx, token, "")
	wantErr(t, "ConsumeTransaction after its TTL", err, mfa.ErrExpired)
}

func TestTransactionTokenIsNotASessionToken(t *testing.T) {
	// The stored hash is not the plain SHA-256 that session tokens use.
	f := newFixture(t)
	token, x, _ := f.m.StartTransaction(t.Context(), mfa.TransactionOptions{Tenant: "t", UserID: "u"})
	for _, bad := range []string{"", token[:42], token + "A", strings.Repeat("A", 42) + "B", "!" + token[1:], strings.Repeat("x", 10<<10), token[:40] + "\n" + token[40:42]} {
		_, err := f.m.LookupTransaction(t.Context(), bad, "")
		wantInputError(t, "LookupTransaction(malformed)", err)
	}
	if x.Hash.IsZero() {
		t.Error("zero hash")
	}
}

func TestTransactionConsumedOnce(t *testing.T) {
	f := newFixture(t)
	token, _, _ := f.m.StartTransaction(t.Context(), mfa.TransactionOptions{Tenant: "t", UserID: "u", Binding: "b"})
	const n = 50
	var mu sync.Mutex
	ok := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			_, err := f.m.ConsumeTransaction(t.Context(), token, "b")
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, mfa.ErrNotFound) {
				t.Errorf("ConsumeTransaction: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != 1 {
		t.Errorf("%d of %d concurrent consumptions succeeded, want 1", ok, n)
	}
}

func TestTransactionInput(t *testing.T) {
	f := newFixture(t)
	for _, o := range []mfa.TransactionOptions{
		{UserID: "u"},
		{Tenant: "t"},
		{Tenant: "t", UserID: "u", Purpose: strings.Repeat("p", 65)},
		{Tenant: "t", UserID: "u", TTL: -time.Second},
	} {
		_, _, err := f.m.StartTransaction(t.Context(), o)
		wantInputError(t, "StartTransaction", err)
	}
}

func TestConsumeTransactionDeletesPendingCode(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	fac := f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	token, x, _ := f.m.StartTransaction(ctx, mfa.TransactionOptions{Tenant: "t", UserID: "u"})
	f.send(t, "u", fac.ID, x.ID(), "")
	code := f.sms.lastCode(t)
	if _, err := f.m.ConsumeTransaction(ctx, token, ""); err != nil {
		t.Fatal(err)
	}
	_, err := f.m.VerifyCode(ctx, "t", "u", x.ID(), code)
	wantErr(t, "VerifyCode after the transaction ended", err, mfa.ErrNotFound)
}
