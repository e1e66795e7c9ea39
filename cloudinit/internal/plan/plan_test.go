package plan

import (
	"io/fs"
	"testing"

	"github.com/corekit/corekit/cloudinit/internal/config"
)

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want fs.FileMode
		fail bool
	}{
		{"", 0o644, false},
		{"0644", 0o644, false},
		{"644", 0o644, false},
		{"420", 0o420, false}, // octal, as the anchor; the validator rejects it first
		{"0600", 0o600, false},
		{"4755", 0o755 | fs.ModeSetuid, false},
		{"1777", 0o777 | fs.ModeSticky, false},
		{"484", 0, true},
		{"0o644", 0, true},
		{"77777", 0, true},
	} {
		got, err := ParseMode(tc.in)
		if (err != nil) != tc.fail || (!tc.fail && got != tc.want) {
			t.Errorf("ParseMode(%q) = %v, %v", tc.in, got, err)
		}
	}
	if s := OctalMode(0o755 | fs.ModeSetuid); s != "4755" {
		t.Errorf("OctalMode = %s", s)
	}
}

func TestServiceDropIn(t *testing.T) {
	got := ServiceDropIn(config.Env{ev("ETCD_NAME", "%H"), ev("FLEET_METADATA", `a="b c"\d`)})
	want := "[Service]\nEnvironment=\"ETCD_NAME=%H\"\nEnvironment=\"FLEET_METADATA=a=\\\"b c\\\"\\\\d\"\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if ServiceDropIn(nil) != "" {
		t.Error("empty env must give no drop-in")
	}
}

// TestOrder: files before units, one daemon-reload after every unit file,
// then commands in user order, then the update units; the script last.
func TestOrder(t *testing.T) {
	cfg := &config.Config{
		Hostname:   "h",
		WriteFiles: []config.File{{Path: "/etc/a"}},
		CoreOS: config.CoreOS{
			Units: []config.Unit{
				{Name: "b.service", Command: "stop", Content: "x"},
				{Name: "a.service", Command: "start", Enable: true},
			},
			Update: config.Env{ev("GROUP", "beta")},
		},
	}
	p, err := Build(Input{Config: cfg, Script: "#!/bin/sh\n", Workspace: "/ws"})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, a := range p.Actions {
		k := string(a.Kind)
		if a.Kind == UnitCommand {
			k += ":" + a.Command + ":" + a.Unit
		}
		if a.Kind != Unmask {
			kinds = append(kinds, k)
		}
	}
	want := []string{"set-hostname", "write-file", "edit-env-file", "write-file", "enable", "daemon-reload",
		"unit-command:stop:b.service", "unit-command:start:a.service", "unit-command:restart:update-engine.service", "run-script"}
	if len(kinds) != len(want) {
		t.Fatalf("got %v\nwant %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("got %v\nwant %v", kinds, want)
		}
	}
}

func ev(name, value string) config.EnvVar { return config.EnvVar{Name: name, Value: value} }
