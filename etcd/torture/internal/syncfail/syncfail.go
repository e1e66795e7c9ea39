// Package syncfail makes fsync fail on demand in another process, for the
// torture nemesis' fsync-eio fault. Go binaries make raw system calls (no
// LD_PRELOAD) and this kernel has no device-mapper (no dm-flakey), so it
// uses seccomp user notification: a small wrapper (Main, the syncfail
// command) installs a filter that hands every fsync, fdatasync and
// sync_file_range of its process to a supervisor, passes the filter's
// listener to the supervisor over a unix socket, and execs the real binary
// (same pid, so signals reach it). The Supervisor lets the calls run, or
// answers EIO without running them while SetFail(true).
package syncfail

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Main is the wrapper: syncfail SOCKET BINARY [ARG...]. It returns only on
// failure (exit code 1); on success BINARY replaces it.
func Main() int {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: syncfail SOCKET BINARY [ARG...]")
		return 2
	}
	if err := wrap(os.Args[1], os.Args[2], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "syncfail:", err)
		return 1
	}
	return 0
}

// syncCalls are the system calls the supervisor decides on.
var syncCalls = []uint32{unix.SYS_FSYNC, unix.SYS_FDATASYNC, unix.SYS_SYNC_FILE_RANGE}

func auditArch() (uint32, error) {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, nil
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, nil
	}
	return 0, fmt.Errorf("unsupported architecture %s", runtime.GOARCH)
}

// filter is the BPF program: sync calls of this architecture go to the
// supervisor, everything else is allowed.
func filter() ([]unix.SockFilter, error) {
	arch, err := auditArch()
	if err != nil {
		return nil, err
	}
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	n := len(syncCalls)
	// 0: ld arch; 1: arch? next : allow; 2: ld nr; 3..3+n-1: nr? notify;
	// 3+n: allow; 4+n: notify.
	prog := []unix.SockFilter{
		{Code: ldAbs, K: 4},
		{Code: jeq, K: arch, Jt: 0, Jf: uint8(n + 1)},
		{Code: ldAbs, K: 0},
	}
	for i, nr := range syncCalls {
		prog = append(prog, unix.SockFilter{Code: jeq, K: nr, Jt: uint8(n - i), Jf: 0})
	}
	prog = append(prog,
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_USER_NOTIF})
	return prog, nil
}

func wrap(socket, binary string, argv []string) error {
	prog, err := filter()
	if err != nil {
		return err
	}
	path := binary
	if !containsSlash(binary) {
		if path, err = lookPath(binary); err != nil {
			return err
		}
	}
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	uc := conn.(*net.UnixConn)
	// The filter applies to the installing thread, which must also exec.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	lfd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	if _, _, err := uc.WriteMsgUnix([]byte{1}, unix.UnixRights(int(lfd)), nil); err != nil {
		return fmt.Errorf("passing the listener: %w", err)
	}
	unix.Close(int(lfd))
	// Wait for the supervisor to hold the listener before exec.
	if _, err := uc.Read(make([]byte, 1)); err != nil {
		return fmt.Errorf("supervisor ack: %w", err)
	}
	conn.Close()
	return syscall.Exec(path, argv, os.Environ())
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

func lookPath(name string) (string, error) {
	for _, dir := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// seccompData, notif and notifResp mirror struct seccomp_data,
// seccomp_notif and seccomp_notif_resp.
type seccompData struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

type notif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Data  seccompData
}

type notifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// Supervisor answers the sync calls of every process wrapped with its
// socket.
type Supervisor struct {
	ln     *net.UnixListener
	fail   atomic.Bool
	failed atomic.Int64
}

// Listen starts a supervisor on a new unix socket at path.
func Listen(path string) (*Supervisor, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("syncfail: %w", err)
	}
	s := &Supervisor{ln: ln}
	go s.accept()
	return s, nil
}

// SetFail makes sync calls fail with EIO (true) or run (false).
func (s *Supervisor) SetFail(on bool) { s.fail.Store(on) }

// Failed counts the sync calls answered with EIO so far.
func (s *Supervisor) Failed() int64 { return s.failed.Load() }

// Close stops accepting new processes. Listeners of running processes stay
// served until those processes exit.
func (s *Supervisor) Close() { s.ln.Close() }

func (s *Supervisor) accept() {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		go s.take(c)
	}
}

func (s *Supervisor) take(c *net.UnixConn) {
	defer c.Close()
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(make([]byte, 1), oob)
	if err != nil {
		return
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return
	}
	fd := fds[0]
	defer unix.Close(fd)
	if _, err := c.Write([]byte{1}); err != nil {
		return
	}
	s.serve(fd)
}

// serve answers notifications on one listener until its process is gone
// (the listener then polls POLLHUP). A receive or send failing with ENOENT
// only means the calling thread was interrupted by a signal (Go programs
// get many), never that the process is gone.
func (s *Supervisor) serve(fd int) {
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if pfd[0].Revents&unix.POLLIN == 0 {
			if pfd[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
				return // every process using the filter has exited
			}
			continue
		}
		var n notif
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n))); errno != 0 {
			if errno == unix.EINTR || errno == unix.ENOENT {
				continue
			}
			return
		}
		r := notifResp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		if s.fail.Load() {
			r = notifResp{ID: n.ID, Error: -int32(unix.EIO)}
			s.failed.Add(1)
		}
		// ENOENT here means the caller was interrupted or died meanwhile:
		// nothing to answer (an interrupted call is restarted and notifies
		// again).
		_, _, _ = unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&r)))
	}
}
