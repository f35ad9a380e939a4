package sqlitestore_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/sqlitestore"
)

// The invariants of every store hold across Stores that share one file:
// two Opens in one process, two host *sql.DBs (New) whose DSN does not ask
// for BEGIN IMMEDIATE, and two processes.

var t0 = time.Date(2099, 1, 1, 9, 0, 0, 123456000, time.UTC)

// hammerLimit is the throttle limit the tests race on.
var hammerLimit = auth.Limit{Max: 7, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}

// hammerResult is what one side of a race did.
type hammerResult struct {
	Allowed int      // throttle reservations granted
	Created []string // session labels created
	Evicted []string // session labels reported evicted
	Refused int      // RefuseNew Creates refused
	Admits  int      // RefuseNew Creates admitted
	Events  int      // audit events recorded
}

func label(h session.Hash) string { return fmt.Sprintf("%x", h[:6]) }

// hammer races n goroutines of side on the shared key, user and chain of s.
func hammer(ctx context.Context, s *sqlitestore.Store, side string, n int) (hammerResult, error) {
	var mu sync.Mutex
	var res hammerResult
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	log, err := audit.New(audit.Config{Store: s.Audit, Key: auditKey})
	if err != nil {
		return res, err
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			now := t0.Add(time.Duration(i) * time.Microsecond)
			r, err := s.Throttle.Reserve(ctx, "acct:acme:alice", now, hammerLimit)
			if err != nil {
				fail(fmt.Errorf("Reserve: %w", err))
				return
			}
			h := sha256.Sum256([]byte(fmt.Sprint(side, i)))
			sess := session.Session{Hash: h, Tenant: "acme", UserID: "alice", CreatedAt: now, LastSeen: now,
				ExpiresAt: now.Add(time.Hour), IdleTimeout: time.Hour, UserAgent: side}
			ev, err := s.Sessions.Create(ctx, sess, session.Limit{Max: 1, Policy: session.EvictOldest})
			if err != nil {
				fail(fmt.Errorf("Create: %w", err))
				return
			}
			sess.UserID = "bob"
			sess.Hash = sha256.Sum256([]byte(fmt.Sprint("bob", side, i)))
			_, refErr := s.Sessions.Create(ctx, sess, session.Limit{Max: 2, Policy: session.RefuseNew})
			if refErr != nil && !errors.Is(refErr, session.ErrLimit) {
				fail(fmt.Errorf("Create (RefuseNew): %w", refErr))
				return
			}
			if _, err := log.Record(ctx, audit.Event{Tenant: "acme", Action: audit.LoginFailed, Outcome: audit.Failure,
				Actor: audit.Actor{Kind: audit.ActorUser, ID: side}, Meta: map[string]string{"i": fmt.Sprint(i)}}); err != nil {
				fail(fmt.Errorf("Record: %w", err))
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if r.Allowed {
				res.Allowed++
			}
			res.Created = append(res.Created, label(h))
			for _, e := range ev {
				res.Evicted = append(res.Evicted, label(e.Hash))
			}
			if refErr == nil {
				res.Admits++
			} else {
				res.Refused++
			}
			res.Events++
		})
	}
	wg.Wait()
	return res, errors.Join(errs...)
}

// checkHammered checks the shared state after the sides in rs raced.
func checkHammered(t *testing.T, s *sqlitestore.Store, rs ...hammerResult) {
	t.Helper()
	ctx := context.Background()
	allowed, admits, events := 0, 0, 0
	seen := map[string]string{}
	var created []string
	for _, r := range rs {
		allowed += r.Allowed
		admits += r.Admits
		events += r.Events
		created = append(created, r.Created...)
		for _, e := range r.Evicted {
			if seen[e] != "" {
				t.Errorf("session %s evicted twice", e)
			}
			seen[e] = "evicted"
		}
	}
	if allowed != hammerLimit.Max {
		t.Errorf("%d reservations granted on one key, want exactly Max = %d", allowed, hammerLimit.Max)
	}
	st, err := s.Throttle.Peek(ctx, "acct:acme:alice", t0.Add(time.Second), hammerLimit)
	if err != nil || !st.Locked(t0.Add(time.Second)) || st.Lockouts != 1 {
		t.Errorf("Peek after the race = %+v, %v; want locked once", st, err)
	}
	list, err := s.Sessions.ListByUser(ctx, "acme", "alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("alice has %d sessions, %v; want exactly 1 (limit 1, EvictOldest)", len(list), err)
	}
	if seen[label(list[0].Hash)] != "" {
		t.Errorf("the surviving session %s was also reported evicted", label(list[0].Hash))
	}
	seen[label(list[0].Hash)] = "survivor"
	for _, c := range created {
		if seen[c] == "" {
			t.Errorf("session %s neither survived nor was reported evicted", c)
		}
	}
	if admits != 2 {
		t.Errorf("%d RefuseNew Creates admitted, want exactly 2", admits)
	}
	if bob, err := s.Sessions.ListByUser(ctx, "acme", "bob"); err != nil || len(bob) != 2 {
		t.Errorf("bob has %d sessions, %v; want 2", len(bob), err)
	}
	log, err := audit.New(audit.Config{Store: s.Audit, Key: auditKey})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := log.Verify(ctx, "acme")
	if err != nil || !rep.OK || rep.Head.Seq != uint64(events) || rep.Checked != events {
		t.Errorf("Verify = %+v, %v; want OK over %d events", rep, err, events)
	}
}

func TestTwoOpensOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	a, b := openFile(t, path), openFile(t, path)
	var ra, rb hammerResult
	var ea, eb error
	var wg sync.WaitGroup
	wg.Go(func() { ra, ea = hammer(t.Context(), a, "a", 50) })
	wg.Go(func() { rb, eb = hammer(t.Context(), b, "b", 50) })
	wg.Wait()
	if err := errors.Join(ea, eb); err != nil {
		t.Fatal(err)
	}
	checkHammered(t, a, ra, rb)
}

func TestTwoHostDBsWithoutImmediate(t *testing.T) {
	// The host's DSN sets neither _txlock nor synchronous: the Store's
	// write transactions must still take the write lock at their start,
	// or racing writers would fail with SQLITE_BUSY.
	path := filepath.Join(t.TempDir(), "guard.db")
	var stores []*sqlitestore.Store
	for range 2 {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s, err := sqlitestore.New(db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	var ra, rb hammerResult
	var ea, eb error
	var wg sync.WaitGroup
	wg.Go(func() { ra, ea = hammer(t.Context(), stores[0], "a", 50) })
	wg.Go(func() { rb, eb = hammer(t.Context(), stores[1], "b", 50) })
	wg.Wait()
	if err := errors.Join(ea, eb); err != nil {
		t.Fatal(err)
	}
	checkHammered(t, stores[0], ra, rb)
}

// helperEnv names the database file when the test binary runs as the
// second process of TestTwoProcesses (see TestMain).
const helperEnv = "SQLITESTORE_TEST_HELPER_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(helperProcess(path))
	}
	os.Exit(m.Run())
}

func TestTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	s := openFile(t, path)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewScanner(stdout)
	// The helper opens the file, then waits for "go" so that both
	// processes race from the same moment.
	if !out.Scan() || out.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper did not get ready: %q %v", out.Text(), out.Err())
	}
	if _, err := fmt.Fprintln(stdin, "go"); err != nil {
		t.Fatal(err)
	}
	mine, err := hammer(t.Context(), s, "parent", 40)
	if err != nil {
		t.Error(err)
	}
	var theirs hammerResult
	var line string
	if out.Scan() {
		line = out.Text()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v (output %q)", err, line)
	}
	if err := json.Unmarshal([]byte(line), &theirs); err != nil || theirs.Events != 40 {
		t.Fatalf("helper reported %q: %+v, %v", line, theirs, err)
	}
	checkHammered(t, s, mine, theirs)
}

// helperProcess is the second process of TestTwoProcesses: it opens the
// file, says "ready", waits for "go", races, and prints what it did as
// JSON. It returns the exit code.
func helperProcess(path string) int {
	s, err := sqlitestore.Open(context.Background(), path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	defer s.Close()
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "go" {
		fmt.Fprintln(os.Stderr, "helper: no go from the parent:", in.Err())
		return 1
	}
	res, err := hammer(context.Background(), s, "child", 40)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	b, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	fmt.Println(string(b))
	return 0
}
