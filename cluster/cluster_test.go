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
	// Another cluster sharing the etcd.
	if err := cluster.Beat(ctx, cli, "/other/", cluster.Node{Name: "x", Fingerprint: "zzz"}, now); err != nil {
		t.Fatal(err)
	}
	nodes, err := cluster.Alive(ctx, cli, "/otpgate/")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].Name != "otp-a" || nodes[1].Name != "otp-b" || cluster.Differ(nodes) {
		t.Fatalf("got %+v, want otp-a and otp-b, alike", nodes)
	}
	var out strings.Builder
	cluster.Report(&out, nodes, now.Add(10*time.Second), 0)
	if got := out.String(); !strings.Contains(got, "otp-a") || !strings.Contains(got, "10s ago") || strings.Contains(got, "warning") {
		t.Errorf("got\n%s\nwant both nodes, seen 10s ago, no warning", got)
	}

	// Nodes whose clocks differ from the reader's: one dates its heartbeat
	// 40 s ahead, one two minutes back (alive all the same: etcd's lease
	// says so, not their clocks).
	for _, n := range []struct {
		name string
		at   time.Time
	}{{"otp-ahead", now.Add(40 * time.Second)}, {"otp-behind", now.Add(-2 * time.Minute)}} {
		if err := cluster.Beat(ctx, cli, "/otpgate/", cluster.Node{Name: n.name, Version: "1.4.0", Fingerprint: "abc"}, n.at); err != nil {
			t.Fatal(err)
		}
	}
	nodes, _ = cluster.Alive(ctx, cli, "/otpgate/")
	out.Reset()
	cluster.Report(&out, nodes, now, 0)
	for _, want := range []string{"otp-ahead's clock is at least 40s ahead", "otp-behind's clock is about 1m53s behind", "keep every node's clock in sync"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("got\n%s\nwant %q", out.String(), want)
		}
	}
	if strings.Contains(out.String(), "otp-a's clock") || strings.Contains(out.String(), "configurations") {
		t.Errorf("got\n%s\nwant no warning of otp-a, nor of configurations", out.String())
	}
	for _, name := range []string{"otp-ahead", "otp-behind"} {
		if _, err := cli.Delete(ctx, "/otpgate/nodes/"+name); err != nil {
			t.Fatal(err)
		}
	}

	// otp-b is given another configuration: status warns.
	if err := cluster.Beat(ctx, cli, "/otpgate/", cluster.Node{Name: "otp-b", Version: "1.4.0", Fingerprint: "def"}, now); err != nil {
		t.Fatal(err)
	}
	nodes, _ = cluster.Alive(ctx, cli, "/otpgate/")
	out.Reset()
	cluster.Report(&out, nodes, now, 0)
	if !cluster.Differ(nodes) || !strings.Contains(out.String(), "warning: the nodes run different configurations") {
		t.Errorf("got\n%s\nwant a warning", out.String())
	}
	out.Reset()
	cluster.Report(&out, nil, now, 0)
	if !strings.Contains(out.String(), "no node seen") {
		t.Errorf("got %q, want no node seen", out.String())
	}
}
