// Command syncfail runs a program whose fsync calls a torture supervisor
// can make fail with EIO: syncfail SOCKET BINARY [ARG...]. Test only.
package main

import (
	"os"

	"github.com/corekit/corekit/etcd/torture/internal/syncfail"
)

func main() { os.Exit(syncfail.Main()) }
