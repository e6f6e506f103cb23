package sms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"
)

// CommandConfig describes the program a Command runs for each message.
type CommandConfig struct {
	// Path is the program, and required: an absolute path, or a bare name
	// looked up in PATH when the provider is made.
	Path string
	// Args are the program's arguments, each a template over the Message as
	// in HTTPConfig. Nil means none. Arguments can be read by every local
	// user (ps shows them), so pass the text and code through the
	// environment instead, which Command always sets.
	Args []string
	// Timeout bounds each Send. Zero means 10s. When it passes, the
	// program and whatever it started in its process group are killed.
	Timeout time.Duration
}

// Command is a provider that runs a local program for each message, such
// as gammu-smsd-inject for a GSM modem or a site's own script. Exit status
// 0 means the message was taken.
//
// The program gets an empty stdin, discarded stdout, and an environment of
// PATH (from otpgate's) and the message: OTPGATE_CHANNEL, OTPGATE_TO,
// OTPGATE_TEXT, OTPGATE_CODE and OTPGATE_LANG ("en" when the message has
// none). Nothing else of otpgate's environment is passed on.
//
// On Unix the program runs in its own process group, and a timeout kills
// the whole group. Processes that leave the group and keep its stderr open
// delay Send by at most a second more. Command is safe for concurrent use.
type Command struct {
	name      string
	path      string
	args      []*template.Template
	timeout   time.Duration
	waitDelay time.Duration // see waitDelay; tests lengthen it
}

// waitDelay is how long Send waits, once the program has exited or been
// killed, for processes it left behind to close its stderr.
const waitDelay = time.Second

// stderrExcerpt is how much of a failed program's stderr an error quotes.
const stderrExcerpt = 200

// NewCommand returns a provider called name that runs the program c
// describes. It finds the program and parses and tries every argument
// template; its errors start with the field at fault, as in
// "args[1]: template: …".
func NewCommand(name string, c CommandConfig) (*Command, error) {
	cmd := &Command{name: name, timeout: c.Timeout, waitDelay: waitDelay}
	if cmd.timeout == 0 {
		cmd.timeout = defaultTimeout
	}
	var errs []error
	switch {
	case c.Path == "":
		errs = append(errs, errors.New("path: is missing"))
	case !filepath.IsAbs(c.Path) && strings.ContainsRune(c.Path, filepath.Separator):
		errs = append(errs, fmt.Errorf("path: %s is relative; give an absolute path or a name to find in PATH", c.Path))
	default:
		p, err := exec.LookPath(c.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("path: %w", err))
		}
		cmd.path = p
	}
	for i, a := range c.Args {
		name := "args[" + strconv.Itoa(i) + "]"
		t, err := parseTemplate(name, a)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		cmd.args = append(cmd.args, t)
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %s is negative", c.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cmd, nil
}

// Name is the name the provider was made with.
func (c *Command) Name() string { return c.name }

// Send runs the program for m and returns nil when it exits with status 0.
// A failure's error gives the exit status and the start of the program's
// stderr, with the message's text and code cut out.
func (c *Command) Send(ctx context.Context, m Message) error {
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, timeoutError(c.timeout))
	defer cancel()
	args := make([]string, len(c.args))
	for i, t := range c.args {
		a, err := render(t, m)
		if err != nil {
			return fmt.Errorf("render args[%d]: %w", i, redactError(err, m))
		}
		args[i] = a
	}

	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.Env = commandEnv(m)
	stderr := &headBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	cmd.WaitDelay = c.waitDelay
	killGroupOnCancel(cmd)

	err := cmd.Run()
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
		// ErrWaitDelay means the program exited 0 but left something
		// holding its stderr: the message was still taken.
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("run %s: %w", c.path, context.Cause(ctx))
	}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		if s := stderr.excerpt(m); s != "" {
			return fmt.Errorf("run %s: %w: stderr %q", c.path, ee, s)
		}
		return fmt.Errorf("run %s: %w", c.path, ee)
	}
	return fmt.Errorf("run %s: %w", c.path, redactError(err, m))
}

// commandEnv is the whole environment of the program run for m.
func commandEnv(m Message) []string {
	var env []string
	if p, ok := os.LookupEnv("PATH"); ok {
		env = append(env, "PATH="+p)
	}
	lang := m.Lang
	if lang == "" {
		lang = "en"
	}
	return append(env,
		"OTPGATE_CHANNEL="+m.Channel,
		"OTPGATE_TO="+m.To,
		"OTPGATE_TEXT="+m.Text,
		"OTPGATE_CODE="+m.Code,
		"OTPGATE_LANG="+lang,
	)
}

// headBuffer keeps the first max bytes written to it and drops the rest.
// Its Write never fails, so a talkative program is not cut off by a broken
// pipe.
type headBuffer struct {
	max  int
	b    []byte
	more bool // bytes were dropped
}

func (h *headBuffer) Write(p []byte) (int, error) {
	n := min(len(p), h.max-len(h.b))
	h.b = append(h.b, p[:n]...)
	h.more = h.more || n < len(p)
	return len(p), nil
}

// excerpt is the start of what was written, at most stderrExcerpt bytes,
// with m's text and code replaced by "…".
func (h *headBuffer) excerpt(m Message) string {
	s := redact(string(h.b), m)
	if h.more {
		// Dropping the rest may have split the text or the code, leaving a
		// piece of one at the end that redact could not recognise. Such a
		// piece is shorter than what it came from; cut that much off.
		drop := max(len(m.Text), len(m.Code), 1) - 1
		s = prefix(s, len(s)-drop)
	}
	s = strings.TrimSpace(s)
	if len(s) > stderrExcerpt {
		s = prefix(s, stderrExcerpt) + "…"
	}
	return s
}

// prefix is the longest start of s that is at most n bytes long and does
// not end inside a UTF-8 sequence.
func prefix(s string, n int) string {
	if n >= len(s) {
		return s
	}
	n = max(n, 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
