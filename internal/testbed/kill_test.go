package testbed_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/testbed"
)

// TestKillEndsWholeGuest checks the hard-failure simulation: after Kill, the
// guest's PID 1, a service process inside it and systemd-nspawn are all gone,
// while the other machine keeps running and is then powered off cleanly.
func TestKillEndsWholeGuest(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := testbed.NewCluster(t, testbed.Options{N: 2})
	victim, survivor := c.Machines[0], c.Machines[1]

	victim.MustRun(ctx, "systemd-run", "--unit=sleeper", "sleep", "600")
	var mainPID int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out := victim.MustRun(ctx, "systemctl", "show", "-P", "MainPID", "sleeper.service")
		if n, _ := strconv.Atoi(strings.TrimSpace(out)); n > 0 {
			mainPID = n
			break
		}
	}
	if mainPID == 0 {
		t.Fatal("sleeper.service never got a main pid")
	}
	// The guest pid is namespaced; find the host pid of the sleep process
	// through the guest's /proc as seen from the host.
	hostSleep := hostPIDOf(t, victim.PID1(), "sleep")
	if hostSleep == 0 {
		t.Fatal("cannot find the host pid of the guest's sleep process")
	}

	if err := victim.Kill(ctx); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if victim.Running() {
		t.Error("victim's systemd-nspawn still runs after Kill")
	}
	for _, pid := range []int{victim.PID1(), hostSleep, victim.NspawnPID()} {
		if alive(pid) {
			t.Errorf("pid %d survived Kill", pid)
		}
	}
	if s := strings.TrimSpace(survivor.MustRun(ctx, "systemctl", "is-system-running")); s != "running" && s != "degraded" {
		t.Errorf("survivor is %q after the other machine was killed", s)
	}
	if err := survivor.Poweroff(ctx); err != nil {
		t.Fatalf("Poweroff: %v", err)
	}
	if survivor.Running() || alive(survivor.PID1()) {
		t.Error("survivor still runs after Poweroff")
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || !strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}

// hostPIDOf returns the host pid of a descendant of pid1 whose comm is name.
func hostPIDOf(t *testing.T, pid1 int, name string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) != name {
			continue
		}
		// Walk up to see whether pid1 is an ancestor.
		for p := pid; p > 1; {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
			if err != nil {
				break
			}
			f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
			pp, _ := strconv.Atoi(f[1])
			if pp == pid1 {
				return pid
			}
			p = pp
		}
	}
	return 0
}
