package raftnode

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// PeerMux shares the peer listeners between raft's transport and an HTTP
// server (etcd's peer endpoints /members and /version). It reads the first
// byte of every accepted connection: raft's NetworkTransport opens each
// connection with an RPC type byte (< 0x20), HTTP starts with a letter.
//
// Raft is a raft.StreamLayer; HTTP is a net.Listener for http.Server.Serve.
type PeerMux struct {
	listeners []net.Listener
	advertise net.Addr
	dialTLS   *tls.Config // nil: raft dials peers in plain TCP
	raftCh    chan net.Conn
	httpCh    chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// peekTimeout bounds how long an accepted connection may stay silent before
// its protocol is known.
const peekTimeout = 10 * time.Second

// NewPeerMux starts accepting on every listener. advertise is the address
// raft tells its peers (host:port of the first advertised peer URL).
// Listeners of https peer URLs are TLS listeners (tls.NewListener): the
// handshake happens before the first byte is peeked, so raft and peer HTTP
// both run inside TLS.
func NewPeerMux(listeners []net.Listener, advertise net.Addr) *PeerMux {
	return NewPeerMuxTLS(listeners, advertise, nil)
}

// NewPeerMuxTLS is NewPeerMux for https peers: raft dials the other members
// with dialTLS (the peer key pair as client certificate, the peer CA as
// roots). A nil dialTLS means plain TCP.
func NewPeerMuxTLS(listeners []net.Listener, advertise net.Addr, dialTLS *tls.Config) *PeerMux {
	m := &PeerMux{
		dialTLS:   dialTLS,
		listeners: listeners,
		advertise: advertise,
		raftCh:    make(chan net.Conn),
		httpCh:    make(chan net.Conn),
		done:      make(chan struct{}),
	}
	for _, l := range listeners {
		m.wg.Add(1)
		go m.acceptLoop(l)
	}
	return m
}

func (m *PeerMux) acceptLoop(l net.Listener) {
	defer m.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		go m.route(c)
	}
}

func (m *PeerMux) route(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(peekTimeout))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	ch := m.httpCh
	if first[0] < 0x20 {
		ch = m.raftCh
	}
	select {
	case ch <- pc:
	case <-m.done:
		c.Close()
	}
}

// Close closes every listener; the Raft and HTTP listeners then fail Accept.
func (m *PeerMux) Close() error {
	m.closeOnce.Do(func() {
		close(m.done)
		for _, l := range m.listeners {
			l.Close()
		}
	})
	m.wg.Wait()
	return nil
}

// Raft returns the stream layer for raft.NetworkTransport.
func (m *PeerMux) Raft() raft.StreamLayer {
	return &muxListener{m: m, ch: m.raftCh, closed: make(chan struct{})}
}

// HTTP returns the listener for the peer HTTP server.
func (m *PeerMux) HTTP() net.Listener {
	return &muxListener{m: m, ch: m.httpCh, closed: make(chan struct{})}
}

type muxListener struct {
	m         *PeerMux
	ch        chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.m.done:
		return nil, net.ErrClosed
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops this side's Accept; PeerMux.Close closes the real listeners.
func (l *muxListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *muxListener) Addr() net.Addr { return l.m.advertise }

func (l *muxListener) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if l.m.dialTLS != nil {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: l.m.dialTLS}
		return d.Dial("tcp", string(addr))
	}
	return net.DialTimeout("tcp", string(addr), timeout)
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// tcpAddr is a net.Addr for an advertised host:port that may be a name.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

// AdvertiseAddr returns a net.Addr for host:port (which may be a host name).
func AdvertiseAddr(hostport string) net.Addr { return tcpAddr(hostport) }
