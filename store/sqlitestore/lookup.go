package sqlitestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/guardhq/guard/session"
)

// The per-request session check (Sessions.Lookup) runs on a few connections
// set aside for it, with its SELECT prepared at the driver level: one call
// costs two lock syscalls (WAL read lock and unlock) and the B-tree search,
// without database/sql's per-call bookkeeping. When every such connection
// is busy, Lookup takes the ordinary path through the pool.

// maxLookupConns bounds the connections a Store sets aside for Lookup.
const maxLookupConns = 4

const lookupQuery = `SELECT ` + sessionCols + ` FROM guard_sessions WHERE hash = ?`

// lookupConn is one connection set aside for Lookup.
type lookupConn struct {
	c    *sql.Conn
	stmt driver.Stmt
	args [1]driver.NamedValue
	dest [9]driver.Value
}

// lookupPool holds the lookup connections, created on first use up to max.
type lookupPool struct {
	db  *sql.DB
	max int

	mu     sync.Mutex
	free   []*lookupConn
	n      int // connections created and not discarded
	closed bool
}

func newLookupPool(db *sql.DB, max int) *lookupPool {
	return &lookupPool{db: db, max: max}
}

// lookupPoolSize is how many connections a Store sets aside for Lookup when
// its pool allows open connections (0: no limit): one per CPU up to
// maxLookupConns, leaving at least two for the writer and other reads.
func lookupPoolSize(open int) int {
	n := min(runtime.GOMAXPROCS(0), maxLookupConns)
	if open > 0 {
		n = min(n, open-2)
	}
	return max(n, 0)
}

// get returns a free lookup connection, creating one if fewer than max
// exist, or nil when all are busy (or cannot be created).
func (p *lookupPool) get(ctx context.Context) *lookupConn {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	if k := len(p.free); k > 0 {
		lc := p.free[k-1]
		p.free = p.free[:k-1]
		p.mu.Unlock()
		return lc
	}
	if p.n >= p.max {
		p.mu.Unlock()
		return nil
	}
	p.n++
	p.mu.Unlock()
	lc, err := p.connect(ctx)
	if err != nil {
		p.mu.Lock()
		p.n--
		p.mu.Unlock()
		return nil
	}
	return lc
}

func (p *lookupPool) connect(ctx context.Context) (*lookupConn, error) {
	// The connection outlives this call, so ctx's end must not cut its
	// set-up short.
	ctx = context.WithoutCancel(ctx)
	c, err := p.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	lc := &lookupConn{c: c}
	err = c.Raw(func(dc any) error {
		pc, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot prepare", dc)
		}
		s, err := pc.PrepareContext(ctx, lookupQuery)
		if err != nil {
			return err
		}
		if _, ok := s.(driver.StmtQueryContext); !ok {
			s.Close()
			return fmt.Errorf("driver statement %T cannot query with a context", s)
		}
		lc.stmt = s
		return nil
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return lc, nil
}

// put gives lc back, or discards it when it may be broken or the pool is
// closed.
func (p *lookupPool) put(lc *lookupConn, broken bool) {
	p.mu.Lock()
	if broken || p.closed {
		p.n--
		p.mu.Unlock()
		lc.close()
		return
	}
	p.free = append(p.free, lc)
	p.mu.Unlock()
}

// close discards the free connections; those in use are discarded when
// they come back.
func (p *lookupPool) close() {
	p.mu.Lock()
	p.closed = true
	free := p.free
	p.free = nil
	p.n -= len(free)
	p.mu.Unlock()
	for _, lc := range free {
		lc.close()
	}
}

// close finalises the statement and closes the driver connection (it is
// not given back to the pool).
func (lc *lookupConn) close() {
	_ = lc.c.Raw(func(any) error {
		lc.stmt.Close()
		return driver.ErrBadConn
	})
	_ = lc.c.Close()
}

// lookup reads session h into s. It returns sql.ErrNoRows for no such
// session; any other error may leave the connection unusable.
func (lc *lookupConn) lookup(ctx context.Context, h *session.Hash, s *session.Session) error {
	return lc.c.Raw(func(any) error {
		lc.args[0] = driver.NamedValue{Ordinal: 1, Value: h[:]}
		rows, err := lc.stmt.(driver.StmtQueryContext).QueryContext(ctx, lc.args[:])
		if err != nil {
			return err
		}
		err = rows.Next(lc.dest[:])
		if err == nil {
			err = lc.decode(s)
		} else if errors.Is(err, io.EOF) {
			err = sql.ErrNoRows
		}
		clear(lc.dest[:])
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// decode sets s from the columns of sessionCols in lc.dest.
func (lc *lookupConn) decode(s *session.Session) error {
	d := &lc.dest
	var ok [9]bool
	s.Tenant, ok[0] = d[0].(string)
	s.UserID, ok[1] = d[1].(string)
	var created, seen, expires, idle, flags int64
	created, ok[2] = d[2].(int64)
	seen, ok[3] = d[3].(int64)
	expires, ok[4] = d[4].(int64)
	idle, ok[5] = d[5].(int64)
	s.IP, ok[6] = d[6].(string)
	s.UserAgent, ok[7] = d[7].(string)
	flags, ok[8] = d[8].(int64)
	for i, good := range ok {
		if !good {
			return fmt.Errorf("sqlitestore: session column %d holds %T", i, d[i])
		}
	}
	var err error
	if s.Flags, err = flags32("session", flags); err != nil {
		return err
	}
	s.CreatedAt = fromMicros(created)
	s.LastSeen = fromMicros(seen)
	s.ExpiresAt = fromMicros(expires)
	s.IdleTimeout = time.Duration(idle)
	return nil
}
