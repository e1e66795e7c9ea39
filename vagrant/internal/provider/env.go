package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// clusterEnv renders cluster.env: shell exports for the host's clients.
func clusterEnv(st *State) string {
	var eps, pairs []string
	var b strings.Builder
	b.WriteString("# corekit local cluster (`make up`). Use: source .corekit/cluster.env\n")
	for _, m := range st.Machines {
		ip := strings.SplitN(m.Addr, "/", 2)[0]
		eps = append(eps, fmt.Sprintf("http://%s:%d", ip, st.ClientPort))
		pairs = append(pairs, m.Name+"="+ip)
	}
	fmt.Fprintf(&b, "export ETCDCTL_ENDPOINT=%s\n", strings.Join(eps, ","))
	fmt.Fprintf(&b, "export ETCDCTL_PEERS=%s\n", strings.Join(eps, ","))
	fmt.Fprintf(&b, "export FLEETCTL_ENDPOINT=%s\n", strings.Join(eps, ","))
	b.WriteString("export FLEETCTL_DRIVER=etcd\n")
	if st.DiscoveryURL != "" {
		fmt.Fprintf(&b, "export DISCOVERY_URL=%s\n", st.DiscoveryURL)
	}
	fmt.Fprintf(&b, "export COREKIT_MACHINES=%q\n", strings.Join(pairs, " "))
	for _, m := range st.Machines {
		ip := strings.SplitN(m.Addr, "/", 2)[0]
		fmt.Fprintf(&b, "export %s=%s\n", strings.ToUpper(strings.ReplaceAll(m.Name, "-", "_")), ip)
	}
	return b.String()
}

func (p *Provider) writeEnv(st *State) error {
	return os.WriteFile(filepath.Join(p.opts.StateDir, "cluster.env"), []byte(clusterEnv(st)), 0o644)
}

func (p *Provider) printUsage(st *State) {
	envPath := filepath.Join(p.opts.StateDir, "cluster.env")
	var eps []string
	fmt.Fprintf(p.out, "\nThe cluster:\n")
	for _, m := range st.Machines {
		ip := strings.SplitN(m.Addr, "/", 2)[0]
		eps = append(eps, fmt.Sprintf("http://%s:%d", ip, st.ClientPort))
		fmt.Fprintf(p.out, "  %s  %s\n", m.Name, ip)
	}
	if st.DiscoveryURL != "" {
		fmt.Fprintf(p.out, "  discovery URL  %s\n", st.DiscoveryURL)
	}
	if len(eps) == 0 {
		return
	}
	fmt.Fprintf(p.out, `
Use it from this host:
  bin/etcdctl --endpoints %[1]s set /message hi
  bin/etcdctl --endpoints %[1]s member list
  bin/fleetctl --driver etcd --endpoint %[1]s list-machines
or set the environment once (ETCDCTL_ENDPOINT, FLEETCTL_ENDPOINT, FLEETCTL_DRIVER,
DISCOVERY_URL and the machine addresses):
  source %[2]s
  bin/etcdctl get /message && bin/fleetctl list-units
On a machine (etcdctl, fleetctl on PATH; fleetctl journal/status work there):
  make ssh M=%[3]s
  make status            # machine states
  make down              # remove machines, bridge, host services and state
`, strings.Join(eps, ","), rel(p.opts.Root, envPath), st.Machines[0].Name)
}
