package agent

import (
	"context"
	"fmt"

	"github.com/corekit/corekit/fleet/internal/unitmgr"
)

// Hooks are called after each successful task, so the caller can keep its
// cache and the registry (heartbeats, states) in step.
type Hooks interface {
	Done(ctx context.Context, t Task)
}

// Execute runs tasks in order against mgr. An UnloadUnit stops the unit
// first and only removes it if the stop was accepted (so it stays
// stoppable). The first failing task aborts the rest; the tasks completed
// so far are returned with the error.
func Execute(ctx context.Context, mgr unitmgr.Manager, tasks []Task, hooks Hooks) (int, error) {
	for i, t := range tasks {
		var err error
		switch t.Type {
		case UnloadUnit:
			if err = mgr.Stop(ctx, t.Unit); err == nil {
				err = mgr.Unload(ctx, t.Unit)
			}
		case LoadUnit:
			err = mgr.Load(ctx, t.Unit, t.File)
		case ReloadUnitFiles:
			err = mgr.Reload(ctx)
		case StopUnit:
			err = mgr.Stop(ctx, t.Unit)
		case StartUnit:
			err = mgr.Start(ctx, t.Unit)
		default:
			err = fmt.Errorf("unknown task type %q", t.Type)
		}
		if err != nil {
			return i, fmt.Errorf("task %s %s: %w", t.Type, t.Unit, err)
		}
		if hooks != nil {
			hooks.Done(ctx, t)
		}
	}
	return len(tasks), nil
}
