//go:build linux || darwin || freebsd

package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestReadmeTryIt runs the README as a new admin would: the first command
// of the README (the server on the embedded defaults, by go run) in one
// process, and every command of the "Try it" transcript in a shell, in a
// directory that holds the source and nothing else. Each command must
// exit 0 and print the lines the README shows, in order (lines the README
// leaves out may come between). The transcript's notation:
//
//	$ command            a command, run with bash
//	# comment            said to the reader; after "# … server's log …" the
//	                     lines that follow are looked for in the server's log
//	…                    a line on its own: lines left out
//	other lines          output; "…" in a line stands for any text, and a
//	                     word with a digit in it (an Id, a port, a State, a
//	                     code, a secret) for any word
//
// A word of six characters or more that the run printed differently (the
// State, the code, the TOTP secret) is replaced by what it printed in the
// commands that follow, as a reader copies it. The server listens on
// 127.0.0.1:1812 and 9812 as the defaults say; a lock file keeps two runs
// on one machine from meeting there.
func TestReadmeTryIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds otpgate and runs the README's commands")
	}
	for _, tool := range []string{"bash", "go", "radclient", "oathtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed; .ci/run installs it", tool)
			}
			t.Skipf("%s not installed (apt-get install freeradius-utils oathtool)", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	serveCmd, steps := readmeTryIt(t, string(readme))

	lockDefaultPorts(t)

	// A directory like a fresh clone: the source, linked, and no store.
	dir := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if name := e.Name(); !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "otpgate") {
			if err := os.Symlink(filepath.Join(root, name), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}

	srv := startShellServer(t, dir, serveCmd)
	seen := map[string]string{} // the README's word → the word this run printed
	for _, st := range steps {
		command := substitute(st.command, seen)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-c", "set -o pipefail; "+command)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("README: $ %s\nfailed (%v):\n%s", command, err, out)
		}
		if i, ok := matchLines(st.output, strings.Split(string(out), "\n"), seen); !ok {
			t.Fatalf("README: $ %s\nprinted no line like\n\t%s\n(after the lines before it); it printed:\n%s", command, st.output[i], out)
		}
		if len(st.serverLog) > 0 {
			srv.waitFor(t, st.serverLog, seen)
		}
	}
}

// tryItStep is one command of the README's transcript and what it shows.
type tryItStep struct {
	command   string
	output    []string // lines it prints
	serverLog []string // lines the server logs meanwhile
}

// readmeTryIt returns the README's first command (the server) and the
// steps of its "Try it" transcript.
func readmeTryIt(t *testing.T, readme string) (string, []tryItStep) {
	t.Helper()
	first := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(readme)
	if first == nil {
		t.Fatal("README.md has no sh block")
	}
	serve, _, _ := strings.Cut(strings.SplitN(first[1], "\n", 2)[0], "#")
	serve = strings.TrimSpace(serve)
	if !strings.Contains(serve, "otpgate serve") || strings.Contains(serve, "--config") {
		t.Fatalf("README's first command is %q, not a server on the embedded defaults", serve)
	}
	_, section, ok := strings.Cut(readme, "\n## Try it\n")
	if !ok {
		t.Fatal(`README.md has no "## Try it" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	block := regexp.MustCompile("(?s)```console\n(.*?)```").FindStringSubmatch(section)
	if block == nil {
		t.Fatal(`README's "Try it" has no console block`)
	}
	var steps []tryItStep
	toLog := false
	for _, line := range strings.Split(strings.TrimRight(block[1], "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "$ "):
			steps = append(steps, tryItStep{command: line[2:]})
			toLog = false
		case strings.HasPrefix(line, "#"):
			toLog = strings.Contains(line, "server's log")
		case strings.TrimSpace(line) == "…":
		case len(steps) == 0:
			t.Fatalf("README's Try it shows output before any command: %q", line)
		case toLog:
			steps[len(steps)-1].serverLog = append(steps[len(steps)-1].serverLog, line)
		default:
			steps[len(steps)-1].output = append(steps[len(steps)-1].output, line)
		}
	}
	if len(steps) < 5 {
		t.Fatalf("README's Try it has %d commands; want the whole login", len(steps))
	}
	return serve, steps
}

var (
	wordRE  = regexp.MustCompile(`[0-9A-Za-z]+`)
	digitRE = regexp.MustCompile(`[0-9]`)
	spaceRE = regexp.MustCompile(`\s+`)
)

// linePattern makes an expected line into a regexp: "…" is any text, a
// word with a digit any word (a group each), runs of space any space.
func linePattern(want string) *regexp.Regexp {
	want = strings.TrimSpace(want)
	var b strings.Builder
	if !strings.HasPrefix(want, "…") {
		b.WriteString("^")
	}
	for i, part := range strings.Split(want, "…") {
		if i > 0 {
			b.WriteString(".*?")
		}
		last := 0
		for _, m := range wordRE.FindAllStringIndex(part, -1) {
			b.WriteString(literal(part[last:m[0]]))
			if w := part[m[0]:m[1]]; digitRE.MatchString(w) {
				b.WriteString("([0-9A-Za-z]+)")
			} else {
				b.WriteString(regexp.QuoteMeta(w))
			}
			last = m[1]
		}
		b.WriteString(literal(part[last:]))
	}
	if !strings.HasSuffix(want, "…") {
		b.WriteString("$")
	}
	return regexp.MustCompile(b.String())
}

func literal(s string) string {
	var b strings.Builder
	for i, f := range spaceRE.Split(s, -1) {
		if i > 0 {
			b.WriteString(`\s+`)
		}
		b.WriteString(regexp.QuoteMeta(f))
	}
	return b.String()
}

// matchLines finds want in got in order and learns the words that differ;
// on failure it returns the index of the line not found.
func matchLines(want, got []string, seen map[string]string) (int, bool) {
	j := 0
	for i, w := range want {
		re := linePattern(w)
		words := wordRE.FindAllString(w, -1)
		var digitWords []string
		for _, word := range words {
			if digitRE.MatchString(word) {
				digitWords = append(digitWords, word)
			}
		}
		found := false
		for ; j < len(got); j++ {
			m := re.FindStringSubmatch(strings.TrimSpace(got[j]))
			if m == nil {
				continue
			}
			for k, real := range m[1:] {
				if k < len(digitWords) && len(digitWords[k]) >= 6 && digitWords[k] != real {
					seen[digitWords[k]] = real
				}
			}
			found = true
			j++
			break
		}
		if !found {
			return i, false
		}
	}
	return 0, true
}

// substitute puts the words this run printed where the README has its own.
func substitute(command string, seen map[string]string) string {
	return wordRE.ReplaceAllStringFunc(command, func(w string) string {
		if real, ok := seen[w]; ok {
			return real
		}
		return w
	})
}

// shellServer is the README's first command, run by bash.
type shellServer struct {
	mu     sync.Mutex
	logs   []string
	next   int // logs before this have been matched
	update chan struct{}
}

func startShellServer(t *testing.T, dir, command string) *shellServer {
	t.Helper()
	s := &shellServer{update: make(chan struct{}, 1)}
	cmd := exec.Command("bash", "-c", "exec "+command)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	ready := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		once := sync.Once{}
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.logs = append(s.logs, sc.Text())
			s.mu.Unlock()
			select {
			case s.update <- struct{}{}:
			default:
			}
			if strings.Contains(sc.Text(), "otpgate ready") {
				once.Do(func() { close(ready) })
			}
		}
		once.Do(func() { close(ready) })
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done: // go run itself ends by the signal: the log says how the server stopped
			<-readDone
			if !strings.Contains(s.text(), "msg=stopped") {
				t.Errorf("%s did not stop cleanly:\n%s", command, s.text())
			}
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Errorf("%s did not stop on SIGTERM", command)
		}
	})
	select {
	case <-ready:
	case <-time.After(5 * time.Minute): // go run compiles first
	}
	if !strings.Contains(s.text(), "otpgate ready") {
		t.Fatalf("README: %s did not start:\n%s", command, s.text())
	}
	return s
}

func (s *shellServer) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.logs, "\n")
}

// waitFor waits until the server has logged want, in order, after what
// was matched before.
func (s *shellServer) waitFor(t *testing.T, want []string, seen map[string]string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		logs := s.logs[s.next:]
		i, ok := matchLines(want, logs, seen)
		if ok {
			s.next = len(s.logs)
		}
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.update:
		case <-deadline:
			t.Fatalf("README: the server logged no line like\n\t%s\nits log:\n%s", want[i], s.text())
		}
	}
}

// lockDefaultPorts keeps other runs of this test on the machine off the
// default ports until this one ends, and checks that nothing else holds
// them.
func lockDefaultPorts(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "otpgate-readme-try-it.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
	var busy []string
	if c, err := net.ListenPacket("udp", "127.0.0.1:1812"); err != nil {
		busy = append(busy, "udp 127.0.0.1:1812")
	} else {
		c.Close()
	}
	if l, err := net.Listen("tcp", "127.0.0.1:9812"); err != nil {
		busy = append(busy, "tcp 127.0.0.1:9812")
	} else {
		l.Close()
	}
	if len(busy) > 0 {
		err := errors.New(strings.Join(busy, " and ") + " in use (a FreeRADIUS service? systemctl stop freeradius); the README's server needs them")
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}
