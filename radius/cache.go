package radius

import (
	"net/netip"
	"sync"
	"time"
)

// replayCache remembers the answers to recent requests so that a
// retransmission (RFC 5080 §2.2.2: same source address and port,
// identifier and request authenticator) gets the same bytes again and the
// decision does not run twice.
type replayCache struct {
	window time.Duration
	max    int

	mu      sync.Mutex
	entries map[replayKey]*replayEntry
	order   []replayKey // arrival order, for expiry; order[head:] are live
	head    int
}

type replayKey struct {
	src  netip.AddrPort
	id   byte
	auth [16]byte
}

type replayEntry struct {
	at       time.Time
	response []byte // nil while the first copy is being handled
}

func newReplayCache(window time.Duration, max int) *replayCache {
	return &replayCache{window: window, max: max, entries: make(map[replayKey]*replayEntry)}
}

// begin registers a request. It returns seen=false for a new request, which
// the caller then handles and finishes; for a retransmission it returns
// seen=true and the cached response, nil while the first is in progress.
func (c *replayCache) begin(k replayKey, now time.Time) (response []byte, seen bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if e, ok := c.entries[k]; ok {
		return e.response, true
	}
	c.entries[k] = &replayEntry{at: now}
	c.order = append(c.order, k)
	return nil, false
}

// finish stores the response to a request begun with begin.
func (c *replayCache) finish(k replayKey, response []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		e.response = response
	}
}

// forget drops a request that got no answer, so a retransmission is handled afresh.
func (c *replayCache) forget(k replayKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
}

// expire drops entries older than the window, and the oldest entries
// beyond max. c.mu must be held.
func (c *replayCache) expire(now time.Time) {
	for c.head < len(c.order) {
		k := c.order[c.head]
		e, ok := c.entries[k]
		live := len(c.order) - c.head
		if ok && now.Sub(e.at) < c.window && live <= c.max {
			break
		}
		if ok {
			delete(c.entries, k)
		}
		c.head++
	}
	if c.head > 1024 && c.head > len(c.order)/2 {
		c.order = append(c.order[:0], c.order[c.head:]...)
		c.head = 0
	}
}

// len returns the number of remembered requests.
func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
