package admin

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// peer is who is on the other end of c, from SO_PEERCRED. It lets only
// the server's own user (or root) give commands, even if the socket's file
// mode were loosened.
func peer(c net.Conn) (Actor, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Actor{}, fmt.Errorf("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Actor{}, err
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return Actor{}, err
	}
	if credErr != nil {
		return Actor{}, credErr
	}
	if uid := uint32(os.Getuid()); cred.Uid != uid && cred.Uid != 0 {
		return Actor{}, fmt.Errorf("peer uid %d is not the server's uid %d", cred.Uid, uid)
	}
	return actor(int(cred.Uid), "admin socket"), nil
}
