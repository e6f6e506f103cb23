//go:build unix

package main

import (
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// owner names the user who owns fi's file, and whether it is known.
func owner(fi os.FileInfo) (string, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", false
	}
	id := strconv.Itoa(int(st.Uid))
	if u, err := user.LookupId(id); err == nil {
		return u.Username, true
	}
	return "uid " + id, true
}
