// Package sshx is fleetctl's SSH client: authentication through ssh-agent
// only (as fleetctl), OpenSSH-style known_hosts checking with fleetctl's
// trust-on-first-use prompt and mismatch banner (knownhosts.go), optional
// agent forwarding, tunnelling through a jump host, running one command
// with its exit status, and an interactive shell with a PTY (shell.go).
//
// It is not an ssh(1) replacement: no password or key-file authentication,
// no config file. Start reading at Dial.
package sshx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// ErrNoAgent is returned when SSH_AUTH_SOCK is not set; its text is
// fleetctl's.
var ErrNoAgent = errors.New("SSH_AUTH_SOCK environment variable is not set. Verify ssh-agent is running. See https://github.com/coreos/fleet/blob/master/Documentation/using-the-client.md for help.")

// Config says how to reach one host.
type Config struct {
	User string
	// Addr is host:port of the target.
	Addr string
	// Tunnel, when not empty, is host[:port] of a host to SSH to first;
	// the target is then reached through a direct-tcpip channel from it.
	Tunnel string
	// Timeout bounds each TCP connect and handshake (0 = 10 s).
	Timeout time.Duration
	// AgentSock is the ssh-agent socket (SSH_AUTH_SOCK).
	AgentSock string
	// HostKey checks the server's key (see KnownHosts.Callback).
	HostKey ssh.HostKeyCallback
}

// Client is a connection to the target, plus the jump host and the agent
// connection it may hold open.
type Client struct {
	*ssh.Client
	agentSock string
	closers   []io.Closer
}

// Close closes the target connection, the tunnel and the agent connection.
func (c *Client) Close() error {
	err := c.Client.Close()
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i].Close()
	}
	return err
}

// WithDefaultPort appends ":22" when hostport has no port.
func WithDefaultPort(hostport string) string {
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return hostport
	}
	return net.JoinHostPort(strings.Trim(hostport, "[]"), "22")
}

// Dial connects and authenticates with the agent's keys. It honours ctx
// for the TCP connect and the handshake.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.AgentSock == "" {
		return nil, ErrNoAgent
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	var d net.Dialer
	ac, err := d.DialContext(ctx, "unix", cfg.AgentSock)
	if err != nil {
		return nil, fmt.Errorf("connect to ssh-agent: %w", err)
	}
	ag := agent.NewClient(ac)
	cc := &ssh.ClientConfig{
		User:            cfg.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeysCallback(ag.Signers)},
		HostKeyCallback: cfg.HostKey,
		Timeout:         cfg.Timeout,
	}
	if cc.HostKeyCallback == nil {
		ac.Close()
		return nil, errors.New("no host key callback")
	}
	c := &Client{agentSock: cfg.AgentSock, closers: []io.Closer{ac}}
	target := WithDefaultPort(cfg.Addr)
	if cfg.Tunnel != "" {
		jump, err := handshake(ctx, cc, WithDefaultPort(cfg.Tunnel), func(ctx context.Context, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: cfg.Timeout}
			return d.DialContext(ctx, "tcp", addr)
		})
		if err != nil {
			c.Close0()
			return nil, err
		}
		c.closers = append(c.closers, jump)
		sc, err := handshake(ctx, cc, target, func(ctx context.Context, addr string) (net.Conn, error) {
			return jump.DialContext(ctx, "tcp", addr)
		})
		if err != nil {
			c.Close0()
			return nil, err
		}
		c.Client = sc
		return c, nil
	}
	sc, err := handshake(ctx, cc, target, func(ctx context.Context, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: cfg.Timeout}
		return d.DialContext(ctx, "tcp", addr)
	})
	if err != nil {
		c.Close0()
		return nil, err
	}
	c.Client = sc
	return c, nil
}

// Close0 closes what Dial opened before the target connection exists.
func (c *Client) Close0() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i].Close()
	}
}

func handshake(ctx context.Context, cc *ssh.ClientConfig, addr string, dial func(context.Context, string) (net.Conn, error)) (*ssh.Client, error) {
	conn, err := dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	// Bound the handshake by ctx as well as by the timeout.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if cc.Timeout > 0 {
		conn.SetDeadline(time.Now().Add(cc.Timeout))
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cc)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// ForwardAgent makes the agent available to sessions of c that ask for it
// (RequestAgent). It registers the forwarding handler once per connection.
func (c *Client) ForwardAgent() error {
	return agent.ForwardToRemote(c.Client, c.agentSock)
}

// Stdio are a command's streams.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// Run executes cmd (a shell command line) on the host and returns its exit
// status. forwardAgent asks for agent forwarding on the session. A command
// killed by a signal or ended without status returns -1 and an error.
// Cancelling ctx closes the session.
func (c *Client) Run(ctx context.Context, cmd string, io Stdio, forwardAgent bool) (int, error) {
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
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	return exitStatus(s.Run(cmd))
}

func exitStatus(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		if ee.Signal() != "" {
			return -1, fmt.Errorf("remote command killed by signal %s", ee.Signal())
		}
		return ee.ExitStatus(), nil
	}
	return -1, err
}

// AgentSockFromEnv returns SSH_AUTH_SOCK from getenv.
func AgentSockFromEnv(getenv func(string) string) string { return getenv("SSH_AUTH_SOCK") }

// DefaultKnownHostsPath is fleetctl's --known-hosts-file default.
const DefaultKnownHostsPath = "~/.fleetctl/known_hosts"

// ExpandHome replaces a leading "~/" by the user's home directory.
func ExpandHome(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return home + "/" + rest
		}
	}
	return path
}
