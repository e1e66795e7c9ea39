// Command fleetd is the fleet cluster daemon: engine, agent and API.
package main

import (
	"os"

	"github.com/corekit/corekit/fleet/fleetmain"
)

func main() { os.Exit(fleetmain.Main()) }
