package store_test

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/otpgate/otpgate/etcdtest"
	"github.com/otpgate/otpgate/store"
)

// TestSharedAuditCompressed: a node's entries reach the other nodes
// through etcd compressed, the same when read back, control characters,
// line breaks and quotes included; values written before
// compression still read, and a value that does not inflate (damaged, or
// inflating past the bound) is skipped without taking the others with it.
func TestSharedAuditCompressed(t *testing.T) {
	eps := etcdtest.Shared(t)
	prefix := testPrefix(t)
	a := openEtcdNode(t, eps, prefix, "a")
	b := openEtcdNode(t, eps, prefix, "b")
	base := time.Now().UTC().Truncate(time.Millisecond)
	var want []store.Entry
	for i := range 200 {
		e := store.Entry{Time: base.Add(time.Duration(i) * time.Millisecond), User: fmt.Sprintf("u%d\x00é\u2028\n{\"", i),
			Client: "gw", Decision: "accept", Reason: "office_network", IP: "203.0.113.9"}
		want = append(want, e)
		if err := a.Audit(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	auditPrefix := strings.TrimSuffix(prefix, "/") + "-live/audit/"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Written once a second: wait for b to see all of a's.
	read := func(n int) []store.Entry {
		t.Helper()
		for {
			got, err := b.OthersAudit(ctx, time.Time{}, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) >= n {
				return got
			}
			if ctx.Err() != nil {
				t.Fatalf("node b sees %d of node a's %d entries", len(got), n)
			}
			time.Sleep(20 * time.Millisecond) // polling for a condition
		}
	}
	got := read(len(want))
	if len(got) != len(want) {
		t.Fatalf("node b sees %d entries, want %d", len(got), len(want))
	}
	for i, g := range got { // newest first
		w := want[len(want)-1-i]
		if g.User != w.User || !g.Time.Equal(w.Time) || g.Reason != w.Reason || g.IP != w.IP || g.Node != "a" {
			t.Fatalf("entry %d: got %+v, want %+v", i, g, w)
		}
	}

	resp, err := cli.Get(ctx, auditPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, kv := range resp.Kvs {
		if !bytes.HasPrefix(kv.Value, []byte("\x00deflate\n")) {
			t.Fatalf("a value of entries is not compressed: %.40q", kv.Value)
		}
		stored += len(kv.Value)
	}
	if plain := 200 * 150; stored*3 > plain {
		t.Errorf("200 entries take %d bytes in etcd; about %d as lines", stored, plain)
	}

	// A value as builds before compression wrote it, a damaged one and
	// one that inflates past the bound, from other nodes.
	old := `{"time":"` + base.Add(time.Second).Format(time.RFC3339Nano) + `","user":"olduser","client":"gw","decision":"reject","reason":"bad_password","node":"old"}`
	var bomb bytes.Buffer
	bomb.WriteString("\x00deflate\n")
	zw, _ := flate.NewWriter(&bomb, flate.BestCompression)
	line := `{"time":"` + base.Add(3*time.Second).Format(time.RFC3339Nano) + `","user":"bomb","client":"gw","decision":"accept","reason":"office_network","node":"big"}` + "\n"
	for n := 0; n <= 4<<20; n += len(line) {
		zw.Write([]byte(line))
	}
	zw.Close()
	for key, v := range map[string]string{
		fmt.Sprintf("%s%020d-old", auditPrefix, base.Add(time.Second).UnixNano()):   old,
		fmt.Sprintf("%s%020d-bad", auditPrefix, base.Add(2*time.Second).UnixNano()): "\x00deflate\nnot deflate at all",
		fmt.Sprintf("%s%020d-big", auditPrefix, base.Add(3*time.Second).UnixNano()): bomb.String(),
	} {
		if _, err := cli.Put(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	got = read(len(want) + 1)
	if len(got) != len(want)+1 || got[0].User != "olduser" || got[0].Node != "old" {
		t.Fatalf("after an old, a damaged and an inflating value: %d entries, the newest %+v", len(got), got[0])
	}
	if bomb.Len() > 64<<10 {
		t.Fatalf("the inflating value is %d bytes", bomb.Len())
	}
}
