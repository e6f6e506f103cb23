package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// What the store's write of a used step took inside otpgate while a cell
// ran, from its own metric (otpgate_store_sync_duration_seconds, kind
// step_log), printed beside the target at concurrency 1, which adds the
// disk's sync time as the bench measures it on the quiet machine
// (sync.go): otpgate's write does not wait for the disk (store/fence.go).

// syncHistogram is the cumulative counts of one kind of the store's
// writes by upper bound, as otpgate reports them; the last bound
// is +Inf.
type syncHistogram struct {
	bounds []float64 // seconds
	counts []uint64
}

// The kinds of the store's writes (store/synctimes.go).
const (
	syncStepLog = "step_log" // a used step's frame, what a TOTP answer waits for
	syncFile    = "file"     // a commit of the bbolt file
)

// readSyncHistogram reads the histogram of kind from otpgate's metrics at url.
func readSyncHistogram(url, kind string) (syncHistogram, error) {
	var h syncHistogram
	if url == "" {
		return h, errors.New("its metrics' address is not known")
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("%s: %s", url, resp.Status)
	}
	prefix := `otpgate_store_sync_duration_seconds_bucket{kind="` + kind + `",le="`
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		le, count, ok := strings.Cut(rest, `"} `)
		if !ok {
			return h, fmt.Errorf("%s: cannot read %q", url, sc.Text())
		}
		b, err1 := strconv.ParseFloat(le, 64)
		n, err2 := strconv.ParseUint(count, 10, 64)
		if err1 != nil || err2 != nil {
			return h, fmt.Errorf("%s: cannot read %q", url, sc.Text())
		}
		h.bounds, h.counts = append(h.bounds, b), append(h.counts, n)
	}
	if err := sc.Err(); err != nil {
		return h, err
	}
	if len(h.bounds) == 0 {
		return h, fmt.Errorf("%s: no histogram of the store's %s writes", url, kind)
	}
	return h, nil
}

// medianSince is the median of the writes counted in h and not in before
// (read earlier from the same server), interpolated within its bucket;
// 0 when there were none.
func (h syncHistogram) medianSince(before syncHistogram) time.Duration {
	return h.quantileSince(before, 0.5)
}

// quantileSince is the quantile q of the writes counted in h and not in
// before, interpolated within its bucket (the lower bound of the last,
// open one); 0 when there were none.
func (h syncHistogram) quantileSince(before syncHistogram, q float64) time.Duration {
	n := h.countSince(before)
	if n == 0 {
		return 0
	}
	rank := float64(n) * q
	lower, below := 0.0, 0.0
	for i, b := range h.bounds {
		in := float64(h.counts[i] - before.counts[i])
		if in >= rank {
			if i == len(h.bounds)-1 { // above the last finite bound
				return time.Duration(lower * float64(time.Second))
			}
			at := lower + (b-lower)*(rank-below)/(in-below)
			return time.Duration(at * float64(time.Second))
		}
		lower, below = b, in
	}
	return 0
}

// countSince is how many writes h counts that before did not; 0 when the
// two are not of the same histogram.
func (h syncHistogram) countSince(before syncHistogram) uint64 {
	if len(before.counts) != len(h.counts) || len(h.counts) == 0 {
		return 0
	}
	return h.counts[len(h.counts)-1] - before.counts[len(before.counts)-1]
}
