// Command corekit-nspawn is `make up` / `make down` / `make status` /
// `make ssh`: a local CoreOS-style cluster on systemd-nspawn machines.
package main

import (
	"os"

	"github.com/corekit/corekit/vagrant/internal/provider"
)

func main() { os.Exit(provider.Main()) }
