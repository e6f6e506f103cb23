package sms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// script writes a /bin/sh script called name into dir and returns its
// path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the command tests run /bin/sh scripts")
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func mustCommand(t *testing.T, c CommandConfig) *Command {
	t.Helper()
	cmd, err := NewCommand("modem", c)
	if err != nil {
		t.Fatalf("NewCommand: %v", err)
	}
	return cmd
}

func TestCommandPassesTheMessage(t *testing.T) {
	t.Setenv("OTPGATE_TEST_LEAK", "otpgate's own environment")
	dir := t.TempDir()
	out := filepath.Join(dir, "sent")
	path := script(t, dir, "send.sh", `{
printf 'channel=%s\n' "$OTPGATE_CHANNEL"
printf 'to=%s\n' "$OTPGATE_TO"
printf 'text=%s\n' "$OTPGATE_TEXT"
printf 'code=%s\n' "$OTPGATE_CODE"
printf 'lang=%s\n' "$OTPGATE_LANG"
printf 'path=%s\n' "${PATH-unset}"
printf 'home=%s\n' "${HOME-unset}"
printf 'leak=%s\n' "${OTPGATE_TEST_LEAK-unset}"
for a; do printf 'arg=%s\n' "$a"; done
printf 'stdin=%s\n' "$(cat)"
echo --
} >> `+shellQuote(out)+"\n")
	c := mustCommand(t, CommandConfig{Path: path, Args: []string{"--to", "{{.To}}", "--lang={{.Lang}}", "{{.Channel}} message"}})

	first, second := testMessage(), testMessage()
	second.Channel, second.To, second.Lang = "voice", "+441632960961", ""
	for _, m := range []Message{first, second} {
		if err := c.Send(t.Context(), m); err != nil {
			t.Fatalf("Send: got %v, want nil", err)
		}
	}

	record := func(m Message, lang string) string {
		return fmt.Sprintf("channel=%s\nto=%s\ntext=%s\ncode=%s\nlang=%s\npath=%s\nhome=unset\nleak=unset\n"+
			"arg=--to\narg=%s\narg=--lang=%s\narg=%s message\nstdin=\n--\n",
			m.Channel, m.To, m.Text, m.Code, lang, os.Getenv("PATH"), m.To, lang, m.Channel)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := record(first, "nl") + record(second, "en"); string(got) != want {
		t.Errorf("script saw:\n%s\nwant:\n%s", got, want)
	}
}

func TestCommandFindsProgramInPath(t *testing.T) {
	dir := t.TempDir()
	path := script(t, dir, "otpgate-send-test", "exit 0\n")
	t.Setenv("PATH", dir)
	c := mustCommand(t, CommandConfig{Path: "otpgate-send-test"})
	if c.path != path || c.Name() != "modem" || c.timeout != 10*time.Second {
		t.Errorf("got path %q, name %q, timeout %s, want %q, modem, 10s", c.path, c.Name(), c.timeout, path)
	}
	if err := c.Send(t.Context(), testMessage()); err != nil {
		t.Errorf("Send: got %v, want nil", err)
	}
}

func TestCommandExitStatus(t *testing.T) {
	m := testMessage()
	dir := t.TempDir()
	tests := []struct {
		name, body string
		want       string // %s is the script's path
	}{
		{
			name: "stderr quoting the message",
			body: `echo "gateway refused: to=$OTPGATE_TO text=$OTPGATE_TEXT code=$OTPGATE_CODE" >&2; exit 3`,
			want: `run %s: exit status 3: stderr "gateway refused: to=+31612345678 text=… code=…"`,
		},
		{
			name: "silent",
			body: "exit 3",
			want: "run %s: exit status 3",
		},
		{
			name: "long stderr",
			body: `i=0; while [ $i -lt 100 ]; do printf 'abcdefghij' >&2; i=$((i+1)); done; exit 3`,
			want: `run %s: exit status 3: stderr "` + strings.Repeat("abcdefghij", 20) + `…"`,
		},
		{
			name: "killed",
			body: "kill -9 $$",
			want: "run %s: signal: killed",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := script(t, dir, "fail"+strconv.Itoa(i)+".sh", tt.body+"\n")
			err := mustCommand(t, CommandConfig{Path: path}).Send(t.Context(), m)
			if want := fmt.Sprintf(tt.want, path); err == nil || err.Error() != want {
				t.Errorf("Send: got %v, want %s", err, want)
			}
			if _, ok := errors.AsType[*exec.ExitError](err); !ok {
				t.Errorf("errors.AsType[*exec.ExitError](%v): got false, want true", err)
			}
		})
	}
}

func TestCommandTimeout(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "escaped.pid")
	t.Cleanup(func() { killRecorded(t, pidFile) })
	tests := []struct {
		name      string
		body      string
		waitDelay time.Duration // zero means the default
		needs     string        // a program the test needs in PATH
	}{
		// With an hour's WaitDelay, returning at all shows the whole
		// process group was killed, pipes and all.
		{name: "exec sleep", body: "exec sleep 60", waitDelay: time.Hour},
		{name: "child in the background", body: "sleep 60 &\nsleep 60", waitDelay: time.Hour},
		{name: "child holding stderr", body: "sleep 60 >&2 &\nexec sleep 60", waitDelay: time.Hour},
		// A child that leaves the group survives the kill and keeps stderr
		// open; WaitDelay stops it holding Send up.
		{
			name:  "child that left the group",
			body:  "setsid sleep 60 &\necho $! > " + shellQuote(pidFile) + "\nexec sleep 60",
			needs: "setsid",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needs != "" {
				if _, err := exec.LookPath(tt.needs); err != nil {
					t.Skipf("needs %s: %v", tt.needs, err)
				}
			}
			path := script(t, dir, "hang"+strconv.Itoa(i)+".sh", tt.body+"\n")
			c := mustCommand(t, CommandConfig{Path: path, Timeout: 300 * time.Millisecond})
			if tt.waitDelay != 0 {
				c.waitDelay = tt.waitDelay
			}
			start := time.Now()
			err := c.Send(t.Context(), testMessage())
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("Send took %s, want well under 3s", elapsed)
			}
			if want := "run " + path + ": timeout after 300ms"; err == nil || err.Error() != want {
				t.Errorf("Send: got %v, want %s", err, want)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("errors.Is(%v, context.DeadlineExceeded): got false, want true", err)
			}
		})
	}
}

// A program that exits 0 has taken the message, even if something it
// started still holds its stderr.
func TestCommandSucceedsDespiteLeftoverChild(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skipf("needs setsid: %v", err)
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "leftover.pid")
	t.Cleanup(func() { killRecorded(t, pidFile) })
	path := script(t, dir, "daemonize.sh", "setsid sleep 60 &\necho $! > "+shellQuote(pidFile)+"\nexit 0\n")
	c := mustCommand(t, CommandConfig{Path: path, Timeout: 30 * time.Second})
	start := time.Now()
	if err := c.Send(t.Context(), testMessage()); err != nil {
		t.Errorf("Send: got %v, want nil", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Send took %s, want well under 3s", elapsed)
	}
}

// killRecorded kills the process whose id a test script wrote to pidFile:
// one that escaped its process group, and so the provider's kill.
func killRecorded(t *testing.T, pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return // the script never got that far
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Errorf("pid file %s: %v", pidFile, err)
		return
	}
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

func TestCommandCancelledContext(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "ran")
	path := script(t, dir, "send.sh", "touch "+shellQuote(out)+"\n")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := mustCommand(t, CommandConfig{Path: path}).Send(ctx, testMessage())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(%v, context.Canceled): got false, want true", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat %s: got %v, want it not to exist", out, err)
	}
}

func TestNewCommandConfigErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  CommandConfig
		want []string // the start of each line of the error
	}{
		{"no path", CommandConfig{}, []string{"path: is missing"}},
		{"not in path", CommandConfig{Path: "otpgate-no-such-program"}, []string{`path: exec: "otpgate-no-such-program": executable file not found in $PATH`}},
		{"relative", CommandConfig{Path: "bin/send"}, []string{"path: bin/send is relative; give an absolute path or a name to find in PATH"}},
		{"not executable", CommandConfig{Path: plain}, []string{fmt.Sprintf("path: exec: %q: permission denied", plain)}},
		{"missing file", CommandConfig{Path: filepath.Join(dir, "none")}, []string{fmt.Sprintf("path: exec: %q: stat %s: no such file or directory", filepath.Join(dir, "none"), filepath.Join(dir, "none"))}},
		{
			"args",
			CommandConfig{Path: "/bin/sh", Args: []string{"{{.To}}", "{{.Phone}}", "{{urlquery .Text"}},
			[]string{
				`args[1]: template: args[1]:1:2: executing "args[1]" at <.Phone>: can't evaluate field Phone`,
				`args[2]: template: args[2]:1: unclosed action`,
			},
		},
		{"timeout", CommandConfig{Path: "/bin/sh", Timeout: -time.Second}, []string{"timeout: -1s is negative"}},
		{
			"every problem at once",
			CommandConfig{Args: []string{"{{json}}"}, Timeout: -time.Second},
			[]string{"path: is missing", "args[0]: template: args[0]:1:2: executing \"args[0]\" at <json>: wrong number of args", "timeout: -1s is negative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS == "windows" {
				t.Skip("paths are Unix paths")
			}
			c, err := NewCommand("modem", tt.cfg)
			if err == nil {
				t.Fatalf("NewCommand: got %+v, want an error", c)
			}
			assertErrorLines(t, err, tt.want)
		})
	}
}

func TestHeadBufferExcerpt(t *testing.T) {
	m := Message{Text: "code 914207", Code: "914207"}
	tests := []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{"empty", 4096, nil, ""},
		{"text and code", 4096, []string{"sent code 914207, then 914207 again\n"}, "sent …, then … again"},
		{"in pieces", 4096, []string{"sent code 91", "4207 to +31"}, "sent … to +31"},
		{"cut inside the code", 18, []string{"gateway said 914207 twice"}, "gateway"},
		{"cut inside the text", 16, []string{"all is well code 914207"}, "all is"},
		{"long", 4096, []string{"x" + strings.Repeat("é", 150)}, "x" + strings.Repeat("é", 99) + "…"},
	}
	for _, tt := range tests {
		h := &headBuffer{max: tt.max}
		for _, w := range tt.writes {
			if n, err := h.Write([]byte(w)); n != len(w) || err != nil {
				t.Errorf("%s: Write: got %d, %v, want %d, nil", tt.name, n, err, len(w))
			}
		}
		if got := h.excerpt(m); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
