package radius

import (
	"net/netip"
	"sync"
	"time"
)

// replayCache remembers the answers to recent requests so that a
// retransmission (RFC 5080 §2.2.2: same source address and port,
// identifier and request authenticator; over TLS the same connection too)
// gets the same bytes again and the decision does not run twice.
type replayCache struct {
	window time.Duration
	max    int

	mu      sync.Mutex
	entries map[replayKey]replayEntry
	order   []replaySlot // arrival order, for expiry; order[head:] are live or forgotten
	head    int
	arrived uint64 // arrivals so far, numbering them
}

// replaySlot is one arrival. seq tells a forgotten arrival from a later
// one with the same key.
type replaySlot struct {
	key replayKey
	seq uint64
}

type replayKey struct {
	src  netip.AddrPort
	conn uint64 // the RadSec connection's number; 0 over UDP
	id   byte
	auth [16]byte
}

type replayEntry struct {
	at       time.Time
	response []byte // nil while the first copy is being handled
	seq      uint64 // the arrival's number
}

func newReplayCache(window time.Duration, max int) *replayCache {
	return &replayCache{window: window, max: max, entries: make(map[replayKey]replayEntry)}
}

// begin registers a request. It returns seen=false for a new request, which
// the caller then handles and finishes; for a retransmission it returns
// seen=true and the cached response, nil while the first is in progress.
func (c *replayCache) begin(k replayKey, now time.Time) (response []byte, seen bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now, c.max)
	if e, ok := c.entries[k]; ok {
		return e.response, true
	}
	c.expire(now, c.max-1) // room for k
	c.arrived++
	c.entries[k] = replayEntry{at: now, seq: c.arrived}
	c.order = append(c.order, replaySlot{key: k, seq: c.arrived})
	return nil, false
}

// finish stores the response to a request begun with begin.
func (c *replayCache) finish(k replayKey, response []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		// The window runs from the answer: a request held for a long
		// time (an approval) is still remembered after it is answered.
		e.response, e.at = response, now
		c.entries[k] = e
	}
}

// forget drops a request that got no answer, so a retransmission is handled afresh.
func (c *replayCache) forget(k replayKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
}

// expire drops entries older than the window, then the oldest entries
// until at most keep remain. c.mu must be held.
func (c *replayCache) expire(now time.Time, keep int) {
	for c.head < len(c.order) {
		s := c.order[c.head]
		if e, ok := c.entries[s.key]; ok && e.seq == s.seq {
			inProgress := e.response == nil
			if (inProgress || now.Sub(e.at) < c.window) && len(c.entries) <= keep {
				break // a request still being decided is never forgotten for its age
			}
			delete(c.entries, s.key)
		}
		c.order[c.head] = replaySlot{} // let the response go
		c.head++
	}
	if c.head > 1024 && c.head > len(c.order)/2 {
		n := copy(c.order, c.order[c.head:])
		clear(c.order[n:])
		c.order = c.order[:n]
		c.head = 0
	}
}

// len returns the number of remembered requests.
func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
