package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/corekit/corekit/internal/nspawn"
)

// State is what `up` records under the state directory (.corekit/state.json)
// so that status, ssh and down find the cluster again. It is saved after
// every resource is created, so a failed `up` can be undone from it.
type State struct {
	Bridge       string        `json:"bridge,omitempty"`
	Gateway      string        `json:"gateway,omitempty"` // host address on the bridge, with prefix
	HostEtcd     *HostProcess  `json:"host_etcd,omitempty"`
	Discovery    *HostProcess  `json:"discovery,omitempty"`
	DiscoveryURL string        `json:"discovery_url,omitempty"` // the cluster's token URL
	ClientPort   int           `json:"client_port,omitempty"`   // etcd client port on the machines
	EtcdUnit     string        `json:"etcd_unit,omitempty"`     // etcd.service or etcd2.service
	UserData     string        `json:"user_data,omitempty"`     // the user's file
	Machines     []nspawn.Info `json:"machines,omitempty"`
	Status       string        `json:"status"` // "booting", "up", "failed"
}

// HostProcess is a service `up` started on the host.
type HostProcess struct {
	nspawn.Process
	Name string   `json:"name"`
	Args []string `json:"args"`
	Log  string   `json:"log"`
	URL  string   `json:"url"`
}

func (s *Store) statePath() string { return filepath.Join(s.Dir, "state.json") }

// Store is the state directory.
type Store struct {
	Dir  string
	lock *os.File
}

// Lock takes an exclusive lock on the state directory so that two up/down
// runs cannot interleave.
func (s *Store) Lock() error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("another `make up`/`make down` is running on %s", s.Dir)
	}
	s.lock = f
	return nil
}

// Unlock releases Lock.
func (s *Store) Unlock() {
	if s.lock != nil {
		_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		s.lock.Close()
		s.lock = nil
	}
}

// Load reads the state; (nil, nil) when there is none.
func (s *Store) Load() (*State, error) {
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", s.statePath(), err)
	}
	return &st, nil
}

// Save writes the state atomically.
func (s *Store) Save(st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.statePath() + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.statePath())
}
