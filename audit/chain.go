package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"
	"time"
)

// Domain separators: an event MAC can never be replayed as a checkpoint MAC
// and the other way round, and a later format gets a new version.
const (
	eventDomain      = "guard/audit/v1/event"
	checkpointDomain = "guard/audit/v1/checkpoint"
)

// Reasons a chain fails verification, as reported in Report.Reason.
const (
	reasonBadCheckpoint   = "bad checkpoint"
	reasonSeqGap          = "sequence gap"
	reasonTenantMismatch  = "tenant mismatch"
	reasonPrevMismatch    = "prev mac mismatch"
	reasonMACMismatch     = "mac mismatch"
	reasonMissingEvents   = "missing events"
	reasonBelowCheckpoint = "event below checkpoint"
	reasonReplaced        = "replaced event"
)

// chainTime is the form of a time that is MACed and stored: UTC, truncated
// to the microsecond.
func chainTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// appendCanonical appends the canonical encoding of e (see the package
// documentation) to b.
func appendCanonical(b []byte, e *Event) []byte {
	b = appendStr(b, eventDomain)
	b = appendStr(b, e.ID)
	b = appendStr(b, e.Tenant)
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = appendTime(b, e.Time)
	b = appendStr(b, string(e.Actor.Kind))
	b = appendStr(b, e.Actor.ID)
	b = appendStr(b, e.Actor.Email)
	b = appendStr(b, string(e.Action))
	b = appendStr(b, e.Target)
	b = appendStr(b, e.IP)
	b = appendStr(b, e.UserAgent)
	b = appendStr(b, string(e.Outcome))
	b = appendStr(b, e.Reason)
	b = binary.AppendUvarint(b, uint64(len(e.Meta)))
	if len(e.Meta) > 0 {
		keys := make([]string, 0, len(e.Meta))
		for k := range e.Meta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendStr(b, k)
			b = appendStr(b, e.Meta[k])
		}
	}
	return appendBytes(b, e.PrevMAC)
}

func appendCheckpoint(b []byte, tenant string, cp *Checkpoint) []byte {
	b = appendStr(b, checkpointDomain)
	b = appendStr(b, tenant)
	b = binary.BigEndian.AppendUint64(b, cp.Seq)
	b = appendBytes(b, cp.MAC)
	return appendTime(b, cp.At)
}

// macer computes chain MACs with one reusable HMAC state and buffer. It is
// not safe for concurrent use; each goroutine makes its own.
type macer struct {
	h   hash.Hash
	buf []byte
}

func newMacer(key []byte) *macer {
	return &macer{h: hmac.New(sha256.New, key), buf: make([]byte, 0, 512)}
}

func (m *macer) sum(data []byte) []byte {
	m.h.Reset()
	m.h.Write(data)
	return m.h.Sum(nil)
}

// eventMAC returns the MAC of e over all its fields but MAC.
func (m *macer) eventMAC(e *Event) []byte {
	m.buf = appendCanonical(m.buf[:0], e)
	return m.sum(m.buf)
}

// checkpointMAC returns the CheckpointMAC of cp for tenant.
func (m *macer) checkpointMAC(tenant string, cp *Checkpoint) []byte {
	m.buf = appendCheckpoint(m.buf[:0], tenant, cp)
	return m.sum(m.buf)
}

// validCheckpoint reports whether cp's CheckpointMAC is right for tenant.
func (m *macer) validCheckpoint(tenant string, cp *Checkpoint) bool {
	return hmac.Equal(cp.CheckpointMAC, m.checkpointMAC(tenant, cp))
}

// checkLink returns "" if e, stored under tenant, validly follows prev, and
// otherwise the reason it does not.
func (m *macer) checkLink(tenant string, prev Link, e *Event) string {
	switch {
	case e.Seq != prev.Seq+1:
		return reasonSeqGap
	case e.Tenant != tenant:
		return reasonTenantMismatch
	case !bytes.Equal(e.PrevMAC, prev.MAC):
		return reasonPrevMismatch
	case !hmac.Equal(e.MAC, m.eventMAC(e)):
		return reasonMACMismatch
	}
	return ""
}

// isZero reports whether cp is the zero Checkpoint (no checkpoint).
func (cp *Checkpoint) isZero() bool {
	return cp.Seq == 0 && len(cp.MAC) == 0 && cp.At.IsZero() && len(cp.CheckpointMAC) == 0
}

// equal reports whether cp and o are the same checkpoint.
func (cp *Checkpoint) equal(o *Checkpoint) bool {
	return cp.Seq == o.Seq && bytes.Equal(cp.MAC, o.MAC) && cp.At.Equal(o.At) &&
		bytes.Equal(cp.CheckpointMAC, o.CheckpointMAC)
}
