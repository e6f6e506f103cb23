// Package store keeps everything otpgate must remember in one bbolt file:
// users, proven (user, IP) pairs for the reconnect window,
// recent sends for the abuse limits, and the audit log.
//
// Writes on the request path go through [DB.Update], which commits the
// functions of concurrent callers together in one transaction (one disk sync
// for many requests); audit entries are queued by [DB.Audit] and written in
// commits of their own, within 100 ms, without making anyone wait, beside
// the commits of the other writes (leadAudits). A commit that only records
// TOTP steps used (a proved code) reads the file in a read-only transaction
// and writes the steps to a log beside it, in one write(2) that does not
// wait for the disk, nor for a commit of audit entries under way; the file
// takes them with its next commit of other writes (steplog.go); after a crash
// of the machine, which may lose such writes, every step up to the newest
// one used before it is refused to everyone (fence.go).
package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrNotFound is returned when a user or challenge does not exist.
var ErrNotFound = errors.New("not found")

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("store is closed")

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("store is in use by another process")

var (
	bucketUsers  = []byte("users")
	bucketProven = []byte("proven")
	bucketAudit  = []byte("audit")
	bucketMeta   = []byte("meta")
	bucketSends  = []byte("sends")   // recent sends, for the abuse limits
	bucketSteps  = []byte("steps")   // TOTP steps used lately (steps.go)
	bucketInvite = []byte("invites") // open invitations by hash (invites.go)
)

// Options tune Open.
type Options struct {
	// Timeout is how long Open waits for the file lock. Zero means one second.
	Timeout time.Duration
	// MaxBatch is the most functions committed in one transaction. Zero
	// means 2048, which is about what a busy node queues of audit entries
	// in auditDelay (see there).
	MaxBatch int
	// Log receives what the store reports on its own: a transaction
	// that met a damaged page, audit entries dropped. Nil discards.
	Log *slog.Logger
	// Now is the clock that spaces those reports. Nil means time.Now.
	Now func() time.Time
	// Etcd, when set, keeps everything but the audit log in etcd, shared
	// by every node that names the same cluster and prefix. Nil keeps all
	// of it in the file.
	Etcd *Etcd
	// Node names this node in the audit entries it writes; empty writes
	// none (a single node).
	Node string
}

// DB is an open store. It is safe for concurrent use.
type DB struct {
	bolt     *bolt.DB
	path     string
	maxBatch int
	maxQueue int // queuedBatches × maxBatch
	log      *slog.Logger
	now      func() time.Time

	// The commit queue (see local). mu guards the fields below it.
	mu sync.Mutex
	// The writes waiting for a commit: those someone waits for, and the
	// audit entries, which nobody does, each in the order they came (seq
	// orders the two): a leader takes its batch from the first without
	// going through the thousands of the second that a busy node holds.
	queue    []op
	audits   []op
	seq      uint64    // the last write's op.seq
	batch    []op      // the leader's batch, kept for the next leader
	busy     bool      // a goroutine is committing the waited writes: the leader
	blocked  int       // writers waiting for room in the queue
	closed   bool      // Close was called: no new writes
	changed  sync.Cond // the queue shrank, or busy or auditBusy fell to false
	timer    *time.Timer
	timerSet bool // timer will commit the audit entries queued
	// auditBusy: a goroutine is committing audit entries on their own,
	// beside the leader (leadAudits).
	auditBusy  bool
	auditBatch []op // its batch, kept for the next
	// fileMu is held by a commit that takes audit entries, from before it
	// takes them until they are committed, so that the audit log is
	// written in the order its entries came whichever of the two commits
	// them. It is taken before mu, never while holding it.
	fileMu sync.Mutex

	stopRelease chan struct{} // closed by Close: releaseLoop returns
	released    chan struct{} // closed when releaseLoop has returned

	steps     usedSteps
	steplog   *stepLog // nil with etcd
	fence     int64    // the TOTP step refused to all after a crash of the machine (fence.go)
	high      int64    // no step above it goes to the log (fence.go); read and written by Open and the commit queue's leader only
	decoded   decodedUsers
	dropped   auditDrops
	maxPruned int          // the most records one of Prune's transactions removes
	auditKeep atomic.Int64 // SetAuditKeep, in nanoseconds
	trimOff   atomic.Bool  // trimming failed once (trimAudit): PruneAudit alone prunes the audit log
	syncs     struct{ stepLog, file syncTimes }

	// etcd is the shared engine, nil when bbolt is (Options.Etcd). With
	// it the file at path keeps only what is this node's own: the audit
	// log.
	etcd *etcdEngine
	node string // Options.Node
}

// op is one queued write: a function and, when the caller waits, where to
// report its result, or that it is the caller's turn to commit (errLead).
type op struct {
	fn   func(*Tx) error
	done chan error // nil for fire-and-forget writes such as audit entries
	// flush makes the batch that takes this write take the audit
	// entries queued before it too (Update, Flush).
	flush bool
	// seq is the order in which the writes were queued.
	seq uint64
	// file makes the batch that takes this write commit the file, with
	// the used steps logged before it (steplog.go).
	file bool
}

// errLead, sent to a waiting writer, makes it the leader: it commits what
// is queued.
var errLead = errors.New("store: lead the next commit")

// Open opens or creates the store at path. It reads the buckets through
// first (see walk), and refuses a damaged file with an error that wraps
// ErrDamaged.
func Open(path string, opts Options) (*DB, error) {
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 2048
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b, err := openBolt(path, &bolt.Options{Timeout: opts.Timeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w", path, ErrLocked)
	}
	if errors.Is(err, ErrDamaged) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db := &DB{
		bolt:      b,
		path:      path,
		queue:     make([]op, 0, opts.MaxBatch),
		maxBatch:  opts.MaxBatch,
		maxQueue:  queuedBatches * opts.MaxBatch,
		log:       slog.New(slog.DiscardHandler), // Open's own errors say it all
		now:       opts.Now,
		node:      opts.Node,
		maxPruned: 10000,
	}
	if err := db.walk(true); err != nil {
		b.Close()
		return nil, err
	}
	var logged [][]byte // the log's entries since the file's last commit
	logLeft := false    // the store was not closed (fence.go)
	fenced := false     // and a fence was raised for it
	if opts.Etcd == nil {
		err = b.View(func(tx *bolt.Tx) error {
			// The log's generation, as the file keeps it; a file written
			// before it kept one took the log's entries at each commit,
			// so the generation was its last commit's ID.
			// Frames of a generation between the one kept and the file's
			// last commit are applied too: an older build, which keeps
			// none, wrote its frames with its last commit's ID. A step
			// applied twice is only refused again.
			gen := uint64(tx.ID())
			if bb := tx.Bucket(bucketBoot); bb != nil {
				g, err := getStep(bb, keyGeneration)
				if err != nil {
					return err
				}
				if g != 0 {
					gen = min(uint64(g), gen)
				}
			}
			db.steplog, logged, logLeft, err = openStepLog(path, gen, uint64(tx.ID()))
			return err
		})
		if err != nil {
			b.Close()
			return nil, err
		}
	}
	err = guard(path, func() error {
		return b.Update(func(tx *bolt.Tx) error {
			fresh := tx.Bucket(bucketSteps) == nil // a log beside a new file is not its own
			if err := createBuckets(tx); err != nil {
				return err
			}
			for _, e := range logged {
				if fresh {
					break
				}
				if err := appendNext(tx.Bucket(bucketSteps), e); err != nil {
					return err
				}
			}
			if db.steplog == nil {
				return nil
			}
			db.steplog.gen = uint64(tx.ID()) // this commit takes what was logged
			if db.high, db.fence, fenced, err = raiseFence(tx, logLeft && !fresh); err != nil {
				return err
			}
			return putStep(tx.Bucket(bucketBoot), keyGeneration, int64(db.steplog.gen))
		})
	})
	if err == nil {
		err = db.loadSteps()
	}
	if err != nil {
		db.closeStepLog()
		b.Close()
		if errors.Is(err, ErrDamaged) {
			return nil, err
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.log = opts.Log
	if fenced {
		db.reportFence()
	}
	db.releaseMapped() // the walk read every page
	db.changed.L = &db.mu
	db.timer = time.AfterFunc(time.Hour, db.commitAudit)
	db.timer.Stop()
	db.stopRelease, db.released = make(chan struct{}), make(chan struct{})
	go db.releaseLoop()
	if opts.Etcd != nil {
		db.maxPruned = maxEtcdOps / 2
		if db.etcd, err = openEtcd(db, *opts.Etcd); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

func createBuckets(tx *bolt.Tx) error {
	if err := upgrade(tx); err != nil { // first: a newer store is left untouched
		return err
	}
	for _, name := range [][]byte{bucketUsers, bucketProven, bucketAudit, bucketMeta, bucketSends, bucketSteps, bucketInvite} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	// Earlier builds kept challenges here; they live in
	// memory now (package live).
	for _, name := range [][]byte{[]byte("challenges"), []byte("live")} {
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// Path is the file the store lives in: with etcd, the file of this node's
// audit log.
func (db *DB) Path() string { return db.path }

// Where names where the store's users live, for messages: the file, or
// the etcd cluster and prefix.
func (db *DB) Where() string {
	if db.etcd != nil {
		return db.etcd.where()
	}
	return db.path
}

// Close writes what is queued and closes the file. Writes after Close fail
// with ErrClosed.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	if db.etcd != nil {
		db.etcd.close()
	}
	for {
		if !db.busy && len(db.queue) > 0 {
			db.busy = true
			db.lead()
			db.mu.Lock()
			continue
		}
		if !db.auditBusy && len(db.audits) > 0 {
			db.auditBusy = true
			db.leadAudits()
			db.mu.Lock()
			continue
		}
		if !db.busy && !db.auditBusy && db.blocked == 0 {
			break
		}
		db.changed.Wait()
	}
	db.mu.Unlock()
	db.timer.Stop()
	close(db.stopRelease)
	<-db.released
	var err error
	if l := db.steplog; l != nil {
		// The file takes what is logged, so that it is whole on its own,
		// and the log goes: a store closed cleanly is one file.
		if len(l.pending) > 0 {
			err = db.commit([]op{{fn: func(*Tx) error { return nil }, file: true}}, false)[0]
		}
		if err == nil {
			err = os.Remove(l.path)
		}
	}
	return errors.Join(err, db.closeStepLog(), db.bolt.Close())
}

// closeStepLog closes the log of used steps, if any.
func (db *DB) closeStepLog() error {
	if db.steplog == nil {
		return nil
	}
	return db.steplog.f.Close()
}

// releaseEvery is how often the store file's pages leave the resident set
// while the store is open (releaseMapped). Under load every commit reads
// back, through the mapping, the pages the one before appended to the
// audit log and the used steps, a few megabytes a second: a minute's worth
// (Prune releases them too) was more than a hundred.
const releaseEvery = 15 * time.Second

// releaseLoop releases the mapped pages every releaseEvery until Close.
func (db *DB) releaseLoop() {
	defer close(db.released)
	t := time.NewTicker(releaseEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			db.releaseMapped()
		case <-db.stopRelease:
			return
		}
	}
}

// enqueue queues a write nobody waits for: it is committed with the next
// write someone waits for, or after auditDelay.
func (db *DB) enqueue(o op) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.room(); err != nil {
		return err
	}
	db.seq++
	o.seq = db.seq
	db.audits = append(db.audits, o)
	db.commitLater()
	return nil
}

// queuedBatches is how many batches of writes may wait behind the commit
// under way before writers wait too: audit entries, which requests do not
// wait for, keep coming while a disk sync stalls for milliseconds. Two
// batches of MaxBatch's default are 4,096 writes, what sixteen of 256
// were, a few hundred milliseconds of a busy node's audit entries.
const queuedBatches = 2

// commitLater sets the timer, with mu held, to commit the audit entries
// queued: after auditDelay, or at once when they fill a batch.
func (db *DB) commitLater() {
	switch {
	case len(db.audits) >= db.maxBatch && !db.auditBusy:
		db.timerSet = true
		db.timer.Reset(0)
	case len(db.audits) > 0 && !db.timerSet:
		db.timerSet = true
		db.timer.Reset(auditDelay)
	}
}

// room waits, with mu held, until the queue has room for one more write
// (at most queuedBatches × MaxBatch wait), committing what is queued
// itself if no one does. It fails once the store is closed, except for a
// writer that was already waiting: Close writes it too.
func (db *DB) room() error {
	if db.closed {
		return ErrClosed
	}
	for db.queued() >= db.maxQueue {
		// A writer that commits to make room is counted as waiting too,
		// so that Close, which may come meanwhile, waits for it.
		switch {
		case !db.auditBusy && len(db.audits) > 0:
			db.auditBusy = true
			db.blocked++
			db.leadAudits()
			db.mu.Lock()
			db.blocked--
			db.changed.Broadcast()
		case !db.busy && len(db.queue) > 0:
			db.busy = true
			db.blocked++
			db.lead()
			db.mu.Lock()
			db.blocked--
			db.changed.Broadcast()
		default:
			db.blocked++
			db.changed.Wait()
			db.blocked--
		}
	}
	return nil
}

// appendNext puts v in b under the bucket's next sequence number, 8 bytes
// big-endian, so that a cursor reads the values in the order written.
// Such a bucket is only appended to (and pruned from its start), so its
// pages are filled before they split rather than left half empty: half
// the pages on disk, in memory and to write.
func appendNext(b *bolt.Bucket, v []byte) error {
	b.FillPercent = appendFill
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return b.Put(k[:], v)
}

// appendFill is how full the pages of a bucket only appended to are left.
const appendFill = 1.0

// Queued returns how many writes wait for a commit: behind the one under
// way, if any.
func (db *DB) Queued() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.queued()
}

// queued is how many writes wait, with mu held.
func (db *DB) queued() int { return len(db.queue) + len(db.audits) }

// View runs fn in a read-only transaction. A damaged page met on the way
// is an error that wraps ErrDamaged, not a panic. With etcd, fn reads
// this node's watched copy, also while etcd cannot be reached.
func (db *DB) View(fn func(*Tx) error) error {
	if db.etcd != nil {
		return db.guarded(fn, func() error { return fn(&Tx{kv: db.etcd.reader(), db: db}) })
	}
	return db.guarded(fn, func() error {
		return db.bolt.View(func(tx *bolt.Tx) error { return fn(db.boltTx(tx)) })
	})
}

// Update runs fn in a read-write transaction that may be shared with the
// functions of other concurrent callers, and returns when it is on disk
// (a commit of used TOTP steps alone: in the log's page cache, steplog.go).
// If fn returns an error, fn's changes are discarded and the error returned.
// fn may run more than once, so it must set its results afresh each time
// and have no effects outside the transaction. With etcd, fn runs again
// when another node changed a key it read before its writes were
// committed, and the writes fail with ErrUnavailable while etcd cannot be
// reached.
func (db *DB) Update(fn func(*Tx) error) error {
	if db.etcd != nil {
		return db.etcd.update(fn)
	}
	// fn may append audit entries of its own (AppendAudit): the entries
	// queued before it are committed with it, so that the log keeps the
	// order things happened in.
	return db.wait(op{fn: fn, flush: true})
}

// local runs fn in the file, committed together with the writes of
// other callers that queue meanwhile. There is no goroutine of the
// store's own on the way: a writer that finds no commit under way
// commits itself, with whatever is queued (the leader); one that finds a
// commit under way queues its function and waits, and when that commit
// is done its leader hands the next one to the first writer waiting,
// which commits the writes queued by then, its own among them (audit
// entries only as take says). A
// write thus costs its caller no hand-over to another goroutine and back
// when the store is idle, and under load the writes that come during one
// commit share the next one's disk syncs.
func (db *DB) local(fn func(*Tx) error) error {
	return db.wait(op{fn: fn})
}

// wait queues o, with a channel of its own to hear on, and returns its
// result once committed (see local).
func (db *DB) wait(o op) error {
	done := doneChans.Get().(chan error)
	o.done = done
	db.mu.Lock()
	if err := db.room(); err != nil {
		db.mu.Unlock()
		doneChans.Put(done)
		return err
	}
	db.seq++
	o.seq = db.seq
	db.queue = append(db.queue, o)
	if db.busy {
		db.mu.Unlock()
	} else {
		db.busy = true
		db.lead()
	}
	for {
		err := <-done
		if err != errLead {
			doneChans.Put(done) // empty again: every op hears its result once
			return err
		}
		db.mu.Lock()
		db.lead()
	}
}

// doneChans are the channels waiting writers hear on, reused.
var doneChans = sync.Pool{New: func() any { return make(chan error, 1) }}

// lead commits, with mu held and busy set by the caller (it returns with mu
// released), a batch taken
// from the queue (see take), and then hands the next commit to the first
// writer waiting in the queue, if any; else busy is cleared. Once the
// store is closed it commits until the queue is empty. Audit entries
// that no waited write takes along are committed beside it (leadAudits).
func (db *DB) lead() {
	for {
		// A batch that takes audit entries along takes them in turn with
		// the commits of audit entries on their own.
		along := db.closed || slices.ContainsFunc(db.queue, func(o op) bool { return o.flush })
		if along {
			db.mu.Unlock()
			db.fileMu.Lock()
			db.mu.Lock()
		}
		batch := db.take(db.closed)
		if len(db.audits) == 0 && db.timerSet {
			// The audit entries it was set for are in this batch. If it
			// fires all the same, it finds nothing, or entries queued
			// since, written a little early.
			db.timer.Stop()
			db.timerSet = false
		}
		db.changed.Broadcast()
		db.mu.Unlock()
		errs := db.commit(batch, false)
		if along {
			db.fileMu.Unlock()
		}
		db.mu.Lock()
		// The next leader hears first, so that the disk is not left idle
		// while the writers of this batch are woken; they are told with
		// mu released, which the next leader takes at once.
		if len(db.queue) > 0 {
			db.auditLater()
			db.queue[0].done <- errLead // busy stays set: that writer leads now
			db.batch = nil              // and takes a batch of its own
			db.mu.Unlock()
			tell(batch, errs)
			return
		}
		tell(batch, errs)
		clear(batch)
		db.batch = batch[:0]
		if len(db.queue) == 0 || !db.closed {
			break
		}
	}
	db.busy = false
	db.commitLater()
	db.changed.Broadcast()
	db.mu.Unlock()
}

// leadAudits commits, with mu held and auditBusy set by the caller (it
// returns with mu released), the audit entries queued, in batches of up
// to MaxBatch, for as long as they fill one (all of them once the store
// is closed). It runs beside the leader of the waited writes: a commit of
// the file takes a few milliseconds (its disk syncs, the pages of a
// couple of thousand entries), and a TOTP answer's used step, which goes
// to the log of used steps without a write of the file (logSteps), need
// not wait for it.
func (db *DB) leadAudits() {
	for {
		db.mu.Unlock()
		db.fileMu.Lock()
		db.mu.Lock()
		n := min(len(db.audits), db.maxBatch)
		batch := append(db.auditBatch[:0], db.audits[:n]...)
		rest := copy(db.audits, db.audits[n:])
		clear(db.audits[rest:])
		db.audits = db.audits[:rest]
		if len(db.audits) == 0 && db.timerSet {
			db.timer.Stop()
			db.timerSet = false
		}
		db.changed.Broadcast()
		db.mu.Unlock()
		if len(batch) > 0 {
			db.commit(batch, true) // nobody waits: commit counts what it drops
		}
		db.fileMu.Unlock()
		db.mu.Lock()
		clear(batch)
		db.auditBatch = batch[:0]
		if len(db.audits) == 0 || len(db.audits) < db.maxBatch && !db.closed {
			break
		}
	}
	db.auditBusy = false
	db.commitLater()
	db.changed.Broadcast()
	db.mu.Unlock()
}

// auditLater sets the timer, with mu held and a commit to be handed on,
// if audit entries are queued and it is not set.
func (db *DB) auditLater() {
	if !db.timerSet && len(db.audits) > 0 {
		db.timerSet = true
		db.timer.Reset(auditDelay)
	}
}

// tell gives the writers of a batch their results.
func tell(batch []op, errs []error) {
	for i, o := range batch {
		if o.done != nil {
			o.done <- errs[i]
		}
	}
}

// take moves up to MaxBatch writes from the queues, in the order they
// came, into the batch to commit. Without audit, it takes only the writes
// someone waits for, and the audit entries queued before an Update or a
// Flush among them: the others wait for a commit of their own, beside
// (leadAudits), so that the commit a TOTP answer waits for (CommitIf)
// writes only what the answer needs. An audit entry appended adds a page
// to the commit, and the pages above it in the audit log's tree, and a
// request waits for every page its commit writes; in commits of their
// own, a few milliseconds' entries share those pages. Without a flush
// the audit entries left are not gone through: a commit of used steps
// takes about 10 µs, and copying a busy node's 2,000 queued entries at
// each one cost 5 % of its CPU at concurrency 16.
func (db *DB) take(audit bool) []op {
	// The audit entries to take along: all of them, or those queued
	// before the last flush among the waited writes (a prefix, as both
	// are in the order they came).
	var flushSeq uint64
	for _, o := range db.queue {
		if o.flush {
			flushSeq = o.seq
		}
	}
	along := len(db.audits)
	if !audit {
		along, _ = slices.BinarySearchFunc(db.audits, flushSeq, func(o op, seq uint64) int { return cmp.Compare(o.seq, seq) })
	}
	// The waited writes and those audit entries, merged in their order,
	// up to MaxBatch; what is left keeps its place.
	batch, queue, audits := db.batch[:0], db.queue[:0], db.audits[:0]
	for i, j := 0, 0; i < len(db.queue) || j < along; {
		var o op
		waited := j == along || i < len(db.queue) && db.queue[i].seq < db.audits[j].seq
		if waited {
			o, i = db.queue[i], i+1
		} else {
			o, j = db.audits[j], j+1
		}
		switch {
		case len(batch) < db.maxBatch:
			batch = append(batch, o)
		case waited:
			queue = append(queue, o)
		default:
			audits = append(audits, o)
		}
	}
	clear(db.queue[len(queue):])
	db.queue = queue
	if along > 0 {
		audits = append(audits, db.audits[along:]...)
		clear(db.audits[len(audits):])
		db.audits = audits
	}
	return batch
}

// commitAudit commits the audit entries queued auditDelay ago, unless a
// commit of audit entries is under way: that one takes them, or sets the
// timer again for those it leaves.
func (db *DB) commitAudit() {
	db.mu.Lock()
	db.timerSet = false
	if db.auditBusy || len(db.audits) == 0 {
		db.mu.Unlock()
		return
	}
	db.auditBusy = true
	db.leadAudits()
}

// auditDelay is the longest a write nobody waits for is held back, so
// that a stream of them does not cost one commit each: a commit of the
// file costs about 250 µs of CPU (two disk syncs, the meta page and the
// freelist) however few entries it holds, and holds the commit queue,
// where TOTP answers wait for their steps, for a millisecond or more.
// With whitelisted Accepts, whose audit entries are the only writes,
// commits every 2 ms took about a seventh of the node's CPU. Held 20 ms,
// in batches of 256, a node doing 7,000 TOTP flows a second committed the
// file about 60 times a second; held 100 ms, in batches of up to 2,048
// (MaxBatch's default), about 10 times, each commit longer but the queue
// held a third as long in all, and that node did 9 % more flows a second
// at concurrency 16 and 14 % more at 64 (the README's Performance). With
// etcd, every commit of this node's file is the audit log's own. A crash
// loses the entries queued and not yet committed, those of the last
// 100 ms, or more while the disk stalls (up to queuedBatches × MaxBatch):
// nobody waits for them (an admin's change is committed with its own
// entries).
const auditDelay = 100 * time.Millisecond

// commit runs a batch in one transaction. When one function fails the
// transaction is rolled back and the functions run again (rerun), so
// that one failure cannot take others with it: each that someone waits
// for in a transaction of its own, the audit entries between them
// together.
// A damaged page that a function or bbolt's commit meets is an error, for
// that function or for all: never a panic that ends the loop. audits says
// that the batch is audit entries alone (leadAudits): their commit leaves
// the log of used steps to the queue's leader.
func (db *DB) commit(batch []op, audits bool) []error {
	errs := make([]error, len(batch))
	steps, failed, err := db.writeOps(batch, audits)
	switch {
	case err == nil:
		db.keepSteps(steps)
	case failed < 0:
		// The commit itself failed (disk full, I/O error): nothing was written.
		for i := range errs {
			errs[i] = fmt.Errorf("commit: %w", err)
		}
	case len(batch) == 1:
		errs[0] = err // the function's own error, as it returned it
	default:
		db.rerun(batch, errs, failed, audits)
	}
	written, dropped := 0, 0
	var why error
	for i, o := range batch {
		switch {
		case o.done != nil:
		case errs[i] != nil:
			dropped++
			why = errs[i]
		default:
			written++
		}
	}
	db.dropped.note(db, written, dropped, why) // before the waiters hear: Flush is then a flush of the audit queue
	return errs
}

// rerun runs the functions of ops again after their commit failed at
// ops[failed], setting errs. Each function someone waits for runs alone,
// for an answer of its own, and so does the one that failed. The audit
// entries between them, which nobody waits for, run together, in the
// order they came: alone each would cost a commit of the file while the
// queue, and the answers behind it, wait, and a batch takes up to
// MaxBatch of them. A run of them that fails again is split the same way
// at its own failure, so that each round leaves one function out.
func (db *DB) rerun(ops []op, errs []error, failed int, audits bool) {
	for i := 0; i < len(ops); {
		j := i + 1
		if ops[i].done == nil && i != failed {
			for j < len(ops) && ops[j].done == nil && j != failed {
				j++
			}
		}
		steps, f, err := db.writeOps(ops[i:j], audits)
		switch {
		case err == nil:
			db.keepSteps(steps)
		case j-i == 1:
			errs[i] = err
		case f < 0:
			for k := i; k < j; k++ {
				errs[k] = fmt.Errorf("commit: %w", err)
			}
		default:
			db.rerun(ops[i:j], errs[i:j], f, audits)
		}
		i = j
	}
}

// writeOps runs the functions of ops in one transaction and returns the
// TOTP steps they used. When it fails, failed is the index of the
// function that failed, or -1 when the commit itself did. Writes someone
// waits for, with no audit entry queued and nothing that asks for the
// file among them, go to the log of used steps when that is all they
// wrote (logSteps); everything else commits the file (write).
func (db *DB) writeOps(ops []op, audits bool) (steps map[string]int64, failed int, err error) {
	failed = -1
	run := func(t *Tx) error {
		for i, o := range ops {
			if err := db.guarded(o.fn, func() error { return o.fn(t) }); err != nil {
				failed = i
				return err
			}
		}
		return nil
	}
	// CommitIf's writes (local) alone are tried read-only first. An
	// Update's function (flush) is run once, in the file's transaction,
	// whose used steps alone still go to the log (write): the callers of
	// Update count on that.
	stepsOnly := db.steplog != nil && !audits && !slices.ContainsFunc(ops, func(o op) bool {
		return o.file || o.flush || o.done == nil
	})
	file := slices.ContainsFunc(ops, func(o op) bool { return o.file })
	if stepsOnly {
		logged := false
		err = db.guarded(db.commit, func() error {
			var err error
			steps, logged, err = db.logSteps(run)
			return err
		})
		if logged || err != nil {
			return steps, failed, err
		}
		failed = -1 // they run again, in the file
	}
	how := writeAny
	switch {
	case audits:
		how = writeAudits
	case file:
		how = writeFile
	}
	err = db.guarded(db.commit, func() error {
		var err error
		steps, err = db.write(how, run)
		return err
	})
	return steps, failed, err
}

// writeHow is what write may do with a transaction.
type writeHow int

const (
	// writeAny: when the functions wrote nothing but used steps, those
	// go to the log of used steps; otherwise the file is committed,
	// with the steps logged before.
	writeAny writeHow = iota
	// writeFile: the file is committed, with the steps logged before
	// (Backup, Close, PruneSteps).
	writeFile
	// writeAudits: audit entries on their own (leadAudits): the file is
	// committed and the log of used steps left alone.
	writeAudits
)

// logSteps runs fn in a read-only transaction: when all it did was use
// TOTP steps (UseStep), they go to the log of used steps, as one frame
// written with write(2) and no wait for the disk (steplog.go), and
// logged is true. It is false, with nothing written, when fn failed or
// tried to write anything else, or the steps do not fit in the log, or
// one is above the high step (fence.go): the caller then commits the
// file. Only the queue's leader calls it, so a frame follows the checks
// of the steps in it without another step used between them; a commit
// of audit entries beside it (leadAudits) neither reads nor writes steps,
// nor the log.
func (db *DB) logSteps(fn func(*Tx) error) (steps map[string]int64, logged bool, err error) {
	tx, err := db.bolt.Begin(false)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback()
	t := db.boltTx(tx)
	t.bolt.stepsOnly = true
	if err := fn(t); err != nil || t.bolt.wrote {
		return nil, false, nil
	}
	l, used := db.steplog, t.bolt.used
	if !l.fits(used) || newest(t.bolt.steps) > db.high || !l.current(tx) {
		return nil, false, nil
	}
	if len(used) > 0 {
		t0 := time.Now()
		if err := l.append(used); err != nil {
			return nil, false, err
		}
		db.syncs.stepLog.observe(time.Since(t0))
	}
	return t.bolt.steps, true, nil
}

// write runs fn in a transaction on the file and returns once what fn
// wrote is on disk (used steps alone: in the log, in the page cache),
// with the TOTP steps fn used, newest per user; how says what it may do
// (writeHow). A commit of the file that takes the log's steps (all but
// writeAudits) starts the log's next generation, this commit's ID, which
// the file keeps (keyGeneration).
func (db *DB) write(how writeHow, fn func(*Tx) error) (map[string]int64, error) {
	tx, err := db.bolt.Begin(true)
	if err != nil {
		return nil, err
	}
	defer func() {
		if tx.DB() != nil { // fn failed or panicked, or the commit failed
			tx.Rollback()
		}
	}()
	l, id := db.steplog, uint64(tx.ID())
	if how == writeAudits {
		l = nil
	}
	var logged [][]byte // the steps logged before, when this commit takes them
	if l != nil {
		logged = l.pending
	}
	if how == writeFile { // first, for fn to find them (PruneSteps)
		if err := appendSteps(tx, logged); err != nil {
			return nil, err
		}
		logged = nil
	}
	t := db.boltTx(tx)
	if err := fn(t); err != nil {
		return nil, err
	}
	if err := db.trimAudit(t); err != nil {
		// A trim must never fail the writes it came with: from now on the
		// audit log is left to PruneAudit, which reports the damage once
		// a minute, and this commit is made again without it.
		if db.trimOff.CompareAndSwap(false, true) {
			db.log.Error("the audit log's oldest entries cannot be removed as it is written; it is pruned once a minute until the store is opened again", "err", err)
		}
		tx.Rollback()
		return db.write(how, fn)
	}
	used, top := t.bolt.used, newest(t.bolt.steps)
	// No node made means nothing written in the file: bbolt writes only
	// the nodes a put, delete or sequence changed. A step above the high
	// step commits the file, which raises it (fence.go).
	if l != nil && how == writeAny && nodesMade(tx) == 0 && l.fits(used) && top <= db.high && l.current(tx) {
		tx.Rollback()
		if len(used) > 0 {
			t0 := time.Now()
			if err := l.append(used); err != nil {
				return nil, err
			}
			db.syncs.stepLog.observe(time.Since(t0))
		}
		return t.bolt.steps, nil
	}
	if err := appendSteps(tx, slices.Concat(logged, used)); err != nil {
		return nil, err
	}
	if l != nil {
		// The log's next generation is this commit, which takes every
		// entry logged before; a step above the high step raises it
		// (fence.go).
		if err := putStep(tx.Bucket(bucketBoot), keyGeneration, int64(id)); err != nil {
			return nil, err
		}
		if top > db.high {
			if err := raiseHigh(tx, top); err != nil {
				return nil, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if l != nil {
		db.high = max(db.high, top)
	}
	// The pages' write and sync, then the meta page's: not the time spent
	// building the pages, nor waiting to remap the file.
	stats := tx.Stats()
	db.syncs.file.observe(stats.GetWriteTime())
	if l != nil {
		l.restart(id)
	}
	return t.bolt.steps, nil
}

// nodesMade returns how many of the file's nodes tx has made to change.
func nodesMade(tx *bolt.Tx) int64 {
	s := tx.Stats()
	return s.GetNodeCount()
}

// appendSteps appends entries of used steps to the steps bucket.
func appendSteps(tx *bolt.Tx, entries [][]byte) error {
	b := tx.Bucket(bucketSteps)
	for _, e := range entries {
		if err := appendNext(b, e); err != nil {
			return err
		}
	}
	return nil
}

// Tx is a transaction handed to View and Update functions.
type Tx struct {
	kv kv
	tx *bolt.Tx // the file; nil in a transaction on etcd
	db *DB
	// audit holds the entries AppendAudit encoded in a transaction on
	// etcd, written to the file once it is committed.
	audit [][]byte
	// audited counts the entries appended to the audit log in the file.
	audited int
	bolt    boltKV // kv in a transaction on the file: one allocation for both
}

// boltTx is a transaction on the file.
func (db *DB) boltTx(tx *bolt.Tx) *Tx {
	t := &Tx{tx: tx, db: db, bolt: boltKV{tx: tx, db: db}}
	t.kv = &t.bolt
	return t
}

// Meta returns a value from the store's own settings, or nil.
func (tx *Tx) Meta(key string) []byte {
	v := tx.kv.get(bucketMeta, []byte(key))
	return append([]byte(nil), v...)
}

// PutMeta sets a value in the store's own settings.
func (tx *Tx) PutMeta(key string, value []byte) error {
	return tx.kv.put(bucketMeta, []byte(key), value)
}

// Backup writes a consistent copy of the store to path, through a
// read-only transaction, so the server keeps serving; the copy is written
// to a temporary file first and renamed, so a failed backup leaves no
// half-written file. It returns the size written.
//
// With etcd the copy holds the cluster's store as etcd had it at one
// revision, and this node's audit log: a single node can run from it with
// the bbolt engine.
func (db *DB) Backup(path string) (int64, error) {
	if db.etcd != nil {
		return db.etcd.backup(path)
	}
	// The steps logged so far go into the file first: the copy is whole
	// on its own.
	if err := db.wait(op{fn: func(*Tx) error { return nil }, file: true}); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	var n int64
	err = db.guarded(db.Backup, func() error {
		return db.bolt.View(func(tx *bolt.Tx) error {
			var err error
			n, err = tx.WriteTo(f)
			return err
		})
	})
	if err == nil {
		err = f.Sync()
	}
	return finishBackup(tmp, path, f.Close(), err, n)
}

// finishBackup puts a backup written to tmp in place at path, once the
// writing (err) and the closing (cerr) have gone well; otherwise it
// removes tmp. n is the size written.
func finishBackup(tmp, path string, cerr, err error, n int64) (int64, error) {
	if err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("backup to %s: %w", path, err)
	}
	return n, nil
}

// MaxPrunedAudit is the most audit entries PruneAudit removes in one
// transaction: the logins' writes wait while it runs, and 10,000 (what it
// was) held them up for tens of milliseconds, once a minute.
const MaxPrunedAudit = 1000

// PruneAudit removes audit entries older than before, at most
// MaxPrunedAudit, and returns how many: call it again while that is
// MaxPrunedAudit.
func (db *DB) PruneAudit(before time.Time) (int, error) {
	n := 0
	err := db.local(func(tx *Tx) error {
		var err error
		n, err = pruneAudit(tx.tx, before, MaxPrunedAudit)
		return err
	})
	return n, err
}

// pruneAudit removes, from the start of the audit log, at most most
// entries older than before (and any whose time cannot be read), and
// returns how many.
func pruneAudit(tx *bolt.Tx, before time.Time, most int) (int, error) {
	n := 0
	c := tx.Bucket(bucketAudit).Cursor()
	for k, v := c.First(); k != nil && n < most; {
		if t, ok := entryTime(v); ok && !t.Before(before) {
			break // entries are in time order
		}
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
		k, v = c.Seek(k)
	}
	return n, nil
}

// SetAuditKeep sets how long the audit log keeps its entries (0: for
// ever). From then on every commit that appends entries to the log also
// removes, from its start, up to as many entries past that age and
// auditTrimSlack more (trimAudit). The log thus stays near its retention
// a little at a time, in the commits the audit log makes anyway, where
// PruneAudit alone would remove a minute's entries at once: transactions
// of a thousand deletes, back to back, that the logins' writes queue
// behind. PruneAudit is still what removes what is left, as after a
// restart.
func (db *DB) SetAuditKeep(keep time.Duration) { db.auditKeep.Store(int64(max(keep, 0))) }

// AuditKeep is how long the audit log keeps its entries, as SetAuditKeep
// set it (0: for ever).
func (db *DB) AuditKeep() time.Duration { return time.Duration(db.auditKeep.Load()) }

// auditTrimSlack is how many entries past their age a commit removes
// beyond the entries it appends: a log behind its retention catches up.
const auditTrimSlack = 64

// trimAudit removes old entries from the audit log in t, as many as t
// appended and auditTrimSlack more (SetAuditKeep). A damaged page at the
// log's start is an error here, not a panic; write then turns trimming
// off and commits without it.
func (db *DB) trimAudit(t *Tx) error {
	keep := time.Duration(db.auditKeep.Load())
	if keep <= 0 || t.audited == 0 || db.trimOff.Load() {
		return nil
	}
	return guard(db.path, func() error {
		_, err := pruneAudit(t.tx, db.now().Add(-keep), t.audited+auditTrimSlack)
		return err
	})
}
