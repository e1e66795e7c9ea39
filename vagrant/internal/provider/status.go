package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/corekit/corekit/internal/nspawn"
)

// Status prints one line per machine, like `vagrant status`, and the host
// services.
func (p *Provider) Status(ctx context.Context) error {
	st, err := p.store.Load()
	if err != nil {
		return err
	}
	if st == nil {
		fmt.Fprintln(p.out, "no cluster (run `make up`)")
		return nil
	}
	fmt.Fprintf(p.out, "Current machine states (%s):\n\n", st.Status)
	tw := tabwriter.NewWriter(p.out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tADDRESS\tSTATE\tETCD\tFLEET")
	for _, info := range st.Machines {
		addr := strings.TrimSuffix(info.Addr, "/24")
		m, err := nspawn.Attach(info, p.log)
		if err != nil {
			fmt.Fprintf(tw, "%s\t%s\tnot running\t-\t-\n", info.Name, addr)
			continue
		}
		state := strings.TrimSpace(m.Run(ctx, "systemctl", "is-system-running").Stdout)
		etcdUnit := st.EtcdUnit
		if etcdUnit == "" {
			etcdUnit = "etcd.service"
		}
		etcd := strings.TrimSpace(m.Run(ctx, "systemctl", "is-active", etcdUnit).Stdout)
		fleet := strings.TrimSpace(m.Run(ctx, "systemctl", "is-active", "fleet.service").Stdout)
		fmt.Fprintf(tw, "%s\t%s\trunning (%s)\t%s\t%s\n", info.Name, addr, state, etcd, fleet)
	}
	tw.Flush()
	fmt.Fprintln(p.out)
	for _, h := range []*HostProcess{st.HostEtcd, st.Discovery} {
		if h == nil {
			continue
		}
		state := "stopped"
		if h.Alive() {
			state = "running"
		}
		fmt.Fprintf(p.out, "%s: %s, %s (pid %d)\n", h.Name, h.URL, state, h.PID)
	}
	if st.DiscoveryURL != "" {
		fmt.Fprintf(p.out, "discovery URL: %s\n", st.DiscoveryURL)
	}
	fmt.Fprintf(p.out, "environment: source %s\n", filepath.Join(p.opts.StateDir, "cluster.env"))
	return nil
}

// SSH replaces this process with a shell (or args) inside machine name, in
// all its namespaces, with /opt/corekit/bin on PATH.
func (p *Provider) SSH(ctx context.Context, name string, args []string) error {
	st, err := p.store.Load()
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("no cluster (run `make up`)")
	}
	for _, info := range st.Machines {
		if info.Name != name && info.Hostname != name {
			continue
		}
		m, err := nspawn.Attach(info, p.log)
		if err != nil {
			return err
		}
		if len(args) == 0 {
			args = []string{"/bin/bash", "-l"}
		}
		nsenter, err := lookPath("nsenter")
		if err != nil {
			return err
		}
		argv := append([]string{"nsenter", "-t", fmt.Sprint(m.PID1()), "-m", "-u", "-i", "-n", "-p", "--"}, args...)
		env := []string{
			"PATH=" + GuestBinDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"HOME=/root", "USER=root", "LANG=C.UTF-8",
			"TERM=" + envOr("TERM", "xterm"),
			"ETCDCTL_ENDPOINT=" + fmt.Sprintf("http://%s:%d", m.Addr().Addr(), st.ClientPort),
			"ETCDCTL_PEERS=" + fmt.Sprintf("http://%s:%d", m.Addr().Addr(), st.ClientPort),
			"FLEETCTL_ENDPOINT=" + fmt.Sprintf("http://%s:%d", m.Addr().Addr(), st.ClientPort),
			"FLEETCTL_DRIVER=etcd",
		}
		return syscall.Exec(nsenter, argv, env)
	}
	var names []string
	for _, info := range st.Machines {
		names = append(names, info.Name)
	}
	return usageError{fmt.Errorf("no machine %q (machines: %s)", name, strings.Join(names, ", "))}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func lookPath(name string) (string, error) {
	for _, d := range []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (apt-get install -y util-linux)", name)
}
