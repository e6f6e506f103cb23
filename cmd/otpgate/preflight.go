package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
)

// preflight looks for what would stop serve that the file alone does not
// show: a store whose directory is missing or cannot be written, a store
// or key file this user cannot open (problems), and ports in use now
// (warnings: they may be free when the server starts).
func (s *settings) preflight(p *problems) (warnings []string) {
	checkStorePath(s.storePath, "store.path", p)
	for _, f := range []struct{ key, path string }{{"store.path", s.storePath}, {"store.key_file", s.keyFile}} {
		if file, err := os.OpenFile(f.path, os.O_RDWR, 0); err == nil {
			file.Close()
		} else if !errors.Is(err, fs.ErrNotExist) {
			p.add(f.key, "%s", permissionText(f.path, err))
		}
	}
	try := func(key, network, addr string) {
		if addr == "" {
			return
		}
		var err error
		if network == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket(network, addr); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen(network, addr); err == nil {
				l.Close()
			}
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: cannot listen on %s now (%v); serve fails unless it is free when it starts (is otpgate running already?)", key, addr, unwrapOp(err)))
		}
	}
	for i, a := range s.listen {
		try(fmt.Sprintf("radius.listen[%d]", i), "udp", a)
	}
	for i, a := range s.accountingListen {
		try(fmt.Sprintf("radius.accounting_listen[%d]", i), "udp", a)
	}
	try("http.listen", "tcp", s.httpListen)
	try("web.listen", "tcp", s.web.listen)
	return warnings
}

// checkStorePath checks that the store's directory exists and that this
// user may create files in it (the store, its key and the admin socket).
func checkStorePath(path, key string, p *problems) {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.add(key, "the directory %s does not exist; create it for the server's user (sudo install -d -o otpgate -m 0750 %s) or change %s", dir, dir, key)
		return
	case err != nil:
		p.add(key, "%v", unwrapOp(err))
		return
	case !fi.IsDir():
		p.add(key, "%s is not a directory", dir)
		return
	}
	f, err := os.CreateTemp(dir, ".otpgate-check-*")
	if err != nil {
		p.add(key, "cannot create files in %s: %s", dir, permissionText(dir, err))
		return
	}
	f.Close()
	os.Remove(f.Name())
}

// secretWarnings names clients whose shared secret is shorter than the 16
// characters RFC 2865 §3 advises (short ones are easier to guess offline
// from one captured packet, and BlastRADIUS forgeries are cheaper).
// Clients on loopback are left out: their packets do not cross a network.
func (s *settings) secretWarnings() []string {
	var out []string
	for i, cl := range s.clients {
		if len(cl.Secret) > 0 && len(cl.Secret) < 16 && !(cl.Prefix.IsValid() && cl.Prefix.Addr().IsLoopback()) {
			out = append(out, fmt.Sprintf("clients[%d] (%s): the shared secret is %d characters; use 16 or more (RFC 2865 §3), random, such as: openssl rand -base64 24", i, cl.Name, len(cl.Secret)))
		}
	}
	return out
}

// unwrapOp drops the operation prefix of a net or fs error.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// permissionText explains an error opening path: for a permission
// problem, who owns the file and who is asking, and what to run instead.
func permissionText(path string, err error) string {
	if !errors.Is(err, fs.ErrPermission) {
		return unwrapOp(err).Error()
	}
	me := "this user"
	if u, uerr := user.Current(); uerr == nil {
		me = u.Username
	}
	fi, serr := os.Stat(path)
	if serr != nil {
		return fmt.Sprintf("%s: permission denied for %s", path, me)
	}
	who, ok := owner(fi)
	if !ok {
		return fmt.Sprintf("%s: permission denied for %s (mode %v)", path, me, fi.Mode().Perm())
	}
	if who == "root" {
		return fmt.Sprintf("%s is owned by root (mode %v) and this command runs as %s, who may not open it; a command run "+
			"with sudo before the first serve (sudo otpgate user add ...) makes such a store. Give it, with the files beside it, "+
			"to the user the server runs as: sudo chown otpgate %s*; then run admin commands as that user: sudo -u otpgate otpgate ...",
			path, fi.Mode().Perm(), me, path)
	}
	return fmt.Sprintf("%s is owned by %s (mode %v) and this command runs as %s, who may not open it. "+
		"Run admin commands as the user the server runs as: sudo -u %s otpgate ...",
		path, who, fi.Mode().Perm(), me, who)
}
