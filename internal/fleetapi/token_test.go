package fleetapi

import (
	"strings"
	"testing"
)

func TestPageToken(t *testing.T) {
	tok := PageToken{Limit: 100, Page: 2}
	if tok.Encode() != "ZAACAA==" {
		t.Fatalf("encode = %s", tok.Encode())
	}
	got, err := DecodePageToken("ZAACAA==", 100)
	if err != nil || got != tok {
		t.Fatalf("decode = %+v %v", got, err)
	}
	for s, want := range map[string]string{
		"ZAACAA==":                "token limit must be 50",
		PageToken{50, 0}.Encode(): "token page must be greater than zero",
		"ZAACAAAA":                "too many values for page token",
		"!!!":                     "illegal base64",
	} {
		if _, err := DecodePageToken(s, 50); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodePageToken(%q) = %v, want %q", s, err, want)
		}
	}
}

func TestNewClientEndpoints(t *testing.T) {
	if _, err := NewClient("unix://var/run/x", nil); err == nil || err.Error() != `unable to connect to host "var" with scheme "unix"` {
		t.Errorf("unix with host: %v", err)
	}
	if _, err := NewClient("/var/run/x", nil); err == nil || err.Error() != "URL scheme undefined" {
		t.Errorf("no scheme: %v", err)
	}
	for _, ep := range []string{DefaultEndpoint, "http://127.0.0.1:1234", "file:///tmp/s"} {
		if _, err := NewClient(ep, nil); err != nil {
			t.Errorf("%s: %v", ep, err)
		}
	}
}
