package store

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

func TestEncodeEntryIsJSONMarshal(t *testing.T) {
	// Byte for byte what encoding/json writes, for the entries of logins
	// and for text an attacker chooses (a User-Name, a Class).
	texts := []string{"", "alice", "bob@example.com", "203.0.113.9", "office_network", `a"b`, `back\slash`,
		"<script>", "a&b", "tab\there", "new\nline", "del\x7f", "nul\x00", "\xff\xfe", "é", "\u2028", "日本",
		"' OR 1=1 --", "{\"json\":true}"}
	times := []time.Time{
		time.Date(2026, 12, 1, 1, 2, 3, 0, time.UTC),
		time.Date(2026, 12, 1, 1, 2, 3, 456789000, time.UTC),
		time.Date(2026, 12, 1, 1, 2, 3, 1, time.FixedZone("CET", 3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), // JSON cannot hold it: an error, as json.Marshal says
		time.Now(),
		{},
	}
	r := rand.New(rand.NewPCG(3, 4))
	pick := func() string { return texts[r.IntN(len(texts))] }
	check := func(e Entry) {
		t.Helper()
		want, wantErr := json.Marshal(e)
		got, err := encodeEntry(e)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("encodeEntry(%+v):\n got %s (%v)\nwant %s (%v)", e, got, err, want, wantErr)
		}
	}
	for _, tm := range times {
		check(Entry{Time: tm, User: "alice", Client: "vpn", Decision: "accept", Reason: "office_network"})
	}
	for range 20000 {
		e := Entry{Time: times[r.IntN(len(times))], User: pick(), Tenant: pick(), Client: pick(), IP: pick(), Decision: pick(),
			Reason: pick(), Method: pick(), Provider: pick(), Session: pick(), Class: pick(), Node: pick()}
		if r.IntN(10) == 0 {
			e.Admin = &AdminAct{Op: "user set", Fields: []string{"phone"}, Via: "local"}
		}
		check(e)
	}
}
