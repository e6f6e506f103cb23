package store

// These tests look inside the commit queue: they hold a commit under way so
// that the writes behind it are sure to be queued, and then check what one
// batch does.

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openInternal(t *testing.T, opts Options) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "otpgate.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// hold makes a commit run a function that waits for release, and
// returns once it runs. The held Update's error arrives on the returned channel.
func hold(t *testing.T, db *DB) (release func(), held <-chan error) {
	t.Helper()
	running := make(chan struct{})
	gate := make(chan struct{})
	done := make(chan error, 1)
	var once sync.Once
	go func() {
		done <- db.Update(func(*Tx) error {
			once.Do(func() { close(running) })
			<-gate
			return nil
		})
	}()
	<-running
	return func() { close(gate) }, done
}

// waitQueued waits until n writes wait in the queue behind the held one.
// It waits for a condition, not for time to pass.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	for db.Queued() < n {
		runtime.Gosched()
	}
	if got := db.Queued(); got != n {
		t.Fatalf("got %d queued writes, want %d", got, n)
	}
}

func TestQueuedUpdatesShareOneTransaction(t *testing.T) {
	db := openInternal(t, Options{})
	release, held := hold(t, db)

	const n = 20
	var mu sync.Mutex
	txs := map[*Tx]int{}
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- db.Update(func(tx *Tx) error {
				mu.Lock()
				txs[tx]++
				mu.Unlock()
				return tx.PutMeta(fmt.Sprint(i), []byte{1})
			})
		}()
	}
	waitQueued(t, db, n)
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Update: %v", err)
		}
	}
	if len(txs) != 1 {
		t.Errorf("got %d transactions for %d queued updates, want 1", len(txs), n)
	}
}

func TestMaxBatch(t *testing.T) {
	db := openInternal(t, Options{MaxBatch: 4})
	release, held := hold(t, db)

	n := queuedBatches * 4
	var mu sync.Mutex
	txs := map[*Tx]int{}
	var wg sync.WaitGroup
	update := func() {
		wg.Go(func() {
			err := db.Update(func(tx *Tx) error {
				mu.Lock()
				txs[tx]++
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	for i := range n {
		if i%2 == 0 {
			update()
		} else if err := db.Audit(Entry{User: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		waitQueued(t, db, i+1)
	}
	// The queue holds queuedBatches × MaxBatch writes: one more waits for
	// room, or commits the audit entries to make some, which waits for
	// the held commit (it holds the file, fileMu).
	update()
	for {
		db.mu.Lock()
		waiting := db.blocked == 1 || db.auditBusy
		db.mu.Unlock()
		if waiting {
			break
		}
		runtime.Gosched()
	}
	if got := db.Queued(); got != n {
		t.Errorf("got %d queued writes with one more waiting for room, want %d", got, n)
	}
	release()
	<-held
	wg.Wait()
	total := 0
	for tx, k := range txs {
		total += k
		if k > 4 {
			t.Errorf("transaction %p ran %d functions, want at most 4", tx, k)
		}
	}
	if want := n/2 + 1; total != want {
		t.Errorf("got %d functions run, want %d", total, want)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	err := db.View(func(tx *Tx) error {
		es, err := tx.AuditLog(0, nil)
		if len(es) != n/2 {
			t.Errorf("got %d audit entries, want %d", len(es), n/2)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFailureInBatchSparesOthers(t *testing.T) {
	db := openInternal(t, Options{})
	release, held := hold(t, db)

	boom := errors.New("boom")
	results := make(chan struct {
		name string
		err  error
	}, 3)
	update := func(name string, fail bool) {
		err := db.Update(func(tx *Tx) error {
			if err := tx.PutMeta(name, []byte("written")); err != nil {
				return err
			}
			if fail {
				return boom
			}
			return nil
		})
		results <- struct {
			name string
			err  error
		}{name, err}
	}
	go update("first", false)
	waitQueued(t, db, 1)
	go update("bad", true)
	waitQueued(t, db, 2)
	if err := db.Audit(Entry{User: "audited", Decision: "accept"}); err != nil {
		t.Fatal(err)
	}
	go update("last", false)
	waitQueued(t, db, 4)
	release()
	<-held

	for range 3 {
		r := <-results
		switch r.name {
		case "bad":
			if !errors.Is(r.err, boom) {
				t.Errorf("failing update: got %v, want boom", r.err)
			}
		default:
			if r.err != nil {
				t.Errorf("update %s: got %v, want nil", r.name, r.err)
			}
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	err := db.View(func(tx *Tx) error {
		for name, want := range map[string]bool{"first": true, "bad": false, "last": true} {
			if got := tx.Meta(name) != nil; got != want {
				t.Errorf("%s: got written %v, want %v", name, got, want)
			}
		}
		es, err := tx.AuditLog(0, nil)
		if err != nil {
			return err
		}
		if len(es) != 1 || es[0].User != "audited" {
			t.Errorf("got audit log %+v, want the one queued entry", es)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFailureInBatchKeepsAuditEntriesTogether: when a function fails in
// a batch that took many audit entries, those run again in one commit,
// in their order, not one commit each: the queue, and the answers
// waiting behind it, would wait for all of those commits.
func TestFailureInBatchKeepsAuditEntriesTogether(t *testing.T) {
	db := openInternal(t, Options{})
	release, held := hold(t, db)
	const n = 50
	for i := range n {
		if err := db.Audit(Entry{User: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("boom")
	failed := make(chan error, 1)
	go func() { failed <- db.Update(func(*Tx) error { return boom }) }() // takes the entries queued before it
	waitQueued(t, db, n+1)
	before := db.SyncTimes()[SyncFile].Count
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-failed; !errors.Is(err, boom) {
		t.Fatalf("the failing update: got %v, want boom", err)
	}
	// One for the entries; the held update wrote nothing, so it made no
	// commit of the file.
	if got := db.SyncTimes()[SyncFile].Count - before; got != 1 {
		t.Errorf("%d commits of the file for a failed batch of %d audit entries, want 1", got, n)
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprint(i)
	}
	if users := auditUsers(t, db); fmt.Sprint(users) != fmt.Sprint(want) {
		t.Errorf("the audit log after the failed batch: %v, want %v", users, want)
	}
	if got := db.AuditDropped(); got != 0 {
		t.Errorf("%d audit entries dropped, want 0", got)
	}
}

// TestFailedAuditEntryLeavesTheOthersTogether: when an audit entry itself
// fails, the others run again in commits on either side of it, not one
// each, and the one that failed is dropped.
func TestFailedAuditEntryLeavesTheOthersTogether(t *testing.T) {
	db := openInternal(t, Options{})
	release, held := hold(t, db)
	const n, bad = 10, 4
	boom := errors.New("boom")
	for i := range n {
		v, err := encodeEntry(Entry{User: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		fn := func(tx *Tx) error { return tx.appendAudit(v) }
		if i == bad {
			fn = func(*Tx) error { return boom }
		}
		if err := db.enqueue(op{fn: fn}); err != nil {
			t.Fatal(err)
		}
	}
	flushed := make(chan error, 1)
	go func() { flushed <- db.Flush() }() // takes the entries queued before it
	waitQueued(t, db, n+1)
	before := db.SyncTimes()[SyncFile].Count
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if got := db.SyncTimes()[SyncFile].Count - before; got != 2 {
		t.Errorf("%d commits of the file for %d audit entries, one failing, want 2: one on each side of it", got, n)
	}
	if got := fmt.Sprint(auditUsers(t, db)); got != "[0 1 2 3 5 6 7 8 9]" {
		t.Errorf("the audit log: %v, want [0 1 2 3 5 6 7 8 9]", got)
	}
	if got := db.AuditDropped(); got != 1 {
		t.Errorf("%d audit entries dropped, want 1", got)
	}
}

// auditUsers returns the users of the audit log's entries, oldest first.
func auditUsers(t *testing.T, db *DB) []string {
	t.Helper()
	var users []string
	err := db.View(func(tx *Tx) error {
		es, err := tx.AuditLog(0, nil)
		for i := len(es) - 1; i >= 0; i-- {
			users = append(users, es[i].User)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return users
}

func TestCloseWritesQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpgate.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	release, held := hold(t, db)
	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- db.Update(func(tx *Tx) error { return tx.PutMeta(fmt.Sprint(i), []byte{1}) }) }()
	}
	waitQueued(t, db, n)
	for i := range 5 {
		if err := db.Audit(Entry{User: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("queued Update: got %v, want nil", err)
		}
	}

	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *Tx) error {
		for i := range n {
			if tx.Meta(fmt.Sprint(i)) == nil {
				t.Errorf("queued write %d lost on Close", i)
			}
		}
		es, err := tx.AuditLog(0, nil)
		if len(es) != 5 {
			t.Errorf("got %d audit entries, want 5", len(es))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPruneRemovesDamagedRecords(t *testing.T) {
	db := openInternal(t, Options{})
	now := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	err := db.Update(func(tx *Tx) error {
		if err := tx.tx.Bucket(bucketProven).Put([]byte("alice\x00192.0.2.1"), []byte{1, 2, 3}); err != nil {
			return err
		}
		return tx.PutProven("bob", netip.MustParseAddr("192.0.2.1"), now)
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.Prune(now, now.Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("got (%d, %v), want (1, nil)", n, err)
	}
	err = db.View(func(tx *Tx) error {
		if _, ok := tx.Proven("bob", netip.MustParseAddr("192.0.2.1")); !ok {
			t.Error("bob's proven pair: got removed, want kept")
		}
		if tx.tx.Bucket(bucketProven).Get([]byte("alice\x00192.0.2.1")) != nil {
			t.Error("damaged proven pair: got kept, want removed")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenDropsChallengeBucketsOfEarlierBuilds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = old.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"challenges", "live"} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			if err := b.Put([]byte("k"), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	old.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.bolt.View(func(tx *bolt.Tx) error {
		for _, name := range []string{"challenges", "live"} {
			if tx.Bucket([]byte(name)) != nil {
				t.Errorf("bucket %q: got kept, want dropped", name)
			}
		}
		if tx.Bucket(bucketUsers) == nil {
			t.Error("users bucket missing")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAppendedBucketsFillTheirPages(t *testing.T) {
	// The audit log and the used TOTP steps are only appended to: their
	// pages are filled before they split, not left half empty.
	db := openInternal(t, Options{})
	for batch := range 40 {
		if err := db.Update(func(tx *Tx) error {
			for i := range 500 {
				n := batch*500 + i
				if err := tx.AppendAudit(Entry{Time: time.Unix(int64(n), 0), User: fmt.Sprintf("user%06d", n), Decision: "accept"}); err != nil {
					return err
				}
				if err := tx.UseStep(fmt.Sprintf("user%06d", n), int64(n), time.Unix(int64(n), 0)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketAudit, bucketSteps} {
			st := tx.Bucket(name).Stats()
			if fill := float64(st.LeafInuse) / float64(st.LeafAlloc); fill < 0.85 {
				t.Errorf("%s: leaf pages %.0f %% full (%d bytes used of %d), want at least 85 %%", name, 100*fill, st.LeafInuse, st.LeafAlloc)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAuditWrittenUnderWaitedWrites: an audit entry queued while an
// Update is committed is written within about auditDelay after it, while
// waited writes that do not take it (CommitIf's) keep the commit handed
// from writer to writer: audit entries are committed beside them.
func TestAuditWrittenUnderWaitedWrites(t *testing.T) {
	db := openInternal(t, Options{MaxBatch: 2})
	release, held := hold(t, db)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { db.local(func(*Tx) error { return nil }) })
	}
	waitQueued(t, db, 2)
	if err := db.Audit(Entry{User: "e1"}); err != nil {
		t.Fatal(err)
	}
	for due := false; !due; runtime.Gosched() { // the timer fires while the commit is held
		db.mu.Lock()
		due = db.auditBusy
		db.mu.Unlock()
	}
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				db.local(func(*Tx) error { time.Sleep(100 * time.Microsecond); return nil })
			}
		})
	}
	for db.Queued() < db.maxQueue { // the queue full
		runtime.Gosched()
	}
	release()
	<-held
	deadline := time.Now().Add(10 * auditDelay)
	n := 0
	for time.Now().Before(deadline) && n == 0 {
		db.View(func(tx *Tx) error { es, _ := tx.AuditLog(0, nil); n = len(es); return nil })
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n == 0 {
		t.Errorf("an audit entry queued before a stream of waited writes was not written within %v (auditDelay %v)", 10*auditDelay, auditDelay)
	}
}

// TestBatchKeepsTheOrderOfBothQueues: waited writes and audit entries
// wait in queues of their own; a batch with an Update takes the audit
// entries queued before the Update, merged with the waited writes in the
// order they all came, and leaves those queued after it.
func TestBatchKeepsTheOrderOfBothQueues(t *testing.T) {
	db := openInternal(t, Options{})
	release, held := hold(t, db)
	var wg sync.WaitGroup
	audit := func(user string) {
		if err := db.Audit(Entry{User: user}); err != nil {
			t.Fatal(err)
		}
	}
	audit("a1")
	wg.Go(func() { db.local(func(tx *Tx) error { return tx.AppendAudit(Entry{User: "w1"}) }) })
	waitQueued(t, db, 2)
	audit("a2")
	updated := make(chan error, 1)
	go func() { updated <- db.Update(func(tx *Tx) error { return tx.AppendAudit(Entry{User: "u"}) }) }()
	waitQueued(t, db, 4)
	audit("a3")
	wg.Go(func() { db.local(func(tx *Tx) error { return tx.AppendAudit(Entry{User: "w2"}) }) })
	waitQueued(t, db, 6)
	db.mu.Lock()
	queued, audits := len(db.queue), len(db.audits)
	// No commit of the audit entries on their own from now on: the timer
	// stopped, and marked as set so that no commit sets it again.
	db.timer.Stop()
	db.timerSet = true
	db.mu.Unlock()
	if queued != 3 || audits != 3 {
		t.Fatalf("queued: %d waited writes and %d audit entries, want 3 and 3", queued, audits)
	}
	release()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-updated; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// On disk once the Update has returned, in the order they came: the
	// entries queued before it, and the functions' own; a3, queued after
	// it, still waits.
	if got := fmt.Sprint(auditUsers(t, db)); got != "[a1 w1 a2 u w2]" {
		t.Errorf("the audit log after the Update: %v, want [a1 w1 a2 u w2]", got)
	}
	db.mu.Lock()
	left := len(db.audits)
	db.mu.Unlock()
	if left != 1 {
		t.Errorf("%d audit entries left queued after the Update's batch, want 1 (a3)", left)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(auditUsers(t, db)); got != "[a1 w1 a2 u w2 a3]" {
		t.Errorf("the audit log after Flush: %v, want [a1 w1 a2 u w2 a3]", got)
	}
}
