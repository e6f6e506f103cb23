package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// The log of used TOTP steps: what records a proved code's step before
// the Access-Accept goes out, in one write(2) and no wait for the disk.
//
// A commit of the bbolt file costs two disk syncs (the pages, then the
// meta page) and the CPU to write half a dozen pages, however little it
// holds; a TOTP answer needs one thing kept, the step its code used.
// So a commit whose functions wrote nothing in the file but used steps
// (UseStep) writes no file at all (DB.write): its steps go, as one frame,
// to the log beside the file, into blocks written when the log was made,
// and the transaction is rolled back. The write returns once the frame is
// in the kernel's page cache, where any process that opens the log later
// finds it, however this one ended; only a crash of the machine can lose
// it, and the fence covers that (fence.go). The steps are held in memory
// too (pending), and the next commit of the file by the queue's leader (a
// step above the high step, about every 30 s, fence.go; the log full; an
// Update; pruning; a backup; Close) appends them to the steps bucket, on
// disk; the commits of audit entries on their own, beside the leader
// (leadAudits), leave them. The frames
// carry a generation, the ID of the last commit that took the log's
// entries, which the file keeps (keyGeneration): that commit took every
// entry logged before it, so the log starts again at its beginning with
// its ID, and frames of an older generation are stale. Open applies
// the frames of the generation the file names, which a crash left
// behind, in its first commit; a clean Close has the file take every
// entry and removes the log, so that a store closed cleanly is one file.
// (A file written before it kept the generation took the log's entries
// at every commit: its generation is its last commit's ID.)
//
// A frame is its length (4 bytes), a CRC-32C of what follows it (4), the
// generation (8), and entries as encodeStep makes them, each after its
// length (2). Reading stops at the first frame that is cut short, fails
// its check or is of another generation: a frame is acknowledged only
// once its write has returned, and every frame before it had been. That
// holds for what a crash of the process leaves; after a crash of the
// machine the disk may hold a later frame without an earlier one, and the
// fence refuses the steps of both (fence.go).

// stepLogSize is the log's size: it is written in full when made, and
// a commit whose frame no longer fits in it writes the file instead
// (which empties the log). A few milliseconds of steps fill a few
// kilobytes.
var stepLogSize int64 = 1 << 20

// stepLog is the open log. Only the leader of the commit queue uses it.
type stepLog struct {
	f    *os.File
	path string
	// gen is the generation written now: the ID of the file's last
	// commit, which took every entry logged before it.
	gen     uint64
	off     int64 // where the next frame goes
	size    int64
	pending [][]byte // the entries logged since the file last took them
}

// stepLogPath is where the log of the store at path is.
func stepLogPath(path string) string { return path + "-steps" }

// openStepLog opens the log beside the store's file, or creates it,
// written in full, and returns it with what it holds: the entries of its
// frames of a generation from gen, the one the file keeps, to last, the
// ID of the file's last commit. left
// reports that a log was there, which a store closed cleanly does not
// leave.
func openStepLog(path string, gen, last uint64) (l *stepLog, entries [][]byte, left bool, err error) {
	path = stepLogPath(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, false, fmt.Errorf("open the log of used steps: %w", err)
	}
	fail := func(err error) (*stepLog, [][]byte, bool, error) {
		f.Close()
		return nil, nil, false, fmt.Errorf("the log of used steps %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	// Never more than stepLogSize is written: what is past it (a damaged
	// file) is not read.
	have := min(st.Size(), stepLogSize)
	buf := make([]byte, have)
	if _, err := io.ReadFull(f, buf); err != nil {
		return fail(err)
	}
	l = &stepLog{f: f, path: path, size: stepLogSize}
	if have < l.size {
		// Written in full, once: later writes only overwrite. On a full
		// disk the log gives back what it took and keeps the size it had
		// (none, when new): the frames that do not fit go to the file's
		// commits, as when it is full.
		_, err := f.WriteAt(make([]byte, l.size-have), have)
		if errors.Is(err, syscall.ENOSPC) {
			l.size, err = have, f.Truncate(have)
		}
		if err != nil {
			return fail(err)
		}
	}
	// On disk before the first frame is written: the log's blocks and
	// its name. After a crash of the machine the log is there, whole,
	// whatever of its frames the disk had taken, and Open knows from it
	// that the store was left open (fence.go). Every time, not only
	// when made here: a log made by an Open that died (or failed) before
	// this sync may not be on disk yet.
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := syncDir(path); err != nil {
		return fail(err)
	}
	return l, readStepLog(buf, gen, last), st.Size() > 0, nil
}

// readStepLog returns the entries of the frames of a generation from gen
// to last at the start of buf.
func readStepLog(buf []byte, gen, last uint64) [][]byte {
	var entries [][]byte
	for len(buf) >= frameHeader {
		n := int(binary.BigEndian.Uint32(buf))
		if n < 8 || n > len(buf)-8 {
			break
		}
		body := buf[8 : 8+n]
		if g := binary.BigEndian.Uint64(body); crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(buf[4:]) ||
			g < gen || g > last {
			break
		}
		for rest := body[8:]; len(rest) >= 2; {
			m := int(binary.BigEndian.Uint16(rest))
			if m > len(rest)-2 {
				break
			}
			entries = append(entries, rest[2:2+m])
			rest = rest[2+m:]
		}
		buf = buf[8+n:]
	}
	return entries
}

// frameHeader is a frame's length, check and generation.
const frameHeader = 16

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fits reports whether a frame of entries fits in what is left of the log.
func (l *stepLog) fits(entries [][]byte) bool {
	n := int64(frameHeader)
	for _, e := range entries {
		n += 2 + int64(len(e))
	}
	return l.off+n <= l.size && len(l.pending)+len(entries) <= maxPendingSteps
}

// maxPendingSteps bounds the entries held for the file.
const maxPendingSteps = 1 << 16

// append writes entries as one frame and returns once the kernel has it
// (see the fence for a crash of the machine).
func (l *stepLog) append(entries [][]byte) error {
	frame := make([]byte, frameHeader, 256)
	binary.BigEndian.PutUint64(frame[8:], l.gen)
	for _, e := range entries {
		if len(e) > 0xffff {
			return errors.New("log a used step: entry too long")
		}
		frame = binary.BigEndian.AppendUint16(frame, uint16(len(e)))
		frame = append(frame, e...)
	}
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-8))
	binary.BigEndian.PutUint32(frame[4:], crc32.Checksum(frame[8:], castagnoli))
	if _, err := l.f.WriteAt(frame, l.off); err != nil {
		return fmt.Errorf("log a used step: %w", err)
	}
	l.off += int64(len(frame))
	l.pending = append(l.pending, entries...)
	return nil
}

// current reports whether the file in tx keeps l's generation: a frame
// written now is one Open applies. They part only when a commit of the
// file failed after bbolt had written its meta page (a sync that failed),
// which the process then reads as committed; such a commit then comes
// again (DB.write) and starts a generation of its own.
func (l *stepLog) current(tx *bolt.Tx) bool {
	b := tx.Bucket(bucketBoot)
	if b == nil {
		return false
	}
	g, err := getStep(b, keyGeneration)
	return err == nil && uint64(g) == l.gen
}

// restart starts generation gen, once the file holds every entry logged
// before it.
func (l *stepLog) restart(gen uint64) {
	l.gen, l.off = gen, 0
	clear(l.pending)
	l.pending = l.pending[:0]
}

// syncDir syncs the directory that holds path, so that a file created in
// it is there after a crash.
var syncDir = func(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
