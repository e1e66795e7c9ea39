package command

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

func testFactory() *Factory {
	var out, errb bytes.Buffer
	return &Factory{IO: &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errb}, Global: &GlobalOptions{},
		Getenv: func(string) string { return "" }, Now: time.Now, Poll: time.Millisecond, Attempt: 10 * time.Millisecond}
}

// parse runs cmd's flag parsing and RunE with args; runF captured the options.
func parse(t *testing.T, cmd *cobra.Command, args string) {
	t.Helper()
	cmd.SetArgs(strings.Fields(args))
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("%s: %v", args, err)
	}
}

// TestNewCommands checks that each verb's flags, in every accepted
// spelling, land in its Options, without running anything.
func TestNewCommands(t *testing.T) {
	f := testFactory()
	for _, tc := range []struct{ args string }{{"-l --no-legend --fields=unit"}, {"--l --no-legend --fields=unit"}, {"--full --no-legend --fields=unit"}} {
		var got *ListOptions
		parse(t, NewListUnitsCommand(f, func(_ context.Context, o *ListOptions) error { got = o; return nil }), tc.args)
		if !got.Full || !got.NoLegend || got.Fields != "unit" {
			t.Errorf("list-units %s: %+v", tc.args, got)
		}
	}
	for _, args := range []string{"-f -n 3 x", "--f --lines=3 x", "--follow -n=3 x"} {
		var got *JournalOptions
		parse(t, NewJournalCommand(f, func(_ context.Context, o *JournalOptions) error { got = o; return nil }), args)
		if !got.Follow || got.Lines != 3 || got.Output != "short" || got.SSHPort != 22 || len(got.Units) != 1 {
			t.Errorf("journal %s: %+v", args, got)
		}
	}
	for _, args := range []string{"-A m1 -- ls -l", "--A m1 -- ls -l", "--forward-agent m1 -- ls -l"} {
		var got *SSHOptions
		parse(t, NewSSHCommand(f, func(_ context.Context, o *SSHOptions) error { got = o; return nil }), args)
		if !got.ForwardAgent || strings.Join(got.Args, " ") != "m1 ls -l" && strings.Join(got.Args, " ") != "m1 -- ls -l" {
			t.Errorf("ssh %s: %+v", args, got)
		}
	}
	// flags after the machine belong to the remote command
	var sshOpts *SSHOptions
	parse(t, NewSSHCommand(f, func(_ context.Context, o *SSHOptions) error { sshOpts = o; return nil }), "m1 ls -l")
	if sshOpts.ForwardAgent || strings.Join(sshOpts.Args, " ") != "m1 ls -l" {
		t.Errorf("ssh m1 ls -l: %+v", sshOpts)
	}
	var start *StartOptions
	parse(t, NewStartCommand(f, func(_ context.Context, o *StartOptions) error { start = o; return nil }), "--no-block --block-attempts=4 --replace --sign a b")
	if !start.Block.NoBlock || start.Block.BlockAttempts != 4 || !start.Replace || len(start.Units) != 2 {
		t.Errorf("start: %+v", start)
	}
	if a := start.Block.attempts(); a != -1 {
		t.Errorf("--no-block attempts = %d", a)
	}
	if a := (BlockOptions{BlockAttempts: 4}).attempts(); a != 4 {
		t.Errorf("attempts = %d", a)
	}
	if a := (BlockOptions{}).attempts(); a != 0 {
		t.Errorf("default attempts = %d (0 = forever)", a)
	}
}

func TestNameMangling(t *testing.T) {
	for in, want := range map[string]string{
		"hello":                "hello.service",
		"hello.service":        "hello.service",
		"dir/sub/hello.socket": "hello.socket",
		"foo.target":           "foo.target.service", // fleet's agent does not run targets
		"app@1":                "app@1.service",
	} {
		if got := unitName(maybeAppendDefaultUnitType(in)); got != want {
			t.Errorf("unitName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuoteArgs(t *testing.T) {
	got := quoteArgs([]string{"journalctl", "--unit", "a b.service", `x"y`})
	if want := `journalctl "--unit" "a b.service" "x\"y"`; got != want {
		t.Errorf("got %s want %s", got, want)
	}
	if withSSHPort("10.0.0.1", 22) != "10.0.0.1" || withSSHPort("10.0.0.1", 2222) != "10.0.0.1:2222" {
		t.Error("withSSHPort")
	}
}

func TestDriverName(t *testing.T) {
	f := testFactory()
	for in, want := range map[string]string{"API": DriverAPI, "api": DriverAPI, "Etcd": DriverEtcd, "etcd": DriverEtcd} {
		f.Global.Driver = in
		if got, err := f.DriverName(); err != nil || got != want {
			t.Errorf("%s: %s %v", in, got, err)
		}
	}
	f.Global.Driver = "x"
	if _, err := f.DriverName(); err == nil || err.Error() != `unrecognized driver "x"` {
		t.Errorf("x: %v", err)
	}
	f.Global.Tunnel = "host"
	if f.TunnelAddr() != "host:22" {
		t.Error(f.TunnelAddr())
	}
}

// TestFDForward proxies stdin to a unix socket and the answer to stdout.
func TestFDForward(t *testing.T) {
	sock := t.TempDir() + "/s.sock"
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		c.Write(bytes.ToUpper(b))
	}()
	var out bytes.Buffer
	if err := fdForward(t.Context(), sock, strings.NewReader("get /fleet/v1\n"), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "GET /FLEET/V1\n" {
		t.Errorf("got %q", out.String())
	}
	if err := fdForward(t.Context(), sock+".missing", strings.NewReader(""), &out); err == nil {
		t.Error("missing socket: no error")
	}
}
