package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/otpgate/otpgate/admin"
	"github.com/otpgate/otpgate/cluster"
	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/store"
)

// liveState returns where the challenges and approvals waiting for an
// answer are kept: in this process's memory on a single node (bbolt), or
// in etcd beside the shared store, where every node sees them, a
// challenge that sent nothing sealed with key into its State, told apart
// from an expired one by the clock now (nil: time.Now). The function it
// returns stops what it started.
func liveState(db *store.DB, key *secret.Key, now func() time.Time, log *slog.Logger) (live.Challenges, live.Approvals, func()) {
	cli, prefix := db.Shared()
	if cli == nil {
		return live.NewTable(), live.NewHolds(), func() {}
	}
	c := live.NewCluster(cli, prefix)
	c.Log = log
	c.Hopeless, c.Unavailable = db.Hopeless, db.Unavailable
	c.Key, c.Now = key, now
	return c, c, c.Close
}

// heartbeat tells the other nodes of a cluster about this one until ctx
// ends (see otpgate cluster status); on a single node it does nothing.
func heartbeat(ctx context.Context, db *store.DB, name, configPath string, now func() time.Time, log *slog.Logger) {
	cli, prefix := db.Shared()
	if cli == nil {
		return
	}
	bi, _ := debug.ReadBuildInfo()
	n := cluster.Node{Name: name, Version: versionText(bi), Fingerprint: configFingerprint(configPath)}
	cluster.Heartbeat(ctx, cli, prefix, n, 0, now, log)
}

// configFingerprint is a short hash of the configuration file's settings
// but those that may differ from node to node (nodeOwnKeys); "embedded"
// when there is no file. Nodes with one fingerprint decide alike, however
// their files are laid out.
func configFingerprint(path string) string {
	if path == "" {
		return "embedded"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "unreadable"
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
		return "unreadable"
	}
	all := v.AllSettings()
	for _, k := range nodeOwnKeys {
		m := all
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			m, _ = m[p].(map[string]any)
		}
		delete(m, parts[len(parts)-1])
	}
	j, err := json.Marshal(all) // map keys in order
	if err != nil {
		return "unreadable"
	}
	h := sha256.Sum256(j)
	return hex.EncodeToString(h[:6])
}

// nodeOwnKeys are the settings that may differ between the nodes of a
// cluster without their decisions differing: the node's name, its own
// files and the addresses it listens on.
var nodeOwnKeys = []string{
	"cluster.node_name", "store.path", "store.key_file", "admin.socket",
	"radius.listen", "http.listen",
	"store.etcd.cert_file", "store.etcd.key_file", "store.etcd.ca_file", "store.etcd.password_file",
}

// nodeName is this node's name in a cluster: the host name and the port
// of its first RADIUS listener, so that two nodes on one host differ.
func nodeName(radiusAddr string) string {
	host, _ := os.Hostname()
	if _, port, err := net.SplitHostPort(radiusAddr); err == nil {
		return host + ":" + port
	}
	return host
}

func cmdCluster(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "status" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
			return errHelp{"Usage:\n  otpgate cluster status [--config FILE]   the nodes seen in the last minute, and whether their configurations differ\n"}
		}
		return usagef("say what to show of the cluster: otpgate cluster status --config /etc/otpgate/otpgate.yaml")
	}
	fs := newFlags("cluster status")
	configPath := fs.String("config", "", "configuration `FILE` (default: the embedded defaults)")
	if _, err := parse(fs, args[1:], 0); err != nil {
		return err
	}
	s, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if s.etcd == nil {
		// Said without opening the file: there is nothing to list.
		return fmt.Errorf("no cluster: the store is the file %s (store.backend: bbolt), which one node uses; a cluster keeps its store in etcd (store.backend: etcd, see docs/cluster.md)", s.storePath)
	}
	req := admin.Request{Op: "cluster status"}
	rep, err := admin.Call(s.adminSocket, req)
	if errors.Is(err, admin.ErrNoServer) {
		// No node runs here: ask etcd itself, without opening the store.
		rep, err = clusterStatusDirect(s, time.Now())
	}
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.Output)
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	return nil
}

// clusterStatusDirect lists the nodes from etcd, as a node's admin
// socket would.
func clusterStatusDirect(s *settings, now time.Time) (admin.Reply, error) {
	cli, prefix, err := s.etcd.Dial()
	if err != nil {
		return admin.Reply{}, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nodes, err := cluster.Alive(ctx, cli, prefix)
	if err != nil {
		return admin.Reply{}, fmt.Errorf("%w (etcd %s)", err, strings.Join(s.etcd.Endpoints, ","))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "store: etcd %s prefix %s\n", strings.Join(s.etcd.Endpoints, ","), s.etcd.Prefix)
	cluster.Report(&b, nodes, now, 0)
	// A node names itself in etcd: its fields are escaped, line by line.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = admin.Printable(l)
	}
	return admin.Reply{Output: strings.Join(lines, "\n")}, nil
}
