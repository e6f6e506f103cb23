package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// soakSample is one interval of the soak run.
type soakSample struct {
	at        time.Duration // since the start
	flows     int           // finished in the interval
	p50, p99  time.Duration // of those flows
	errors    int
	storeSize int64
	mem       memory
	// The store's writes in the interval, by otpgate's metric:
	// the used steps' frames a TOTP answer waits for, and the commits of
	// the file (audit entries, pruning), their p99 each.
	stepWrites, fileCommits uint64
	stepP99, fileP99        time.Duration
	writesRead              bool // false when otpgate's metrics could not be read at either end
	// pruning: one of otpgate's once-a-minute prunings began in the
	// sample, or in the few seconds before it; pruned: one that had
	// entries past the retention to remove had begun by its end.
	pruning, pruned bool
}

// pruneEvery is how often otpgate prunes, counted from its start
// (cmd/otpgate/serve.go); pruneSpill is how long before a sample a
// pruning's work can still fall into it.
const (
	pruneEvery = time.Minute
	pruneSpill = 3 * time.Second
)

// soak runs TOTP flows at a steady rate for o.soak, with the audit log
// kept for o.soakKeep so that pruning has work while it runs, and samples
// the store's size, otpgate's memory and the flows' latency every
// o.soakEvery.
func soak(ctx context.Context, bin, dir string, o options, progress func(string, ...any)) ([]soakSample, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	users := max(o.totpUsers, o.soakRate*40) // more than a step's worth of flows
	progress("soak: writing %d users", users)
	if err := fill(dir, population{totp: users}); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	metricsAddr, err := freeTCPAddr()
	if err != nil {
		return nil, err
	}
	metrics := "http://" + metricsAddr + "/metrics"
	text := fmt.Sprintf(otpgateConfig, addr, metricsAddr, "info", filepath.Join(dir, "otpgate.db"), sharedSecret) +
		fmt.Sprintf("audit: {keep: %s}\n", o.soakKeep)
	started := time.Now() // otpgate's prunings fall at whole minutes from here, give or take its start-up
	og, err := startOtpgateWith(bin, dir, addr, text, "info", nil, nil, true)
	if err != nil {
		return nil, err
	}
	defer og.stop()

	pool := &totpPool{users: users}
	const loops = 64
	every := time.Duration(loops) * time.Second / time.Duration(o.soakRate) // each loop's pace
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	start := time.Now()
	end := start.Add(o.soak)
	var wg sync.WaitGroup
	for loop := range loops {
		wg.Go(func() {
			c, err := dial(og.addr, o.timeout)
			if err != nil {
				mu.Lock()
				errs++
				mu.Unlock()
				return
			}
			defer c.close()
			flow := pool.flow(ctx, loop)
			next := start.Add(every * time.Duration(loop) / loops)
			for ctx.Err() == nil && next.Before(end) {
				sleepUntil(ctx, next)
				next = next.Add(every)
				t0 := time.Now()
				err := flow(c)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					errs++
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		})
	}
	var samples []soakSample
	// A sample whose metrics, or the sample's before it, could not be
	// read shows no writes ("n/a").
	stepsBefore, stepsErr := readSyncHistogram(metrics, syncStepLog)
	filesBefore, filesErr := readSyncHistogram(metrics, syncFile)
	for t := start.Add(o.soakEvery); !t.After(end); t = t.Add(o.soakEvery) {
		sleepUntil(ctx, t)
		if ctx.Err() != nil {
			break
		}
		mu.Lock()
		l, e := lat, errs
		lat, errs = nil, 0
		mu.Unlock()
		slices.Sort(l)
		s := soakSample{at: t.Sub(start), flows: len(l), errors: e}
		for tick := started.Add(pruneEvery); !tick.After(t); tick = tick.Add(pruneEvery) {
			s.pruning = s.pruning || !tick.Before(t.Add(-o.soakEvery-pruneSpill))
			s.pruned = s.pruned || tick.Sub(start) > o.soakKeep // the flows before it are older than the retention
		}
		if len(l) > 0 {
			s.p50, s.p99 = l[len(l)/2], l[min(len(l)-1, len(l)*99/100)]
		}
		if st, err := os.Stat(filepath.Join(dir, "otpgate.db")); err == nil {
			s.storeSize = st.Size()
		}
		s.mem, _ = readMemory(og.cmd.Process.Pid)
		steps, stepsNowErr := readSyncHistogram(metrics, syncStepLog)
		files, filesNowErr := readSyncHistogram(metrics, syncFile)
		if s.writesRead = stepsErr == nil && filesErr == nil && stepsNowErr == nil && filesNowErr == nil; s.writesRead {
			s.stepWrites, s.stepP99 = steps.countSince(stepsBefore), steps.quantileSince(stepsBefore, 0.99)
			s.fileCommits, s.fileP99 = files.countSince(filesBefore), files.quantileSince(filesBefore, 0.99)
		}
		stepsBefore, filesBefore, stepsErr, filesErr = steps, files, stepsNowErr, filesNowErr
		samples = append(samples, s)
		progress("soak: %s: %d flows (%.0f/s), p50 %s, p99 %s, %d errors, store %s, RSS %s, step writes %s, file commits %s",
			s.at.Round(time.Second), s.flows, float64(s.flows)/o.soakEvery.Seconds(), ms(s.p50), ms(s.p99), s.errors, mb(s.storeSize), mb(s.mem.rss),
			s.writes(s.stepWrites, s.stepP99), s.writes(s.fileCommits, s.fileP99))
	}
	wg.Wait()
	return samples, og.stop()
}

func printSoak(w io.Writer, o options, samples []soakSample) {
	if len(samples) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Soak: TOTP flows paced at %d/s for %s, audit log kept %s (pruned once a minute), sampled every %s:\n\n", o.soakRate, o.soak, o.soakKeep, o.soakEvery)
	fmt.Fprintln(w, "| at | flows /s | p50 | p99 | errors | store on disk | otpgate RSS (anonymous, files) | step writes (p99) | file commits (p99) | pruning |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range samples {
		pruning := ""
		if s.pruning {
			pruning = "yes"
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %d | %s | %s (%s, %s) | %s | %s | %s |\n", s.at.Round(time.Second), float64(s.flows)/o.soakEvery.Seconds(),
			ms(s.p50), ms(s.p99), s.errors, mb(s.storeSize), mb(s.mem.rss), mb(s.mem.anon), mb(s.mem.file),
			s.writes(s.stepWrites, s.stepP99), s.writes(s.fileCommits, s.fileP99), pruning)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Targets:")
	printSoakTarget(w, samples)
}

// printSoakTarget compares the p99 of the samples with a pruning in them
// against the others', from the first pruning that had entries to
// remove: the median of the first is to be no more than the highest of
// the others ("pruning must not raise p99").
func printSoakTarget(w io.Writer, samples []soakSample) {
	var with, without []time.Duration
	for _, s := range samples {
		switch {
		case !s.pruned:
		case s.pruning:
			with = append(with, s.p99)
		default:
			without = append(without, s.p99)
		}
	}
	if len(with) == 0 || len(without) == 0 {
		fmt.Fprintln(w, "- pruning does not raise p99: not measured, no pruning with entries to remove fell in the run (make -soak longer than -soak-keep and two minutes)")
		return
	}
	slices.Sort(with)
	slices.Sort(without)
	mid, top, others := with[len(with)/2], without[len(without)-1], without[len(without)/2]
	ratios := make([]string, len(with))
	for i, d := range with {
		ratios[i] = fmt.Sprintf("%.2f", float64(d)/float64(others))
	}
	fmt.Fprintf(w, "- pruning does not raise p99: the median p99 of the %d samples with a pruning, %s, no more than the highest of the %d without, %s (ratios to the median of those without, %s: %s): %s\n",
		len(with), ms(mid), len(without), ms(top), ms(others), strings.Join(ratios, ", "), map[bool]string{true: "met", false: "MISSED"}[mid <= top])
}

// writes shows a count of the store's writes in the sample and their p99.
func (s soakSample) writes(n uint64, p99 time.Duration) string {
	if !s.writesRead {
		return "n/a"
	}
	return fmt.Sprintf("%d (%s)", n, ms(p99))
}
