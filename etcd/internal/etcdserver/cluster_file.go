package etcdserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/corekit/corekit/etcd/internal/membership"
)

// clusterFile is <data-dir>/member/cluster.json: the identity fixed at
// bootstrap, so a restart with different --initial-cluster flags keeps it
// (etcd ignores the initial-cluster flags once a WAL exists).
type clusterFile struct {
	MemberID  string          `json:"memberID"`
	ClusterID string          `json:"clusterID"`
	Members   []clusterMember `json:"members"`
	// Joined is set for a member that joined an existing cluster: it never
	// bootstraps a raft configuration.
	Joined bool `json:"joined,omitempty"`
}

type clusterMember struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	PeerURLs []string `json:"peerURLs"`
}

const clusterFileName = "cluster.json"

func readClusterFile(dir string) (*clusterFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, clusterFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("etcdserver: %w", err)
	}
	var cf clusterFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return nil, fmt.Errorf("etcdserver: %s: %w", clusterFileName, err)
	}
	return &cf, nil
}

// writeClusterFile writes atomically (temp file, fsync, rename, fsync dir).
func writeClusterFile(dir string, cf *clusterFile) error {
	b, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, clusterFileName+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("etcdserver: %w", err)
	}
	if _, err = f.Write(append(b, '\n')); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("etcdserver: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, clusterFileName)); err != nil {
		return fmt.Errorf("etcdserver: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func (cf *clusterFile) members() ([]membership.Member, error) {
	var ms []membership.Member
	for _, m := range cf.Members {
		id, err := membership.ParseID(m.ID)
		if err != nil {
			return nil, fmt.Errorf("etcdserver: %s: bad member id %q", clusterFileName, m.ID)
		}
		ms = append(ms, membership.Member{ID: id, Name: m.Name, PeerURLs: m.PeerURLs})
	}
	return ms, nil
}
