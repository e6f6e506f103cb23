package store

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// releaseMapped takes the store file's pages out of this process's
// resident set: bbolt reads the file through a shared mapping, and every
// page read once (the whole file, when Open walks it) stays counted in
// RSS although it is the kernel's page cache, shared and dropped under
// pressure, and not the process's own memory. The pages stay in the page
// cache; the next read of one maps it again at the cost of a minor fault.
//
// It runs inside a read transaction, which holds off bbolt's remapping
// of the file, so that the range advised is the mapping itself.
func (db *DB) releaseMapped() {
	db.bolt.View(func(tx *bolt.Tx) error {
		if data := db.bolt.Info().Data; data != 0 && tx.Size() > 0 {
			syscall.Syscall(syscall.SYS_MADVISE, data, uintptr(tx.Size()), syscall.MADV_DONTNEED)
		}
		return nil
	})
}
