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
	fmt.Fprintf(p.out, `
The cluster:
`)
	for _, m := range st.Machines {
		fmt.Fprintf(p.out, "  %s  %s\n", m.Name, strings.SplitN(m.Addr, "/", 2)[0])
	}
	fmt.Fprintf(p.out, `
Use it:
  source %s
      # sets ETCDCTL_ENDPOINT, FLEETCTL_ENDPOINT, DISCOVERY_URL and the machine addresses
  bin/etcdctl set /message hi && bin/etcdctl get /message
  bin/fleetctl list-machines
  make ssh M=%s      # a shell on a machine (etcdctl and fleetctl on PATH)
  make status            # machine states
  make down              # remove machines, bridge, host services and state
`, rel(p.opts.Root, envPath), st.Machines[0].Name)
}
