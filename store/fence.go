package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The fence: what keeps a TOTP code single-use across a crash of the
// machine, now that a used step is written to the log of used steps
// without waiting for the disk (steplog.go).
//
// A frame that write(2) has taken is in the kernel's page cache: every
// process that reads the log afterwards sees it, however the process
// that wrote it ended (kill -9, a panic, the OOM killer). Only a crash
// of the machine itself (power, a kernel panic, a VM reset) can lose it,
// and with it the steps of the logins since the file last took the
// logged steps: the commit of the next step above the high step (below),
// within about 30 seconds, or sooner the log filling up, an Update, a
// backup or pruning.
//
// So that those steps are known all the same, the file keeps a high
// step: no step above it goes to the log. A commit that uses a step above
// it commits the file instead, on disk, and raises the high step to it in
// the same commit; TOTP steps come one every 30 seconds, so that is a
// commit of the file about every 30 seconds (the first login of each new
// step, or of a phone ahead), while the other logins' steps are at or
// below the high step and go to the log. Every step ever accepted is thus
// at most the high step on disk, whatever the disk lost. The kernel makes
// a new boot ID at every boot, so Open can tell a crash of the machine
// from one of the process: when the log was left behind (the store was not
// closed) and the boot is not the one the store was last opened in, Open
// raises a fence at the high step. Every user then reads as having used
// the fence's step (ReadUser), so a code a lost frame accepted is refused,
// and so are the other codes up to that step: users wait until their
// codes pass it, which is the current step or, when a phone found ahead
// (by up to otp.MaxDrift steps and a step more) had just logged in, a few
// steps ahead, and a phone learned to be behind waits as many steps more;
// no wait at all when the machine took longer than that to come back. The
// fence is kept in the file with the boot, and no clock is trusted for it.

var (
	bucketBoot = []byte("boot") // the boot the store was opened in, the high step, the fence
	keyBoot    = []byte("boot")
	keyHigh    = []byte("high")
	keyFence   = []byte("fence")
	// keyGeneration is the log of used steps' generation: the ID of the
	// commit that last took the log's entries into the file (DB.write).
	// Commits of audit entries alone come between, beside the queue's
	// leader, so it is not the file's last commit's ID.
	keyGeneration = []byte("generation")
)

// currentBoot returns the kernel's ID of this boot, or "" where there is
// none to read: then every store left open is fenced.
var currentBoot = func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// raiseFence records this boot in tx and returns the high step and the
// fence: the one kept in the file, raised to the high step when the log
// of used steps was left behind in another boot (or one that cannot be
// told); raised reports that it was.
func raiseFence(tx *bolt.Tx, logLeft bool) (high, fence int64, raised bool, err error) {
	b, err := tx.CreateBucketIfNotExists(bucketBoot)
	if err != nil {
		return 0, 0, false, err
	}
	if high, err = getStep(b, keyHigh); err != nil {
		return 0, 0, false, err
	}
	if fence, err = getStep(b, keyFence); err != nil {
		return 0, 0, false, err
	}
	boot := currentBoot()
	sameBoot := boot != "" && bytes.Equal(b.Get(keyBoot), []byte(boot))
	if logLeft && !sameBoot && high > fence {
		fence, raised = high, true
		if err := putStep(b, keyFence, fence); err != nil {
			return 0, 0, false, err
		}
	}
	if !sameBoot {
		if err := b.Put(keyBoot, []byte(boot)); err != nil {
			return 0, 0, false, err
		}
	}
	return high, fence, raised, nil
}

// reportFence tells the log of a fence raised by Open: users whose codes
// are refused after a crash of the machine should be told why.
func (db *DB) reportFence() {
	// The step's end: steps are of 30 seconds from the Unix epoch
	// (TOTP.LastStep).
	until := time.Unix((db.fence+1)*30, 0)
	db.log.Warn("the store was open when the machine stopped (no clean stop, another boot): TOTP codes of steps up to the newest used before it are refused to every user, so that none is used twice",
		"fence_step", db.fence, "until", until.UTC().Format(time.RFC3339))
}

// raiseHigh raises the high step in tx to step.
func raiseHigh(tx *bolt.Tx, step int64) error {
	return putStep(tx.Bucket(bucketBoot), keyHigh, step)
}

// getStep reads the step kept under key, 0 if none; a value that is not a
// step is damage, not a missing fence.
func getStep(b *bolt.Bucket, key []byte) (int64, error) {
	switch v := b.Get(key); len(v) {
	case 0:
		return 0, nil
	case 8:
		return int64(binary.BigEndian.Uint64(v)), nil
	default:
		return 0, fmt.Errorf("%w: the %s step of the log of used steps is %d bytes long", ErrDamaged, key, len(v))
	}
}

func putStep(b *bolt.Bucket, key []byte, step int64) error {
	return b.Put(key, binary.BigEndian.AppendUint64(nil, uint64(step)))
}

// newest returns the newest of steps, 0 for none.
func newest(steps map[string]int64) int64 {
	var n int64
	for _, s := range steps {
		n = max(n, s)
	}
	return n
}
