package main

import (
	"errors"
	"testing"
)

// TestInBatchesUntilABatchIsShort: pruning goes on while a transaction
// removes as many as it may, stops after the first that removes fewer,
// and stops at an error with what was removed before it.
func TestInBatchesUntilABatchIsShort(t *testing.T) {
	batches := []int{3, 3, 1, 3}
	calls := 0
	total, err := inBatches(3, func() (int, error) {
		n := batches[calls]
		calls++
		return n, nil
	})
	if err != nil || total != 7 || calls != 3 {
		t.Errorf("got %d removed in %d calls, %v; want 7 in 3", total, calls, err)
	}

	broken := errors.New("disk full")
	calls = 0
	total, err = inBatches(3, func() (int, error) {
		calls++
		if calls == 2 {
			return 0, broken
		}
		return 3, nil
	})
	if !errors.Is(err, broken) || total != 3 || calls != 2 {
		t.Errorf("got %d removed in %d calls, %v; want 3 in 2 and the error", total, calls, err)
	}
}
