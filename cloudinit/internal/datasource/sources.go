package datasource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// LocalFile is --from-file PATH: the file's bytes, no metadata.
type LocalFile struct{ Path string }

// Type implements [Datasource].
func (LocalFile) Type() string { return "local-file" }

// IsAvailable implements [Datasource]: the file exists.
func (l LocalFile) IsAvailable(context.Context) bool {
	_, err := os.Stat(l.Path)
	return err == nil
}

// AvailabilityChanges implements [Datasource].
func (LocalFile) AvailabilityChanges() bool { return true }

// FetchUserdata implements [Datasource].
func (l LocalFile) FetchUserdata(context.Context) ([]byte, error) { return os.ReadFile(l.Path) }

// FetchMetadata implements [Datasource].
func (LocalFile) FetchMetadata(context.Context) (Metadata, error) { return Metadata{}, nil }

// URL is --from-url URL.
type URL struct {
	URL    string
	Client *Client
}

// Type implements [Datasource].
func (URL) Type() string { return "url" }

// IsAvailable implements [Datasource]: one GET answers 2xx.
func (u URL) IsAvailable(ctx context.Context) bool {
	_, err := u.Client.Get(ctx, u.URL)
	return err == nil
}

// AvailabilityChanges implements [Datasource].
func (URL) AvailabilityChanges() bool { return true }

// FetchUserdata implements [Datasource].
func (u URL) FetchUserdata(ctx context.Context) ([]byte, error) { return u.Client.GetRetry(ctx, u.URL) }

// FetchMetadata implements [Datasource].
func (URL) FetchMetadata(context.Context) (Metadata, error) { return Metadata{}, nil }

// ProcCmdline is --from-proc-cmdline: the URL in cloud-config-url= (or
// cloud_config_url=) on the kernel command line; the last one wins.
type ProcCmdline struct {
	Path   string // normally /proc/cmdline
	Client *Client
}

// Type implements [Datasource].
func (ProcCmdline) Type() string { return "proc-cmdline" }

func (p ProcCmdline) url() (string, error) {
	data, err := os.ReadFile(p.Path)
	if err != nil {
		return "", err
	}
	found := ""
	for _, w := range strings.Fields(string(data)) {
		k, v, ok := strings.Cut(w, "=")
		if ok && strings.ReplaceAll(k, "_", "-") == "cloud-config-url" && v != "" {
			found = v
		}
	}
	if found == "" {
		return "", fmt.Errorf("cloud-config-url not found in %s", p.Path)
	}
	return found, nil
}

// IsAvailable implements [Datasource].
func (p ProcCmdline) IsAvailable(context.Context) bool {
	_, err := p.url()
	return err == nil
}

// AvailabilityChanges implements [Datasource]: checked once.
func (ProcCmdline) AvailabilityChanges() bool { return false }

// FetchUserdata implements [Datasource].
func (p ProcCmdline) FetchUserdata(ctx context.Context) ([]byte, error) {
	u, err := p.url()
	if err != nil {
		return nil, err
	}
	return p.Client.GetRetry(ctx, u)
}

// FetchMetadata implements [Datasource].
func (ProcCmdline) FetchMetadata(context.Context) (Metadata, error) { return Metadata{}, nil }

// ConfigDrive is --from-configdrive DIR, the OpenStack layout:
// DIR/openstack/latest/user_data and meta_data.json (hostname, public_keys).
// As an extension, IP addresses are read from the EC2-compatible
// DIR/ec2/latest/meta-data.json (local-ipv4, public-ipv4, and the -ipv6
// forms) that OpenStack config drives also carry; the anchor had no IPs here.
type ConfigDrive struct{ Root string }

// Type implements [Datasource].
func (ConfigDrive) Type() string { return "cloud-drive" }

// IsAvailable implements [Datasource]: DIR exists.
func (c ConfigDrive) IsAvailable(context.Context) bool {
	_, err := os.Stat(c.Root)
	return err == nil
}

// AvailabilityChanges implements [Datasource].
func (ConfigDrive) AvailabilityChanges() bool { return true }

func (c ConfigDrive) read(rel string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(c.Root, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// FetchUserdata implements [Datasource]; a missing file is empty user-data.
func (c ConfigDrive) FetchUserdata(context.Context) ([]byte, error) {
	return c.read("openstack/latest/user_data")
}

// FetchMetadata implements [Datasource].
func (c ConfigDrive) FetchMetadata(context.Context) (Metadata, error) {
	var md Metadata
	data, err := c.read("openstack/latest/meta_data.json")
	if err != nil {
		return md, err
	}
	if len(data) > 0 {
		var m struct {
			Hostname   string            `json:"hostname"`
			PublicKeys map[string]string `json:"public_keys"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return md, fmt.Errorf("openstack/latest/meta_data.json: %w", err)
		}
		md.Hostname, md.SSHPublicKeys = m.Hostname, m.PublicKeys
	}
	data, err = c.read("ec2/latest/meta-data.json")
	if err != nil {
		return md, err
	}
	if len(data) > 0 {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return md, fmt.Errorf("ec2/latest/meta-data.json: %w", err)
		}
		ip := func(k string) net.IP {
			s, _ := m[k].(string)
			return net.ParseIP(strings.TrimSpace(s))
		}
		md.PrivateIPv4, md.PublicIPv4 = ip("local-ipv4"), ip("public-ipv4")
		md.PrivateIPv6, md.PublicIPv6 = ip("local-ipv6"), ip("public-ipv6")
	}
	return md, nil
}
