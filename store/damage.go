package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
	"unsafe"

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
	if err != nil {
		db.logFailed(fn, err)
	}
	return err
}

// logFailed logs a transaction that met a damaged page or panicked. It is
// apart from guarded, whose every call would otherwise allocate the
// targets of errors.As.
func (db *DB) logFailed(fn any, err error) {
	var d *damagedError
	var p *panicError
	switch {
	case errors.As(err, &d):
		db.log.Error("store damaged: a transaction failed", "op", funcName(fn), "err", err)
	case errors.As(err, &p):
		db.log.Error("a transaction failed", "op", funcName(fn), "err", err, "stack", string(p.stack))
	}
}

// funcName names fn, a func value, such as
// "admin.(*Service).listUsers.func1". It reads the code address from the
// func value itself rather than through reflect, which would make every
// function handed to View escape to the heap, and with it whatever its
// closure captures: a transaction's function is named only when it fails.
func funcName(fn any) string {
	type eface struct{ typ, data unsafe.Pointer }
	e := (*eface)(unsafe.Pointer(&fn))
	if e.data == nil || reflect.TypeOf(fn).Kind() != reflect.Func {
		return "unknown"
	}
	// A func value is a pointer to its code address (and the closure's
	// variables after it); an interface holds that pointer as it is.
	f := runtime.FuncForPC(*(*uintptr)(e.data))
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
			if err := db.pages(tx); err != nil {
				return err
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

// pages walks the trees of the root bucket and of every bucket in it, as
// the file lays them out, before any cursor runs: a cursor, and bbolt's
// Tx.Check and Bucket.Stats, follow a branch page's children without
// noticing a page they have already been through, so a page that points
// back up its tree (written where another belonged) makes them descend for
// ever, eating memory until the process dies. pages keeps the set of
// branch pages it has seen, and checks that every page a branch names lies
// below the file's high water mark, is no free page, and is a branch or a
// leaf as its siblings are, with every leaf of a tree as deep as the
// others.
//
// It reads each branch page whole (a few in a hundred pages) and of each
// leaf only its header, through bbolt's own map of the file.
func (db *DB) pages(tx *bolt.Tx) error {
	f, err := os.Open(db.path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := &pageWalk{
		db:       db,
		tx:       tx,
		f:        f,
		pageSize: tx.DB().Info().PageSize,
		seen:     make(map[uint64]bool),
	}
	w.end = uint64(tx.Size()) / uint64(w.pageSize)
	return w.tree("the root bucket", uint64(tx.Cursor().Bucket().Root()), true)
}

// pageWalk is the state of pages.
type pageWalk struct {
	db       *DB
	tx       *bolt.Tx
	f        *os.File
	pageSize int
	end      uint64 // the high water mark: the first page id past the file's pages
	seen     map[uint64]bool
}

// Page header and element layouts, as bbolt writes them (little-endian on
// the machines otpgate runs on): a header {id uint64, flags, count uint16,
// overflow uint32}, then count elements of 16 bytes each: a branch's
// {pos, ksize uint32, pgid uint64}, a leaf's {flags, pos, ksize, vsize
// uint32}, pos counted from the element.
const (
	pageHeader   = 16
	pageElement  = 16
	branchPage   = 0x01
	leafPage     = 0x02
	bucketLeaf   = 0x01
	bucketHeader = 16 // a bucket's value: {root pgid, sequence uint64}, then an inline bucket's page
	maxDepth     = 64 // far deeper than any tree of bbolt's, which splits pages of thousands of bytes
)

// tree walks the tree of bucket from its root page; buckets says whether
// its leaves hold buckets (the root bucket's do, otpgate keeps none
// deeper), which it then walks too.
func (w *pageWalk) tree(bucket string, root uint64, buckets bool) error {
	leafDepth := -1
	// walk walks the page id and what is under it, and returns its type.
	var walk func(id uint64, depth int) (string, error)
	walk = func(id uint64, depth int) (string, error) {
		if depth > maxDepth {
			return "", damaged(w.db.path, "bucket %s: its tree is deeper than %d pages", bucket, maxDepth)
		}
		if id < 2 || id >= w.end {
			return "", damaged(w.db.path, "bucket %s: page %d is named, the file has pages 2 to %d", bucket, id, w.end-1)
		}
		info, err := w.tx.Page(int(id))
		if err != nil {
			return "", err
		}
		if info == nil || id+uint64(info.OverflowCount) >= w.end {
			return "", damaged(w.db.path, "bucket %s: page %d runs past the file's last page %d", bucket, id, w.end-1)
		}
		switch info.Type {
		case "leaf":
			if leafDepth < 0 {
				leafDepth = depth
			}
			if depth != leafDepth {
				return "", damaged(w.db.path, "bucket %s: leaf page %d is %d deep, the others %d", bucket, id, depth, leafDepth)
			}
			if buckets {
				b, err := w.read(id, info.OverflowCount)
				if err != nil {
					return "", err
				}
				return info.Type, w.buckets(bucket, id, b)
			}
			return info.Type, nil
		case "branch":
			if w.seen[id] {
				return "", damaged(w.db.path, "bucket %s: branch page %d is reached twice", bucket, id)
			}
			w.seen[id] = true
			b, err := w.read(id, info.OverflowCount)
			if err != nil {
				return "", err
			}
			le := binary.LittleEndian
			if le.Uint64(b) != id {
				return "", damaged(w.db.path, "bucket %s: page %d says it is page %d", bucket, id, le.Uint64(b))
			}
			n := int(le.Uint16(b[10:]))
			if n == 0 || pageHeader+n*pageElement > len(b) {
				return "", damaged(w.db.path, "bucket %s: branch page %d has %d elements", bucket, id, n)
			}
			first := ""
			for i := range n {
				child := le.Uint64(b[pageHeader+i*pageElement+8:])
				kind, err := walk(child, depth+1)
				if err != nil {
					return "", err
				}
				if first == "" {
					first = kind
				} else if kind != first { // siblings are all branches or all leaves
					return "", damaged(w.db.path, "bucket %s: page %d under branch %d is a %s, its siblings %ss", bucket, child, id, kind, first)
				}
			}
			return info.Type, nil
		default: // free, meta, freelist or garbage
			return "", damaged(w.db.path, "bucket %s: page %d is a %s page, where a branch or leaf belongs", bucket, id, info.Type)
		}
	}
	_, err := walk(root, 0)
	return err
}

// read reads page id and its overflow from the file.
func (w *pageWalk) read(id uint64, overflow int) ([]byte, error) {
	b := make([]byte, (1+overflow)*w.pageSize)
	if _, err := w.f.ReadAt(b, int64(id)*int64(w.pageSize)); err != nil {
		return nil, damaged(w.db.path, "page %d: %v", id, err)
	}
	return b, nil
}

// buckets walks the buckets held in a leaf page of the tree of parent:
// each one's own tree, or, for a bucket small enough to live inline in
// its value, the leaf page there.
func (w *pageWalk) buckets(parent string, id uint64, b []byte) error {
	le := binary.LittleEndian
	n := int(le.Uint16(b[10:]))
	if pageHeader+n*pageElement > len(b) {
		return damaged(w.db.path, "bucket %s: leaf page %d has %d elements", parent, id, n)
	}
	for i := range n {
		e := pageHeader + i*pageElement
		flags, pos, ksize, vsize := le.Uint32(b[e:]), int(le.Uint32(b[e+4:])), int(le.Uint32(b[e+8:])), int(le.Uint32(b[e+12:]))
		if flags&bucketLeaf == 0 {
			continue
		}
		k := e + pos
		if k < 0 || k+ksize < k || k+ksize+vsize < k+ksize || k+ksize+vsize > len(b) || vsize < bucketHeader {
			return damaged(w.db.path, "bucket %s: leaf page %d: element %d lies outside it", parent, id, i)
		}
		name, value := string(b[k:k+ksize]), b[k+ksize:k+ksize+vsize]
		if root := le.Uint64(value); root != 0 {
			if err := w.tree(name, root, false); err != nil {
				return err
			}
			continue
		}
		inline := value[bucketHeader:]
		if len(inline) < pageHeader || le.Uint16(inline[8:]) != leafPage {
			return damaged(w.db.path, "bucket %s: its inline page is no leaf", name)
		}
		m := int(le.Uint16(inline[10:]))
		if pageHeader+m*pageElement > len(inline) {
			return damaged(w.db.path, "bucket %s: its inline page has %d elements", name, m)
		}
		for j := range m {
			if le.Uint32(inline[pageHeader+j*pageElement:])&bucketLeaf != 0 {
				return damaged(w.db.path, "bucket %s: a bucket inside it, where otpgate keeps none", name)
			}
		}
	}
	return nil
}

// auditWalk is how long Open spends at most on reading the audit log
// through, after the rest.
const auditWalk = 2 * time.Second

// Check reads every bucket through, the whole audit log too, then runs
// bbolt's own consistency check over the file (Tx.Check: every page
// reachable once, or free).
// The walk goes first because Tx.Check runs in a goroutine of its own:
// bbolt 1.5 turns a panic there into an error, but a fault reading a page
// past the file's end (SetPanicOnFault holds only for the goroutine that
// set it) still ends the process. Tx.Check keeps a map of every page: on
// a large store it takes seconds and memory.
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
