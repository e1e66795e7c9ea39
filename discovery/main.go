// Command discovery is the etcd discovery service: `curl http://HOST/new`
// returns a token URL that etcd members pass to --discovery to find each
// other. See README.md.
package main

import (
	"os"

	"github.com/corekit/corekit/discovery/discoverymain"
)

func main() { os.Exit(discoverymain.Main()) }
