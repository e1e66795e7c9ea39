package discovery

import (
	"errors"
	"fmt"
)

// ExitMessages returns the lines etcd 2.3.8 logs before exiting 1 when
// Join failed with err, for a member called name bootstrapping from
// discoveryURL with data directory dataDir. (ErrFull with
// --discovery-fallback=proxy is not an exit: etcd logs "discovery cluster
// full, falling back to proxy" and starts a proxy.)
func ExitMessages(err error, name, discoveryURL, dataDir string) []string {
	switch {
	case errors.Is(err, ErrDuplicateID):
		return []string{
			fmt.Sprintf("member %q has previously registered with discovery service token (%s).", name, discoveryURL),
			fmt.Sprintf("But etcd could not find valid cluster configuration in the given data dir (%s).", dataDir),
			"Please check the given data dir path if the previous bootstrap succeeded",
			"or use a new discovery token if the previous bootstrap failed.",
		}
	case errors.Is(err, ErrDuplicateName):
		return []string{
			fmt.Sprintf("member with duplicated name has registered with discovery service token(%s).", discoveryURL),
			"please check (cURL) the discovery token for more information.",
			"please do not reuse the discovery token and generate a new one to bootstrap the cluster.",
		}
	default:
		return []string{
			fmt.Sprintf("failed to join discovery cluster (%v)", err),
			fmt.Sprintf("discovery token %s was used, but failed to bootstrap the cluster.", discoveryURL),
			"please generate a new discovery token and try to bootstrap again.",
		}
	}
}
