package nspawn

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat returns the fields of /proc/PID/stat after the command name
// (index 0 = field 3, the state).
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: %w", pid, errNotFound)
	}
	return strings.Fields(s[i+1:]), nil
}

func procState(pid int) (string, error) {
	f, err := procStat(pid)
	if err != nil || len(f) < 1 {
		return "", err
	}
	return f[0], nil
}

func procPPid(pid int) (int, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	return strconv.Atoi(f[1])
}

// procStartTime is field 22 of /proc/PID/stat (clock ticks since boot).
func procStartTime(pid int) (uint64, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// procChildren lists the pids whose parent is ppid.
func procChildren(ppid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := procPPid(pid); err == nil && p == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// Process identifies a host process across pid reuse: its pid and its start
// time (field 22 of /proc/PID/stat).
type Process struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// ProcessOf returns the identity of the running process pid.
func ProcessOf(pid int) (Process, error) {
	st, err := procStartTime(pid)
	if err != nil {
		return Process{}, err
	}
	return Process{PID: pid, StartTime: st}, nil
}

// Alive reports whether the process still runs (and is the same process:
// same start time, not a zombie).
func (p Process) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	st, err := procStartTime(p.PID)
	if err != nil || st != p.StartTime {
		return false
	}
	state, _ := procState(p.PID)
	return state != "Z"
}
