package radius

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func key(n int) replayKey {
	k := replayKey{src: netip.MustParseAddrPort("192.0.2.1:40000"), id: byte(n)}
	k.auth[0], k.auth[1], k.auth[2] = byte(n>>8), byte(n), byte(n>>16)
	return k
}

func TestReplayCacheBeginFinish(t *testing.T) {
	c := newReplayCache(30*time.Second, 100, 0)
	k := key(1)

	if resp, seen := c.begin(k, t0); seen || resp != nil {
		t.Fatalf("first begin: got (%q, %v), want (nil, false)", resp, seen)
	}
	if resp, seen := c.begin(k, t0); !seen || resp != nil {
		t.Fatalf("begin while in progress: got (%q, %v), want (nil, true)", resp, seen)
	}
	c.finish(k, []byte("answer"), t0)
	if resp, seen := c.begin(k, t0.Add(time.Second)); !seen || string(resp) != "answer" {
		t.Fatalf("begin after finish: got (%q, %v), want (\"answer\", true)", resp, seen)
	}
	if got := c.len(); got != 1 {
		t.Errorf("len: got %d, want 1", got)
	}
}

func TestReplayCacheHeldLongerThanWindow(t *testing.T) {
	// A request held past the window (an approval) stays in progress, and
	// its answer is then kept for a window from the answer.
	c := newReplayCache(30*time.Second, 100, 0)
	held, other := key(1), key(2)
	c.begin(held, t0)
	c.begin(other, t0.Add(time.Second))
	c.finish(other, []byte("other"), t0.Add(time.Second))
	at := t0.Add(50 * time.Second)
	if resp, seen := c.begin(held, at); !seen || resp != nil {
		t.Fatalf("retransmission during a 50 s hold: got (%q, %v), want in progress", resp, seen)
	}
	c.finish(held, []byte("approved"), at)
	if resp, seen := c.begin(held, at.Add(29*time.Second)); !seen || string(resp) != "approved" {
		t.Errorf("retransmission after the answer: got (%q, %v), want the answer", resp, seen)
	}
	if resp, seen := c.begin(held, at.Add(31*time.Second)); seen {
		t.Errorf("a window after the answer: got (%q, %v), want forgotten", resp, seen)
	}
}

func TestReplayCacheForget(t *testing.T) {
	c := newReplayCache(30*time.Second, 100, 0)
	k := key(1)
	c.begin(k, t0)
	c.forget(k)
	if got := c.len(); got != 0 {
		t.Errorf("len after forget: got %d, want 0", got)
	}
	if resp, seen := c.begin(k, t0); seen || resp != nil {
		t.Errorf("begin after forget: got (%q, %v), want (nil, false)", resp, seen)
	}
	// finish after forget must not bring the entry back.
	c.forget(k)
	c.finish(k, []byte("late"), t0)
	if resp, seen := c.begin(k, t0); seen {
		t.Errorf("begin after forget and finish: got (%q, %v), want (nil, false)", resp, seen)
	}
}

func TestReplayCacheKey(t *testing.T) {
	base := replayKey{src: netip.MustParseAddrPort("192.0.2.1:40000"), id: 7}
	otherPort := base
	otherPort.src = netip.MustParseAddrPort("192.0.2.1:40001")
	otherAddr := base
	otherAddr.src = netip.MustParseAddrPort("192.0.2.2:40000")
	otherID := base
	otherID.id = 8
	otherAuth := base
	otherAuth.auth[15] = 1

	tests := []struct {
		name string
		k    replayKey
	}{
		{"other source port", otherPort},
		{"other source address", otherAddr},
		{"other identifier", otherID},
		{"other authenticator", otherAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newReplayCache(30*time.Second, 100, 0)
			c.begin(base, t0)
			c.finish(base, []byte("answer"), t0)
			if resp, seen := c.begin(tc.k, t0); seen {
				t.Errorf("got (%q, %v), want (nil, false): a new request", resp, seen)
			}
		})
	}
}

func TestReplayCacheExpiry(t *testing.T) {
	const window = 30 * time.Second
	tests := []struct {
		name     string
		after    time.Duration
		wantSeen bool
	}{
		{"at once", 0, true},
		{"just inside the window", window - time.Nanosecond, true},
		{"at the window", window, false},
		{"long after", time.Hour, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newReplayCache(window, 100, 0)
			k := key(1)
			c.begin(k, t0)
			c.finish(k, []byte("answer"), t0)
			if _, seen := c.begin(k, t0.Add(tc.after)); seen != tc.wantSeen {
				t.Errorf("seen: got %v, want %v", seen, tc.wantSeen)
			}
		})
	}
}

func TestReplayCacheExpiryAfterForget(t *testing.T) {
	// A request that got no answer is forgotten and, when retransmitted,
	// begun again later. That must not keep other entries past the window.
	const window = 30 * time.Second
	c := newReplayCache(window, 100, 0)
	x, a, b := key(0), key(1), key(2)
	c.begin(x, t0)
	c.finish(x, []byte("x"), t0)
	c.begin(a, t0.Add(1*time.Second))
	c.forget(a)
	c.begin(b, t0.Add(2*time.Second))
	c.finish(b, []byte("b"), t0.Add(2*time.Second))
	c.begin(a, t0.Add(3*time.Second))
	c.finish(a, []byte("a"), t0.Add(3*time.Second))

	now := t0.Add(2*time.Second + window) // x and b are at least window old, a is not
	if resp, seen := c.begin(b, now); seen {
		t.Errorf("b after its window: got (%q, %v), want (nil, false)", resp, seen)
	}
	if resp, seen := c.begin(x, now); seen {
		t.Errorf("x after its window: got (%q, %v), want (nil, false)", resp, seen)
	}
	if resp, seen := c.begin(a, now); !seen || string(resp) != "a" {
		t.Errorf("a inside its window: got (%q, %v), want (\"a\", true)", resp, seen)
	}
}

func TestReplayCacheMaxAfterForget(t *testing.T) {
	// The arrival list still holds the forgotten first attempt of a; when
	// the bound pushes it out, it must not take a's new entry with it.
	c := newReplayCache(time.Hour, 2, 0)
	x, a := key(0), key(1)
	c.begin(x, t0)
	c.finish(x, []byte("x"), t0)
	c.begin(a, t0)
	c.forget(a)
	c.begin(a, t0) // retransmission of the unanswered request
	c.finish(a, []byte("a"), t0)
	c.begin(key(2), t0) // pushes out the oldest: x
	if resp, seen := c.begin(a, t0); !seen || string(resp) != "a" {
		t.Errorf("a: got (%q, %v), want (\"a\", true)", resp, seen)
	}
}

func TestReplayCacheMaxEntries(t *testing.T) {
	for _, max := range []int{1, 2, 3, 10} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			c := newReplayCache(time.Hour, max, 0)
			const n = 25
			for i := range n {
				if _, seen := c.begin(key(i), t0); seen {
					t.Fatalf("begin(%d): got seen, want new", i)
				}
				c.finish(key(i), []byte(fmt.Sprint(i)), t0)
				if got := c.len(); got > max {
					t.Fatalf("len after %d requests: got %d, want at most %d", i+1, got, max)
				}
			}
			// The newest max are kept, newest first so no lookup evicts
			// one still to be checked.
			for i := n - 1; i >= n-max; i-- {
				resp, seen := c.begin(key(i), t0)
				if !seen || string(resp) != fmt.Sprint(i) {
					t.Errorf("begin(%d): got (%q, %v), want (%q, true)", i, resp, seen, fmt.Sprint(i))
				}
			}
			if got := c.len(); got != max {
				t.Errorf("len after lookups: got %d, want %d", got, max)
			}
			if _, seen := c.begin(key(n-max-1), t0); seen {
				t.Errorf("begin(%d): got seen, want evicted", n-max-1)
			}
		})
	}
}

func TestReplayCacheManyEntries(t *testing.T) {
	// Enough traffic to make the arrival list compact itself.
	const window = 10 * time.Second
	c := newReplayCache(window, 1<<20, 0)
	const n = 5000
	step := 10 * time.Millisecond // 1000 requests per window
	for i := range n {
		c.begin(key(i), t0.Add(time.Duration(i)*step))
		c.finish(key(i), []byte{byte(i)}, t0.Add(time.Duration(i)*step))
	}
	now := t0.Add(time.Duration(n-1) * step)
	if got, want := c.len(), int(window/step); got != want {
		t.Errorf("len: got %d, want %d", got, want)
	}
	last := n - 1
	if resp, seen := c.begin(key(last), now); !seen || resp[0] != byte(last) {
		t.Errorf("newest: got (%v, %v), want ([%d], true)", resp, seen, byte(last))
	}
	if _, seen := c.begin(key(n-999), now); !seen {
		t.Errorf("999 steps back: got new, want seen")
	}
	if _, seen := c.begin(key(n-1001), now); seen {
		t.Errorf("1001 steps back: got seen, want new")
	}
}

func TestReplayCacheBytes(t *testing.T) {
	// A flood of requests, each with its answer, must not take the cache
	// past its bound in bytes: the heap it holds is measured, not its
	// own count of it.
	const maxBytes = 8 << 20
	response := func(i int) []byte { return make([]byte, 40+i%100) } // an Accept to a challenge with a long text
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newReplayCache(time.Hour, 1<<30, maxBytes)
	const n = 300000
	for i := range n {
		c.begin(key(i), t0)
		c.finish(key(i), response(i), t0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d entries in %d bytes: %d bytes each", c.len(), held, held/int64(c.len()))
	if held > maxBytes {
		t.Errorf("heap held by the cache: got %d bytes, want at most %d", held, maxBytes)
	}
	// Not far below it either: the newest answers are kept.
	if got, want := c.len(), maxBytes/(2*(entryOverhead+140)); got < want {
		t.Errorf("entries kept: got %d, want at least %d", got, want)
	}
	if resp, seen := c.begin(key(n-1), t0); !seen || len(resp) != len(response(n-1)) {
		t.Errorf("newest: got (%d bytes, %v), want (%d bytes, true)", len(resp), seen, len(response(n-1)))
	}
	runtime.KeepAlive(c)
}
