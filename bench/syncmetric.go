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

// What the store's durable write of a used step took inside otpgate while
// a cell ran, from its own metric (otpgate_store_sync_duration_seconds,
// kind step_log), printed beside the target at concurrency 1: on a virtual
// machine a write that follows an idle moment, as every one does there,
// can take longer than the bench's writes one after another on a quiet
// machine (sync.go), which the target adds.

// stepLogHistogram is the step-log writes' cumulative counts by upper bound,
// as otpgate reports them; the last bound is +Inf.
type stepLogHistogram struct {
	bounds []float64 // seconds
	counts []uint64
}

// readStepLogHistogram reads the histogram from otpgate's metrics at url.
func readStepLogHistogram(url string) (stepLogHistogram, error) {
	var h stepLogHistogram
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
	const prefix = `otpgate_store_sync_duration_seconds_bucket{kind="step_log",le="`
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
		return h, fmt.Errorf("%s: no histogram of the store's step-log writes", url)
	}
	return h, nil
}

// medianSince is the median of the writes counted in h and not in before
// (read earlier from the same server), interpolated within its bucket;
// 0 when there were none.
func (h stepLogHistogram) medianSince(before stepLogHistogram) time.Duration {
	if len(before.counts) != len(h.counts) {
		return 0
	}
	n := h.counts[len(h.counts)-1] - before.counts[len(before.counts)-1]
	if n == 0 {
		return 0
	}
	half := float64(n) / 2
	lower, below := 0.0, 0.0
	for i, b := range h.bounds {
		in := float64(h.counts[i] - before.counts[i])
		if in >= half {
			if i == len(h.bounds)-1 { // above the last finite bound
				return time.Duration(lower * float64(time.Second))
			}
			at := lower + (b-lower)*(half-below)/(in-below)
			return time.Duration(at * float64(time.Second))
		}
		lower, below = b, in
	}
	return 0
}
