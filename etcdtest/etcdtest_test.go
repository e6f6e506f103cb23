package etcdtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestStartAgainWhenAMemberExits: a member that exits while the cluster
// starts (as one does when another process took its port first) makes
// Start build the cluster again, instead of waiting a minute and failing.
func TestStartAgainWhenAMemberExits(t *testing.T) {
	real, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not installed")
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "failed-once")
	script := "#!/bin/sh\nif [ ! -e " + marker + " ]; then touch " + marker + "; echo 'bind: address already in use' >&2; exit 1; fi\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "etcd"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	start := time.Now()
	c := Start(t, 1)
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the first member did not run the failing binary")
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("took %v to start again", took)
	}
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("the cluster made again: %v", err)
	}
}
