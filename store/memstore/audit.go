package memstore

import (
	"bytes"
	"context"
	"sort"
	"sync"

	"github.com/guardhq/guard/audit"
)

var _ audit.Store = (*Audit)(nil)

// Audit is an in-memory audit.Store. It is safe for concurrent use. It keeps
// its own copies of the events it is given and returns copies, so callers
// may modify what they pass and get.
type Audit struct {
	mu      sync.RWMutex
	tenants map[string]*auditChain
}

// auditChain is one tenant's stored chain: events in ascending Seq order,
// after the checkpoint.
type auditChain struct {
	events []audit.Event
	cp     audit.Checkpoint
}

// NewAudit returns an empty Audit store.
func NewAudit() *Audit {
	return &Audit{tenants: make(map[string]*auditChain)}
}

func (c *auditChain) head() audit.Link {
	if n := len(c.events); n > 0 {
		return audit.Link{Seq: c.events[n-1].Seq, MAC: c.events[n-1].MAC}
	}
	return audit.Link{Seq: c.cp.Seq, MAC: c.cp.MAC}
}

// Append implements audit.Store.
func (s *Audit) Append(ctx context.Context, tenant string, events []audit.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.tenants[tenant]
	var prev audit.Link
	if c != nil {
		prev = c.head()
	}
	for i := range events {
		e := &events[i]
		if e.Seq != prev.Seq+1 || !bytes.Equal(e.PrevMAC, prev.MAC) {
			return audit.ErrConflict
		}
		prev = audit.Link{Seq: e.Seq, MAC: e.MAC}
	}
	if c == nil {
		c = new(auditChain)
		s.tenants[tenant] = c
	}
	for i := range events {
		c.events = append(c.events, cloneAuditEvent(&events[i]))
	}
	return nil
}

// Head implements audit.Store.
func (s *Audit) Head(ctx context.Context, tenant string) (audit.Link, error) {
	if err := ctx.Err(); err != nil {
		return audit.Link{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.tenants[tenant]
	if c == nil {
		return audit.Link{}, nil
	}
	h := c.head()
	h.MAC = bytes.Clone(h.MAC)
	return h, nil
}

// Query implements audit.Store.
func (s *Audit) Query(ctx context.Context, tenant string, q audit.Query) ([]audit.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = audit.DefaultLimit
	}
	limit = min(limit, audit.MaxLimit)
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.tenants[tenant]
	if c == nil {
		return nil, nil
	}
	evs := c.events
	var out []audit.Event
	if !q.Desc {
		i := 0
		if q.After != 0 {
			i = sort.Search(len(evs), func(i int) bool { return evs[i].Seq > q.After })
		}
		for ; i < len(evs) && len(out) < limit; i++ {
			if auditMatch(&evs[i], &q) {
				out = append(out, cloneAuditEvent(&evs[i]))
			}
		}
		return out, nil
	}
	i := len(evs) - 1
	if q.After != 0 {
		i = sort.Search(len(evs), func(i int) bool { return evs[i].Seq >= q.After }) - 1
	}
	for ; i >= 0 && len(out) < limit; i-- {
		if auditMatch(&evs[i], &q) {
			out = append(out, cloneAuditEvent(&evs[i]))
		}
	}
	return out, nil
}

// Checkpoint implements audit.Store.
func (s *Audit) Checkpoint(ctx context.Context, tenant string) (audit.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return audit.Checkpoint{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.tenants[tenant]
	if c == nil {
		return audit.Checkpoint{}, nil
	}
	return cloneAuditCheckpoint(&c.cp), nil
}

// Purge implements audit.Store.
func (s *Audit) Purge(ctx context.Context, tenant string, cp audit.Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.tenants[tenant]
	if c == nil {
		c = new(auditChain)
		s.tenants[tenant] = c
	}
	if cp.Seq <= c.cp.Seq {
		return audit.ErrConflict
	}
	n := sort.Search(len(c.events), func(i int) bool { return c.events[i].Seq > cp.Seq })
	c.events = append([]audit.Event(nil), c.events[n:]...)
	c.cp = cloneAuditCheckpoint(&cp)
	return nil
}

func auditMatch(e *audit.Event, q *audit.Query) bool {
	switch {
	case !q.From.IsZero() && e.Time.Before(q.From),
		!q.To.IsZero() && !e.Time.Before(q.To),
		q.Actor != "" && q.Actor != e.Actor.ID && q.Actor != e.Actor.Email,
		q.Action != "" && q.Action != string(e.Action),
		q.Outcome != "" && q.Outcome != e.Outcome:
		return false
	}
	return true
}

func cloneAuditEvent(e *audit.Event) audit.Event {
	c := *e
	c.PrevMAC = bytes.Clone(e.PrevMAC)
	c.MAC = bytes.Clone(e.MAC)
	if len(e.Meta) > 0 {
		c.Meta = make(map[string]string, len(e.Meta))
		for k, v := range e.Meta {
			c.Meta[k] = v
		}
	} else {
		c.Meta = nil
	}
	return c
}

func cloneAuditCheckpoint(cp *audit.Checkpoint) audit.Checkpoint {
	c := *cp
	c.MAC = bytes.Clone(cp.MAC)
	c.CheckpointMAC = bytes.Clone(cp.CheckpointMAC)
	return c
}
