//go:build !linux

package store

// releaseMapped does nothing where madvise is not known to drop a shared
// file mapping's pages (see mapped_linux.go).
func (db *DB) releaseMapped() {}
