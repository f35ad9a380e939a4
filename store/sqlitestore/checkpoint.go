package sqlitestore

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Checkpoints. SQLite copies the WAL back into the database file in a
// checkpoint, which by default runs in the connection that commits, right
// after its commit: the write that crosses the threshold waits for
// thousands of page copies and two fsyncs, and so does every writer queued
// behind it (a fifth of the audit log's append throughput). A Store's
// writer connection does not checkpoint (wal_autocheckpoint=0 on it); the
// Store's checkpointer goroutine does, every checkpointEvery commits and
// checkpointIdle after a commit, on a connection of the pool, while the
// writer goes on: a PASSIVE checkpoint takes no write lock. (The second
// matters to readers: a page still in the WAL is read with a system call,
// a page checkpointed into the file through mmap.) Under continuous writes such a checkpoint never
// quite catches up with the end of the WAL, and SQLite starts the WAL over
// only once a checkpoint has copied all of it; so once the WAL is longer
// than checkpointRestart frames, the checkpointer copies what is left
// while it holds the Store's write gate (a few pages and the fsyncs) and
// waits for the readers of the WAL to move on to the database file (a
// RESTART checkpoint), and the next write starts the WAL from its
// beginning. Other processes and
// Stores on the file checkpoint as they are configured.
const (
	// checkpointEvery is the number of a Store's commits between its
	// checkpoints.
	checkpointEvery = 256
	// checkpointIdle is how soon after a commit a checkpoint follows
	// (with more commits in between, it is still one).
	checkpointIdle = 250 * time.Millisecond
	// checkpointRestart is the length of the WAL, in frames (pages),
	// above which a checkpoint finishes under the write gate.
	checkpointRestart = 4000
	// checkpointReaderWait bounds how long the checkpoint under the write
	// gate waits for readers of the WAL.
	checkpointReaderWait = 50 * time.Millisecond
)

// checkpointer is a Store's checkpoint goroutine and what wakes it.
type checkpointer struct {
	commits atomic.Uint64
	armed   atomic.Bool   // a checkpointIdle timer is pending
	kick    chan struct{} // buffered 1: a checkpoint is due
	stop    context.CancelFunc
	done    chan struct{} // closed when the goroutine has returned
}

func (s *Store) startCheckpointer() {
	ctx, stop := context.WithCancel(context.Background())
	s.ckpt = &checkpointer{kick: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	go func() {
		defer close(s.ckpt.done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.ckpt.kick:
			}
			s.checkpoint(ctx)
		}
	}()
}

// committed counts a commit of the writer and wakes the checkpointer when
// a checkpoint is due, or arms the timer that will.
func (s *Store) committed() {
	if s.ckpt.commits.Add(1)%checkpointEvery == 0 {
		s.ckpt.wake()
		return
	}
	if s.ckpt.armed.CompareAndSwap(false, true) {
		time.AfterFunc(checkpointIdle, func() {
			s.ckpt.armed.Store(false)
			s.ckpt.wake()
		})
	}
}

// wake starts a checkpoint unless one is due already. After Close nobody
// receives: the kick stays in the buffer.
func (c *checkpointer) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// checkpoint runs a PASSIVE checkpoint and, when the WAL is long, a RESTART
// one under the write gate. An error is left for the next checkpoint: a
// checkpoint changes nothing anyone reads, and a failed one leaves the WAL
// as it was.
func (s *Store) checkpoint(ctx context.Context) {
	if s.walFrames(ctx) < checkpointRestart {
		return
	}
	if err := s.lockWrites(ctx); err != nil {
		return
	}
	defer s.unlockWrites()
	s.restartWAL(ctx)
}

// restartWAL copies the rest of the WAL and waits, up to
// checkpointReaderWait, for the readers that still read from it to finish,
// so that the next write starts the WAL over. The caller holds the write
// gate.
func (s *Store) restartWAL(ctx context.Context) {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return
	}
	defer c.Close()
	var timeout int64
	if err := c.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&timeout); err != nil {
		return
	}
	if _, err := c.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, checkpointReaderWait.Milliseconds())); err != nil {
		discard(c)
		return
	}
	_, _ = c.ExecContext(ctx, `PRAGMA wal_checkpoint(RESTART)`)
	if _, err := c.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`PRAGMA busy_timeout = %d`, timeout)); err != nil {
		discard(c)
	}
}

// walFrames runs a PASSIVE checkpoint and returns the length of the WAL
// in frames, 0 on an error.
func (s *Store) walFrames(ctx context.Context) int64 {
	var busy, frames, copied int64
	if err := s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		return 0
	}
	return frames
}

// stopCheckpointer stops the goroutine and waits for it. The caller does
// not hold the write gate.
func (s *Store) stopCheckpointer() {
	s.ckpt.stop()
	<-s.ckpt.done
}
