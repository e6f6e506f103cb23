package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/admin"
)

// partsCounter gathers what a streamed reply writes, and how many writes.
type partsCounter struct {
	b     strings.Builder
	parts int
}

func (p *partsCounter) Write(b []byte) (int, error) {
	p.parts++
	return p.b.Write(b)
}

func TestUserListAndExportStreamed(t *testing.T) {
	// A listing of many users comes from the server in parts, whole lines
	// each, as the server reads the store, rather than in one reply built
	// in memory; joined, they are the whole listing.
	s := startServer(t, e2eConfig)
	const n = 6000
	var in strings.Builder
	in.WriteString("name,tenant,phone,method\n")
	for i := range n {
		fmt.Fprintf(&in, "user%04d,acme,+3161%07d,sms\n", i, i)
	}
	csvPath := filepath.Join(s.dir, "users.csv")
	if err := os.WriteFile(csvPath, []byte(in.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cli(t, "user", "import", csvPath)
	settings, err := loadConfig(s.config)
	if err != nil {
		t.Fatal(err)
	}

	for _, op := range []string{"user list", "user export"} {
		t.Run(op, func(t *testing.T) {
			var out partsCounter
			rep, err := admin.CallTo(settings.adminSocket, admin.Request{Op: op}, &out)
			if err != nil || rep.Error != "" {
				t.Fatalf("%s: %v %s", op, err, rep.Error)
			}
			if out.parts < 2 {
				t.Errorf("parts before the last reply: got %d, want several", out.parts)
			}
			if !strings.HasSuffix(out.b.String(), "\n") {
				t.Errorf("a part ends inside a line: %q", out.b.String()[max(0, out.b.Len()-40):])
			}
			all := out.b.String() + rep.Output
			var names []string
			if op == "user list" {
				for _, l := range strings.Split(strings.TrimSuffix(all, "\n"), "\n")[1:] {
					names = append(names, strings.Fields(l)[0])
				}
			} else {
				recs, err := csv.NewReader(strings.NewReader(all)).ReadAll()
				if err != nil {
					t.Fatalf("export is not CSV: %v", err)
				}
				for _, r := range recs[1:] {
					names = append(names, r[0])
				}
			}
			if len(names) != n {
				t.Fatalf("users listed: got %d, want %d", len(names), n)
			}
			for i, name := range names {
				if want := fmt.Sprintf("user%04d", i); name != want {
					t.Fatalf("user %d: got %q, want %q", i, name, want)
				}
			}
			// The CLI prints the same, parts and all.
			if got := s.cli(t, strings.Fields(op)...); got != all {
				t.Errorf("otpgate %s: output differs from the streamed reply (%d bytes, want %d)", op, len(got), len(all))
			}
		})
	}
}
