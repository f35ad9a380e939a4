package pgstore_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/audit/audittest"
)

func TestAuditTamperConformance(t *testing.T) {
	r := newRecycler(t)
	audittest.RunTamper(t, func(t *testing.T) (audit.Store, audittest.Tamper) {
		st := r.store(t)
		pool := testPool(t)
		exec := func(stmts []string, args ...any) error {
			for _, stmt := range stmts {
				for _, table := range []string{"audit_events", "audit_heads", "audit_checkpoints"} {
					stmt = strings.ReplaceAll(stmt, "{"+table+"}", pgx.Identifier{st.Schema(), table}.Sanitize())
				}
				if _, err := pool.Exec(t.Context(), stmt, args...); err != nil {
					return err
				}
			}
			return nil
		}
		return st.Audit, audittest.Tamper{
			Truncate: func(tenant string, seq uint64) error {
				stmts := []string{
					`DELETE FROM {audit_events} WHERE tenant = $1 AND seq > $2`,
					`UPDATE {audit_heads} SET seq = $2, mac = (SELECT mac FROM {audit_events} WHERE tenant = $1 AND seq = $2) WHERE tenant = $1`,
				}
				if seq == 0 {
					stmts = append(stmts[:1], `DELETE FROM {audit_heads} WHERE tenant = $1 AND $2 = 0`,
						`DELETE FROM {audit_checkpoints} WHERE tenant = $1 AND $2 = 0`)
				}
				return exec(stmts, tenant, int64(seq))
			},
			Insert: func(e audit.Event) error {
				var meta *string
				if len(e.Meta) > 0 {
					b, err := json.Marshal(e.Meta)
					if err != nil {
						return err
					}
					m := string(b)
					meta = &m
				}
				return exec([]string{`INSERT INTO {audit_events} (tenant, seq, id, time, actor_kind, actor_id, actor_email,
					action, target, ip, user_agent, outcome, reason, meta, prev_mac, mac)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`},
					e.Tenant, int64(e.Seq), []byte(e.ID), e.Time, []byte(e.Actor.Kind), []byte(e.Actor.ID), []byte(e.Actor.Email),
					[]byte(e.Action), []byte(e.Target), []byte(e.IP), []byte(e.UserAgent), []byte(e.Outcome), []byte(e.Reason),
					meta, e.PrevMAC, e.MAC)
			},
			SetMeta: func(tenant string, seq uint64, raw string) error {
				return exec([]string{`UPDATE {audit_events} SET meta = $3 WHERE tenant = $1 AND seq = $2`}, tenant, int64(seq), raw)
			},
		}
	})
}
