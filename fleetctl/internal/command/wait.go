package command

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/corekit/corekit/fleetctl/internal/client"
	"github.com/corekit/corekit/fleetctl/internal/format"
	"github.com/corekit/corekit/internal/fleetapi"
)

// BlockOptions are the shared --no-block / --block-attempts flags.
type BlockOptions struct {
	NoBlock       bool
	BlockAttempts int
}

// attempts is fleetctl's reading of the flags: -1 = do not wait, 0 =
// forever, N = up to N attempts.
func (b BlockOptions) attempts() int {
	if b.NoBlock {
		return -1
	}
	if b.BlockAttempts > 0 {
		return b.BlockAttempts
	}
	return 0
}

// waiter polls units until they report a state. One attempt lasts
// f.Attempt (2 s) with a poll every f.Poll (250 ms), as fleetctl.
type waiter struct {
	f        *Factory
	api      client.API
	attempts int
	out      io.Writer
	machines map[string]*fleetapi.Machine // cached for legends
}

func newWaiter(f *Factory, api client.API, b BlockOptions) *waiter {
	return &waiter{f: f, api: api, attempts: b.attempts(), out: f.IO.Out}
}

func (w *waiter) legend(ctx context.Context, id string) string {
	if w.machines == nil {
		ms, err := w.api.Machines(ctx)
		if err != nil {
			return ""
		}
		w.machines = format.Machines(ms)
	}
	m := w.machines[id]
	if m == nil {
		return ""
	}
	return format.MachineLegend(m.ID, m.PrimaryIP, false)
}

// line is "Unit <u> <state>[ on <machine>]".
// A global unit has no current state: its desired state is printed (fleet
// 1.0 printed an empty state).
func (w *waiter) line(ctx context.Context, u *fleetapi.Unit) string {
	state := u.CurrentState
	if format.IsGlobal(u) {
		state = u.DesiredState
	}
	msg := fmt.Sprintf("Unit %s %s", u.Name, state)
	if u.MachineID != "" {
		if l := w.legend(ctx, u.MachineID); l != "" {
			msg += " on " + l
		}
	}
	return msg
}

// deadline is when the wait gives up (zero = never).
func (w *waiter) deadline() time.Time {
	if w.attempts <= 0 {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(w.attempts) * w.f.Attempt)
}

// sleep waits one poll interval or until ctx ends.
func (w *waiter) sleep(ctx context.Context) error {
	t := time.NewTimer(w.f.Poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// UnschedulableError reports a unit that no machine can run.
type UnschedulableError struct {
	Unit, Reason string
}

func (e *UnschedulableError) Error() string {
	return fmt.Sprintf("unit %s cannot be scheduled: %s", e.Unit, e.Reason)
}

// waitUnits waits until every unit's current state is want, printing the
// "Unit ... <state>" line of each as it gets there; lines come out in
// argument order (a unit's line waits for the units before it), so the
// output does not depend on timing. With attempts -1 it prints "Triggered
// unit <u> <verb>" instead. A non-global unit that waits for loaded or
// launched while no machine can run it (diagnose) fails with
// *UnschedulableError once that has held for f.Attempt*2, instead of
// waiting forever.
func (w *waiter) waitUnits(ctx context.Context, names []string, verb, want string) error {
	if w.attempts < 0 {
		for _, n := range names {
			fmt.Fprintf(w.out, "Triggered unit %s %s\n", n, verb)
		}
		return nil
	}
	lines := make([]string, len(names)) // "" = not there yet
	printed := 0
	flush := func() {
		for printed < len(names) && lines[printed] != "" {
			fmt.Fprintln(w.out, lines[printed])
			printed++
		}
	}
	deadline := w.deadline()
	stuckSince := map[string]time.Time{}
	for {
		pending := 0
		for i, name := range names {
			if lines[i] != "" {
				continue
			}
			u, err := w.api.Unit(ctx, name)
			if err != nil {
				flush()
				return fmt.Errorf("Error retrieving Unit(%s) from Registry: %w", name, err)
			}
			if u == nil {
				flush()
				return fmt.Errorf("Unit %s not found", name)
			}
			state := u.CurrentState
			if format.IsGlobal(u) {
				state = u.DesiredState
			}
			if state == want {
				lines[i] = w.line(ctx, u)
				continue
			}
			if (want == "loaded" || want == "launched") && u.MachineID == "" && u.DesiredState != "inactive" {
				// fleetd's engine publishes why it cannot place the unit;
				// an older fleetd does not, so diagnose it here then.
				reason := u.Reason
				if reason == "" {
					if reason, err = diagnose(ctx, w.api, u); err != nil {
						flush()
						return err
					}
				}
				if reason != "" {
					if s, ok := stuckSince[name]; !ok {
						stuckSince[name] = time.Now()
					} else if time.Since(s) >= 2*w.f.Attempt {
						flush()
						return &UnschedulableError{Unit: name, Reason: reason}
					}
				} else {
					delete(stuckSince, name)
				}
			}
			pending++
		}
		flush()
		if pending == 0 {
			return nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			for i, l := range lines {
				if l == "" {
					return fmt.Errorf("timed out waiting for unit %s to report state %s", names[i], want)
				}
			}
		}
		if err := w.sleep(ctx); err != nil {
			return err
		}
	}
}

// SystemdStateError is a launched unit whose systemd state is not active.
type SystemdStateError struct {
	Unit, Machine, Load, Active, Sub string
	TimedOut                         bool
}

func (e *SystemdStateError) Error() string {
	where := ""
	if e.Machine != "" {
		where = " on " + e.Machine
	}
	if e.TimedOut {
		return fmt.Sprintf("timed out waiting for unit %s%s to become active (systemd reports %s/%s/%s)", e.Unit, where, orDash(e.Load), orDash(e.Active), orDash(e.Sub))
	}
	return fmt.Sprintf("unit %s%s is %s/%s (load state %s)", e.Unit, where, orDash(e.Active), orDash(e.Sub), orDash(e.Load))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// waitActive waits until systemd reports every launched unit active and
// loaded on the machine fleet launched it on. Unlike fleetctl (one 2 s
// attempt whatever --block-attempts says) it waits as long as the
// attempts allow (forever by default, since a slow ExecStartPre is
// normal), but it fails at once when systemd reports the unit failed, and
// when it stays inactive for f.Attempt*5 after fleet launched it (a
// oneshot unit, or one that exited), so it never hangs on a unit that will
// not come up.
func (w *waiter) waitActive(ctx context.Context, names []string) error {
	if w.attempts < 0 || len(names) == 0 {
		return nil
	}
	deadline := w.deadline()
	inactiveSince := map[string]time.Time{}
	pending := append([]string(nil), names...)
	var last map[string]*fleetapi.UnitState
	for {
		states, err := w.api.UnitStates(ctx)
		if err != nil {
			return fmt.Errorf("Error getting unit states: %w", err)
		}
		last = map[string]*fleetapi.UnitState{}
		var next []string
		for _, name := range pending {
			u, err := w.api.Unit(ctx, name)
			if err != nil {
				return err
			}
			if u == nil {
				return fmt.Errorf("Unit %s not found", name)
			}
			var st *fleetapi.UnitState
			for _, s := range states {
				if s.Name == name && (u.MachineID == "" || s.MachineID == u.MachineID) {
					st = s
					break
				}
			}
			last[name] = st
			if st != nil && st.SystemdActiveState == "active" && st.SystemdLoadState == "loaded" {
				continue
			}
			if st != nil && st.SystemdActiveState == "failed" {
				return &SystemdStateError{Unit: name, Machine: w.legend(ctx, st.MachineID), Load: st.SystemdLoadState, Active: st.SystemdActiveState, Sub: st.SystemdSubState}
			}
			if st != nil && st.SystemdActiveState == "inactive" {
				if s, ok := inactiveSince[name]; !ok {
					inactiveSince[name] = time.Now()
				} else if time.Since(s) >= 5*w.f.Attempt {
					return &SystemdStateError{Unit: name, Machine: w.legend(ctx, st.MachineID), Load: st.SystemdLoadState, Active: st.SystemdActiveState, Sub: st.SystemdSubState}
				}
			} else {
				delete(inactiveSince, name)
			}
			next = append(next, name)
		}
		pending = next
		if len(pending) == 0 {
			return nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			e := &SystemdStateError{Unit: pending[0], TimedOut: true}
			if st := last[pending[0]]; st != nil {
				e.Machine, e.Load, e.Active, e.Sub = w.legend(ctx, st.MachineID), st.SystemdLoadState, st.SystemdActiveState, st.SystemdSubState
			}
			return e
		}
		if err := w.sleep(ctx); err != nil {
			return err
		}
	}
}
