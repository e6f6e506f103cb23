package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// row is one line of the table: a scenario at one concurrency, otpgate
// against FreeRADIUS's single-request PAP in the cell just before.
type row struct {
	scenario string
	conc     int
	og, fr   cell
}

// report is everything the bench found.
type report struct {
	opts       options
	rows       []row
	pop        population
	storeSize  int64
	ogMem      memory   // otpgate after the runs
	frMem      memory   // FreeRADIUS after the runs
	frTroubles int      // FreeRADIUS log lines with Error or WARNING
	frSamples  []string // the first of them
	totpWaits  int      // TOTP flows that waited for a fresh step
	strayCodes int      // codes in the log nobody waited for
	startup    []startup
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
	fmt.Fprintf(w, "otpgate vs FreeRADIUS (PAP, users file), %d CPUs, %s, %s measured per cell after %s warm-up, timeout %s, otpgate log level %s\n\n",
		runtime.NumCPU(), runtime.Version(), o.measure, o.warmup, o.timeout, o.logLevel)
	fmt.Fprintln(w, "| scenario | concurrency | otpgate /s | FreeRADIUS /s | ratio | otpgate p50 | otpgate p99 | otpgate p99 per round trip | FreeRADIUS p50 | FreeRADIUS p99 | server CPU per op otpgate / FreeRADIUS | load generator CPU per op otpgate / FreeRADIUS | errors otpgate / FreeRADIUS |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, x := range r.rows {
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %.2f | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s / %s |\n",
			scenarioNames[x.scenario], x.conc, x.og.rate(), x.fr.rate(), x.og.rate()/x.fr.rate(),
			ms(x.og.pct(50)), ms(x.og.pct(99)), ms(x.og.rttPct(99)), ms(x.fr.pct(50)), ms(x.fr.pct(99)),
			us(x.og.perOp(x.og.serverCPU)), us(x.fr.perOp(x.fr.serverCPU)),
			us(x.og.perOp(x.og.benchCPU)), us(x.fr.perOp(x.fr.benchCPU)),
			errorsOf(x.og), errorsOf(x.fr))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Rates are operations finished per second: requests for FreeRADIUS and the whitelisted Accept, whole flows (two round trips) for the TOTP and sent-code rows, whose FreeRADIUS column is its single-request PAP rate measured just before. The p99 per round trip is over every single request of the operations counted (for a flow, its first and its second). CPU per op is user+system time in the measured window divided by the operations finished: the server's (all threads), and the load generator's own (it shares the machine's cores with the server under test, and reads otpgate's log).")
	fmt.Fprintln(w)
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
		if x.og.failure != nil {
			fmt.Fprintf(w, "- %s at %d, otpgate: first wrong answer: %v\n", scenarioNames[x.scenario], x.conc, x.og.failure)
		}
		if x.fr.failure != nil {
			fmt.Fprintf(w, "- %s at %d, FreeRADIUS: first wrong answer: %v\n", scenarioNames[x.scenario], x.conc, x.fr.failure)
		}
	}
	fmt.Fprintln(w)
	r.printTargets(w)
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
	// FreeRADIUS's rate one request at a time, from the cell before a
	// flow row at concurrency 1, for the other reading of the TOTP target.
	var frSingle float64
	for _, x := range r.rows {
		if x.scenario == "totp" && x.conc == 1 {
			frSingle = x.fr.rate()
		}
	}
	for _, x := range r.rows {
		switch {
		case x.scenario == "accept" && x.conc == 64:
			fmt.Fprintf(w, "- whitelisted Accepts at concurrency 64 at least FreeRADIUS's rate: %.0f vs %.0f/s (%.2f): %s\n",
				x.og.rate(), x.fr.rate(), x.og.rate()/x.fr.rate(), verdict(x.og.rate() >= x.fr.rate()))
		case x.scenario == "totp":
			fmt.Fprintf(w, "- TOTP flows at concurrency %d at least half FreeRADIUS's single-request rate at the same concurrency: %.0f vs %.0f/s (%.2f): %s",
				x.conc, x.og.rate(), x.fr.rate(), x.og.rate()/x.fr.rate(), verdict(x.og.rate() >= x.fr.rate()/2))
			if frSingle > 0 {
				fmt.Fprintf(w, "; at least half its rate one request at a time (%.0f/s): %s", frSingle, verdict(x.og.rate() >= frSingle/2))
			}
			fmt.Fprintln(w)
		}
	}
	for _, x := range r.rows {
		if x.conc == 16 {
			fmt.Fprintf(w, "- p99 under 5 ms at concurrency 16, %s: %s: %s", scenarioNames[x.scenario], ms(x.og.pct(99)), verdict(x.og.pct(99) < 5*time.Millisecond))
			if x.scenario != "accept" {
				fmt.Fprintf(w, " (per round trip %s: %s)", ms(x.og.rttPct(99)), verdict(x.og.rttPct(99) < 5*time.Millisecond))
			}
			fmt.Fprintln(w)
		}
	}
	if len(r.startup) > 0 {
		m := median(r.startup)
		fmt.Fprintf(w, "- RSS under 100 MB with %d users: %s at ready, %s a second later: %s\n", r.opts.startupUsers, mb(m.atReady.rss), mb(m.settled.rss),
			verdict(m.settled.rss < 100<<20 && m.atReady.rss < 100<<20))
		fmt.Fprintf(w, "- start-up under 1 s with %d users: %s: %s\n", r.opts.startupUsers, ms(m.ready), verdict(m.ready < time.Second))
	}
}
