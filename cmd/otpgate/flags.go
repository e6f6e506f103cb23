package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// newFlags makes a flag set that reports mistakes to the caller instead of
// exiting.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse reads flags and positional arguments in any order ("user add alice
// --tenant acme" as well as "user add --tenant acme alice") and checks
// that there are exactly want positional arguments (any number when want
// is negative).
func parse(fs *flag.FlagSet, args []string, want int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp{commandHelp(fs)}
			}
			return nil, usagef("otpgate %s: %v\n%s", fs.Name(), err, flagHelp(fs))
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if want >= 0 && len(pos) != want { // want < 0: the caller checks
		switch {
		case want == 0 && fs.Lookup("config") != nil && looksLikeConfig(pos[0]):
			return nil, usagef("otpgate %s takes the file as a flag: otpgate %s --config %s", fs.Name(), fs.Name(), pos[0])
		case want == 0:
			return nil, usagef("otpgate %s takes no argument %q; flags start with --", fs.Name(), clipArg(pos[0]))
		case len(pos) == 0:
			return nil, usagef("otpgate %s needs a user name, for example: otpgate %s alice", fs.Name(), fs.Name())
		}
		return nil, usagef("otpgate %s takes one name, got %d: %s (quote a name that has spaces)", fs.Name(), len(pos), clipArg(strings.Join(pos, " ")))
	}
	return pos, nil
}

// errHelp is a command's usage, asked for with --help, -h or "otpgate
// help COMMAND": printed on standard output, exit status 0.
type errHelp struct{ text string }

func (e errHelp) Error() string { return e.text }

// commandHelp is the usage of fs's command: its line of the overview and
// its flags.
func commandHelp(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("Usage:\n")
	for _, line := range strings.Split(usage, "\n") {
		if commandOf(line) == fs.Name() {
			b.WriteString(line + "\n")
		}
	}
	if f := flagHelp(fs); f != "" {
		b.WriteString("\nFlags:\n" + f)
	}
	return b.String()
}

// commandOf is the command a line of the overview is about ("user add"
// for "  otpgate user add NAME [--tenant T] ..."), or "".
func commandOf(line string) string {
	words, ok := strings.CutPrefix(strings.TrimSpace(line), "otpgate ")
	if !ok {
		return ""
	}
	words, _, _ = strings.Cut(words, "  ") // the description starts after two spaces
	var cmd []string
	for _, w := range strings.Fields(words) {
		if w != strings.ToLower(w) || strings.HasPrefix(w, "[") || strings.HasPrefix(w, "-") {
			break
		}
		cmd = append(cmd, w)
	}
	return strings.Join(cmd, " ")
}

// looksLikeConfig reports whether an argument is probably a config file
// given without --config.
func looksLikeConfig(arg string) bool {
	return strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") || strings.ContainsRune(arg, '/')
}

func flagHelp(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return b.String()
}

// listFlag is a flag that may be given more than once.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// setFlags returns the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

func ptrIf(set bool, v string) *string {
	if !set {
		return nil
	}
	return &v
}

// clipArg shortens an argument echoed in an error to 64 bytes.
func clipArg(s string) string {
	if len(s) <= 64 {
		return s
	}
	cut := 64
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}
