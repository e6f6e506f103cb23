package store

import (
	"encoding/json"
	"testing"
	"time"
)

// TestEntryTime: the audit entry's time, read from the start of the
// entry as pruning reads it, is the time encoding/json reads, for
// entries as either encoder writes them and for others; an entry with no
// time encoding/json can read says so.
func TestEntryTime(t *testing.T) {
	at := time.Date(2026, 12, 2, 7, 30, 1, 123456789, time.FixedZone("", 3600))
	mine, err := encodeEntry(Entry{Time: at, User: "alice", Decision: "accept"})
	if err != nil {
		t.Fatal(err)
	}
	marshalled, err := marshalEntry(Entry{Time: at, User: "alice", Admin: &AdminAct{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range [][]byte{
		mine,
		marshalled,
		[]byte(`{"time":"2026-12-02T07:30:01Z"}`),
		[]byte(`{"user":"bob","time":"2026-12-02T07:30:01Z"}`), // not first
		[]byte(` {"time":"2026-12-02T07:30:01Z"}`),
	} {
		var e struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		got, ok := entryTime(v)
		if !ok || !got.Equal(e.Time) {
			t.Errorf("%s: got %v, %v; want %v", v, got, ok, e.Time)
		}
	}
	for _, v := range [][]byte{nil, []byte(`{"time":"yesterday"}`), []byte(`{"time":"2026-12-02T07:30:0\u0031Z"}`), []byte("\xff")} {
		if got, ok := entryTime(v); ok {
			t.Errorf("%q: got %v, want no time", v, got)
		}
	}
}
