// Command bench measures otpgate side by side with FreeRADIUS 3.2
// answering PAP from a users file, on the same machine in the same run:
// whitelisted-IP Accepts, the two-round TOTP flow and the two-round
// sent-code flow at several concurrencies (rate, p50, p99, CPU per
// operation), otpgate's peak RSS, and its start-up time and RSS with many
// users in the store. It prints a markdown table. Run it from the
// repository through bench/run.sh; -h lists the knobs.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command line's.
type options struct {
	measure, warmup, timeout  time.Duration
	conc                      []int
	scenarios                 []string
	totpUsers, codeUsers      int
	startupUsers              int
	startupRuns               int
	cold                      bool
	logLevel                  string
	profileDir                string
	keep                      bool
	reps                      int
	scaleUsers                []int
	scaleTenants              int
	soak, soakKeep, soakEvery time.Duration
	soakRate                  int
	only                      string
	etcdBin                   string
	compare                   string
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.reps, "reps", 3, "cells per row, FreeRADIUS and otpgate in turn (in the scale rows, Accept and TOTP in turn); the row shows each figure's median")
	fs.DurationVar(&o.measure, "duration", 5*time.Second, "measured time of each cell (one server, one scenario, one concurrency)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "time each cell runs before it is measured")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Second, "how long a request waits for its answer before it counts as a timeout")
	concs := fs.String("c", "1,16,64", "concurrencies: load loops, each with its own UDP socket")
	scen := fs.String("scenarios", "accept,totp", "which rows: accept (whitelisted IP, against FreeRADIUS PAP), totp (TOTP flow, against FreeRADIUS's rlm_totp flow), code (sent-code flow, against the same rlm_totp flow)")
	fs.IntVar(&o.totpUsers, "totp-users", 600000, "TOTP users; each does at most one flow per 30 s step, so this must exceed the flows in any one step")
	fs.IntVar(&o.codeUsers, "code-users", 20000, "sent-code users, used round robin")
	fs.IntVar(&o.startupUsers, "startup-users", 100000, "users in the store for the start-up measurement (0: skip it)")
	fs.IntVar(&o.startupRuns, "startup-runs", 3, "start-ups to measure")
	scale := fs.String("scale-users", "100000,1000000", "user counts for the scale rows, compared with the first (empty: skip them)")
	fs.IntVar(&o.scaleTenants, "scale-tenants", 1000, "tenants the scale rows' users are spread over, each with two office networks")
	fs.DurationVar(&o.soak, "soak", 0, "also run TOTP flows at -soak-rate for this long and print how the store, memory and latency grow (0: skip)")
	fs.IntVar(&o.soakRate, "soak-rate", 2000, "TOTP flows per second in the soak run")
	fs.DurationVar(&o.soakKeep, "soak-keep", 2*time.Minute, "audit.keep in the soak run, short so that pruning works while it runs")
	fs.DurationVar(&o.soakEvery, "soak-every", 30*time.Second, "how often the soak run is sampled")
	fs.StringVar(&o.only, "only", "", "run only this part: soak, scale or etcd (otpgate on bbolt and on a three-member etcd, see bench/etcd.go) (default: everything)")
	fs.StringVar(&o.etcdBin, "etcd", "", "`PATH` of the etcd binary the etcd rows' members run, for example Debian's /usr/bin/etcd (default: etcd built from bench/etcdmember, the release it pins)")
	fs.BoolVar(&o.cold, "cold", false, "drop the page cache before each start-up (root only)")
	fs.StringVar(&o.logLevel, "log-level", "info", "otpgate's log.level under load (info, its default, logs every decision)")
	fs.StringVar(&o.profileDir, "cpuprofile", "", "`DIR` for CPU profiles of otpgate in each of its cells and a heap profile at the end (built with net/http/pprof added through go build -overlay)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (stores, configurations, raddb)")
	fs.StringVar(&o.compare, "compare", "", "`DIR` of another checkout of otpgate, B: its build runs beside this one's, A, in a store of its own (written by A's code, so B must read A's store and configuration), a cell of each after each FreeRADIUS cell (A first in odd cells, B first in even ones), and a table of B against A follows the first; for a change tried against the code before it, on a machine whose speed drifts from one minute to the next")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, c := range strings.Split(*concs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-c: %q is not a concurrency", c)
		}
		o.conc = append(o.conc, n)
	}
	for _, n := range strings.Split(*scale, ",") {
		if strings.TrimSpace(n) == "" {
			continue
		}
		u, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil || u < 1 {
			return o, fmt.Errorf("-scale-users: %q is not a number of users", n)
		}
		o.scaleUsers = append(o.scaleUsers, u)
	}
	for _, s := range strings.Split(*scen, ",") {
		s = strings.TrimSpace(s)
		if _, ok := scenarioNames[s]; !ok {
			return o, fmt.Errorf("-scenarios: %q is not one of accept, totp, code", s)
		}
		o.scenarios = append(o.scenarios, s)
	}
	if o.compare != "" && slices.Contains(o.scenarios, "code") {
		return o, errors.New("-compare: the code scenario reads one otpgate's log for its codes; leave it out (-scenarios accept,totp)")
	}
	if o.compare != "" && (o.profileDir != "" || o.only != "") {
		return o, errors.New("-compare goes with neither -cpuprofile (A's profiled cells would be slower than B's) nor -only")
	}
	if o.totpUsers < 1 || o.codeUsers < 1 || o.startupRuns < 1 || o.reps < 1 {
		return o, errors.New("-totp-users, -code-users, -startup-runs and -reps must be at least 1")
	}
	return o, nil
}

// peerNames are what FreeRADIUS does in each scenario's cells.
var peerNames = map[string]string{
	"accept": "PAP",
	"totp":   "rlm_totp flow",
	"code":   "rlm_totp flow",
}

// scenarioNames are the rows' names in the table.
var scenarioNames = map[string]string{
	"accept": "whitelisted Accept",
	"totp":   "TOTP flow (2 round trips)",
	"code":   "sent-code flow (console)",
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "otpgate-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintf(stderr, "bench: keeping %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	progress := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}

	progress("building otpgate")
	bin, err := buildOtpgate(dir, o.profileDir != "")
	if err != nil {
		return err
	}
	var binB string // -compare's build
	if o.compare != "" {
		progress("building otpgate from %s", o.compare)
		bDir := filepath.Join(dir, "b")
		if err := os.Mkdir(bDir, 0o700); err != nil {
			return err
		}
		if binB, err = buildOtpgateAt(o.compare, bDir, false); err != nil {
			return err
		}
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}

	rep := report{opts: o}
	switch o.only {
	case "soak":
		if rep.soak, err = soak(ctx, bin, filepath.Join(dir, "soak"), o, progress); err != nil {
			return err
		}
		printSoak(stdout, o, rep.soak)
		return nil
	case "scale":
		if rep.scale, err = runScale(ctx, bin, dir, o, progress); err != nil {
			return err
		}
		printScale(stdout, rep.scale)
		return nil
	case "etcd":
		rows, version, err := runEtcd(ctx, bin, dir, o, progress)
		if err != nil {
			return err
		}
		printEtcd(stdout, o, version, rows)
		return nil
	case "":
	default:
		return fmt.Errorf("-only: %q is not soak, scale or etcd", o.only)
	}
	if o.startupUsers > 0 {
		progress("start-up with %d users, %d times", o.startupUsers, o.startupRuns)
		if rep.startup, err = measureStartup(ctx, bin, filepath.Join(dir, "startup"), o); err != nil {
			return err
		}
	}

	maxConc := 1
	for _, c := range o.conc {
		maxConc = max(maxConc, c)
	}
	progress("starting FreeRADIUS")
	fr, err := startFreeRADIUS(dir, maxConc, o.totpUsers, 60*time.Second)
	if err != nil {
		return err
	}
	defer fr.stop()

	loadDir := filepath.Join(dir, "load")
	if err := os.Mkdir(loadDir, 0o700); err != nil {
		return err
	}
	rep.pop = population{office: maxConc, totp: o.totpUsers, code: o.codeUsers}
	progress("writing %d users into otpgate's store", rep.pop.total())
	if err := fill(loadDir, rep.pop); err != nil {
		return err
	}
	box := newCodeBox(o.codeUsers)
	var env []string
	var pprofAddr string
	if o.profileDir != "" {
		if pprofAddr, err = freeTCPAddr(); err != nil {
			return err
		}
		env = append(env, pprofEnv+"="+pprofAddr)
	}
	progress("timing the disk's sync")
	if rep.sync, err = measureSync(loadDir); err != nil {
		return err
	}
	progress("starting otpgate")
	// The log goes through the bench only when it must read the codes
	// sent; otherwise to a file, as to journald, and the load generator
	// does not spend the shared cores reading it.
	logToFile := !slices.Contains(o.scenarios, "code")
	og, err := startOtpgate(bin, loadDir, o.logLevel, box, env, logToFile)
	if err != nil {
		return err
	}
	defer func() { og.stop() }() // og is replaced by the crash check
	var ogB *otpgate
	if binB != "" {
		loadB := filepath.Join(dir, "load-b")
		if err := os.Mkdir(loadB, 0o700); err != nil {
			return err
		}
		progress("writing %d users into the store of otpgate B", rep.pop.total())
		if err := fill(loadB, rep.pop); err != nil {
			return err
		}
		progress("starting otpgate B")
		if ogB, err = startOtpgate(binB, loadB, o.logLevel, nil, nil, true); err != nil {
			return err
		}
		defer ogB.stop()
	}

	totp := &totpPool{users: o.totpUsers}
	totpB := &totpPool{users: o.totpUsers} // B's store has its own used steps
	frTOTP := &totpPool{users: o.totpUsers, codeAtAnswer: true}
	codes := &codePool{users: o.codeUsers, box: box}
	for _, s := range o.scenarios {
		for _, c := range o.conc {
			x := row{scenario: s, conc: c}
			for rep := range o.reps {
				frCell, err := runPeerCell(ctx, o, s, c, rep, fr, frTOTP, progress)
				if err != nil {
					return err
				}
				x.fr = append(x.fr, frCell)
				a := func() error {
					ogCell, err := runOtpgateCell(ctx, o, s, c, rep, "otpgate", og, totp, codes, pprofAddr, progress)
					x.og = append(x.og, ogCell)
					return err
				}
				b := func() error {
					if ogB == nil {
						return nil
					}
					cell, err := runOtpgateCell(ctx, o, s, c, rep, "otpgate B", ogB, totpB, nil, "", progress)
					x.ogB = append(x.ogB, cell)
					return err
				}
				if rep%2 == 1 {
					a, b = b, a
				}
				if err := a(); err != nil {
					return err
				}
				if err := b(); err != nil {
					return err
				}
			}
			rep.rows = append(rep.rows, x)
		}
	}
	if ogB != nil {
		if err := ogB.stop(); err != nil {
			return err
		}
	}
	if o.profileDir != "" {
		url := fmt.Sprintf("http://%s/debug/pprof/heap", pprofAddr)
		if err := fetch(url, filepath.Join(o.profileDir, "otpgate-heap.pprof"), 30*time.Second); err != nil {
			return err
		}
	}
	if rep.ogMem, err = readMemory(og.cmd.Process.Pid); err != nil {
		return err
	}
	if rep.frMem, err = readMemory(fr.cmd.Process.Pid); err != nil {
		return err
	}
	progress("a code accepted just before otpgate is killed, tried again after it restarts")
	if rep.replayAfterCrash, err = replayAfterCrash(ctx, og, totp, bin, loadDir, o.logLevel, box, env, logToFile); err != nil {
		return err
	}
	og = rep.replayAfterCrash.og
	rep.totpWaits = totp.waited()
	rep.strayCodes = box.strays()
	if st, err := os.Stat(filepath.Join(loadDir, "otpgate.db")); err == nil {
		rep.storeSize = st.Size()
	}
	rep.frTroubles, rep.frSamples = fr.out.trouble()
	if err := og.stop(); err != nil {
		return err
	}
	fr.stop()
	os.RemoveAll(loadDir)
	if rep.scale, err = runScale(ctx, bin, dir, o, progress); err != nil {
		return err
	}
	if o.soak > 0 {
		if rep.soak, err = soak(ctx, bin, filepath.Join(dir, "soak"), o, progress); err != nil {
			return err
		}
	}
	rep.print(stdout)
	return nil
}

// freeTCPAddr is a free TCP port on loopback, as host:port.
func freeTCPAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// runPeerCell runs one FreeRADIUS cell of scenario s at concurrency c,
// run just before the otpgate cells it is set against, so that they see
// the machine alike.
func runPeerCell(ctx context.Context, o options, s string, c, rep int, fr *freeradius, frTOTP *totpPool, progress func(string, ...any)) (cell, error) {
	frLoad := load{conc: c, warmup: o.warmup, measure: o.measure, timeout: o.timeout, addr: fr.addr, pid: fr.cmd.Process.Pid}
	frOp := func(loop int) op { return acceptOp(freeradiusUser(loop), officeIP) }
	if s != "accept" {
		// The same two rounds, password then TOTP code, by rlm_totp.
		frLoad.addr = fr.totpAddr
		frOp = func(loop int) op { return frTOTP.flow(ctx, loop) }
	}
	progress("%s, concurrency %d, %d of %d: FreeRADIUS %s", scenarioNames[s], c, rep+1, o.reps, peerNames[s])
	cell, err := frLoad.run(ctx, frOp)
	if err == nil {
		progress("  FreeRADIUS %.0f/s (p50 %s, p99 %s), %s errors", cell.rate(), ms(cell.pct(50)), ms(cell.pct(99)), errorsOf(cell))
	}
	return cell, err
}

// runOtpgateCell runs one cell of scenario s at concurrency c against og,
// called name in the progress lines. The rep'th cell of a row is profiled
// when asked (pprofAddr set).
func runOtpgateCell(ctx context.Context, o options, s string, c, rep int, name string, og *otpgate, totp *totpPool, codes *codePool,
	pprofAddr string, progress func(string, ...any)) (cell, error) {
	ogLoad := load{conc: c, warmup: o.warmup, measure: o.measure, timeout: o.timeout, addr: og.addr, pid: og.cmd.Process.Pid}
	var ogOp func(loop int) op
	switch s {
	case "accept":
		ogOp = func(loop int) op { return acceptOp(officeName(loop), officeIP) }
	case "totp":
		ogOp = func(loop int) op { return totp.flow(ctx, loop) }
	case "code":
		ogOp = func(loop int) op { return codes.flow(loop, o.timeout) }
	}
	progress("%s, concurrency %d, %d of %d: %s", scenarioNames[s], c, rep+1, o.reps, name)
	profiled := make(chan error, 1)
	if pprofAddr != "" && o.profileDir != "" && rep == 0 {
		file := filepath.Join(o.profileDir, fmt.Sprintf("otpgate-%s-c%d.pprof", s, c))
		secs := max(1, int((o.warmup+o.measure)/time.Second))
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, secs)
		go func() { profiled <- fetch(url, file, time.Duration(secs+30)*time.Second) }()
		// And an execution trace of 2 s in the middle, which shows
		// what a request waits for when the CPU is not busy.
		go func() {
			sleepUntil(ctx, time.Now().Add(o.warmup+o.measure/2))
			url := fmt.Sprintf("http://%s/debug/pprof/trace?seconds=2", pprofAddr)
			if err := fetch(url, filepath.Join(o.profileDir, fmt.Sprintf("otpgate-%s-c%d.trace", s, c)), time.Minute); err != nil {
				progress("trace: %v", err)
			}
		}()
	} else {
		profiled <- nil
	}
	// The store's step writes in the cell, by otpgate's metric: only
	// printed, so a failure to read it is only reported.
	syncsBefore, syncErr := readSyncHistogram(og.metrics, syncStepLog)
	filesBefore, filesErr := readSyncHistogram(og.metrics, syncFile)
	ogCell, err := ogLoad.run(ctx, ogOp)
	if err != nil {
		return cell{}, err
	}
	if err := <-profiled; err != nil {
		return cell{}, err
	}
	if syncErr == nil {
		var syncs syncHistogram
		if syncs, syncErr = readSyncHistogram(og.metrics, syncStepLog); syncErr == nil {
			ogCell.stepSync = syncs.medianSince(syncsBefore)
			progress("  %s's writes in the cell, warm-up included: %d used steps' frames (p50 %s, p99 %s)",
				name, syncs.countSince(syncsBefore), ms(ogCell.stepSync), ms(syncs.quantileSince(syncsBefore, 0.99)))
			files, err := readSyncHistogram(og.metrics, syncFile)
			if err = cmp.Or(filesErr, err); err == nil {
				progress("  and %d commits of the file (p50 %s, p99 %s)",
					files.countSince(filesBefore), ms(files.medianSince(filesBefore)), ms(files.quantileSince(filesBefore, 0.99)))
			} else {
				progress("  commits of the file not read: %v", err)
			}
		}
	}
	if syncErr != nil {
		progress("  %s's metrics: %v", name, syncErr)
	}
	progress("  %s %.0f/s (p50 %s, p99 %s), %s errors", name, ogCell.rate(), ms(ogCell.pct(50)), ms(ogCell.pct(99)), errorsOf(ogCell))
	return ogCell, nil
}

// runScale measures each of o.scaleUsers in turn, each in a store of its
// own removed after.
func runScale(ctx context.Context, bin, dir string, o options, progress func(string, ...any)) ([]scaleResult, error) {
	var rs []scaleResult
	for _, n := range o.scaleUsers {
		d := filepath.Join(dir, fmt.Sprintf("scale-%d", n))
		r, err := measureScale(ctx, bin, d, n, o.scaleTenants, o, progress)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
		os.RemoveAll(d)
	}
	return rs, nil
}
