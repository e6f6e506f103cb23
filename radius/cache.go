package radius

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// replayCache remembers the answers to recent requests so that a
// retransmission (RFC 5080 §2.2.2: same source address and port,
// identifier and request authenticator; over TLS the same connection too)
// gets the same bytes again and the decision does not run twice.
//
// Arrivals are kept in a ring in the order they came, which is the order
// they are forgotten in: after the window, or sooner when the ring is full
// or the answers' bytes reach maxBytes. The ring grows as needed up to its
// bound, and never shrinks: its memory, and the index's, is what the bound
// in bytes pays for first.
type replayCache struct {
	window   time.Duration
	slots    int // the most arrivals kept
	maxBytes int // 0: no bound in bytes

	seed  maphash.Seed
	mu    sync.Mutex
	index map[uint64]uint64 // a live arrival's key's hash → its number; its slot is ring[n%len(ring)]
	ring  []replaySlot
	head  uint64 // the oldest arrival still in the ring
	tail  uint64 // the next arrival's number
	bytes int    // what the live arrivals take, by entryBytes
}

type replayKey struct {
	src  netip.AddrPort
	conn uint64 // the RadSec connection's number; 0 over UDP
	id   byte
	auth [16]byte
}

// replaySlot is one arrival.
type replaySlot struct {
	key      replayKey
	at       int64  // Unix nanoseconds of the answer, or of the arrival while there is none
	response []byte // nil while the first copy is being handled
	live     bool   // false once forgotten, until the ring's head passes it
}

// DefaultMaxDuplicateBytes is Server.MaxDuplicateBytes's default: 64 MiB,
// about 220,000 answers of 120 bytes, which is the whole default window
// (30 s) up to 7,300 requests a second, and FreeRADIUS's (cleanup_delay,
// 5 s) up to 44,000 a second, more than two cores answer.
const DefaultMaxDuplicateBytes = 64 << 20

// entryOverhead is what an entry takes besides its response's bytes: its
// slot in the ring (104 bytes), its key's hash and number in the index
// (16 bytes, in tables up to half empty after they grow), and what the
// allocator rounds the response's bytes up to.
// TestReplayCacheBytes holds the cache to it.
const entryOverhead = 176

// entryBytes is what an entry with response takes.
func entryBytes(response []byte) int { return entryOverhead + cap(response) }

// newReplayCache keeps answers for window, at most max of them, in at
// most maxBytes (0: no bound in bytes).
func newReplayCache(window time.Duration, maxEntries, maxBytes int) *replayCache {
	slots := maxEntries
	if maxBytes > 0 {
		slots = min(slots, max(1, maxBytes/entryOverhead))
	}
	return &replayCache{window: window, slots: slots, maxBytes: maxBytes, seed: maphash.MakeSeed(), index: make(map[uint64]uint64)}
}

// find returns the number of k's live arrival. The index holds hashes,
// which takes a sixth of the memory keys would; the key in the slot
// settles it.
func (c *replayCache) find(h uint64, k replayKey) (uint64, bool) {
	n, ok := c.index[h]
	return n, ok && c.slot(n).key == k
}

// begin registers a request. It returns seen=false for a new request, which
// the caller then handles and finishes; for a retransmission it returns
// seen=true and the cached response, nil while the first is in progress.
func (c *replayCache) begin(k replayKey, now time.Time) (response []byte, seen bool) {
	h := maphash.Comparable(c.seed, k) // before the lock: the seed never changes
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if n, ok := c.find(h, k); ok {
		return c.slot(n).response, true
	}
	if _, ok := c.index[h]; ok {
		// Another key with the same 64-bit hash (as good as never): this
		// one is decided without the cache's help.
		return nil, false
	}
	for c.tail-c.head >= uint64(c.slots) || c.maxBytes > 0 && c.bytes+entryOverhead > c.maxBytes {
		c.drop() // room for k
	}
	if c.tail-c.head >= uint64(len(c.ring)) {
		c.grow()
	}
	n := c.tail
	c.tail++
	*c.slot(n) = replaySlot{key: k, at: now.UnixNano(), live: true}
	c.index[h] = n
	c.bytes += entryOverhead
	return nil, false
}

// finish stores the response to a request begun with begin.
func (c *replayCache) finish(k replayKey, response []byte, now time.Time) {
	h := maphash.Comparable(c.seed, k)
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.find(h, k)
	if !ok {
		return
	}
	// The window runs from the answer: a request held for a long time
	// (an approval) is still remembered after it is answered.
	s := c.slot(n)
	c.bytes += cap(response) - cap(s.response)
	s.response, s.at = response, now.UnixNano()
	for c.maxBytes > 0 && c.bytes > c.maxBytes {
		c.drop()
	}
}

// forget drops a request that got no answer, so a retransmission is handled afresh.
func (c *replayCache) forget(k replayKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := maphash.Comparable(c.seed, k)
	if n, ok := c.find(h, k); ok {
		s := c.slot(n)
		c.bytes -= entryBytes(s.response)
		delete(c.index, h)
		*s = replaySlot{} // its place in the ring stays until the head passes
	}
}

// slot is arrival n's place in the ring.
func (c *replayCache) slot(n uint64) *replaySlot { return &c.ring[n%uint64(len(c.ring))] }

// expire drops the arrivals from the oldest while they are answered and
// older than the window: a request still being decided is never forgotten
// for its age. c.mu must be held.
func (c *replayCache) expire(now time.Time) {
	for c.head < c.tail {
		s := c.slot(c.head)
		if s.live && (s.response == nil || now.UnixNano()-s.at < int64(c.window)) {
			return
		}
		c.drop()
	}
}

// drop forgets the oldest arrival. c.mu must be held.
func (c *replayCache) drop() {
	if c.head == c.tail {
		return
	}
	s := c.slot(c.head)
	if s.live {
		c.bytes -= entryBytes(s.response)
		delete(c.index, maphash.Comparable(c.seed, s.key))
	}
	*s = replaySlot{}
	c.head++
}

// grow doubles the ring, up to c.slots. c.mu must be held.
func (c *replayCache) grow() {
	ring := make([]replaySlot, min(c.slots, max(64, 2*len(c.ring))))
	for n := c.head; n < c.tail; n++ {
		ring[n%uint64(len(ring))] = *c.slot(n)
	}
	c.ring = ring
}

// len returns the number of remembered requests.
func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.index)
}
