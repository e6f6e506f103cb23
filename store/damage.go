package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// A damaged file — a page overwritten, the file cut short — makes bbolt
// panic, or read past the end of the file it maps, when a transaction
// reaches the damage. The store checks every bucket when it is opened,
// and turns what a transaction meets later into an error instead of a
// crash: a request fails, the process lives on.

// ErrDamaged is wrapped by the errors of a store whose file is damaged.
var ErrDamaged = errors.New("store is damaged")

// damagedError names the file and what was found, on one line.
type damagedError struct {
	path string
	what string
}

func (e *damagedError) Error() string {
	return fmt.Sprintf("store %s is damaged (%s); restore it from a copy made by otpgate backup", e.path, e.what)
}

func (e *damagedError) Unwrap() error { return ErrDamaged }

func damaged(path, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	what = strings.Join(strings.Fields(what), " ") // one line, whatever bbolt said
	if len(what) > 300 {
		what = what[:300] + "…"
	}
	return &damagedError{path: path, what: what}
}

// guard runs fn, turning a fault in the mapped file (a page past the end
// of a file cut short) into a panic, which the runtime would otherwise
// die of, and a panic into an error: a damagedError when the panic came
// from bbolt or from such a fault, else a panicError (a bug in fn).
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			if _, fault := v.(interface{ Addr() uintptr }); fault || panickedInBolt() {
				err = damaged(path, "%v", v)
			} else {
				err = &panicError{v: v, stack: debug.Stack()}
			}
		}
	}()
	return fn()
}

// panickedInBolt reports whether the panic being recovered was raised in
// bbolt's code: the first frame above the runtime's.
func panickedInBolt() bool {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)]) // above this and guard's deferred function
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") {
			return strings.HasPrefix(f.Function, "go.etcd.io/bbolt")
		}
		if !more {
			return false
		}
	}
}

// panicError is a panic in a transaction's function that bbolt did not
// raise: a bug, not damage.
type panicError struct {
	v     any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic in a store transaction: %v", e.v) }

// guarded is guard for a transaction of the open store, and logs the
// failure at error level with the function that met it.
func (db *DB) guarded(fn any, run func() error) error {
	err := guard(db.path, run)
	var d *damagedError
	var p *panicError
	switch {
	case errors.As(err, &d):
		db.log.Error("store damaged: a transaction failed", "op", funcName(fn), "err", err)
	case errors.As(err, &p):
		db.log.Error("a transaction failed", "op", funcName(fn), "err", err, "stack", string(p.stack))
	}
	return err
}

// funcName names fn, such as "admin.(*Service).listUsers.func1".
func funcName(fn any) string {
	f := runtime.FuncForPC(reflect.ValueOf(fn).Pointer())
	if f == nil {
		return "unknown"
	}
	name := f.Name()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// openBolt opens the file with bbolt, which reads its meta pages and free
// list at once: a file cut short or with a damaged meta page fails here.
func openBolt(path string, opts *bolt.Options) (*bolt.DB, error) {
	var b *bolt.DB
	err := guard(path, func() error {
		var err error
		b, err = bolt.Open(path, 0o600, opts)
		return err
	})
	for _, e := range []error{berrors.ErrInvalid, berrors.ErrChecksum, berrors.ErrVersionMismatch, berrors.ErrInvalidMapping} {
		if errors.Is(err, e) {
			return nil, damaged(path, "%v", err)
		}
	}
	return b, err
}

// walk reads the buckets through, key by key, in one read-only
// transaction: every page reached, as bbolt reaches them, and every key
// and value touched. It finds pages that are not what their parent says
// (bbolt panics), pages past the end of the file (a fault) and keys out of
// order (garbage that bbolt took for a page).
//
// Its cost is reading the file: on a store of 100,000 users and two
// million audit entries (1.1 GB), 0.15 s from the page cache, 9 s from a
// cold disk. Everything but the audit log is small and read whole; the
// audit log, which only grows, is read from its newest entry back (where
// it is written) for at most auditWalk when budget is set. Check reads it
// all.
func (db *DB) walk(budget bool) error {
	start := time.Now()
	return guard(db.path, func() error {
		return db.bolt.View(func(tx *bolt.Tx) error {
			fi, err := os.Stat(db.path)
			if err != nil {
				return err
			}
			if fi.Size() < tx.Size() {
				return damaged(db.path, "the file is %d bytes, its pages reach %d: it was cut short", fi.Size(), tx.Size())
			}
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				c := b.Cursor()
				first, next, before := c.First, c.Next, func(a, b []byte) bool { return bytes.Compare(a, b) < 0 }
				if bytes.Equal(name, bucketAudit) {
					first, next, before = c.Last, c.Prev, func(a, b []byte) bool { return bytes.Compare(a, b) > 0 }
				}
				var prev []byte
				var sink byte
				n := 0
				for k, v := first(); k != nil; k, v = next() {
					if prev != nil && !before(prev, k) {
						return damaged(db.path, "bucket %s: keys out of order", name)
					}
					if v == nil {
						return damaged(db.path, "bucket %s: a bucket inside it, where otpgate keeps none", name)
					}
					sink ^= k[len(k)-1] // touch both ends: a key or value outside the file faults here
					if len(v) > 0 {
						sink ^= v[0] ^ v[len(v)-1]
					}
					prev = k
					if n++; budget && n%4096 == 0 && bytes.Equal(name, bucketAudit) && time.Since(start) > auditWalk {
						break
					}
				}
				_ = sink
				return nil
			})
		})
	})
}

// auditWalk is how long Open spends at most on reading the audit log
// through, after the rest.
const auditWalk = 2 * time.Second

// Check reads every bucket through, the whole audit log too, then runs
// bbolt's own consistency check over the file (Tx.Check: every page
// reachable once, or free).
// The walk goes first because Tx.Check runs in a goroutine of its own,
// where a panic on a damaged page cannot be recovered. Tx.Check keeps a
// map of every page: on a large store it takes seconds and memory.
func (db *DB) Check() error {
	if err := db.walk(false); err != nil {
		return err
	}
	return guard(db.path, func() error {
		return db.bolt.View(func(tx *bolt.Tx) error {
			var errs []error
			for err := range tx.Check() {
				errs = append(errs, err)
			}
			if len(errs) > 0 {
				return damaged(db.path, "%d problem(s), the first: %v", len(errs), errs[0])
			}
			return nil
		})
	})
}
