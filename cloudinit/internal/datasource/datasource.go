// Package datasource fetches user-data and metadata for coreos-cloudinit from
// the off-cloud sources of v1.14: a local file (--from-file), a URL
// (--from-url), an OpenStack-style config drive (--from-configdrive) and a
// URL named on the kernel command line (--from-proc-cmdline).
//
// Read Datasource and Select first; each source is one file. Cloud metadata
// services (EC2, GCE, …) are not implemented.
package datasource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Metadata is what a datasource knows about the machine besides user-data.
type Metadata struct {
	PublicIPv4, PublicIPv6, PrivateIPv4, PrivateIPv6 net.IP
	Hostname                                         string
	SSHPublicKeys                                    map[string]string // name → key
}

// Datasource is one place user-data can come from.
type Datasource interface {
	// Type names the source as the anchor logs it ("local-file", "url", …).
	Type() string
	// IsAvailable checks once whether the source can be read now.
	IsAvailable(ctx context.Context) bool
	// AvailabilityChanges reports whether a source that is not available
	// yet may become available later (worth polling).
	AvailabilityChanges() bool
	// FetchUserdata returns the raw user-data (possibly empty).
	FetchUserdata(ctx context.Context) ([]byte, error)
	// FetchMetadata returns the machine's metadata (possibly empty).
	FetchMetadata(ctx context.Context) (Metadata, error)
}

// ErrNoneAvailable is returned by Select when no source became available.
var ErrNoneAvailable = errors.New("No datasources available in time")

// Select probes every source concurrently, each with exponential backoff
// (100 ms doubling to 30 s) while AvailabilityChanges is true, and returns
// the first one found available. It gives up after timeout, when ctx ends or
// when every source has given up.
func Select(ctx context.Context, sources []Datasource, timeout time.Duration, log *slog.Logger) (Datasource, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	found := make(chan Datasource, len(sources))
	var wg sync.WaitGroup
	for _, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait := 100 * time.Millisecond
			for {
				log.Info(fmt.Sprintf("Checking availability of %q", s.Type()))
				if s.IsAvailable(ctx) {
					found <- s
					cancel() // the first one wins; stop the others
					return
				}
				if !s.AvailabilityChanges() {
					return
				}
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				wait = min(wait*2, 30*time.Second)
			}
		}()
	}
	wg.Wait()
	close(found)
	if s, ok := <-found; ok {
		return s, nil
	}
	return nil, ErrNoneAvailable
}
