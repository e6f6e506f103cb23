// Command etcdmember is etcd's own server (etcdmain, the code of the etcd
// binary) at the version this module pins, for the bench's etcd rows:
// Debian 12 ships etcd 3.4, whose members spent about a tenth more CPU
// per TOTP flow than 3.7's in the bench (3.4 copies its write buffer for
// the compares of every transaction), and a cluster in production runs a
// current release. It is a module of its own so that
// otpgate's module does not depend on etcd's server. The bench builds it
// (bash bench/run.sh -only etcd); -etcd PATH runs another binary instead.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
