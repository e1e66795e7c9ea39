package config

import (
	"strings"
	"testing"
)

func TestSubstitute(t *testing.T) {
	vals := map[string]string{"public_ipv4": "1.2.3.4", "private_ipv4": "10.0.0.1", "public_ipv6": "2001:db8::1"}
	for _, tc := range []struct {
		name, in, want string
		errLines       []int
	}{
		{"plain", "a=$public_ipv4", "a=1.2.3.4", nil},
		{"port", "http://$private_ipv4:2379", "http://10.0.0.1:2379", nil},
		{"back to back (anchor replaced only the first)", "$private_ipv4$private_ipv4", "10.0.0.110.0.0.1", nil},
		{"word boundary (anchor gave 10.0.0.1x)", "$private_ipv4x", "$private_ipv4x", nil},
		{"escaped", `\$private_ipv4`, "$private_ipv4", nil},
		{"double backslash", `\\$private_ipv4`, `\$private_ipv4`, nil},
		{"escaped then real", `\$public_ipv4 $public_ipv4`, "$public_ipv4 1.2.3.4", nil},
		{"ipv6", "[$public_ipv6]", "[2001:db8::1]", nil},
		{"not a variable", "$hostname ${public_ipv4} $ $", "$hostname ${public_ipv4} $ $", nil},
		{"missing", "a\nb=$private_ipv6\nc=$private_ipv6 $private_ipv6\n", "a\nb=\nc= \n", []int{2, 3}},
		{"escaped missing is fine", `\$private_ipv6`, "$private_ipv6", nil},
		{"trailing dollar", "x$", "x$", nil},
		{"utf-8 around", "é$public_ipv4ü", "é1.2.3.4ü", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rep := Substitute(tc.in, vals)
			if got != tc.want {
				t.Errorf("Substitute(%q) = %q, want %q", tc.in, got, tc.want)
			}
			var lines []int
			for _, e := range rep.Entries() {
				if e.Kind != Error || !strings.Contains(e.Message, "$private_ipv6 has no value") {
					t.Errorf("unexpected entry %v", e)
				}
				lines = append(lines, e.Line)
			}
			if len(lines) != len(tc.errLines) {
				t.Fatalf("error lines %v, want %v", lines, tc.errLines)
			}
			for i := range lines {
				if lines[i] != tc.errLines[i] {
					t.Errorf("error lines %v, want %v", lines, tc.errLines)
				}
			}
		})
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format
	}{
		{"", Empty},
		{"#cloud-config", CloudConfig},
		{"#cloud-config\r\nhostname: a", CloudConfig},
		{"#cloud-config \t\nx: 1", CloudConfig},
		{"#cloud-config # comment\n", Unknown},
		{" #cloud-config\n", Unknown},
		{"\ufeff#cloud-config\n", Unknown},
		{"#!/bin/bash\necho", Script},
		{"#!", Script},
		{`{"ignitionVersion": 1}`, Ignition},
		{`{"ignition": {"version": "2.0.0"}}`, Ignition},
		{`{"ignition": {}}`, Unknown},
		{`{"other": 1}`, Unknown},
		{"hostname: a", Unknown},
	} {
		if got := Classify([]byte(tc.in)); got != tc.want {
			t.Errorf("Classify(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestDecodeContent(t *testing.T) {
	for _, tc := range []struct {
		content, enc, want string
		fails              bool
	}{
		{"x", "", "x", false},
		{"aGk=", "b64", "hi", false},
		{"aGk=", "base64", "hi", false},
		{"!!", "base64", "", true},
		{"H4sIAAAAAAAAA8vIBACsKpPYAgAAAA==", "gzip+base64", "hi", false},
		{"H4sIAAAAAAAAA8vIBACsKpPYAgAAAA==", "gz+b64", "hi", false},
		{"aGk=", "gz+base64", "", true},
		{"hi", "gzip", "", true},
		{"hi", "rot13", "", true},
	} {
		got, err := DecodeContent(tc.content, tc.enc)
		if (err != nil) != tc.fails || got != tc.want {
			t.Errorf("DecodeContent(%q, %q) = %q, %v", tc.content, tc.enc, got, err)
		}
	}
}

// TestParseRawScalars checks the anchor's raw-text rule: string fields keep
// what was written, whatever YAML would resolve it to.
func TestParseRawScalars(t *testing.T) {
	cfg, rep := Parse([]byte("#cloud-config\nhostname: 4\ncoreos:\n  update:\n    reboot-strategy: off\n    group: 0x10\nwrite_files:\n  - path: /a\n    permissions: 0644\n"))
	if rep.Len() != 0 {
		t.Fatalf("entries: %v", rep.Entries())
	}
	if cfg.Hostname != "4" || cfg.CoreOS.Update.Get("REBOOT_STRATEGY") != "off" || cfg.CoreOS.Update.Get("GROUP") != "0x10" || cfg.WriteFiles[0].Permissions != "0644" {
		t.Errorf("got %+v", cfg)
	}
}

// TestEnvZeroValues: zero values are not emitted (the anchor could not
// write verbosity: 0 or false booleans); floats print as Go's %v.
func TestEnvZeroValues(t *testing.T) {
	cfg, rep := Parse([]byte("#cloud-config\ncoreos:\n  fleet:\n    verbosity: 0\n    disable_engine: false\n    agent_ttl: 1e21\n    etcd_request_timeout: 10\n    metadata: \"\"\n"))
	if rep.Count(Error) != 0 {
		t.Fatal(rep.Entries())
	}
	got := cfg.CoreOS.Fleet
	want := Env{{"FLEET_AGENT_TTL", "1e+21"}, {"FLEET_ETCD_REQUEST_TIMEOUT", "10"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("fleet env = %v, want %v", got, want)
	}
}
