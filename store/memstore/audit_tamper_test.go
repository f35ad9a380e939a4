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
			Insert: func(e audit.Event) error {
				s.mu.Lock()
				defer s.mu.Unlock()
				c := s.tenants[e.Tenant]
				i, _ := slices.BinarySearchFunc(c.events, e.Seq, func(x audit.Event, seq uint64) int {
					return int(x.Seq) - int(seq)
				})
				c.events = slices.Insert(c.events, i, cloneAuditEvent(&e))
				return nil
			},
		}
	})
}
