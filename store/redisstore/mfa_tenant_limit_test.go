package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/memstore"
	"github.com/guardhq/guard/store/redisstore"
)

// countingSMS counts the texts it is asked to send.
type countingSMS struct{ n atomic.Int64 }

func (s *countingSMS) SendSMS(context.Context, string, string) error { s.n.Add(1); return nil }

// TestTenantSendLimitAcrossReplicas runs enrolment sends for one tenant,
// each to its own number from its own IP for its own account, from many
// goroutines through two mfa.Managers with a Redis client each, as two
// replicas would: the tenant's limit (mfa.SendLimits.PerTenant) is
// counted in Redis, so exactly the limit is sent between them.
func TestTenantSendLimitAcrossReplicas(t *testing.T) {
	const limit, n = 30, 120
	s1, _, prefix := open(t)
	s2, err := redisstore.New(t.Context(), newClient(t), redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")}, Current: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	factors := memstore.NewMFA().Stores() // the tenant data both replicas share (PostgreSQL, say)
	sms := &countingSMS{}
	var replicas [2]*mfa.Manager
	for i, rs := range []*redisstore.Store{s1, s2} {
		st := rs.MFAStores()
		st.Factors, st.FactorUpdates, st.Enrolments, st.Recovery = factors.Factors, factors.FactorUpdates, factors.Enrolments, factors.Recovery
		if replicas[i], err = mfa.New(mfa.Config{Stores: st, Keyring: kr, Issuer: "Acme", SMS: sms,
			Limits: mfa.SendLimits{PerTenant: limit}}); err != nil {
			t.Fatal(err)
		}
	}
	var sent, over atomic.Int64
	parallel(n, func(i int) {
		_, res, err := replicas[i%2].BeginOOB(t.Context(), mfa.OOBRequest{Tenant: "t", UserID: fmt.Sprint("u", i),
			Kind: mfa.KindSMS, Destination: fmt.Sprintf("+4477%08d", i), IP: fmt.Sprintf("2001:db8::%x", i)})
		var rl *mfa.RateLimitError
		switch {
		case err != nil:
			t.Errorf("BeginOOB %d: %v", i, err)
		case res.Sent:
			sent.Add(1)
		case errors.As(res.Suppressed, &rl) && rl.Scope == "tenant":
			over.Add(1)
		default:
			t.Errorf("BeginOOB %d suppressed: %v", i, res.Suppressed)
		}
	})
	if sent.Load() != limit || sms.n.Load() != limit || over.Load() != n-limit {
		t.Errorf("%d sent (%d texts), %d held back for the tenant, of %d requests through two replicas; want %d sent",
			sent.Load(), sms.n.Load(), over.Load(), n, limit)
	}
}
