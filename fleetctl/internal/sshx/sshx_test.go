package sshx_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/corekit/corekit/fleetctl/internal/sshx"
	"github.com/corekit/corekit/fleetctl/internal/sshx/sshtest"
)

type fixture struct {
	srv   *sshtest.Server
	agent string
	hosts string
}

func setup(t *testing.T) *fixture {
	sock, key := sshtest.StartAgent(t)
	return &fixture{srv: sshtest.Start(t, key, nil), agent: sock, hosts: filepath.Join(t.TempDir(), "fleetctl", "known_hosts")}
}

func (fx *fixture) dial(t *testing.T, answer string, strict bool) (*sshx.Client, string, error) {
	t.Helper()
	var prompt bytes.Buffer
	kh := &sshx.KnownHosts{File: fx.hosts, Strict: strict, Prompt: &prompt, Answer: strings.NewReader(answer)}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := sshx.Dial(ctx, sshx.Config{User: "core", Addr: fx.srv.Addr, AgentSock: fx.agent, HostKey: kh.Callback(), Timeout: 5 * time.Second})
	return c, prompt.String(), err
}

func run(t *testing.T, c *sshx.Client, cmd string, fwd bool) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code, err := c.Run(t.Context(), cmd, sshx.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, fwd)
	if err != nil {
		t.Fatalf("run %q: %v", cmd, err)
	}
	return out.String(), code
}

func TestTrustOnFirstUse(t *testing.T) {
	fx := setup(t)
	c, prompt, err := fx.dial(t, "yes\n", true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := "[127.0.0.1]:" + strings.TrimPrefix(fx.srv.Addr, "127.0.0.1:")
	fp := ssh.FingerprintLegacyMD5(fx.srv.HostKey)
	want := "The authenticity of host '" + addr + "' can't be established.\n" +
		"ssh-ed25519 key fingerprint is " + fp + ".\n" +
		"Are you sure you want to continue connecting (yes/no)? " +
		"Warning: Permanently added '" + addr + "' (ssh-ed25519) to the list of known hosts.\n"
	if prompt != want {
		t.Errorf("prompt:\n%q\nwant\n%q", prompt, want)
	}
	b, err := os.ReadFile(fx.hosts)
	if err != nil {
		t.Fatal(err)
	}
	if line := strings.TrimSpace(string(b)); !strings.HasPrefix(line, addr+" ssh-ed25519 ") {
		t.Errorf("known_hosts = %q", line)
	}
	if u := fx.srv.User(); u != "core" {
		t.Errorf("user = %q", u)
	}
	out, code := run(t, c, `systemctl "status" "-l" "hello.service"`, false)
	if out != "ran: systemctl \"status\" \"-l\" \"hello.service\"\n" || code != 0 {
		t.Errorf("out %q code %d", out, code)
	}
	out, code = run(t, c, "false; exit 3", false)
	if code != 3 {
		t.Errorf("exit status %d, want 3 (%q)", code, out)
	}

	// known now: no prompt the second time
	c2, prompt, err := fx.dial(t, "", true)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	if prompt != "" {
		t.Errorf("second connection prompted: %q", prompt)
	}
}

func TestUntrustedHostRejected(t *testing.T) {
	fx := setup(t)
	_, prompt, err := fx.dial(t, "no\n", true)
	if !errors.Is(err, sshx.ErrHostKeyRejected) {
		t.Fatalf("err = %v, want ErrHostKeyRejected", err)
	}
	if !strings.HasSuffix(prompt, "(yes/no)? Host key verification failed.\n") {
		t.Errorf("prompt %q", prompt)
	}
	if b, _ := os.ReadFile(fx.hosts); len(b) != 0 {
		t.Errorf("known_hosts written: %q", b)
	}
}

func TestHostKeyMismatch(t *testing.T) {
	fx := setup(t)
	other := sshtest.NewKey(t).PublicKey()
	addr := "[127.0.0.1]:" + strings.TrimPrefix(fx.srv.Addr, "127.0.0.1:")
	if err := os.MkdirAll(filepath.Dir(fx.hosts), 0o700); err != nil {
		t.Fatal(err)
	}
	line := addr + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other))) + "\n"
	if err := os.WriteFile(fx.hosts, []byte("# comment\n"+line), 0o600); err != nil {
		t.Fatal(err)
	}
	_, prompt, err := fx.dial(t, "yes\n", true)
	if !errors.Is(err, sshx.ErrHostKeyMismatch) {
		t.Fatalf("err = %v, want ErrHostKeyMismatch", err)
	}
	for _, want := range []string{
		"@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n",
		"The fingerprint for the ssh-ed25519 key sent by the remote host is\n" + ssh.FingerprintLegacyMD5(fx.srv.HostKey) + ".\n",
		"Offending key in " + fx.hosts + ":2\n",
	} {
		if !strings.Contains(prompt, want) {
			t.Errorf("banner lacks %q:\n%s", want, prompt)
		}
	}
	if strings.Contains(prompt, "continue connecting") {
		t.Error("a changed key must not be offered for trust")
	}
	// the file is untouched
	if b, _ := os.ReadFile(fx.hosts); string(b) != "# comment\n"+line {
		t.Errorf("known_hosts changed: %q", b)
	}
}

func TestNoStrictChecking(t *testing.T) {
	fx := setup(t)
	c, prompt, err := fx.dial(t, "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if prompt != "" {
		t.Errorf("prompted: %q", prompt)
	}
	if _, err := os.Stat(fx.hosts); !os.IsNotExist(err) {
		t.Errorf("known_hosts created without strict checking (%v)", err)
	}
}

func TestAgentForwardingAndShell(t *testing.T) {
	fx := setup(t)
	c, _, err := fx.dial(t, "y\n", true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if out, _ := run(t, c, "agent-keys", false); !strings.Contains(out, "forwarded agent keys: -1") {
		t.Errorf("without -A: %q", out)
	}
	if err := c.ForwardAgent(); err != nil {
		t.Fatal(err)
	}
	if out, _ := run(t, c, "agent-keys", true); !strings.Contains(out, "forwarded agent keys: 1") {
		t.Errorf("with -A: %q", out)
	}
	var out, errb bytes.Buffer // separate: Session copies stdout and stderr concurrently
	code, err := c.Shell(t.Context(), nil, sshx.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, false)
	if err != nil || code != 0 || out.String() != "shell\n" {
		t.Errorf("shell: %q %d %v", out.String(), code, err)
	}
}

func TestTunnel(t *testing.T) {
	fx := setup(t)
	var prompt bytes.Buffer
	kh := &sshx.KnownHosts{File: fx.hosts, Strict: true, Prompt: &prompt, Answer: strings.NewReader("yes\n")}
	// jump through the server to itself
	c, err := sshx.Dial(t.Context(), sshx.Config{User: "core", Addr: fx.srv.Addr, Tunnel: fx.srv.Addr, AgentSock: fx.agent, HostKey: kh.Callback()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if out, code := run(t, c, "echo through; exit 7", false); code != 7 || !strings.HasPrefix(out, "ran: echo through") {
		t.Errorf("tunnelled run: %q %d", out, code)
	}
	// one prompt for the jump host; the target has the same address
	if n := strings.Count(prompt.String(), "can't be established"); n != 1 {
		t.Errorf("%d prompts:\n%s", n, prompt.String())
	}
}

func TestNoAgent(t *testing.T) {
	_, err := sshx.Dial(t.Context(), sshx.Config{Addr: "127.0.0.1:1", HostKey: ssh.InsecureIgnoreHostKey()})
	if !errors.Is(err, sshx.ErrNoAgent) {
		t.Fatalf("err = %v", err)
	}
}

func TestWithDefaultPort(t *testing.T) {
	for in, want := range map[string]string{"10.0.0.1": "10.0.0.1:22", "10.0.0.1:2222": "10.0.0.1:2222", "::1": "[::1]:22", "[::1]:23": "[::1]:23"} {
		if got := sshx.WithDefaultPort(in); got != want {
			t.Errorf("WithDefaultPort(%q) = %q, want %q", in, got, want)
		}
	}
}
