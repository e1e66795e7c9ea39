package etcdctlmain

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from this run")

// clearEnv keeps the host's ETCDCTL_* variables out of the test.
func clearEnv(t *testing.T) {
	for _, k := range []string{"ETCDCTL_ENDPOINTS", "ETCDCTL_ENDPOINT", "ETCDCTL_PEERS", "ETCDCTL_CA_FILE",
		"ETCDCTL_CERT_FILE", "ETCDCTL_KEY_FILE", "ETCDCTL_USERNAME", "ETCDCTL_DISCOVERY_SRV"} {
		t.Setenv(k, "")
	}
}

// servers runs f against our etcd and the reference, like etcdtest.ForEach,
// but skips ours loudly while etcd/main.go is still being written.
func servers(t *testing.T, f func(t *testing.T, s *etcdtest.Server)) {
	for _, k := range []etcdtest.Kind{etcdtest.Ours, etcdtest.Reference} {
		t.Run(string(k), func(t *testing.T) {
			if k == etcdtest.Ours {
				root, err := buildbin.ModuleRoot()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(root, "etcd", "main.go")); err != nil {
					t.Skip("SKIP: etcd/main.go does not exist yet; only the reference server can be tested")
				}
			}
			clearEnv(t)
			f(t, etcdtest.Start(t, k))
		})
	}
}

// result is one etcdctl run.
type result struct {
	stdout, stderr string
	code           int
}

func run(ctx context.Context, stdin string, args ...string) result {
	var out, errb bytes.Buffer
	code := Run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return result{out.String(), errb.String(), code}
}

// step is one command of a golden script. Args exclude the endpoint flags,
// which the harness adds.
type step struct {
	args  string // split on spaces; use \x00 for a space inside an argument
	stdin string
}

// normalizer rewrites run-specific values (ports, member ID, indexes relative
// to the server's starting index, expiration times) into stable tokens.
type normalizer struct {
	s    *etcdtest.Server
	base uint64
	id   string
}

var (
	reExpiration = regexp.MustCompile(`"expiration":"[^"]*"`)
	reIndexLine  = regexp.MustCompile(`(?m)^((?:Created-|Modified-)?Index: )(\d+)$`)
	reJSONIndex  = regexp.MustCompile(`"(createdIndex|modifiedIndex)":(\d+)`)
	reErrIndex   = regexp.MustCompile(`\) \[(\d+)\]`)
	reInOrder    = regexp.MustCompile(`/(\d{20})\b`)
	reCompare    = regexp.MustCompile(`\[(\d+) != (\d+)\]`)
)

func (n *normalizer) index(s string) string {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v < n.base {
		return s
	}
	return fmt.Sprintf("<i%+d>", int64(v-n.base))
}

func (n *normalizer) apply(s string) string {
	s = strings.ReplaceAll(s, n.s.ClientURL, "<client>")
	s = strings.ReplaceAll(s, n.s.PeerURL, "<peer>")
	if n.id != "" {
		s = strings.ReplaceAll(s, n.id, "<id>")
	}
	s = reExpiration.ReplaceAllString(s, `"expiration":"<time>"`)
	s = reIndexLine.ReplaceAllStringFunc(s, func(m string) string {
		p := reIndexLine.FindStringSubmatch(m)
		return p[1] + n.index(p[2])
	})
	s = reJSONIndex.ReplaceAllStringFunc(s, func(m string) string {
		p := reJSONIndex.FindStringSubmatch(m)
		return fmt.Sprintf(`"%s":%s`, p[1], n.index(p[2]))
	})
	s = reErrIndex.ReplaceAllStringFunc(s, func(m string) string {
		p := reErrIndex.FindStringSubmatch(m)
		return ") [" + n.index(p[1]) + "]"
	})
	s = reCompare.ReplaceAllStringFunc(s, func(m string) string {
		p := reCompare.FindStringSubmatch(m)
		return "[" + p[1] + " != " + n.index(p[2]) + "]"
	})
	s = reInOrder.ReplaceAllStringFunc(s, func(m string) string {
		return "/<inorder " + n.index(strings.TrimLeft(m[1:], "0")) + ">"
	})
	return s
}

// newNormalizer reads the server's current index and member ID.
func newNormalizer(t *testing.T, s *etcdtest.Server) *normalizer {
	t.Helper()
	resp, err := http.Get(s.ClientURL + "/v2/keys/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	base, _ := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	n := &normalizer{s: s, base: base}
	r := run(t.Context(), "", "--endpoints", s.ClientURL, "member", "list")
	if i := strings.Index(r.stdout, ":"); i > 0 {
		n.id = r.stdout[:i]
	}
	return n
}

// runScript runs steps with our etcdctl against s and compares the
// transcript with testdata/<name>.golden (or rewrites it with -update).
func runScript(t *testing.T, s *etcdtest.Server, name string, steps []step) {
	t.Helper()
	compareGolden(t, name, transcript(t, s, steps, run))
}

// runner runs one etcdctl invocation.
type runner func(ctx context.Context, stdin string, args ...string) result

// transcript runs steps with r against s and returns the normalised record.
func transcript(t *testing.T, s *etcdtest.Server, steps []step, r runner) string {
	t.Helper()
	n := newNormalizer(t, s)
	var b strings.Builder
	for _, st := range steps {
		args := strings.Fields(st.args)
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], "\x00", " ")
		}
		full := append([]string{"--endpoints", s.ClientURL}, args...)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		res := r(ctx, st.stdin, full...)
		cancel()
		fmt.Fprintf(&b, "$ etcdctl %s\n", st.args)
		if st.stdin != "" {
			fmt.Fprintf(&b, "--- stdin\n%s", st.stdin)
		}
		fmt.Fprintf(&b, "--- stdout\n%s--- stderr\n%s--- exit %d\n\n", n.apply(res.stdout), n.apply(res.stderr), res.code)
	}
	return b.String()
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("..", "testdata", name+".golden")
	if *update && strings.Contains(t.Name(), string(etcdtest.Reference)) {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update against the reference server to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from golden file %s:\n%s", t.Name(), path, lineDiff(string(want), got))
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, a, c)
		}
	}
	return b.String()
}

// syncBuffer is a bytes.Buffer safe for a concurrent reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
