package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// machineMemory is what a machine's processes use.
type machineMemory struct {
	RSS, PSS int // kB, summed over the processes of the guest's PID namespace
	Procs    []procMemory
}

type procMemory struct {
	Comm     string
	RSS, PSS int // kB
}

func (m machineMemory) String() string {
	var top []string
	for i, p := range m.Procs {
		if i == 6 {
			break
		}
		top = append(top, fmt.Sprintf("%s %.1f", p.Comm, float64(p.RSS)/1024))
	}
	return fmt.Sprintf("RSS %.1f MiB, PSS %.1f MiB in %d processes (RSS MiB: %s)",
		float64(m.RSS)/1024, float64(m.PSS)/1024, len(m.Procs), strings.Join(top, ", "))
}

// memoryOf sums the memory of every process that shares pid1's PID
// namespace (the guest's processes, seen from the host).
func memoryOf(pid1 int) (machineMemory, error) {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid1))
	if err != nil {
		return machineMemory{}, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return machineMemory{}, err
	}
	var m machineMemory
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "pid")); err != nil || l != ns {
			continue
		}
		p := procMemory{}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
			p.Comm = strings.TrimSpace(string(b))
		}
		p.RSS = kBField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
		p.PSS = kBField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
		m.RSS += p.RSS
		m.PSS += p.PSS
		m.Procs = append(m.Procs, p)
	}
	sort.Slice(m.Procs, func(i, j int) bool { return m.Procs[i].RSS > m.Procs[j].RSS })
	if len(m.Procs) == 0 {
		return m, fmt.Errorf("no processes in the PID namespace of %d", pid1)
	}
	return m, nil
}

// kBField reads "Name:   123 kB" from a /proc file.
func kBField(path, name string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
	}
	return 0
}
