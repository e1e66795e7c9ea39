package provider

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/corekit/corekit/internal/nspawn"
)

// Down powers off the machines, stops the host services, deletes the bridge
// and removes the state directory's contents.
func (p *Provider) Down(ctx context.Context) error {
	if err := p.store.Lock(); err != nil {
		return err
	}
	defer p.store.Unlock()
	st, err := p.store.Load()
	if err != nil {
		return err
	}
	if st == nil {
		p.say("corekit", "no cluster recorded in %s; nothing to do", p.opts.StateDir)
		if nspawn.LinkExists(p.opts.Bridge) {
			p.say("corekit", "note: interface %s exists but is not recorded as ours; left alone", p.opts.Bridge)
		}
		return nil
	}
	if err := p.teardown(ctx, st); err != nil {
		return err
	}
	p.say("corekit", "cluster removed")
	return nil
}

// teardown undoes everything st records, in reverse order of creation, and
// clears the state directory (keeping its lock file).
func (p *Provider) teardown(ctx context.Context, st *State) error {
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, info := range st.Machines {
		m, err := nspawn.Attach(info, p.log)
		if err != nil {
			continue // already gone
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A clean poweroff takes 0.3–2 s. When all machines go down at
			// once, the last etcd member has no quorum and its fleetd's
			// shutdown purge waits on it; nothing of a guest outlives it
			// (its root is a tmpfs), so after a while it is killed.
			cctx, cancel := context.WithTimeout(ctx, poweroffGrace)
			defer cancel()
			if err := m.Poweroff(cctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			p.say(info.Name, "powered off")
		}()
	}
	wg.Wait()
	for _, h := range []*HostProcess{st.Discovery, st.HostEtcd} {
		if h == nil {
			continue
		}
		if err := h.stop(ctx); err != nil {
			errs = append(errs, err)
		} else {
			p.say("corekit", "stopped %s (pid %d)", h.Name, h.PID)
		}
	}
	if st.Bridge != "" {
		gw, _ := netip.ParsePrefix(st.Gateway)
		br := &nspawn.Bridge{Name: st.Bridge, Gateway: gw}
		if err := br.Delete(ctx); err != nil {
			errs = append(errs, err)
		} else {
			p.say("corekit", "deleted bridge %s", st.Bridge)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("teardown incomplete (state kept in %s): %w", p.opts.StateDir, errors.Join(errs...))
	}
	for _, n := range []string{"machines", "units", "host-etcd", "logs", "cluster.env", "state.json"} {
		if err := os.RemoveAll(filepath.Join(p.opts.StateDir, n)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// poweroffGrace bounds a machine's clean poweroff during teardown.
const poweroffGrace = 5 * time.Second

// unhealthy says what of st is not running ("" when every recorded machine
// and host service runs).
func (p *Provider) unhealthy(st *State) string {
	if len(st.Machines) == 0 {
		return "no machines recorded"
	}
	for _, info := range st.Machines {
		if _, err := nspawn.Attach(info, p.log); err != nil {
			return info.Name + " is not running"
		}
	}
	for _, h := range []*HostProcess{st.HostEtcd, st.Discovery} {
		if h != nil && !h.Alive() {
			return "the host's " + h.Name + " is not running"
		}
	}
	if !nspawn.LinkExists(st.Bridge) {
		return "bridge " + st.Bridge + " is gone"
	}
	return ""
}
