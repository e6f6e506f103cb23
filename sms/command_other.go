//go:build !unix

package sms

import "os/exec"

// killGroupOnCancel leaves cmd as it is: without Unix process groups a
// cancelled cmd kills only the program itself, and the WaitDelay set by
// Send stops anything it started from holding Send up.
func killGroupOnCancel(*exec.Cmd) {}
