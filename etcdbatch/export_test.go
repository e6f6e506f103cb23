package etcdbatch

import (
	"context"
	"runtime"
	"testing"
)

// WaitQueued returns once n transactions wait in b's queue (the batch
// before them held in flight), failing t when ctx ends first.
func WaitQueued(ctx context.Context, t *testing.T, b *Batcher, n int) {
	t.Helper()
	for len(b.queue) < n {
		if ctx.Err() != nil {
			t.Fatalf("%d transactions queued, want %d", len(b.queue), n)
		}
		runtime.Gosched()
	}
}
