package store

import (
	"bytes"
	"encoding/binary"
	"os"

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
// and with it the steps of the logins of its last moments (the file takes
// the logged steps with its next commit, which every login's audit entry
// asks for within auditDelay).
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
// steps ahead; no wait at all when the machine took longer than that to
// come back. The fence is kept in the file with the boot, and no clock
// is trusted for it.

var (
	bucketBoot = []byte("boot") // the boot the store was opened in, the high step, the fence
	keyBoot    = []byte("boot")
	keyHigh    = []byte("high")
	keyFence   = []byte("fence")
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
// told).
func raiseFence(tx *bolt.Tx, logLeft bool) (high, fence int64, err error) {
	b, err := tx.CreateBucketIfNotExists(bucketBoot)
	if err != nil {
		return 0, 0, err
	}
	high, fence = getStep(b, keyHigh), getStep(b, keyFence)
	boot := currentBoot()
	if logLeft && (boot == "" || !bytes.Equal(b.Get(keyBoot), []byte(boot))) && high > fence {
		fence = high
		if err := putStep(b, keyFence, fence); err != nil {
			return 0, 0, err
		}
	}
	if !bytes.Equal(b.Get(keyBoot), []byte(boot)) {
		if err := b.Put(keyBoot, []byte(boot)); err != nil {
			return 0, 0, err
		}
	}
	return high, fence, nil
}

// raiseHigh raises the high step in tx to step.
func raiseHigh(tx *bolt.Tx, step int64) error {
	return putStep(tx.Bucket(bucketBoot), keyHigh, step)
}

func getStep(b *bolt.Bucket, key []byte) int64 {
	if v := b.Get(key); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func putStep(b *bolt.Bucket, key []byte, step int64) error {
	return b.Put(key, binary.BigEndian.AppendUint64(nil, uint64(step)))
}

// fenced raises tot's LastStep to the fence, as ReadUser reports it.
func (db *DB) fenced(tot *TOTP) *TOTP {
	if db.fence <= tot.LastStep {
		return tot
	}
	t := *tot
	t.LastStep = db.fence
	return &t
}

// Fence returns the TOTP step up to which codes are refused after a crash
// of the machine (0: none was raised).
func (db *DB) Fence() int64 { return db.fence }

// newest returns the newest of steps, 0 for none.
func newest(steps map[string]int64) int64 {
	var n int64
	for _, s := range steps {
		n = max(n, s)
	}
	return n
}
