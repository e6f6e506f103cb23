package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/otpgate/otpgate/store"
)

// cmdCheckStore reads a store through, the whole audit log too, and runs
// bbolt's own consistency check: more than the server checks at start-up,
// which reads the audit log for two seconds at most.
func cmdCheckStore(args []string, stdout io.Writer) error {
	fs := newFlags("check-store")
	configPath := fs.String("config", "", "configuration `FILE` (default: the embedded defaults)")
	pos, err := parse(fs, args, -1)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("check-store takes at most one file, for example: otpgate check-store /var/backups/otpgate.db")
	}
	s, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	path := s.storePath
	if len(pos) == 1 {
		path = pos[0]
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("check store: %w", err)
	}
	start := time.Now()
	db, err := store.Open(path, store.Options{Timeout: 2 * time.Second})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w; check a copy instead: otpgate backup /tmp/otpgate-copy.db && otpgate check-store /tmp/otpgate-copy.db", err)
	}
	if err != nil {
		return err
	}
	if err := db.Check(); err != nil {
		db.Close()
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "store %s is sound: every bucket read through, every page accounted for (%s)\n", path, time.Since(start).Round(time.Millisecond))
	return nil
}
