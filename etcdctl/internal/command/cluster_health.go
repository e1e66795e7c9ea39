package command

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// ClusterHealthOptions are the inputs of `etcdctl cluster-health`.
type ClusterHealthOptions struct {
	F       *Factory
	Forever bool
	// Interval between checks with --forever (10 s, as etcdctl v2).
	Interval time.Duration
}

// NewClusterHealthCommand declares `cluster-health`.
func NewClusterHealthCommand(f *Factory, runF func(context.Context, *ClusterHealthOptions) error) *cobra.Command {
	opts := &ClusterHealthOptions{F: f, Interval: 10 * time.Second}
	cmd := &cobra.Command{
		Use:   "cluster-health",
		Short: "check the health of the etcd cluster",
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runClusterHealth(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Forever, "forever", "f", false, "forever check the health every 10 second until CTRL+C")
	return cmd
}

// runClusterHealth lists the members (no endpoint sync) and asks each
// member's client URLs for /health; the cluster is healthy only when every
// member is (etcdctl 2.3.8 said healthy when any one member was; 3.4 fixed
// it and so do we).
func runClusterHealth(ctx context.Context, opts *ClusterHealthOptions) error {
	c, err := opts.F.ClientNoSync()
	if err != nil {
		return err
	}
	if opts.F.Global.Debug {
		fmt.Fprintf(opts.F.IO.ErrOut, "Cluster-Endpoints: %s\n", joinComma(c.Endpoints()))
	}
	out := opts.F.IO.Out
	lctx, cancel := opts.F.TotalContext(ctx)
	ms, err := c.ListMembers(lctx)
	cancel()
	if err != nil {
		fmt.Fprintln(out, "cluster may be unhealthy: failed to list members")
		return serverError(err)
	}
	for {
		healthy := 0
		for _, m := range ms {
			if len(m.ClientURLs) == 0 {
				fmt.Fprintf(out, "member %s is unreachable: no available published client urls\n", m.ID)
				continue
			}
			checked := false
			for _, u := range m.ClientURLs {
				hctx, cancel := opts.F.TotalContext(ctx)
				ok, err := c.HealthAt(hctx, u)
				cancel()
				if err != nil {
					if errors.Is(err, context.Canceled) {
						return nil
					}
					fmt.Fprintf(out, "failed to check the health of member %s on %s: %v\n", m.ID, u, healthGetError(u, err))
					continue
				}
				checked = true
				if ok {
					fmt.Fprintf(out, "member %s is healthy: got healthy result from %s\n", m.ID, u)
					healthy++
				} else {
					fmt.Fprintf(out, "member %s is unhealthy: got unhealthy result from %s\n", m.ID, u)
				}
				break
			}
			if !checked {
				fmt.Fprintf(out, "member %s is unreachable: %v are all unreachable\n", m.ID, m.ClientURLs)
			}
		}
		switch healthy {
		case len(ms):
			fmt.Fprintln(out, "cluster is healthy")
		case 0:
			fmt.Fprintln(out, "cluster is unavailable")
		default:
			fmt.Fprintln(out, "cluster is degraded")
		}
		if !opts.Forever {
			if healthy == len(ms) {
				return nil
			}
			return &ExitError{Code: ExitClusterNotHealthy}
		}
		fmt.Fprintf(out, "\nnext check after 10 second...\n\n")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(opts.Interval):
		}
	}
}

func joinComma(ss []string) string {
	s := ""
	for i, x := range ss {
		if i > 0 {
			s += ", "
		}
		s += x
	}
	return s
}

// healthGetError words a failed health request as etcdctl's plain
// http.Get(u + "/health") does: a transport error carries the
// `Get "<u>/health": ` prefix of *url.Error.
func healthGetError(u string, err error) error {
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || !errors.As(err, &ne) {
		return err
	}
	return &url.Error{Op: "Get", URL: u + "/health", Err: err}
}
