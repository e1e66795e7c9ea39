// Package machine discovers this machine's identity: its machine ID
// (/etc/machine-id), an owner token that tells a restarted fleetd from a
// second host with the same ID (the kernel boot ID), and its public IP.
package machine

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// ReadID reads and trims the machine ID file.
func ReadID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("unable to determine local machine ID: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("unable to determine local machine ID")
	}
	return id, nil
}

// Owner returns the boot ID (distinct per host boot and per nspawn
// container), falling back to the hostname and PID.
func Owner() string {
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s
		}
	}
	h, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

// DetectPublicIP returns the first global-unicast IPv4 address of an
// interface that is up and not loopback, or "".
func DetectPublicIP() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.String()
			}
		}
	}
	return ""
}
