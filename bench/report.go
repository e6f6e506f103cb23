package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// row is one line of the table: a scenario at one concurrency, otpgate's
// cells against FreeRADIUS's, each measured just before its otpgate cell.
type row struct {
	scenario string
	conc     int
	og, fr   []cell
	ogB      []cell // -compare's build, a cell beside each of og's
}

// med is the median over cells of one figure.
func med(cells []cell, f func(cell) time.Duration) time.Duration {
	var ds []time.Duration
	for _, c := range cells {
		ds = append(ds, f(c))
	}
	return medianOf(ds)
}

// medRate is the median rate of cells.
func medRate(cells []cell) float64 {
	var rs []float64
	for _, c := range cells {
		rs = append(rs, c.rate())
	}
	slices.Sort(rs)
	return rs[len(rs)/2]
}

func p50(c cell) time.Duration    { return c.pct(50) }
func p99(c cell) time.Duration    { return c.pct(99) }
func rtt99(c cell) time.Duration  { return c.rttPct(99) }
func srvCPU(c cell) time.Duration { return c.perOp(c.serverCPU) }
func genCPU(c cell) time.Duration { return c.perOp(c.benchCPU) }

// errs sums the timeouts and wrong answers of cells.
func errs(cells []cell) cell {
	var t cell
	for _, c := range cells {
		t.timeouts += c.timeouts
		t.failures += c.failures
		if t.failure == nil {
			t.failure = c.failure
		}
	}
	return t
}

// report is everything the bench found.
type report struct {
	opts             options
	rows             []row
	pop              population
	storeSize        int64
	ogMem            memory   // otpgate after the runs
	frMem            memory   // FreeRADIUS after the runs
	frTroubles       int      // FreeRADIUS log lines with Error or WARNING
	frSamples        []string // the first of them
	totpWaits        int      // TOTP flows that waited for a fresh step
	strayCodes       int      // codes in the log nobody waited for
	startup          []startup
	sync             syncTimes
	replayAfterCrash crashCheck
	scale            []scaleResult
	soak             []soakSample
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

func errorsOf(c cell) string {
	if c.timeouts == 0 && c.failures == 0 {
		return "0"
	}
	return fmt.Sprintf("%d timeouts, %d wrong", c.timeouts, c.failures)
}

func (r report) print(w io.Writer) {
	o := r.opts
	host, _ := os.Hostname()
	fmt.Fprintf(w, "otpgate vs FreeRADIUS 3.2 (PAP for the whitelisted Accept, rlm_totp's challenge flow for the flows), %s, %d CPUs, %s, %s, median of %d cells of %s each after %s warm-up, timeout %s, otpgate log level %s\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), host, runtime.Version(), o.reps, o.measure, o.warmup, o.timeout, o.logLevel)
	fmt.Fprintln(w, "| scenario | concurrency | FreeRADIUS does | otpgate /s | FreeRADIUS /s | ratio | otpgate p50 | FreeRADIUS p50 | otpgate p99 | FreeRADIUS p99 | p99 ratio | otpgate p99 per round trip | server CPU per op otpgate / FreeRADIUS | load generator CPU per op otpgate / FreeRADIUS | errors otpgate / FreeRADIUS |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, x := range r.rows {
		ogRate, frRate := medRate(x.og), medRate(x.fr)
		fmt.Fprintf(w, "| %s | %d | %s | %.0f | %.0f | %.2f | %s | %s | %s | %s | %.2f | %s | %s / %s | %s / %s | %s / %s |\n",
			scenarioNames[x.scenario], x.conc, peerNames[x.scenario], ogRate, frRate, ogRate/frRate,
			ms(med(x.og, p50)), ms(med(x.fr, p50)), ms(med(x.og, p99)), ms(med(x.fr, p99)),
			float64(med(x.og, p99))/float64(med(x.fr, p99)), ms(med(x.og, rtt99)),
			us(med(x.og, srvCPU)), us(med(x.fr, srvCPU)), us(med(x.og, genCPU)), us(med(x.fr, genCPU)),
			errorsOf(errs(x.og)), errorsOf(errs(x.fr)))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Rates are operations finished per second: single requests for the whitelisted Accept (FreeRADIUS: PAP from its users file), whole flows for the TOTP rows (Access-Request with the password → Access-Challenge with a State → Access-Request with the code → Access-Accept, on both sides). Each figure is the median over the row's cells. The p99 per round trip is over every single request of the flows counted. CPU per op is user+system time in the measured window divided by the operations finished: the server's (all threads), and the load generator's own (it shares the machine's cores with the server under test, and reads otpgate's log).")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- The disk: fdatasync of a 4 kB write on the store's disk %s (median of %d); a frame of used steps written with O_DSYNC, the store's sync time that the target at concurrency 1 allows, %s; a commit of the store's file %s (bbolt: two fdatasyncs, data then meta page)\n",
		ms(r.sync.fdatasync), syncSamples, ms(r.sync.step), ms(r.sync.commit))
	fmt.Fprintln(w, "- What each side guarantees: otpgate refuses a TOTP code used once, also after a crash or restart (the step used is in its log of used steps, in the kernel's page cache, before the Accept is sent, and on disk with the file's next commit, the audit log's within 100 ms while the disk keeps up; after a crash of the machine, which may lose the last of those writes, every step up to the newest used before it is refused to every user); rlm_totp keeps no record of codes used (the same code is accepted again within its 30 s step, by as many requests as come) and writes nothing to disk")
	cc := r.replayAfterCrash
	fmt.Fprintf(w, "- A code accepted just before otpgate was killed (SIGKILL), tried again after it restarted: accepted the first time: %v; the second time: %s\n", cc.accepted, cc.reason)
	fmt.Fprintf(w, "- otpgate peak RSS during the runs (VmHWM): %s; at the end %s resident, of which %s anonymous (heap, stacks) and %s mapped files (the binary and the bbolt store, %s on disk by then, %d users), %d threads\n",
		mb(r.ogMem.peak), mb(r.ogMem.rss), mb(r.ogMem.anon), mb(r.ogMem.file), mb(r.storeSize), r.pop.total(), r.ogMem.threads)
	fmt.Fprintf(w, "- FreeRADIUS peak RSS (VmHWM): %s, %d threads\n", mb(r.frMem.peak), r.frMem.threads)
	if len(r.startup) > 0 {
		m := median(r.startup)
		var all []string
		for _, s := range r.startup {
			all = append(all, fmt.Sprintf("%.0f", float64(s.ready)/float64(time.Millisecond)))
		}
		cache := "page cache warm"
		if o.cold {
			cache = "page cache dropped before each start"
		}
		fmt.Fprintf(w, "- With %d users in the store (%s): start-up, exec to \"otpgate ready\", %s (median of %d: %s ms); first Accept answered %s after exec; RSS at ready %s (anonymous %s, files %s), a second later %s; peak %s\n",
			o.startupUsers, cache, ms(m.ready), len(r.startup), strings.Join(all, ", "), ms(m.first),
			mb(m.atReady.rss), mb(m.atReady.anon), mb(m.atReady.file), mb(m.settled.rss), mb(m.settled.peak))
	}
	if r.totpWaits > 0 {
		fmt.Fprintf(w, "- WARNING: %d TOTP flows waited for a new 30 s step because all %d TOTP users had logged in in this one: the TOTP rows are too low; run again with a larger -totp-users\n", r.totpWaits, o.totpUsers)
	}
	if r.strayCodes > 0 {
		fmt.Fprintf(w, "- %d codes in otpgate's log were not waited for (flows that had timed out)\n", r.strayCodes)
	}
	if r.frTroubles > 0 {
		fmt.Fprintf(w, "- FreeRADIUS logged %d lines with Error or WARNING, first: %s\n", r.frTroubles, strings.Join(r.frSamples, " / "))
	}
	for _, x := range r.rows {
		if f := errs(x.og).failure; f != nil {
			fmt.Fprintf(w, "- %s at %d, otpgate: first wrong answer: %v\n", scenarioNames[x.scenario], x.conc, f)
		}
		if f := errs(x.fr).failure; f != nil {
			fmt.Fprintf(w, "- %s at %d, FreeRADIUS: first wrong answer: %v\n", scenarioNames[x.scenario], x.conc, f)
		}
	}
	fmt.Fprintln(w)
	r.printCompared(w)
	r.printTargets(w)
	printScale(w, r.scale)
	printSoak(w, r.opts, r.soak)
}

// printCompared prints -compare's table: B, the other checkout's build,
// against A, this one's, cell by cell.
func (r report) printCompared(w io.Writer) {
	if r.opts.compare == "" {
		return
	}
	fmt.Fprintf(w, "B (built from %s) against A (this checkout), a cell of each after each FreeRADIUS cell, A first and B first in turn; each pair's ratio is of two cells a few seconds apart, which the machine's drift from minute to minute moves less than it moves the rows above:\n\n", r.opts.compare)
	fmt.Fprintln(w, "| scenario | concurrency | A /s | B /s | B / A, medians | B / A, each pair (median) | A p99 | B p99 | server CPU per op A / B | errors A / B |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, x := range r.rows {
		if len(x.ogB) != len(x.og) || len(x.og) == 0 {
			continue
		}
		var pairs []float64
		var each []string
		for i := range x.og {
			if x.og[i].rate() == 0 {
				continue // nothing answered: the errors column says why
			}
			q := x.ogB[i].rate() / x.og[i].rate()
			pairs = append(pairs, q)
			each = append(each, fmt.Sprintf("%.2f", q))
		}
		if len(pairs) == 0 {
			continue
		}
		slices.Sort(pairs)
		mid := pairs[len(pairs)/2]
		if len(pairs)%2 == 0 {
			mid = (mid + pairs[len(pairs)/2-1]) / 2
		}
		a, b := medRate(x.og), medRate(x.ogB)
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %.2f | %s (%.2f) | %s | %s | %s / %s | %s / %s |\n",
			scenarioNames[x.scenario], x.conc, a, b, b/a, strings.Join(each, ", "), mid,
			ms(med(x.og, p99)), ms(med(x.ogB, p99)), us(med(x.og, srvCPU)), us(med(x.ogB, srvCPU)),
			errorsOf(errs(x.og)), errorsOf(errs(x.ogB)))
	}
	fmt.Fprintln(w)
}

// cpuBound says what rate the processors' time alone leaves otpgate
// against the peer in row x: the server and the load generator share the
// cores, so a flow costs the machine the CPU of both, and the ratio of
// those costs is the most the rates' ratio can reach once neither side
// waits for anything but the cores.
func cpuBound(x row) string {
	og := med(x.og, srvCPU) + med(x.og, genCPU)
	fr := med(x.fr, srvCPU) + med(x.fr, genCPU)
	if og <= 0 || fr <= 0 {
		return ""
	}
	return fmt.Sprintf(" (the cores' time a flow, server and load generator: otpgate %s, FreeRADIUS %s; at equal use of the cores that leaves otpgate %.2f of the peer's rate)",
		us(og), us(fr), float64(fr)/float64(og))
}

// printTargets says which of the targets the run met.
func (r report) printTargets(w io.Writer) {
	fmt.Fprintln(w, "Targets:")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	for _, x := range r.rows {
		ogRate, frRate := medRate(x.og), medRate(x.fr)
		switch {
		case x.scenario == "accept" && x.conc > 1:
			fmt.Fprintf(w, "- whitelisted Accepts at concurrency %d at least FreeRADIUS PAP's rate: %.0f vs %.0f/s (%.2f): %s\n",
				x.conc, ogRate, frRate, ogRate/frRate, verdict(ogRate >= frRate))
		case x.scenario == "totp" && x.conc > 1:
			fmt.Fprintf(w, "- TOTP flows at concurrency %d at least FreeRADIUS + rlm_totp's: %.0f vs %.0f/s (%.2f): %s",
				x.conc, ogRate, frRate, ogRate/frRate, verdict(ogRate >= frRate))
			if ogRate < frRate {
				fmt.Fprint(w, cpuBound(x))
			}
			fmt.Fprintln(w)
		}
		if x.scenario == "totp" && x.conc == 1 {
			og, fr := med(x.og, p50), med(x.fr, p50)
			// The target allows the disk's sync time, an O_DSYNC write as
			// the quiet machine makes it, one after another, for the
			// durable write it expected; otpgate's own write (its metric),
			// which does not wait for the disk, is printed beside it.
			sync := r.sync.step
			fmt.Fprintf(w, "- a TOTP flow's p50 at concurrency 1 no more than FreeRADIUS + rlm_totp's plus the store's sync time (an O_DSYNC write of a frame of used steps, one after another on the quiet machine): %s vs %s + %s = %s: %s",
				ms(og), ms(fr), ms(sync), ms(fr+sync), verdict(og <= fr+sync))
			var inCells []cell
			for _, c := range x.og {
				if c.stepSync > 0 {
					inCells = append(inCells, c)
				}
			}
			if len(inCells) > 0 {
				inFlow := med(inCells, func(c cell) time.Duration { return c.stepSync })
				fmt.Fprintf(w, " (otpgate's write of the step, which does not wait for the disk, took %s at the median in these cells, by its metric)", ms(inFlow))
			}
			fmt.Fprintln(w)
		}
		if x.scenario == "totp" && x.conc == 16 {
			og, fr := med(x.og, p99), med(x.fr, p99)
			fmt.Fprintf(w, "- a TOTP flow's p99 at concurrency 16 no more than 1.5 × FreeRADIUS + rlm_totp's: %s vs 1.5 × %s = %s: %s\n",
				ms(og), ms(fr), ms(fr*3/2), verdict(og <= fr*3/2))
		}
	}
	fmt.Fprintf(w, "- peak RSS under the whole bench no more than FreeRADIUS's: %s vs %s: %s\n", mb(r.ogMem.peak), mb(r.frMem.peak), verdict(r.ogMem.peak <= r.frMem.peak))
	cc := r.replayAfterCrash
	fmt.Fprintf(w, "- a code accepted before a crash is refused after it: %s\n", verdict(cc.accepted && cc.refused))
	if len(r.startup) > 0 {
		m := median(r.startup)
		fmt.Fprintf(w, "- RSS under 100 MB with %d users: %s at ready, %s a second later: %s\n", r.opts.startupUsers, mb(m.atReady.rss), mb(m.settled.rss),
			verdict(m.settled.rss < 100<<20 && m.atReady.rss < 100<<20))
		fmt.Fprintf(w, "- start-up under 1 s with %d users: %s: %s\n", r.opts.startupUsers, ms(m.ready), verdict(m.ready < time.Second))
	}
}
