// Command fleetctl is the command-line client of fleet (coreos/fleet 1.0
// compatible): it submits, schedules, starts and inspects units across the
// cluster through fleetd's API or directly in etcd. See README.md.
package main

import (
	"os"

	"github.com/corekit/corekit/fleetctl/fleetctlmain"
)

func main() { os.Exit(fleetctlmain.Main()) }
