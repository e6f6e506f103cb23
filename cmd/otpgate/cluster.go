package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/otpgate/otpgate/cluster"
	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/store"
)

// liveState returns where the challenges and approvals waiting for an
// answer are kept: in this process's memory on a single node (bbolt), or
// in etcd beside the shared store, where every node sees them. The
// function it returns stops what it started.
func liveState(db *store.DB, log *slog.Logger) (live.Challenges, live.Approvals, func()) {
	cli, prefix := db.Shared()
	if cli == nil {
		return live.NewTable(), live.NewHolds(), func() {}
	}
	c := live.NewCluster(cli, prefix)
	c.Log = log
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

// configFingerprint is a short hash of the configuration file's lines
// but the one naming the node, which differs from node to node;
// "embedded" when there is no file.
func configFingerprint(path string) string {
	if path == "" {
		return "embedded"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "unreadable"
	}
	h := sha256.New()
	for line := range strings.Lines(string(b)) {
		if !strings.Contains(line, "node_name:") {
			h.Write([]byte(line))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
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
