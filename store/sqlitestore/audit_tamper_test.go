package sqlitestore_test

import (
	"encoding/json"
	"testing"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/audit/audittest"
)

func TestAuditTamperConformance(t *testing.T) {
	audittest.RunTamper(t, func(t *testing.T) (audit.Store, audittest.Tamper) {
		s := openStore(t)
		db := s.DB()
		exec := func(stmts []string, args ...any) error {
			for _, stmt := range stmts {
				if _, err := db.Exec(stmt, args...); err != nil {
					return err
				}
			}
			return nil
		}
		return s.Audit, audittest.Tamper{
			Truncate: func(tenant string, seq uint64) error {
				stmts := []string{
					`DELETE FROM guard_audit_tail WHERE tenant = ?1 AND seq > ?2`,
					`DELETE FROM guard_audit_events WHERE tenant = ?1 AND seq > ?2`,
					`UPDATE guard_audit_heads SET seq = ?2, mac = (SELECT mac FROM guard_audit_tail WHERE tenant = ?1 AND seq = ?2
						UNION ALL SELECT mac FROM guard_audit_events WHERE tenant = ?1 AND seq = ?2) WHERE tenant = ?1`,
				}
				if seq == 0 {
					stmts[2] = `DELETE FROM guard_audit_heads WHERE tenant = ?1 AND ?2 = 0`
				}
				return exec(stmts, tenant, int64(seq))
			},
			Insert: func(e audit.Event) error {
				var meta any
				if len(e.Meta) > 0 {
					b, err := json.Marshal(e.Meta)
					if err != nil {
						return err
					}
					meta = string(b)
				}
				return exec([]string{`INSERT INTO guard_audit_tail (` + eventColsForTest + `)
					VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`},
					e.Tenant, int64(e.Seq), e.ID, e.Time.UnixMicro(), string(e.Actor.Kind), e.Actor.ID, e.Actor.Email,
					string(e.Action), e.Target, e.IP, e.UserAgent, string(e.Outcome), e.Reason, meta, e.PrevMAC, e.MAC)
			},
			SetMeta: func(tenant string, seq uint64, raw string) error {
				return exec([]string{`UPDATE guard_audit_tail SET meta = ?3 WHERE tenant = ?1 AND seq = ?2`,
					`UPDATE guard_audit_events SET meta = ?3 WHERE tenant = ?1 AND seq = ?2`}, tenant, int64(seq), raw)
			},
		}
	})
}

// eventColsForTest are the columns of an audit event row, for Insert.
const eventColsForTest = `tenant, seq, id, time, actor_kind, actor_id, actor_email, action, target, ip, user_agent, outcome, reason, meta, prev_mac, mac`
