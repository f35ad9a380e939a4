package memstore

import (
	"slices"
	"testing"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/audit/audittest"
)

func TestAuditTamperConformance(t *testing.T) {
	audittest.RunTamper(t, func(*testing.T) (audit.Store, audittest.Tamper) {
		s := NewAudit()
		return s, audittest.Tamper{
			Truncate: func(tenant string, seq uint64) error {
				s.mu.Lock()
				defer s.mu.Unlock()
				if seq == 0 {
					delete(s.tenants, tenant)
					return nil
				}
				c := s.tenants[tenant]
				c.events = slices.DeleteFunc(c.events, func(e audit.Event) bool { return e.Seq > seq })
				return nil
			},
		}
	})
}
