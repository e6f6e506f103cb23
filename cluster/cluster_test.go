package cluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/cluster"
	"github.com/otpgate/otpgate/etcdtest"
)

func TestStatus(t *testing.T) {
	cli := etcdtest.Start(t, 1).Client(t)
	ctx := context.Background()
	now := time.Now()
	for _, n := range []cluster.Node{
		{Name: "otp-b", Version: "1.4.0", Fingerprint: "abc"},
		{Name: "otp-a", Version: "1.4.0", Fingerprint: "abc"},
	} {
		if err := cluster.Beat(ctx, cli, "/otpgate/", n, now); err != nil {
			t.Fatal(err)
		}
	}
	// Another cluster sharing the etcd, and a node not seen for long.
	if err := cluster.Beat(ctx, cli, "/other/", cluster.Node{Name: "x", Fingerprint: "zzz"}, now); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Beat(ctx, cli, "/otpgate/", cluster.Node{Name: "otp-old", Fingerprint: "old"}, now.Add(-2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	nodes, err := cluster.Nodes(ctx, cli, "/otpgate/", now.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].Name != "otp-a" || nodes[1].Name != "otp-b" || cluster.Differ(nodes) {
		t.Fatalf("got %+v, want otp-a and otp-b, alike", nodes)
	}
	var out strings.Builder
	cluster.Report(&out, nodes, now.Add(10*time.Second))
	if got := out.String(); !strings.Contains(got, "otp-a") || !strings.Contains(got, "10s ago") || strings.Contains(got, "warning") {
		t.Errorf("got\n%s\nwant both nodes, seen 10s ago, no warning", got)
	}

	// otp-b is given another configuration: status warns.
	if err := cluster.Beat(ctx, cli, "/otpgate/", cluster.Node{Name: "otp-b", Version: "1.4.0", Fingerprint: "def"}, now); err != nil {
		t.Fatal(err)
	}
	nodes, _ = cluster.Nodes(ctx, cli, "/otpgate/", now)
	out.Reset()
	cluster.Report(&out, nodes, now)
	if !cluster.Differ(nodes) || !strings.Contains(out.String(), "warning: the nodes run different configurations") {
		t.Errorf("got\n%s\nwant a warning", out.String())
	}
	out.Reset()
	cluster.Report(&out, nil, now)
	if !strings.Contains(out.String(), "no node seen") {
		t.Errorf("got %q, want no node seen", out.String())
	}
}
