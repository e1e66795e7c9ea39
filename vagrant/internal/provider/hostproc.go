package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/corekit/corekit/internal/nspawn"
)

// startHostProcess starts bin with args in its own session, so that it
// outlives this process, with output appended to logPath.
func startHostProcess(name, bin string, args []string, logPath string) (*HostProcess, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p, err := nspawn.ProcessOf(cmd.Process.Pid)
	if err != nil {
		p = nspawn.Process{PID: cmd.Process.Pid}
	}
	// Reap it if it dies while we still run; afterwards init does.
	go func() { _ = cmd.Wait() }()
	return &HostProcess{Process: p, Name: name, Args: append([]string{bin}, args...), Log: logPath}, nil
}

// stop ends a host process: SIGTERM, then SIGKILL after 10 s. Only the
// recorded process (pid and start time) is signalled.
func (h *HostProcess) stop(ctx context.Context) error {
	if h == nil || !h.Alive() {
		return nil
	}
	_ = syscall.Kill(h.PID, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for h.Alive() && time.Now().Before(deadline) {
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			break
		}
	}
	if h.Alive() {
		_ = syscall.Kill(h.PID, syscall.SIGKILL)
		for i := 0; i < 100 && h.Alive(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if h.Alive() {
		return fmt.Errorf("%s (pid %d) does not exit", h.Name, h.PID)
	}
	return nil
}

// waitHTTP polls url until it answers with a status below 500, or the process
// dies, or ctx ends.
func waitHTTP(ctx context.Context, h *HostProcess, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		if !h.Alive() {
			return fmt.Errorf("%s exited; last lines of %s:\n%s", h.Name, h.Log, tailFile(h.Log, 15))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
			err = fmt.Errorf("HTTP %s", resp.Status)
		}
		last = err
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("%s not answering on %s: %w", h.Name, url, errors.Join(err, last))
		}
	}
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
