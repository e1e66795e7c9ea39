package fleetmain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/corekit/corekit/fleet/internal/agent"
	"github.com/corekit/corekit/fleet/internal/api"
	"github.com/corekit/corekit/fleet/internal/engine"
	"github.com/corekit/corekit/fleet/internal/machine"
	"github.com/corekit/corekit/fleet/internal/unitmgr"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/v2client"
)

// Deps are the injectable parts of a Server; zero values mean production.
type Deps struct {
	Logger *slog.Logger
	// Registry replaces the etcd registry (simulations).
	Registry *fleetregistry.Registry
	// Manager replaces the systemd unit manager (simulations).
	Manager unitmgr.Manager
	// MachineID and Owner replace /etc/machine-id and the boot ID.
	MachineID, Owner string
}

// Server is one fleetd.
type Server struct {
	cfg    Config
	log    *slog.Logger
	reg    *fleetregistry.Registry
	mgr    unitmgr.Manager
	closer func()
	id     string
	owner  string
	ready  atomic.Bool

	Engine *engine.Engine
	Agent  *agent.Agent
}

// NewServer connects to systemd and the store and prepares the components.
func NewServer(ctx context.Context, cfg Config, d Deps) (*Server, error) {
	s := &Server{cfg: cfg, log: d.Logger, reg: d.Registry, mgr: d.Manager, id: d.MachineID, owner: d.Owner, closer: func() {}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.id == "" {
		if s.id, err = machine.ReadID(cfg.MachineIDFile); err != nil {
			return nil, err
		}
	}
	if s.owner == "" {
		s.owner = machine.Owner()
	}
	if s.reg == nil {
		c, err := v2client.New(v2client.Config{Endpoints: cfg.EtcdServers, HeaderTimeout: cfg.EtcdRequestTimeout,
			CAFile: cfg.EtcdCAFile, CertFile: cfg.EtcdCertFile, KeyFile: cfg.EtcdKeyFile,
			Username: cfg.EtcdUsername, Password: cfg.EtcdPassword, Logger: s.log})
		if err != nil {
			return nil, fmt.Errorf("etcd client: %w", err)
		}
		s.reg = fleetregistry.NewEtcd(c, cfg.EtcdKeyPrefix)
	}
	if s.mgr == nil && cfg.UnitManager == "memory" {
		s.log.Warn("unit_manager=memory: units are simulated, nothing runs in systemd")
		s.mgr = unitmgr.NewMemory()
	}
	if s.mgr == nil {
		sd, err := unitmgr.NewSystemd(ctx, cfg.UnitsDirectory)
		if err != nil {
			return nil, err
		}
		s.mgr, s.closer = sd, sd.Close
	}
	s.Agent = agent.New(agent.Config{Registry: s.reg, Manager: s.mgr, Machine: s.machineState, TTL: cfg.AgentTTL,
		DisableWatches: cfg.DisableWatches, Logger: s.log.With("machine", fleetregistry.ShortID(s.id))})
	if !cfg.DisableEngine {
		s.Engine = engine.New(engine.Config{Registry: s.reg, MachineID: s.id, Interval: cfg.EngineReconcileInterval,
			DisableWatches: cfg.DisableWatches, Logger: s.log.With("machine", fleetregistry.ShortID(s.id))})
	}
	return s, nil
}

// MachineID returns this fleetd's machine ID.
func (s *Server) MachineID() string { return s.id }

func (s *Server) machineState() fleetregistry.MachineState {
	ip := s.cfg.PublicIP
	if ip == "" {
		ip = machine.DetectPublicIP()
	}
	md := map[string]string{}
	for k, v := range s.cfg.Metadata {
		md[k] = v
	}
	return fleetregistry.MachineState{ID: s.id, PublicIP: ip, Metadata: md, Version: fleetregistry.Version,
		Capabilities: map[string]bool{fleetregistry.CapDisableEngine: s.cfg.DisableEngine, fleetregistry.CapGRPC: false}}
}

// Run serves until ctx ends. Units keep running when fleetd stops unless
// purge_on_shutdown is set.
func (s *Server) Run(ctx context.Context) error {
	defer s.closer()
	lns, err := s.listeners()
	if err != nil {
		return err
	}
	h := &api.Handler{Registry: s.reg, TokenLimit: uint16(s.cfg.TokenLimit), Ready: s.ready.Load, Version: fleetregistry.Version, Logger: s.log}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func(ln net.Listener) {
			defer wg.Done()
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("API server failed", "err", err)
			}
		}(ln)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		wg.Wait()
	}()

	if !s.register(ctx) {
		return nil
	}
	cctx, cancel := context.WithCancel(ctx)
	var cw sync.WaitGroup
	run := func(f func(context.Context) error) {
		cw.Add(1)
		go func() { defer cw.Done(); _ = f(cctx) }()
	}
	run(s.monitor)
	run(s.Agent.Run)
	if s.Engine != nil {
		run(s.Engine.Run)
	}
	<-ctx.Done()
	s.shutdown(cancel, &cw)
	s.log.Info("fleetd stopped")
	return nil
}

// DefaultShutdownTimeout bounds what fleetd does after SIGTERM (fleet
// panicked when stopping took longer than 60 s).
const DefaultShutdownTimeout = 60 * time.Second

// shutdown stops the components and then, within the shutdown timeout:
// with purge_on_shutdown stops and unloads every unit (fleet's behaviour);
// else, if systemd reports the machine is shutting down, releases this
// machine's presence and unit states so the engine reschedules its units
// at once. A plain stop or restart of fleetd leaves units and presence
// alone (the restarted fleetd takes its presence over at once).
func (s *Server) shutdown(cancel context.CancelFunc, cw *sync.WaitGroup) {
	timeout := s.cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	sctx, scancel := context.WithTimeout(context.Background(), timeout)
	defer scancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Ask systemd first: during a shutdown the bus may go away soon.
		stopping := false
		if st, ok := s.mgr.(unitmgr.SystemStater); ok && !s.cfg.PurgeOnShutdown {
			state, err := st.SystemState(sctx)
			if err != nil {
				s.log.Warn("unable to read systemd's system state", "err", err)
			}
			stopping = state == unitmgr.SystemStopping
		}
		cancel()
		cw.Wait()
		switch {
		case s.cfg.PurgeOnShutdown:
			if err := s.Agent.Purge(sctx); err != nil {
				s.log.Error("purge failed", "err", err)
			}
			if err := s.reg.RemoveMachine(sctx, s.id, s.owner); err != nil {
				s.log.Error("unable to remove machine presence", "err", err)
			}
		case stopping:
			s.log.Info("system is shutting down: releasing this machine's presence and unit states")
			if err := s.reg.RemoveMachine(sctx, s.id, s.owner); err != nil {
				s.log.Error("unable to remove machine presence", "err", err)
			}
			s.Agent.Release(sctx)
		}
	}()
	select {
	case <-done:
	case <-sctx.Done():
		s.log.Error("shutdown did not finish in time; exiting anyway", "timeout", timeout)
	}
}

// register announces the machine, retrying with backoff (1 s → 60 s).
func (s *Server) register(ctx context.Context) bool {
	backoff := time.Second
	for {
		err := s.reg.RegisterMachine(ctx, s.machineState(), s.owner, s.cfg.AgentTTL)
		if err == nil {
			s.ready.Store(true)
			s.log.Info("machine registered", "machine", s.id)
			return true
		}
		if errors.Is(err, fleetregistry.ErrMachineIDInUse) {
			s.log.Error("REFUSED: another live fleetd holds this machine ID; is /etc/machine-id duplicated? retrying", "machine", s.id, "retry_in", backoff)
		} else {
			s.log.Warn("Server register machine failed", "err", err, "retry_in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(backoff*2, 60*time.Second)
	}
}

// monitor refreshes presence every agent_ttl/2 and re-registers when lost.
func (s *Server) monitor(ctx context.Context) error {
	t := time.NewTicker(s.cfg.AgentTTL / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := s.reg.MachineHeartbeat(ctx, s.machineState(), s.owner, s.cfg.AgentTTL)
		if err == nil || ctx.Err() != nil {
			continue
		}
		s.log.Warn("machine heartbeat failed", "err", err)
		if errors.Is(err, fleetregistry.ErrNotRegistered) || errors.Is(err, fleetregistry.ErrMachineIDInUse) {
			s.ready.Store(false)
			if !s.register(ctx) {
				return nil
			}
		}
	}
}

func (s *Server) listeners() ([]net.Listener, error) {
	if lns, err := activation.Listeners(); err == nil && len(lns) > 0 {
		var out []net.Listener
		for _, l := range lns {
			if l != nil {
				out = append(out, l)
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	var out []net.Listener
	if p := s.cfg.APISocket; p != "" {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		l, err := net.Listen("unix", p)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", p, err)
		}
		_ = os.Chmod(p, 0o660)
		out = append(out, l)
	}
	if a := strings.TrimPrefix(s.cfg.APIListen, "http://"); a != "" {
		l, err := net.Listen("tcp", a)
		if err != nil {
			for _, x := range out {
				x.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", a, err)
		}
		out = append(out, l)
	}
	return out, nil
}
