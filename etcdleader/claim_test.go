package etcdleader_test

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/otpgate/otpgate/etcdleader"
	"github.com/otpgate/otpgate/etcdtest"
)

// claimer is an endpoint that says it is the leader but that no other
// endpoint follows: a member of the cluster whose Raft loop is stuck (its
// disk stalls: it still answers Status from memory, as the leader it was,
// while the others have elected another), or a member of another cluster
// left in the list. Its transactions either never end (stuck) or end
// well somewhere else (another cluster).
type claimer struct {
	pb.UnimplementedKVServer
	pb.UnimplementedMaintenanceServer
	cluster, id uint64
	stuck       bool
	txns        atomic.Int64
}

func (f *claimer) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	return &pb.StatusResponse{Header: &pb.ResponseHeader{ClusterId: f.cluster, MemberId: f.id}, Leader: f.id, RaftTerm: 1}, nil
}

func (f *claimer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	f.txns.Add(1)
	if f.stuck {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &pb.TxnResponse{Header: &pb.ResponseHeader{ClusterId: f.cluster, MemberId: f.id}, Succeeded: true}, nil
}

// serve runs f on loopback until the test ends and returns its endpoint.
func serve(t *testing.T, f *claimer) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	pb.RegisterKVServer(s, f)
	pb.RegisterMaintenanceServer(s, f)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return "http://" + l.Addr().String()
}

// TestLeaderClaimedByOneEndpointOnly: an endpoint that says it leads
// while the other endpoints follow another member is not routed to, so
// that writes neither stop (a stuck old leader) nor go to another
// cluster; they go to the leader the others follow.
func TestLeaderClaimedByOneEndpointOnly(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	cli := etcd.Client(t)
	real := etcd.Endpoints()
	want := leaderOf(t, cli, real)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	st, err := cli.Status(ctx, want)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		fake  *claimer
		check func(t *testing.T, key string)
	}{
		{"stuck member of the cluster", &claimer{cluster: st.Header.ClusterId, id: st.Leader + 1, stuck: true}, nil},
		{"member of another cluster", &claimer{cluster: st.Header.ClusterId + 1, id: 42}, func(t *testing.T, key string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := cli.Get(ctx, key)
			if err != nil || len(resp.Kvs) != 1 {
				t.Errorf("a write said done is not in the cluster: %s %v %v", key, resp, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eps := append([]string{serve(t, tc.fake)}, real...) // first: asked first
			all, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			defer all.Close()
			kv := etcdleader.New(all, eps, dialer, time.Hour)
			defer kv.Close()
			if got := waitLeader(t, kv); got != want {
				t.Errorf("routes to %s; the leader the members follow is at %s", got, want)
			}
			// Writes as the store makes them: tries of a second, for 6 s.
			for i := range 5 {
				key := tc.name + strconv.Itoa(i)
				end := time.Now().Add(6 * time.Second)
				for {
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					_, err := kv.Txn(ctx).Then(clientv3.OpPut(key, "v")).Commit()
					cancel()
					if err == nil {
						break
					}
					if time.Now().After(end) {
						t.Fatalf("write %d not made in 6 s (the members answer): %v", i, err)
					}
					time.Sleep(50 * time.Millisecond) // the store's pause between tries
				}
				if tc.check != nil {
					tc.check(t, key)
				}
			}
		})
	}
}
