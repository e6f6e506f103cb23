package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"
)

// startup is one start of otpgate on a store with many users.
type startup struct {
	ready   time.Duration // exec → the "otpgate ready" log line
	first   time.Duration // exec → the first Accept answered
	atReady memory        // resident set when ready
	settled memory        // resident set a second later, idle
}

// measureStartup fills a store with o.startupUsers TOTP users and starts
// otpgate on it o.startupRuns times, at log level info (the ready line is
// info).
func measureStartup(ctx context.Context, bin, dir string, o options) ([]startup, error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	if err := fill(dir, population{totp: o.startupUsers}); err != nil {
		return nil, err
	}
	var runs []startup
	for range o.startupRuns {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if o.cold {
			if err := dropCaches(); err != nil {
				return nil, err
			}
		}
		og, err := startOtpgate(bin, dir, "info", nil, nil, false)
		if err != nil {
			return nil, err
		}
		var s startup
		s.ready = og.readyAt.Sub(og.started)
		s.atReady, err = readMemory(og.cmd.Process.Pid)
		if err == nil {
			var c *conn
			if c, err = dial(og.addr, 5*time.Second); err == nil {
				// Any user is let in from the office: the first request
				// reads the store.
				err = acceptOp(totpName(0), officeIP)(c)
				s.first = time.Since(og.started)
				c.close()
			}
		}
		if err == nil {
			time.Sleep(time.Second)
			s.settled, err = readMemory(og.cmd.Process.Pid)
		}
		if stopErr := og.stop(); err == nil {
			err = stopErr
		}
		if err != nil {
			return nil, fmt.Errorf("start-up: %w", err)
		}
		runs = append(runs, s)
	}
	return runs, nil
}

// median is the start-up with the median time to ready.
func median(runs []startup) startup {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b startup) int { return int(a.ready - b.ready) })
	return s[len(s)/2]
}

// dropCaches empties the page cache, so that the store is read from disk.
func dropCaches() error {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return fmt.Errorf("-cold: drop the page cache (needs root): %w", err)
	}
	return nil
}
