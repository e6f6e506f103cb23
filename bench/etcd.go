package main

// The etcd rows (-only etcd): otpgate on a store in a three-member etcd
// cluster on this machine (store.backend: etcd), next to otpgate on its
// bbolt file, whitelisted Accepts and TOTP flows at each concurrency,
// the bbolt cell just before the etcd cell, both servers running
// throughout. Issue 17's targets: etcd at least half of bbolt's rate for
// TOTP flows at the highest concurrency, and bbolt's rate for whitelisted
// Accepts, which write nothing.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/otpgate/otpgate/store"
)

// etcdPrefix is where the bench's store lives in the cluster.
const etcdPrefix = "/otpgate-bench/"

// etcdCluster is the members, each its own etcd process.
type etcdCluster struct {
	version   string // what the binary says it is
	endpoints []string
	cmds      []*exec.Cmd
	pids      []int
}

// etcdBinary is -etcd, or etcd built from bench/etcdmember into dir.
func etcdBinary(o options, dir string) (string, error) {
	if o.etcdBin != "" {
		return o.etcdBin, nil
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("find the module (run from the repository): %w", err)
	}
	bin := filepath.Join(dir, "etcd-server")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(strings.TrimSpace(string(out)), "bench", "etcdmember")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build etcd (bench/etcdmember; -etcd PATH runs an installed one): %v\n%s", err, out)
	}
	return bin, nil
}

// startEtcd starts n members of bin on loopback with their data under base
// (tmpfs where there is one, as the tests do: the bench measures otpgate,
// not the disk) and waits until the cluster has a leader. With pprof the
// members serve Go's profiles at /debug/pprof on their client address.
func startEtcd(bin, base string, n int, pprof bool) (*etcdCluster, error) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", bin, err)
	}
	version, _, _ := strings.Cut(string(out), "\n")
	c := &etcdCluster{version: strings.TrimSpace(strings.TrimPrefix(version, "etcd Version:"))}
	var initial, peers []string
	for i := range n {
		client, err := freeTCPAddr()
		if err != nil {
			return nil, err
		}
		peer, err := freeTCPAddr()
		if err != nil {
			return nil, err
		}
		c.endpoints = append(c.endpoints, "http://"+client)
		peers = append(peers, "http://"+peer)
		initial = append(initial, fmt.Sprintf("m%d=http://%s", i, peer))
	}
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		args := []string{
			"--name", name, "--data-dir", filepath.Join(base, name),
			"--listen-client-urls", c.endpoints[i], "--advertise-client-urls", c.endpoints[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "otpgate-bench",
			"--heartbeat-interval", "100", "--election-timeout", "2500",
			"--logger", "zap", "--log-outputs", filepath.Join(base, name+".log")}
		if pprof {
			args = append(args, "--enable-pprof")
		}
		cmd := exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			c.stop()
			return nil, fmt.Errorf("start etcd %s: %w", name, err)
		}
		c.cmds = append(c.cmds, cmd)
		c.pids = append(c.pids, cmd.Process.Pid)
	}
	return c, nil
}

func (c *etcdCluster) stop() {
	for _, cmd := range c.cmds {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, cmd := range c.cmds {
		cmd.Wait()
	}
}

// cpu is the members' user+system time so far.
func (c *etcdCluster) cpu() time.Duration {
	var t time.Duration
	for _, p := range c.pids {
		t += processCPU(p)
	}
	return t
}

// fillEtcd writes p's users into a file in dir, as fill does, and copies
// them into the cluster (otpgate migrate's way, store.CopyToEtcd), which
// also takes the key's id; the key file stays at dir/otpgate.db.key.
func fillEtcd(dir string, endpoints []string, p population) error {
	if err := fill(dir, p); err != nil {
		return err
	}
	src, err := store.Open(filepath.Join(dir, "otpgate.db"), store.Options{})
	if err != nil {
		return err
	}
	defer src.Close()
	var dst *store.DB
	deadline := time.Now().Add(time.Minute)
	for {
		// Until the members have elected a leader.
		dst, err = store.Open(filepath.Join(dir, "copy.db"), store.Options{
			Etcd: &store.Etcd{Endpoints: endpoints, Prefix: etcdPrefix, RequestTimeout: 10 * time.Second}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd not ready after a minute: %w", err)
		}
		time.Sleep(100 * time.Millisecond) // polling for the cluster, not for time to pass
	}
	if _, err := src.CopyToEtcd(dst, true); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// etcdTOTPUsers is the most TOTP users copied into etcd.
const etcdTOTPUsers = 150000

// etcdRow is one scenario at one concurrency, bbolt and etcd cells.
type etcdRow struct {
	scenario   string
	conc       int
	bolt, etcd []cell
	etcdCPU    []time.Duration // the members' CPU in each etcd cell's window (and warm-up)
}

func runEtcd(ctx context.Context, bin, dir string, o options, progress func(string, ...any)) (rows []etcdRow, version string, err error) {
	maxConc := 1
	for _, c := range o.conc {
		maxConc = max(maxConc, c)
	}
	// bbolt's TOTP flows need -totp-users (each user does one flow per
	// 30 s step); etcd's, slower, fewer, which keeps the copy short.
	pop := population{office: maxConc, totp: o.totpUsers}
	etcdPop := population{office: maxConc, totp: min(o.totpUsers, etcdTOTPUsers)}
	boltDir, etcdDir := filepath.Join(dir, "bolt"), filepath.Join(dir, "etcd")
	for _, d := range []string{boltDir, etcdDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, "", err
		}
	}
	base := filepath.Join(dir, "members")
	if d, err := os.MkdirTemp("/dev/shm", "otpgate-bench-etcd-"); err == nil {
		base = d
		defer os.RemoveAll(d)
	}
	etcdBin, err := etcdBinary(o, dir)
	if err != nil {
		return nil, "", err
	}
	progress("starting a three-member etcd cluster of %s (data in %s)", etcdBin, base)
	ec, err := startEtcd(etcdBin, base, 3, o.profileDir != "")
	if err != nil {
		return nil, "", err
	}
	version = ec.version
	defer ec.stop()
	progress("writing %d users into a bbolt store and %d into etcd", pop.total(), etcdPop.total())
	if err := fill(boltDir, pop); err != nil {
		return nil, "", err
	}
	if err := fillEtcd(etcdDir, ec.endpoints, etcdPop); err != nil {
		return nil, "", err
	}

	var env []string
	var pprofAddrs [2]string
	start := func(i int, d string, etcd bool) (*otpgate, error) {
		env := env
		if o.profileDir != "" {
			a, err := freeTCPAddr()
			if err != nil {
				return nil, err
			}
			pprofAddrs[i] = a
			env = append(env, pprofEnv+"="+a)
		}
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		text := fmt.Sprintf(otpgateConfig, addr, "127.0.0.1:0", o.logLevel, filepath.Join(d, "otpgate.db"), sharedSecret)
		if etcd {
			old := fmt.Sprintf(`store: {path: "%s"}`, filepath.Join(d, "otpgate.db"))
			quoted := make([]string, len(ec.endpoints))
			for i, e := range ec.endpoints {
				quoted[i] = `"` + e + `"`
			}
			text = strings.Replace(text, old, fmt.Sprintf(
				`store: {path: "%s", key_file: "%s", backend: etcd, etcd: {endpoints: [%s], prefix: %s}}
cluster: {node_name: bench}`,
				filepath.Join(d, "node.db"), filepath.Join(d, "otpgate.db.key"), strings.Join(quoted, ", "), etcdPrefix), 1)
		}
		return startOtpgateWith(bin, d, addr, text, o.logLevel, nil, env, true)
	}
	progress("starting otpgate on bbolt and otpgate on etcd")
	bolt, err := start(0, boltDir, false)
	if err != nil {
		return nil, "", err
	}
	defer bolt.stop()
	onEtcd, err := start(1, etcdDir, true)
	if err != nil {
		return nil, "", err
	}
	defer onEtcd.stop()

	boltTOTP := &totpPool{users: o.totpUsers}
	etcdTOTP := &totpPool{users: etcdPop.totp}
	for _, s := range o.scenarios {
		if s != "accept" && s != "totp" {
			continue
		}
		for _, c := range o.conc {
			r := etcdRow{scenario: s, conc: c}
			for rep := range o.reps {
				for i, og := range []*otpgate{bolt, onEtcd} {
					name := [2]string{"bbolt", "etcd"}[i]
					pool := [2]*totpPool{boltTOTP, etcdTOTP}[i]
					newOp := func(loop int) op { return acceptOp(officeName(loop), officeIP) }
					if s == "totp" {
						newOp = func(loop int) op { return pool.flow(ctx, loop) }
					}
					progress("%s, concurrency %d, %d of %d: otpgate on %s", scenarioNames[s], c, rep+1, o.reps, name)
					profiled := make(chan error, 1+len(ec.endpoints))
					profiles := 1
					if o.profileDir != "" && rep == 0 {
						file := filepath.Join(o.profileDir, fmt.Sprintf("otpgate-%s-%s-c%d.pprof", name, s, c))
						secs := max(1, int((o.warmup+o.measure)/time.Second))
						url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddrs[i], secs)
						go func() { profiled <- fetch(url, file, time.Duration(secs+30)*time.Second) }()
						if i == 1 {
							// And each member's, beside it.
							for m, e := range ec.endpoints {
								file := filepath.Join(o.profileDir, fmt.Sprintf("etcd-m%d-%s-c%d.pprof", m, s, c))
								url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", e, secs)
								go func() { profiled <- fetch(url, file, time.Duration(secs+30)*time.Second) }()
								profiles++
							}
						}
					} else {
						profiled <- nil
					}
					l := load{addr: og.addr, pid: og.cmd.Process.Pid, conc: c, warmup: o.warmup, measure: o.measure, timeout: o.timeout}
					before := ec.cpu()
					x, err := l.run(ctx, newOp)
					if err != nil {
						return nil, "", err
					}
					for range profiles {
						if err := <-profiled; err != nil {
							return nil, "", err
						}
					}
					progress("  %.0f/s (p50 %s, p99 %s), %s errors", x.rate(), ms(x.pct(50)), ms(x.pct(99)), errorsOf(x))
					if i == 0 {
						r.bolt = append(r.bolt, x)
					} else {
						r.etcd = append(r.etcd, x)
						r.etcdCPU = append(r.etcdCPU, ec.cpu()-before)
					}
				}
			}
			rows = append(rows, r)
		}
	}
	if err := onEtcd.stop(); err != nil {
		return nil, "", err
	}
	if err := bolt.stop(); err != nil {
		return nil, "", err
	}
	if w := boltTOTP.waited() + etcdTOTP.waited(); w > 0 {
		// The TOTP rows then measure the wait: say so in the table.
		rows = append(rows, etcdRow{scenario: "waits", conc: w})
	}
	return rows, version, nil
}

// printEtcd writes the rows as a markdown table, with the ratio and
// whether each meets issue 17's target.
func printEtcd(w io.Writer, o options, version string, rows []etcdRow) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "otpgate on bbolt and on a three-member etcd (etcd %s, members on loopback, data on tmpfs), %s, %s, %d CPUs; %d cells per figure (median), %s measured after %s warm-up, %d TOTP users\n\n",
		version, time.Now().UTC().Format("2006-01-02 15:04 UTC"), host, runtime.NumCPU(), o.reps, o.measure, o.warmup, o.totpUsers)
	fmt.Fprintln(w, "| scenario | c | bbolt /s | etcd /s | etcd/bbolt | target | p50 bbolt | p50 etcd | p99 bbolt | p99 etcd | otpgate CPU/op bbolt | otpgate CPU/op etcd | etcd members' CPU/op | errors bbolt / etcd |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	maxConc := 0
	for _, r := range rows {
		if r.scenario == "waits" {
			continue
		}
		maxConc = max(maxConc, r.conc)
	}
	for _, r := range rows {
		if r.scenario == "waits" {
			fmt.Fprintf(w, "\n**%d TOTP flows waited for a fresh step: the TOTP rows are wrong; raise -totp-users.**\n", r.conc)
			continue
		}
		b, e := medRate(r.bolt), medRate(r.etcd)
		ratio := e / b
		target := "—"
		switch {
		case r.scenario == "accept":
			// "The same rate": within the cells' own spread, 10 %.
			target = verdict(ratio >= 0.9) + " (≥ 0.9)"
		case r.scenario == "totp" && r.conc == maxConc:
			target = verdict(ratio >= 0.5) + " (≥ 0.5)"
		}
		var members []time.Duration
		for i, c := range r.etcd {
			// The members' CPU covers the warm-up too: its share of the window.
			share := float64(c.window) / float64(c.window+o.warmup)
			members = append(members, c.perOp(time.Duration(float64(r.etcdCPU[i])*share)))
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %.2f | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |\n",
			scenarioNames[r.scenario], r.conc, b, e, ratio, target,
			ms(med(r.bolt, p50)), ms(med(r.etcd, p50)), ms(med(r.bolt, p99)), ms(med(r.etcd, p99)),
			us(med(r.bolt, srvCPU)), us(med(r.etcd, srvCPU)), us(medDur(members)),
			errorsOf(errs(r.bolt)), errorsOf(errs(r.etcd)))
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func medDur(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
