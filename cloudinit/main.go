// Command coreos-cloudinit applies a cloud-config (or runs a user-data
// script) to a CoreOS-style machine; see cloudinit/README.md.
package main

import (
	"os"

	"github.com/corekit/corekit/cloudinit/cloudinitmain"
)

func main() { os.Exit(cloudinitmain.Main()) }
