package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// ErrNoServer is returned by Call when no server listens on the socket.
var ErrNoServer = errors.New("no server on the admin socket")

// Listen opens the admin socket at path, readable and writable by the
// server's user only. A socket left behind by a server that died is
// replaced; one that a live server answers on is an error.
func Listen(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("admin socket %s: another server is listening", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	return l, nil
}

// Serve answers commands on l until ctx is done, then closes l and waits
// for commands in progress.
func Serve(ctx context.Context, l net.Listener, svc *Service, log *slog.Logger) {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			by, err := peer(c)
			if err != nil {
				log.Warn("admin connection refused", "err", err)
				return
			}
			c.SetDeadline(time.Now().Add(time.Minute))
			var req Request
			if err := json.NewDecoder(c).Decode(&req); err != nil {
				json.NewEncoder(c).Encode(Reply{Error: "bad request: " + err.Error(), Usage: true})
				return
			}
			// A long listing goes out in parts as it is made, each with
			// a minute of its own to be written.
			enc := json.NewEncoder(c)
			part := func(out string) error {
				c.SetDeadline(time.Now().Add(time.Minute))
				return enc.Encode(Reply{Output: out, More: true})
			}
			rep := doSafely(svc, by, req, part, log)
			c.SetDeadline(time.Now().Add(time.Minute))
			name := clip(req.Name)
			switch {
			case rep.Error != "":
				log.Warn("admin command", "op", req.Op, "user", name, "by", by.String(), "outcome", "failed", "err", firstLine(rep.Error))
			case !audited[req.Op]:
				// Reading (user show, user list, audit) is routine: not at info.
				log.Debug("admin command", "op", req.Op, "user", name, "by", by.String(), "outcome", "ok")
			default:
				log.Info("admin command", "op", req.Op, "user", name, "by", by.String(), "outcome", "ok")
			}
			enc.Encode(rep)
		}()
	}
}

// Call sends one command to the server listening at path. It returns
// ErrNoServer when nothing answers there.
func Call(path string, req Request) (Reply, error) {
	var out strings.Builder
	rep, err := CallTo(path, req, &out)
	rep.Output = out.String() + rep.Output
	return rep, err
}

// CallTo is Call with a long output written to out in parts as they
// come, so that neither side holds all of it; the Reply returned holds
// the output's last part.
func CallTo(path string, req Request, out io.Writer) (Reply, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return Reply{}, fmt.Errorf("%w: %v", ErrNoServer, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return Reply{}, fmt.Errorf("send admin command: %w", err)
	}
	dec := json.NewDecoder(c)
	for {
		var rep Reply
		if err := dec.Decode(&rep); err != nil {
			return Reply{}, fmt.Errorf("read admin reply: %w", err)
		}
		if !rep.More {
			return rep, nil
		}
		if _, err := io.WriteString(out, rep.Output); err != nil {
			return Reply{}, err
		}
		c.SetDeadline(time.Now().Add(2 * time.Minute))
	}
}

// doSafely runs a command and turns a panic in it into an error, to the
// client and in the log: one command fails, the server lives on.
func doSafely(svc *Service, by Actor, req Request, part func(string) error, log *slog.Logger) (rep Reply) {
	defer func() {
		if v := recover(); v != nil {
			log.Error("admin command failed", "op", req.Op, "by", by.String(), "err", fmt.Sprint(v))
			rep = Reply{Error: fmt.Sprintf("%s failed: internal error: %v", req.Op, v)}
		}
	}()
	return svc.DoTo(by, req, part)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
