package unitmgr

import (
	"context"
	"fmt"
	"sync"

	"github.com/corekit/corekit/internal/unitfile"
)

// Memory simulates systemd for one machine: loaded unit files live in
// memory, Start makes a unit active/running, Stop inactive/dead, Kill
// simulates a crash. It counts the calls it receives.
type Memory struct {
	mu     sync.Mutex
	files  map[string]unitfile.Hash
	states map[string]State
	loaded map[string]bool // known to "systemd" after Reload
	calls  map[string]int
	// FailStart makes Start fail for these units.
	FailStart map[string]bool
	system    string
	watchers  map[int]func(string)
	nextWatch int
}

// NewMemory returns an empty simulated systemd.
func NewMemory() *Memory {
	return &Memory{files: map[string]unitfile.Hash{}, states: map[string]State{}, loaded: map[string]bool{}, calls: map[string]int{}, FailStart: map[string]bool{},
		watchers: map[int]func(string){}}
}

// WatchStates implements Watcher: changed is called after every simulated
// state change (Start, Stop, Kill, Reload, Unload).
func (m *Memory) WatchStates(ctx context.Context, changed func(unit string)) (func(), error) {
	m.mu.Lock()
	id := m.nextWatch
	m.nextWatch++
	m.watchers[id] = changed
	m.mu.Unlock()
	wctx, cancel := context.WithCancel(ctx)
	go func() {
		<-wctx.Done()
		m.mu.Lock()
		delete(m.watchers, id)
		m.mu.Unlock()
	}()
	return cancel, nil
}

// notify calls the watchers; m.mu must not be held.
func (m *Memory) notify(unit string) {
	m.mu.Lock()
	ws := make([]func(string), 0, len(m.watchers))
	for _, w := range m.watchers {
		ws = append(ws, w)
	}
	m.mu.Unlock()
	for _, w := range ws {
		w(unit)
	}
}

// Calls returns how often method was called.
func (m *Memory) Calls(method string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[method]
}

// SetSystemState sets what SystemState reports ("running" by default;
// "stopping" simulates a shutdown).
func (m *Memory) SetSystemState(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.system = s
}

// SystemState implements SystemStater.
func (m *Memory) SystemState(ctx context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.system == "" {
		return "running", nil
	}
	return m.system, nil
}

// Kill simulates a crash of a running unit (ActiveState failed).
func (m *Memory) Kill(name string) {
	defer m.notify(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.states[name] = State{LoadState: "loaded", ActiveState: "failed", SubState: "failed"}
}

// Units implements Manager.
func (m *Memory) Units(ctx context.Context) (map[string]unitfile.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["Units"]++
	out := make(map[string]unitfile.Hash, len(m.files))
	for k, v := range m.files {
		out[k] = v
	}
	return out, nil
}

// Load implements Manager.
func (m *Memory) Load(ctx context.Context, name string, f *unitfile.UnitFile) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["Load"]++
	m.files[name] = f.Hash()
	return nil
}

// Unload implements Manager.
func (m *Memory) Unload(ctx context.Context, name string) error {
	defer m.notify(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["Unload"]++
	delete(m.files, name)
	delete(m.states, name)
	delete(m.loaded, name)
	return nil
}

// Reload implements Manager.
func (m *Memory) Reload(ctx context.Context) error {
	defer m.notify("")
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["Reload"]++
	for n := range m.files {
		m.loaded[n] = true
	}
	return nil
}

// Start implements Manager.
func (m *Memory) Start(ctx context.Context, name string) error {
	defer m.notify(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["Start"]++
	if m.FailStart[name] {
		return fmt.Errorf("start %s: simulated failure", name)
	}
	if _, ok := m.files[name]; !ok {
		return fmt.Errorf("start %s: Unit %s not found", name, name)
	}
	m.states[name] = State{LoadState: "loaded", ActiveState: "active", SubState: "running"}
	return nil
}

// Stop implements Manager.
func (m *Memory) Stop(ctx context.Context, name string) error {
	defer m.notify(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["Stop"]++
	m.states[name] = State{LoadState: "loaded", ActiveState: "inactive", SubState: "dead"}
	return nil
}

// States implements Manager.
func (m *Memory) States(ctx context.Context, names []string) (map[string]State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["States"]++
	out := map[string]State{}
	for _, n := range names {
		s, ok := m.states[n]
		switch {
		case ok:
		case m.loaded[n]:
			s = State{LoadState: "loaded", ActiveState: "inactive", SubState: "dead"}
		default:
			s = State{LoadState: "not-found", ActiveState: "inactive", SubState: "dead"}
		}
		out[n] = s
	}
	return out, nil
}
