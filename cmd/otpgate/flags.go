package main

import (
	"errors"
	"flag"
	"io"
	"strings"
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
				return nil, usagef("otpgate %s takes these flags:\n%s", fs.Name(), flagHelp(fs))
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
		case want == 0:
			return nil, usagef("otpgate %s takes no argument %q; flags start with --", fs.Name(), pos[0])
		case len(pos) == 0:
			return nil, usagef("otpgate %s needs a user name, for example: otpgate %s alice", fs.Name(), fs.Name())
		}
		return nil, usagef("otpgate %s takes one name, got %d: %s (quote a name that has spaces)", fs.Name(), len(pos), strings.Join(pos, " "))
	}
	return pos, nil
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
