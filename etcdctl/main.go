// Command etcdctl is a drop-in replacement for etcdctl v2 (2.3.8): a command
// line client of the etcd v2 keys and members API. See README.md.
package main

import (
	"os"

	"github.com/corekit/corekit/etcdctl/etcdctlmain"
)

func main() { os.Exit(etcdctlmain.Main()) }
