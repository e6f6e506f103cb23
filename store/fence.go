package store

import (
	"bytes"
	"encoding/binary"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/otpgate/otpgate/otp"
)

// The fence: what keeps a TOTP code single-use across a crash of the
// machine, now that a used step is written to the log of used steps
// without waiting for the disk (steplog.go).
//
// A frame that write(2) has taken is in the kernel's page cache: every
// process that reads the log afterwards sees it, however the process
// that wrote it ended (kill -9, a panic, the OOM killer). Only a crash
// of the machine itself (power, a kernel panic, a VM reset) can lose it,
// and with it the steps of the logins of the last moments (the file
// takes the logged steps with its next commit, which every login's audit
// entry asks for within auditDelay). The kernel makes a new boot ID at
// every boot, so Open can tell the two apart: when the log was left
// behind (the store was not closed) and the boot is not the one the
// store was last opened in, steps may be lost, and Open raises a fence
// at the TOTP step of the moment it runs. Until time has moved past it,
// every user reads as having used the fence's step and the steps their
// phone's clock may be ahead by (otp.Skew, and the drift learned for
// them): a code a lost frame accepted came at or before that moment, so
// its step is refused, and so is every other code of those steps. Users
// wait for the next code, at most about a minute. The fence and the boot
// are kept in the file, so that a fence raised survives a crash of the
// process while it stands.
//
// The fence is judged by the clock when Open runs; a clock behind by
// more than the steps it adds could let a code of the last moments
// before the crash be used again, so otpgate should start after the
// clock is set (the packaged unit waits for time-sync.target).

var (
	bucketBoot = []byte("boot") // the boot the store was opened in, and the fence
	keyBoot    = []byte("boot")
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

// raiseFence records this boot in tx and returns the fence: the one kept
// in the file, raised to the step of now when the log of used steps was
// left behind in another boot (or one that cannot be told).
func raiseFence(tx *bolt.Tx, logLeft bool, now int64) (int64, error) {
	b, err := tx.CreateBucketIfNotExists(bucketBoot)
	if err != nil {
		return 0, err
	}
	var fence int64
	if v := b.Get(keyFence); len(v) == 8 {
		fence = int64(binary.BigEndian.Uint64(v))
	}
	boot := currentBoot()
	if logLeft && (boot == "" || !bytes.Equal(b.Get(keyBoot), []byte(boot))) {
		fence = max(fence, now)
		if err := b.Put(keyFence, binary.BigEndian.AppendUint64(nil, uint64(fence))); err != nil {
			return 0, err
		}
	}
	if !bytes.Equal(b.Get(keyBoot), []byte(boot)) {
		if err := b.Put(keyBoot, []byte(boot)); err != nil {
			return 0, err
		}
	}
	return fence, nil
}

// fenced raises tot's LastStep to the fence, and the steps the user's
// phone may be ahead of it, as ReadUser reports it.
func (db *DB) fenced(tot *TOTP) *TOTP {
	if db.fence == 0 {
		return tot
	}
	last := db.fence + otp.Skew + int64(max(tot.Drift, -tot.Drift))
	if last <= tot.LastStep {
		return tot
	}
	t := *tot
	t.LastStep = last
	return &t
}

// Fence returns the TOTP step up to which codes are refused after a crash
// of the machine (0: none was raised).
func (db *DB) Fence() int64 { return db.fence }

// stepOf returns the TOTP step of the store's clock now.
func (db *DB) stepOf() int64 { return otp.Step(db.now()) }
