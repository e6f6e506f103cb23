package radius

import (
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

func (d *dropCounter) add(cause string, src netip.AddrPort) {
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
	d.log.Warn("packet dropped", "cause", cause, "src", src.String(), "count", n)
}

func (d *dropCounter) snapshot() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.total)
}
