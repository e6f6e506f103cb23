package store

import (
	"bytes"
	"encoding/binary"
	"time"
)

// SendWindow is the longest a send is remembered for the rate limits: a
// limit can look back at most this far.
const SendWindow = 24 * time.Hour

// maxSendsKept bounds the sends remembered under one key; limits are far
// below it.
const maxSendsKept = 4096

// Keys in the sends bucket start with a kind byte.
const (
	kindRecent = 'r' // a list of send times, newest last
	kindDay    = 'd' // a UTC day number and a count
)

// CountSends returns how many sends recorded under key happened after
// since: a send exactly one window ago no longer counts.
func (tx *Tx) CountSends(key string, since time.Time) int {
	v := tx.kv.get(bucketSends, sendsKey(kindRecent, key))
	n := 0
	for i := len(v) - 8; i >= 0; i -= 8 {
		if !time.Unix(0, int64(binary.BigEndian.Uint64(v[i:]))).After(since) {
			break
		}
		n++
	}
	return n
}

// RecordSend records a send under key at the given time, and forgets the
// sends under key that are older than SendWindow.
func (tx *Tx) RecordSend(key string, at time.Time) error {
	k := sendsKey(kindRecent, key)
	old := tx.kv.get(bucketSends, k)
	cutoff := at.Add(-SendWindow).UnixNano()
	start := 0
	for start < len(old) && int64(binary.BigEndian.Uint64(old[start:])) < cutoff {
		start += 8
	}
	start = max(start, len(old)-8*(maxSendsKept-1))
	v := make([]byte, 0, len(old)-start+8)
	v = append(v, old[start:]...)
	v = binary.BigEndian.AppendUint64(v, uint64(at.UnixNano()))
	return tx.kv.put(bucketSends, k, v)
}

// DayCount returns the count under key for the UTC day of at.
func (tx *Tx) DayCount(key string, at time.Time) int {
	v := tx.kv.get(bucketSends, sendsKey(kindDay, key))
	if len(v) != 16 || binary.BigEndian.Uint64(v) != dayNumber(at) {
		return 0
	}
	return int(binary.BigEndian.Uint64(v[8:]))
}

// AddDayCount adds one to the count under key for the UTC day of at; a
// count from an earlier day starts over.
func (tx *Tx) AddDayCount(key string, at time.Time) error {
	n := tx.DayCount(key, at)
	v := binary.BigEndian.AppendUint64(nil, dayNumber(at))
	v = binary.BigEndian.AppendUint64(v, uint64(n+1))
	return tx.kv.put(bucketSends, sendsKey(kindDay, key), v)
}

// staleSends returns up to max keys of send lists whose newest send is
// older than SendWindow and of day counts from before yesterday.
func (tx *Tx) staleSends(now time.Time, max int) ([][]byte, error) {
	var stale [][]byte
	if max <= 0 {
		return nil, nil
	}
	err := tx.kv.scan(bucketSends, nil, func(k, v []byte) (bool, error) {
		old := false
		switch k[0] {
		case kindRecent:
			old = len(v) < 8 || time.Unix(0, int64(binary.BigEndian.Uint64(v[len(v)-8:]))).Before(now.Add(-SendWindow))
		case kindDay:
			old = len(v) != 16 || binary.BigEndian.Uint64(v)+1 < dayNumber(now)
		default:
			old = staleGuard(k[0], v, now) // guards.go
		}
		if old {
			stale = append(stale, bytes.Clone(k))
		}
		return len(stale) < max, nil
	})
	return stale, err
}

func sendsKey(kind byte, key string) []byte { return append([]byte{kind, 0}, key...) }

// dayNumber counts UTC days since 1970.
func dayNumber(t time.Time) uint64 { return uint64(t.UTC().Unix() / 86400) }
