package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// scaleResult is otpgate with many users in many tenants: what it takes
// to start, to serve, and to administer.
type scaleResult struct {
	users, tenants int
	fill           time.Duration // writing the users into the store, before otpgate starts
	storeSize      int64         // the store's file after the fill
	ready          time.Duration // exec → "otpgate ready"
	atReady        memory
	accept, totp   []cell // at concurrency 16, -reps cells each, taken in turn
	totpWaits      int    // TOTP flows that waited for a new step: all users used in one
	list, export   command
	backup         command
	backupSize     int64
	reload         command
	duringReload   int // Accepts answered while the reload ran
	reloadMisses   int // requests that timed out or were answered wrongly meanwhile
	serverPeak     memory
}

// command is one run of the otpgate CLI against the running server.
type command struct {
	took   time.Duration
	out    int64  // bytes written on standard output
	maxRSS int64  // the CLI process's peak resident set
	server memory // otpgate's, after
	// serverGrew is how much otpgate's peak resident set rose while the
	// command ran.
	serverGrew int64
	err        error
}

// scaleConfig is the configuration for population p: one tenant per
// p.tenants, each with two office networks (an IPv4 /24 and an IPv6 /64)
// and TOTP, nothing remembered, no lockout.
func scaleConfig(addr, dir string, tenants int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `radius: {listen: ["%s"]}
http: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
store: {path: "%s"}
clients:
  - {name: bench, address: 127.0.0.1/32, secret: %s, tenant: %s,
     require_message_authenticator: true, client_ip_attribute: Calling-Station-Id}
delivery: {allow_console: true, sms: [console]}
tenants:
`, addr, filepath.Join(dir, "otpgate.db"), sharedSecret, tenantName(0))
	for t := range tenants {
		fmt.Fprintf(&b, "  - {name: %s, mode: required, office_networks: [%s, \"%s\"], methods: [totp], reconnect_window: 0s, lockout: {failures: 0}}\n",
			tenantName(t), scaleOfficeNet(t), fmt.Sprintf("fd00:0:0:%x::/64", t))
	}
	return b.String()
}

// scaleOfficeNet is tenant t's IPv4 office network; scaleOfficeIP an
// address in it.
func scaleOfficeNet(t int) string { return fmt.Sprintf("10.%d.%d.0/24", t>>8, t&255) }
func scaleOfficeIP(t int) string  { return fmt.Sprintf("10.%d.%d.5", t>>8, t&255) }

// measureScale fills a store with users TOTP users in tenants tenants and
// measures otpgate on it.
func measureScale(ctx context.Context, bin, dir string, users, tenants int, o options, progress func(string, ...any)) (scaleResult, error) {
	r := scaleResult{users: users, tenants: tenants}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return r, err
	}
	pop := population{totp: users, tenants: tenants}
	progress("scale: writing %d users in %d tenants", users, tenants)
	t0 := time.Now()
	if err := fill(dir, pop); err != nil {
		return r, err
	}
	r.fill = time.Since(t0)
	if st, err := os.Stat(filepath.Join(dir, "otpgate.db")); err == nil {
		r.storeSize = st.Size()
	}
	addr, err := freeAddr()
	if err != nil {
		return r, err
	}
	progress("scale: starting otpgate on %d users", users)
	og, err := startOtpgateWith(bin, dir, addr, scaleConfig(addr, dir, tenants), "info", nil, nil, true)
	if err != nil {
		return r, err
	}
	defer og.stop()
	r.ready = og.readyAt.Sub(og.started)
	if r.atReady, err = readMemory(og.cmd.Process.Pid); err != nil {
		return r, err
	}

	l := load{addr: og.addr, pid: og.cmd.Process.Pid, conc: 16, warmup: o.warmup, measure: o.measure, timeout: o.timeout}
	// Office users spread over the tenants, each from its tenant's office.
	acceptUser := func(loop int) op {
		i := (loop * 7919) % users
		return acceptOp(totpName(i), scaleOfficeIP(i%tenants))
	}
	// Cells of the two in turn, so that a slow moment of the machine
	// does not fall on one of them only; the rows show each one's median.
	pool := &totpPool{users: users}
	for rep := 1; rep <= o.reps; rep++ {
		progress("scale: whitelisted Accept at concurrency 16, %d users, %d of %d", users, rep, o.reps)
		c, err := l.run(ctx, acceptUser)
		if err != nil {
			return r, err
		}
		r.accept = append(r.accept, c)
		progress("  %.0f/s (p99 %s)", c.rate(), ms(c.pct(99)))
		progress("scale: TOTP flows at concurrency 16, %d users, %d of %d", users, rep, o.reps)
		if c, err = l.run(ctx, func(loop int) op { return pool.flow(ctx, loop) }); err != nil {
			return r, err
		}
		r.totp = append(r.totp, c)
		progress("  %.0f/s (p99 %s)", c.rate(), ms(c.pct(99)))
	}
	r.totpWaits = pool.waited()

	cli := func(args ...string) command {
		var c command
		cmd := exec.CommandContext(ctx, bin, append(args, "--config", og.config)...)
		out := &counter{}
		var errOut strings.Builder
		cmd.Stdout, cmd.Stderr = out, &errOut
		t0 := time.Now()
		before, _ := readMemory(og.cmd.Process.Pid)
		c.err = cmd.Start()
		if c.err == nil {
			// Its peak, read while it runs: wait4's figure would count
			// the bench's own memory, shared until exec.
			done := make(chan struct{})
			go func() {
				for {
					if m, err := readMemory(cmd.Process.Pid); err == nil && m.peak > c.maxRSS {
						c.maxRSS = m.peak
					}
					select {
					case <-done:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}()
			c.err = cmd.Wait()
			close(done)
		}
		c.took = time.Since(t0)
		c.serverGrew = 0
		if after, err := readMemory(og.cmd.Process.Pid); err == nil {
			c.serverGrew = after.peak - before.peak
		}
		if c.err != nil {
			c.err = fmt.Errorf("otpgate %s: %v: %s", strings.Join(args, " "), c.err, strings.TrimSpace(errOut.String()))
		}
		c.out = out.n.Load()
		c.server, _ = readMemory(og.cmd.Process.Pid)
		return c
	}
	progress("scale: otpgate user list, user export, backup")
	r.list = cli("user", "list")
	r.export = cli("user", "export")
	backup := filepath.Join(dir, "backup.db")
	r.backup = cli("backup", backup)
	if st, err := os.Stat(backup); err == nil {
		r.backupSize = st.Size()
		os.Remove(backup)
	}

	// A reload while Accepts keep coming from 4 loops.
	progress("scale: reload with %d tenants under load", tenants)
	var answered, missed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for loop := range 4 {
		wg.Go(func() {
			c, err := dial(og.addr, o.timeout)
			if err != nil {
				missed.Add(1)
				return
			}
			defer c.close()
			o := acceptUser(loop)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := o(c); err != nil {
					missed.Add(1)
				} else {
					answered.Add(1)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	before := answered.Load()
	r.reload = cli("reload")
	r.duringReload = int(answered.Load() - before)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	r.reloadMisses = int(missed.Load())
	r.serverPeak, _ = readMemory(og.cmd.Process.Pid)
	return r, og.stop()
}

// counter counts what is written to it.
type counter struct{ n atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

var _ io.Writer = (*counter)(nil)

// printScale writes the scale rows: each population, and the rates of the
// largest against the smallest.
func printScale(w io.Writer, rs []scaleResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Scale (TOTP users spread over tenants with two office networks each; rates at concurrency 16, the median of %d cells each):\n", len(rs[0].totp))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| users | tenants | store on disk | fill | start-up to first answer | RSS at ready | whitelisted Accept /s | TOTP flows /s | user list | user export | backup | reload (requests answered meanwhile, missed) | otpgate peak RSS |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	cmdText := func(c command) string {
		if c.err != nil {
			return "failed: " + c.err.Error()
		}
		return fmt.Sprintf("%s, %s out, CLI peak RSS %s, server peak RSS +%s (heap after %s)", ms(c.took), mb(c.out), mb(c.maxRSS), mb(c.serverGrew), mb(c.server.anon))
	}
	for _, r := range rs {
		fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %s | %.0f (p99 %s) | %.0f (p99 %s) | %s | %s | %s (%s) | %s (%d, %d) | %s |\n",
			r.users, r.tenants, mb(r.storeSize), r.fill.Round(time.Millisecond), ms(r.ready), mb(r.atReady.rss),
			medRate(r.accept), ms(med(r.accept, p99)), medRate(r.totp), ms(med(r.totp, p99)),
			cmdText(r.list), cmdText(r.export), cmdText(r.backup), mb(r.backupSize),
			cmdText(r.reload), r.duringReload, r.reloadMisses, mb(r.serverPeak.peak))
	}
	fmt.Fprintln(w)
	for _, r := range rs {
		if r.totpWaits > 0 {
			fmt.Fprintf(w, "- WARNING: %d TOTP flows with %d users waited for a new 30 s step because every user had logged in in this one: that row's TOTP rate is too low\n", r.totpWaits, r.users)
		}
	}
	small, large := rs[0], rs[len(rs)-1]
	if len(rs) > 1 {
		verdict := func(ok bool) string {
			if ok {
				return "met"
			}
			return "MISSED"
		}
		a, t := medRate(large.accept)/medRate(small.accept), medRate(large.totp)/medRate(small.totp)
		fmt.Fprintf(w, "- whitelisted Accepts with %d users within 10 %% of %d users': %.2f: %s\n", large.users, small.users, a, verdict(a >= 0.9))
		fmt.Fprintf(w, "- TOTP flows with %d users within 10 %% of %d users': %.2f: %s\n", large.users, small.users, t, verdict(t >= 0.9))
	}
	fmt.Fprintf(w, "- requests answered during the reload of %d tenants, none missed: %d answered, %d missed: %s\n", large.tenants, large.duringReload, large.reloadMisses,
		map[bool]string{true: "met", false: "MISSED"}[large.reloadMisses == 0 && large.duringReload > 0])
}
