package radius

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"time"
)

// dropCounter counts packets that got no answer, by cause, and logs each
// cause at most once per interval with the number since the last line.
type dropCounter struct {
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration

	mu     sync.Mutex
	total  map[string]uint64
	quiet  map[string]uint64    // not yet logged
	logged map[string]time.Time // last line per cause
}

func newDropCounter(log *slog.Logger, now func() time.Time) *dropCounter {
	return &dropCounter{log: log, now: now, interval: 10 * time.Second,
		total: map[string]uint64{}, quiet: map[string]uint64{}, logged: map[string]time.Time{}}
}

// add counts a dropped packet; attrs are logged with it (such as the
// client's name).
func (d *dropCounter) add(cause string, src netip.AddrPort, attrs ...any) {
	d.mu.Lock()
	d.total[cause]++
	d.quiet[cause]++
	now := d.now()
	last, seen := d.logged[cause]
	if seen && now.Sub(last) < d.interval {
		d.mu.Unlock()
		return
	}
	n := d.quiet[cause]
	d.quiet[cause] = 0
	d.logged[cause] = now
	d.mu.Unlock()
	level := slog.LevelWarn
	args := []any{"cause", cause, "src", src.String(), "count", n}
	switch cause {
	case "duplicate_in_progress":
		// A gateway retransmits while a login is held or a code is sent:
		// expected traffic, counted in the metrics, not a warning.
		level = slog.LevelDebug
		args = append(args, "why", "a retransmission of a request still being decided")
	case "bad_message_authenticator":
		args = append(args, "why", "wrong shared secret or a changed packet")
	}
	d.log.Log(context.Background(), level, "packet dropped", append(args, attrs...)...)
}

func (d *dropCounter) snapshot() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.total)
}
