// Package sshtest runs an SSH server and an ssh-agent in process, on
// loopback and a temporary unix socket, for fleetctl's tests. The server
// does not run a shell: an "exec" request answers "ran: <command>" on stdout
// and exits with the number after "exit " in the command (0 otherwise);
// "shell" answers "shell" and exits 0. It serves direct-tcpip (tunnels) and
// agent forwarding (a command containing "agent-keys" lists the forwarded
// agent's keys). Test-only: it is not a real sshd.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Server is a running test SSH server.
type Server struct {
	Addr    string // 127.0.0.1:port
	Port    int
	HostKey ssh.PublicKey
	// User is the last authenticated user name.
	mu       sync.Mutex
	user     string
	commands []string
}

// NewKey returns a fresh ed25519 signer.
func NewKey(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// StartAgent serves an ssh-agent holding a new key on a unix socket in a
// temporary directory and returns the socket path and the key.
func StartAgent(t testing.TB) (string, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); _ = agent.ServeAgent(kr, c) }()
		}
	}()
	signers, _ := kr.Signers()
	return sock, signers[0].PublicKey()
}

// Start runs a server on 127.0.0.1 that accepts clientKey (any user) and
// presents hostKey (nil = a new one).
func Start(t testing.TB, clientKey ssh.PublicKey, hostKey ssh.Signer) *Server {
	t.Helper()
	if hostKey == nil {
		hostKey = NewKey(t)
	}
	s := &Server{HostKey: hostKey.PublicKey()}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) != string(clientKey.Marshal()) {
			return nil, fmt.Errorf("unknown key")
		}
		s.mu.Lock()
		s.user = c.User()
		s.mu.Unlock()
		return nil, nil
	}}
	cfg.AddHostKey(hostKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	s.Port = l.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	var cmu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			cmu.Lock()
			conns = append(conns, c)
			cmu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); s.serve(c, cfg) }()
		}
	}()
	return s
}

// User is the user name of the last authenticated connection.
func (s *Server) User() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

// Commands are the exec commands received so far.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func (s *Server) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.session(sc, ch, creqs) }()
		case "direct-tcpip":
			var p struct {
				Host     string
				Port     uint32
				OrigHost string
				OrigPort uint32
			}
			if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
				nc.Reject(ssh.ConnectionFailed, "bad payload")
				continue
			}
			up, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
			if err != nil {
				nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			ch, creqs, err := nc.Accept()
			if err != nil {
				up.Close()
				continue
			}
			go ssh.DiscardRequests(creqs)
			wg.Add(1)
			go func() {
				defer wg.Done()
				go func() { io.Copy(up, ch); up.(*net.TCPConn).CloseWrite() }()
				io.Copy(ch, up)
				ch.Close()
				up.Close()
			}()
		default:
			nc.Reject(ssh.UnknownChannelType, "unsupported")
		}
	}
}

var exitRE = regexp.MustCompile(`exit (\d+)`)

func (s *Server) session(sc *ssh.ServerConn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	agentFwd := false
	for r := range reqs {
		switch r.Type {
		case "auth-agent-req@openssh.com":
			agentFwd = true
			r.Reply(true, nil)
		case "pty-req", "env", "window-change":
			r.Reply(true, nil)
		case "shell":
			r.Reply(true, nil)
			io.WriteString(ch, "shell\n")
			sendStatus(ch, 0)
			return
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(r.Payload, &p); err != nil {
				r.Reply(false, nil)
				continue
			}
			r.Reply(true, nil)
			s.mu.Lock()
			s.commands = append(s.commands, p.Command)
			s.mu.Unlock()
			fmt.Fprintf(ch, "ran: %s\n", p.Command)
			if strings.Contains(p.Command, "agent-keys") {
				fmt.Fprintf(ch, "forwarded agent keys: %d\n", forwardedKeys(sc, agentFwd))
			}
			code := 0
			if m := exitRE.FindStringSubmatch(p.Command); m != nil {
				code, _ = strconv.Atoi(m[1])
			}
			sendStatus(ch, code)
			return
		default:
			r.Reply(false, nil)
		}
	}
}

// forwardedKeys lists the keys of the client's agent through an
// auth-agent@openssh.com channel (-1 when not forwarded or failing).
func forwardedKeys(sc *ssh.ServerConn, requested bool) int {
	if !requested {
		return -1
	}
	ch, reqs, err := sc.OpenChannel("auth-agent@openssh.com", nil)
	if err != nil {
		return -1
	}
	go ssh.DiscardRequests(reqs)
	defer ch.Close()
	keys, err := agent.NewClient(ch).List()
	if err != nil {
		return -1
	}
	return len(keys)
}

func sendStatus(ch ssh.Channel, code int) {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(code))
	ch.SendRequest("exit-status", false, b)
}
