package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"syscall"
	"time"
)

// op is one request or one flow, run by a load loop on its own socket.
type op func(c *conn) error

// load is how one cell is run: concurrency, how long, against what.
type load struct {
	addr    string        // the server's address
	pid     int           // the server's process, for its CPU time
	conc    int           // load loops, each with its own socket
	warmup  time.Duration // run but not counted
	measure time.Duration // counted
	timeout time.Duration // per request
}

// cell is what one run of a load found.
type cell struct {
	ops       int             // operations finished in the measured window
	window    time.Duration   // the measured window
	lat       []time.Duration // their latencies, sorted
	rtt       []time.Duration // the latencies of their round trips (one or two each), sorted
	timeouts  int             // requests with no answer within the timeout
	failures  int             // wrong answers
	failure   error           // the first wrong answer
	serverCPU time.Duration   // user+system time of the server in the window
	benchCPU  time.Duration   // the load generator's own CPU time in the window
	// stepSync is the median time of otpgate's writes of used
	// steps while the cell ran, warm-up included, by its own metric; 0
	// for FreeRADIUS and when there were none.
	stepSync time.Duration
}

func (c cell) rate() float64 { return float64(c.ops) / c.window.Seconds() }

// pct is the p-th percentile latency (0 < p < 100), or 0 without data.
func (c cell) pct(p float64) time.Duration {
	if len(c.lat) == 0 {
		return 0
	}
	return c.lat[min(len(c.lat)-1, int(float64(len(c.lat))*p/100))]
}

// rttPct is the p-th percentile latency of a single round trip.
func (c cell) rttPct(p float64) time.Duration {
	if len(c.rtt) == 0 {
		return 0
	}
	return c.rtt[min(len(c.rtt)-1, int(float64(len(c.rtt))*p/100))]
}

// perOp is d per operation: CPU time per request or flow.
func (c cell) perOp(d time.Duration) time.Duration {
	if c.ops == 0 {
		return 0
	}
	return d / time.Duration(c.ops)
}

// run runs newOp's operations in l.conc loops: l.warmup first, then
// l.measure in which each operation that finishes is counted.
// Operations under way at the end are not.
func (l load) run(ctx context.Context, newOp func(loop int) op) (cell, error) {
	conns := make([]*conn, l.conc)
	for i := range conns {
		c, err := dial(l.addr, l.timeout)
		if err != nil {
			for _, c := range conns[:i] {
				c.close()
			}
			return cell{}, err
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()

	start := time.Now()
	from, until := start.Add(l.warmup), start.Add(l.warmup+l.measure)
	type tally struct {
		lat, rtt           []time.Duration
		timeouts, failures int
		failure            error
	}
	tallies := make([]tally, l.conc)

	var wg sync.WaitGroup
	for i := range l.conc {
		wg.Go(func() {
			t := &tallies[i]
			o := newOp(i)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(until) {
					return
				}
				conns[i].rtts = conns[i].rtts[:0]
				err := o(conns[i])
				t1 := time.Now()
				if t1.Before(from) {
					continue
				}
				// A success counts when it finished in the window; a
				// timeout or wrong answer when it overlapped the window,
				// so that a stall at the end is not lost.
				switch {
				case err == nil:
					if t1.Before(until) {
						t.lat = append(t.lat, t1.Sub(t0))
						t.rtt = append(t.rtt, conns[i].rtts...)
					}
				case errors.Is(err, errTimeout):
					t.timeouts++
				default:
					t.failures++
					if t.failure == nil {
						t.failure = err
					}
				}
			}
		})
	}
	// The CPU times of the window are read on the clock, here.
	sleepUntil(ctx, from)
	server0, bench0 := processCPU(l.pid), selfCPU()
	sleepUntil(ctx, until)
	server1, bench1 := processCPU(l.pid), selfCPU()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return cell{}, err
	}

	r := cell{window: l.measure, serverCPU: server1 - server0, benchCPU: bench1 - bench0}
	for _, t := range tallies {
		r.lat = append(r.lat, t.lat...)
		r.rtt = append(r.rtt, t.rtt...)
		r.timeouts += t.timeouts
		r.failures += t.failures
		if r.failure == nil {
			r.failure = t.failure
		}
	}
	r.ops = len(r.lat)
	slices.Sort(r.lat)
	slices.Sort(r.rtt)
	return r, nil
}

// selfCPU is the load generator's own user+system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sleepUntil sleeps until t or until ctx is done.
func sleepUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}
