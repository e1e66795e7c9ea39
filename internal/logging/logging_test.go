package logging

import (
	"bytes"
	"log/slog"
	"regexp"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestCapnslogFormat(t *testing.T) {
	var buf bytes.Buffer
	l := NewCapnslog(&buf, slog.LevelInfo).With("pkg", "etcdmain")
	l.Info("listening for peers on http://localhost:2380", "n", 1, "s", "a b")
	l.Debug("hidden")
	l.Error(`error verifying flags, 'x' is not a valid flag`)
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} I \| etcdmain: listening for peers on http://localhost:2380 n=1 s="a b"\n` +
		`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} E \| etcdmain: error verifying flags, 'x' is not a valid flag\n$`)
	if !re.MatchString(buf.String()) {
		t.Errorf("output:\n%s", buf.String())
	}
}

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	h := HCLog(NewCapnslog(&buf, slog.LevelDebug), "raft", hclog.Info)
	h.Debug("below min level")
	h.Named("snap").Warn("careful", "index", 7)
	if got := buf.String(); !regexp.MustCompile(`W \| careful component=raft.snap index=7\n$`).MatchString(got) {
		t.Errorf("output: %q", got)
	}
	if h.IsDebug() || !h.IsInfo() {
		t.Error("level checks wrong")
	}
}
