// Command otpgate is a RADIUS second-factor server for remote-desktop and
// VPN gateways, and the tool to manage its users.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/otpgate/otpgate/admin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usage is the overview printed by "otpgate help" and for a wrong command.
const usage = `otpgate: RADIUS second-factor server

Usage:
  otpgate serve        [--config FILE]   run the server
  otpgate check-config [--config FILE]   check a configuration file
  otpgate check-store [FILE]             read the store (or a copy) through and check every page
  otpgate user add NAME [--tenant T] [--phone P] [--email E] [--home-ip IP]... [--method totp|sms|email|voice] [--backup-method M] [--password-stdin] [--invite]
  otpgate user set NAME [same flags] [--2fa on|off|tenant] [--clear-home-ips] [--reply Name=value]... [--clear-reply]
  otpgate user show NAME
  otpgate user list
  otpgate user delete NAME
  otpgate user totp NAME [--secret BASE32 [--allow-short-secret]] [--png FILE]
  otpgate user totp NAME --confirm CODE
  otpgate user import FILE.csv [--update] [--allow-short-secret]   all or nothing; header: name,tenant,phone,email,method,backup_method,totp_secret,home_ips,2fa
  otpgate user export [--with-secrets]
  otpgate user recovery-codes NAME
  otpgate user reset NAME
  otpgate user unlock NAME
  otpgate user invite NAME [--via sms|email|print] [--valid 72h]
  otpgate audit [--user NAME] [--limit N] [--since DURATION such as 24h or 7d] [--json]
  otpgate reload                         re-read the configuration of the running server (also SIGHUP)
  otpgate backup FILE                    a consistent copy of the store, while serving
  otpgate store copy --from FILE.db --to etcd [--force]   move a single node's store into the cluster's etcd (store.etcd in --config)
  otpgate store copy --from etcd --to FILE.db [--force]   and out of it, into a file a single node runs from
  otpgate cluster status                 the nodes seen in the last minute, and whether their configurations differ
  otpgate version

Every command takes --config FILE, before or after it, and answers --help
(or: otpgate help COMMAND) with its own usage.
Without --config the embedded defaults are used: a server on 127.0.0.1:1812,
the store otpgate.db in the working directory, codes written to the log.
Every command works whether or not the server is running.
`

// errUsage marks a mistake in the command line: exit status 2.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func usagef(format string, args ...any) error { return errUsage{fmt.Sprintf(format, args...)} }

// errQuiet is a failure already reported on standard error.
type errQuiet struct{ code int }

func (e errQuiet) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode prints err and maps it to the exit status: 0 success, 1
// failure, 2 a mistake in the command line.
func exitCode(err error, stderr io.Writer) int {
	var u errUsage
	var q errQuiet
	switch {
	case err == nil:
		return 0
	case errors.As(err, &q):
		return q.code
	case errors.As(err, &u):
		fmt.Fprintf(stderr, "otpgate: %s\n", u.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "otpgate: %v\n", err)
		return 1
	}
}

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runAt(ctx, time.Now, args, stdin, stdout, stderr)
}

// runAt is run with the server's clock given, so tests can move time.
func runAt(ctx context.Context, now func() time.Time, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := dispatch(ctx, now, configLast(args), stdin, stdout, stderr)
	var h errHelp
	if errors.As(err, &h) {
		fmt.Fprint(stdout, h.text)
		return nil
	}
	return err
}

// configLast moves a --config given before the command to its end, so
// that "otpgate --config FILE user list" works as "otpgate user list
// --config FILE" does.
func configLast(args []string) []string {
	var moved []string
	for len(args) > 0 {
		a := args[0]
		switch {
		case (a == "--config" || a == "-config") && len(args) > 1:
			moved, args = append(moved, a, args[1]), args[2:]
		case strings.HasPrefix(a, "--config=") || strings.HasPrefix(a, "-config="):
			moved, args = append(moved, a), args[1:]
		default:
			return append(slices.Clip(args), moved...)
		}
	}
	return moved // only --config: the command is missing
}

func dispatch(ctx context.Context, now func() time.Time, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && !slices.Contains([]string{"-h", "--help", "-help", "--version"}, args[0]) {
		fmt.Fprint(stderr, usage)
		return errQuiet{2}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, now, rest, stderr)
	case "check-config":
		return cmdCheckConfig(rest, stdout)
	case "check-store":
		return cmdCheckStore(rest, stdout)
	case "user":
		return cmdUser(rest, stdin, stdout, stderr)
	case "audit":
		return cmdAudit(rest, stdout, stderr)
	case "backup":
		return cmdBackup(rest, stdout, stderr)
	case "store":
		return cmdStore(rest, stdout)
	case "cluster":
		return cmdCluster(rest, stdout, stderr)
	case "reload":
		fs := newFlags("reload")
		configPath := fs.String("config", "", "configuration `FILE` (default: the embedded defaults)")
		if _, err := parse(fs, rest, 0); err != nil {
			return err
		}
		if _, err := loadConfig(*configPath); err != nil {
			return fmt.Errorf("reload failed; the running configuration stays:\n%w", err)
		}
		return call(*configPath, admin.Request{Op: "reload"}, stdout, stderr, nil)
	case "version", "--version":
		fs := newFlags("version")
		fs.String("config", "", "accepted, as by every command, and not used")
		if _, err := parse(fs, rest, 0); err != nil {
			return err
		}
		bi, _ := debug.ReadBuildInfo()
		fmt.Fprintln(stdout, versionText(bi))
		return nil
	case "help", "-h", "--help", "-help":
		if len(rest) > 0 && cmd == "help" {
			// "otpgate help user add" is "otpgate user add --help".
			return dispatch(ctx, now, append(slices.Clip(rest), "--help"), stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usagef("unknown command %q; run otpgate help to see the commands", clipArg(cmd))
}
