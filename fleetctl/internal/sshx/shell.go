package sshx

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/sys/unix"
)

// IsTerminal reports whether fd is a terminal.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// makeRaw puts fd into raw mode and returns a function restoring it.
func makeRaw(fd int) (func(), error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// Shell opens an interactive login shell. When stdin is a terminal the
// session gets a PTY of type xterm-256color sized like it, and the local
// terminal is in raw mode until the shell ends. It returns the shell's exit
// status.
func (c *Client) Shell(ctx context.Context, stdin *os.File, io Stdio, forwardAgent bool) (int, error) {
	s, err := c.NewSession()
	if err != nil {
		return -1, err
	}
	defer s.Close()
	if forwardAgent {
		if err := agent.RequestAgentForwarding(s); err != nil {
			return -1, fmt.Errorf("request agent forwarding: %w", err)
		}
	}
	s.Stdin, s.Stdout, s.Stderr = io.In, io.Out, io.Err
	if stdin != nil && IsTerminal(int(stdin.Fd())) {
		fd := int(stdin.Fd())
		w, h := 80, 40
		if ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil {
			w, h = int(ws.Col), int(ws.Row)
		}
		modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 14400, ssh.TTY_OP_OSPEED: 14400}
		if err := s.RequestPty("xterm-256color", h, w, modes); err != nil {
			return -1, fmt.Errorf("request pty: %w", err)
		}
		restore, err := makeRaw(fd)
		if err != nil {
			return -1, fmt.Errorf("raw terminal: %w", err)
		}
		defer restore()
	}
	if err := s.Shell(); err != nil {
		return -1, err
	}
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	return exitStatus(s.Wait())
}
