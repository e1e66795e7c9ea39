package torture

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
)

var (
	flagDuration = flag.Duration("torture.duration", 10*time.Second, "length of each torture run")
	flagRuns     = flag.Int("torture.runs", 1, "runs per implementation (each with its own seed)")
	flagMembers  = flag.String("torture.members", "3", "cluster sizes, comma-separated; runs cycle through them (e.g. 3,5)")
	flagImpl     = flag.String("torture.impl", "both", "implementation: ours, reference or both")
	flagSeed     = flag.Int64("torture.seed", 0, "seed of the first run (0: from the clock); run i uses seed+i")
	flagFaults   = flag.String("torture.faults", "", "comma-separated fault kinds, or every for all of them (default: "+strings.Join(AllFaults, ",")+"; also "+strings.Join(append(append(append([]string(nil), ClockFaults...), DiskFaults...), SyncFaults...), ",")+")")
	flagResults  = flag.String("torture.results", "", "directory for failed runs' evidence (default $TMPDIR/corekit-torture)")
	flagKeep     = flag.Bool("torture.keep", false, "keep the evidence of passing runs too")
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: torture tests need root (network namespaces, blackhole routes); run as root or in CI")
	}
	if _, err := os.Stat("/usr/sbin/ip"); err != nil {
		if _, err := os.Stat("/sbin/ip"); err != nil {
			t.Skip("SKIP: iproute2 (ip) not installed")
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
				return slog.Attr{}
			}
			return a
		}}))
}

func binaryFor(t *testing.T, impl Impl) string {
	t.Helper()
	if impl == Reference {
		if !etcdtest.HaveReference() {
			t.Skipf("SKIP: %s not installed (apt-get install etcd-server); .ci/run installs it", ReferenceBinary)
		}
		return ReferenceBinary
	}
	return etcdtest.OurBinary(t)
}

// TestTorture runs the workload and the nemesis against a cluster of each
// implementation and fails on any anomaly. Defaults keep it short enough for
// the normal test suite; `make torture` passes longer durations and runs.
func TestTorture(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: torture runs take a minute; not in -short")
	}
	requireRoot(t)
	impls := []Impl{Reference, Ours}
	switch *flagImpl {
	case "both":
	case "ours":
		impls = []Impl{Ours}
	case "reference":
		impls = []Impl{Reference}
	default:
		t.Fatalf("-torture.impl=%q: want ours, reference or both", *flagImpl)
	}
	var faults []string
	switch *flagFaults {
	case "":
	case "every":
		faults = KnownFaults
	default:
		faults = strings.Split(*flagFaults, ",")
	}
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000
	}
	var sizes []int
	for _, f := range strings.Split(*flagMembers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 3 {
			t.Fatalf("-torture.members=%q: want sizes ≥ 3 such as 3 or 3,5", *flagMembers)
		}
		sizes = append(sizes, n)
	}
	for _, impl := range impls {
		t.Run(string(impl), func(t *testing.T) {
			if use, skipped := FaultsFor(impl, faults); faults != nil && len(use) == 0 {
				t.Skipf("SKIP: %s cannot inject %s (no clock hook)", impl, strings.Join(skipped, ","))
			}
			bin := binaryFor(t, impl)
			syncFail := ""
			if hasAny(faults, SyncFaults) {
				syncFail = syncFailBinary(t)
			}
			var results []*Result
			for i := 0; i < *flagRuns; i++ {
				s := seed + int64(i)
				n := sizes[i%len(sizes)]
				cfg := Config{Impl: impl, Binary: bin, SyncFail: syncFail, Members: n, Duration: *flagDuration,
					Seed: s, Faults: faults, ResultsDir: *flagResults, KeepResults: *flagKeep,
					Run: i, OnCleanup: t.Cleanup, Logger: testLogger(t)}
				res, err := Run(context.Background(), cfg)
				if err != nil {
					t.Fatalf("run %d (seed %d): %v", i, s, err)
				}
				results = append(results, res)
				fmt.Fprintln(os.Stderr, "torture:", res.Summary())
				appendSummary(t, res)
				if res.Failed() {
					t.Errorf("run %d (seed %d) found anomalies:\n  %s\nevidence: %s\nreplay: %s", i, s,
						strings.Join(res.Anomalies, "\n  "), res.ResultsPath, replayCommand(impl, n, s))
				}
			}
			table := Table(results)
			t.Logf("%s: %d runs\n%s", impl, len(results), table)
			fmt.Fprintln(os.Stderr, table)
		})
	}
}

func replayCommand(impl Impl, members int, seed int64) string {
	return fmt.Sprintf("go test ./etcd/torture -run 'TestTorture/^%s$' -v -count=1 -timeout 0 -torture.impl=%s -torture.members=%d -torture.duration=%s -torture.seed=%d",
		impl, impl, members, *flagDuration, seed) + faultsArg()
}

// appendSummary adds the run's result as one JSON line to
// <results>/summary.jsonl, the raw material of docs/reliability.md.
func appendSummary(t *testing.T, res *Result) {
	dir := *flagResults
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "corekit-torture")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("summary: %v", err)
		return
	}
	f, err := os.OpenFile(filepath.Join(dir, "summary.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Logf("summary: %v", err)
		return
	}
	defer f.Close()
	b, _ := json.Marshal(res)
	f.Write(append(b, '\n'))
}

func faultsArg() string {
	if *flagFaults == "" {
		return ""
	}
	return " -torture.faults=" + *flagFaults
}

// syncFailBinary builds the syncfail wrapper (fsync-eio faults).
func syncFailBinary(t *testing.T) string {
	t.Helper()
	b, err := buildbin.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Cleanup)
	p, err := b.Build(context.Background(), "etcd/torture/syncfail", "syncfail")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
