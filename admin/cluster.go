package admin

import (
	"context"
	"strings"
	"time"

	"github.com/otpgate/otpgate/cluster"
)

// clusterStatus lists the nodes of the cluster whose store this is, seen
// in the last minute, and warns when they run different configurations
// or versions.
func (s *Service) clusterStatus() (string, error) {
	cli, prefix := s.DB.Shared()
	if cli == nil {
		return "", failf("no cluster: the store is the file %s (store.backend: bbolt), which one node uses; a cluster keeps its store in etcd (store.backend: etcd, see docs/cluster.md)", s.DB.Where())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := s.now()
	nodes, err := cluster.Alive(ctx, cli, prefix)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("store: " + s.DB.Where() + "\n")
	cluster.Report(&b, nodes, now, 0)
	return b.String(), nil
}
