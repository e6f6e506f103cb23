// Package cluster lets the nodes of an otpgate cluster see each other:
// each node keeps a key in etcd, rewritten every few seconds under a
// lease of a minute (a heartbeat), that names it, its version and a
// fingerprint of its configuration; "otpgate cluster status" lists the
// nodes seen in the last minute and warns when their configurations
// differ, or when their clocks do.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Node is what a node says of itself.
type Node struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Fingerprint identifies the node's configuration: nodes with the same
	// one decide alike.
	Fingerprint string    `json:"fingerprint"`
	Seen        time.Time `json:"seen"`
}

// Window is how long a node counts as present after its last heartbeat.
const Window = time.Minute

func nodeKey(prefix, name string) string { return prefix + "nodes/" + name }

// Beat writes n (seen at now) under prefix, under a lease that ends a
// minute later unless the next beat renews the key.
func Beat(ctx context.Context, cli *clientv3.Client, prefix string, n Node, now time.Time) error {
	n.Seen = now.UTC()
	val, err := json.Marshal(n)
	if err != nil {
		return err
	}
	l, err := cli.Grant(ctx, int64(Window/time.Second))
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if _, err := cli.Put(ctx, nodeKey(prefix, n.Name), string(val), clientv3.WithLease(l.ID)); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// Heartbeat beats every interval (zero means 15 s) until ctx ends. A beat
// that fails is logged, once until one succeeds again.
func Heartbeat(ctx context.Context, cli *clientv3.Client, prefix string, n Node, interval time.Duration, now func() time.Time, log *slog.Logger) {
	if interval <= 0 {
		interval = 15 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		bctx, cancel := context.WithTimeout(ctx, interval)
		err := Beat(bctx, cli, prefix, n, now())
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			log.Warn("cluster heartbeat failed", "node", n.Name, "err", err)
			failing = true
		case err == nil:
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Alive returns the nodes under prefix whose heartbeat's lease has not
// ended (seen in the last minute by etcd's reckoning), whatever their
// clocks say, by name.
func Alive(ctx context.Context, cli *clientv3.Client, prefix string) ([]Node, error) {
	resp, err := cli.Get(ctx, prefix+"nodes/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var nodes []Node
	for _, kv := range resp.Kvs {
		var n Node
		if err := json.Unmarshal(kv.Value, &n); err != nil {
			continue
		}
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return nodes, nil
}

// Differ reports whether the nodes run different configurations or
// versions.
func Differ(nodes []Node) bool {
	for _, n := range nodes {
		if n.Fingerprint != nodes[0].Fingerprint || n.Version != nodes[0].Version {
			return true
		}
	}
	return false
}

// clockSlack is how far a node's heartbeat may be from the reader's clock,
// beyond the time between heartbeats, before status warns of the clocks.
const clockSlack = 5 * time.Second

// Report writes the nodes (seen at now by the reader's clock, beating
// every interval; zero means 15 s) as a table, and a warning when their
// configurations differ, or when a node's heartbeat is dated ahead of
// now or further back than a heartbeat: its clock differs from this one's
// (TOTP codes and the single use of a State across nodes rely on the
// clocks agreeing within some seconds).
func Report(w io.Writer, nodes []Node, now time.Time, interval time.Duration) {
	if len(nodes) == 0 {
		fmt.Fprintln(w, "no node seen in the last minute (is otpgate serve running with store.backend: etcd?)")
		return
	}
	if interval <= 0 {
		interval = 15 * time.Second
	}
	fmt.Fprintf(w, "%-24s %-12s %-18s %s\n", "NODE", "VERSION", "CONFIG", "LAST SEEN")
	var clocks []string
	for _, n := range nodes {
		age := now.Sub(n.Seen).Round(time.Second)
		seen := fmt.Sprintf("%s ago", age)
		switch {
		case age < -clockSlack:
			seen = fmt.Sprintf("%s ahead", -age)
			clocks = append(clocks, fmt.Sprintf("%s's clock is at least %s ahead of this one's", n.Name, -age))
		case age > interval+clockSlack:
			clocks = append(clocks, fmt.Sprintf("%s's clock is about %s behind this one's (or its heartbeats stall)", n.Name, (age-interval/2).Round(time.Second)))
		}
		fmt.Fprintf(w, "%-24s %-12s %-18s %s\n", n.Name, n.Version, n.Fingerprint, seen)
	}
	if Differ(nodes) {
		fmt.Fprintln(w, "warning: the nodes run different configurations or versions; copy the same otpgate.yaml to every node and run otpgate reload on each")
	}
	for _, c := range clocks {
		fmt.Fprintf(w, "warning: %s; keep every node's clock in sync (NTP): TOTP codes and the single use of a State across nodes rely on it\n", c)
	}
}
