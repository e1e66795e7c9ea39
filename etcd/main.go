// Command etcd is corekit's etcd v2 member. See etcd/README.md.
package main

import (
	"os"

	"github.com/corekit/corekit/etcd/etcdmain"
)

func main() { os.Exit(etcdmain.Main()) }
