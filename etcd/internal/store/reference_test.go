package store

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/v2api"
)

// TestScenariosAgainstReference replays the scenario scripts against
// Debian's etcd 3.4 (--enable-v2) over HTTP and against this store, and
// requires the same events and errors (ttl and expiration are left out: the
// two clocks differ). Before each script our store is brought to the
// reference's index with writes to a hidden key, so indexes, in-order names
// and compare causes match literally. A script is compared up to its first
// command that cannot be replayed over HTTP (expiry, clock moves, repeats,
// dot paths); watch-only commands are skipped.
func TestScenariosAgainstReference(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED: -short: reference comparison starts a real etcd")
	}
	if !etcdtest.HaveReference() {
		t.Skipf("SKIPPED LOUDLY: reference etcd %s not installed (apt-get install etcd-server)", etcdtest.ReferenceBinary)
	}
	ref := etcdtest.Start(t, etcdtest.Reference)
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	total := 0
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			total += compareScenario(t, client, ref.ClientURL+"/v2/keys", f)
		})
	}
	if total < 80 {
		t.Fatalf("only %d commands compared; the comparison lost its teeth", total)
	}
	t.Logf("%d commands compared with etcd 3.4", total)
}

func compareScenario(t *testing.T, client *http.Client, base, file string) int {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blocks, _ := parseScenario(t, string(data))

	// Empty the reference, then align our index with it.
	root := refDo(t, client, "GET", base+"/", nil)
	var listing v2api.Event
	if err := json.Unmarshal(root.body, &listing); err == nil && listing.Node != nil {
		for _, n := range listing.Node.Nodes {
			refDo(t, client, "DELETE", base+n.Key+"?recursive=true", nil)
		}
	}
	start := refDo(t, client, "GET", base+"/", nil).index
	r := &runner{t: t, now: scenarioEpoch, watchers: map[string]*Watcher{}}
	r.s = New(func() time.Time { return r.now })
	for r.s.Index() < start {
		if _, err := r.s.Set("/_align", false, "", Expiry{}); err != nil {
			t.Fatal(err)
		}
	}

	compared := 0
	for _, b := range blocks {
		toks, err := tokenize(b.cmd)
		if err != nil {
			t.Fatal(err)
		}
		cmdLine, times := b.cmd, 1
		if toks[0] == "repeat" && len(toks) > 2 {
			if n, err := strconv.Atoi(toks[1]); err == nil && n <= 1000 {
				times = n
				toks = toks[2:]
				_, cmdLine, _ = strings.Cut(b.cmd, " ")
				_, cmdLine, _ = strings.Cut(cmdLine, " ")
			}
		}
		a := parseArgs(toks[1:])
		method, target, form, ok := httpRequest(toks[0], a, base)
		switch {
		case toks[0] == "index":
			got := r.s.Index()
			if want := refDo(t, client, "GET", base+"/", nil).index; got != want {
				t.Fatalf("line %d: index %d, reference %d", b.line, got, want)
			}
			continue
		case !ok && readOnlyCommand(toks[0]):
			continue
		case !ok:
			t.Logf("compared %d commands, stopping at line %d: %s", compared, b.line, b.cmd)
			return compared
		}
		for range times {
			ours := r.run(t, cmdLine)
			res := refDo(t, client, method, target, form)
			if got, want := normalize(t, ours), normalize(t, string(res.body)); got != want {
				t.Fatalf("%s:%d: %s\nours:      %s\nreference: %s", file, b.line, b.cmd, got, want)
			}
			compared++
		}
	}
	return compared
}

// readOnlyCommand: scenario commands that change no key and no index.
func readOnlyCommand(cmd string) bool {
	switch cmd {
	case "watch", "events", "pending", "remove", "stats", "next-expiry", "save-restore":
		return true
	}
	return false
}

// httpRequest maps a scenario command to the v2 request that runs the same
// store operation on etcd; ok is false when there is none.
func httpRequest(cmd string, a args, base string) (method, target string, form url.Values, ok bool) {
	if len(a.pos) != 1 || strings.Contains(a.pos[0], "/.") || strings.Contains(a.pos[0], "//") {
		return "", "", nil, false
	}
	key := a.pos[0]
	q := url.Values{}
	form = url.Values{}
	if v, has := a.opts["value"]; has {
		form.Set("value", v)
	}
	if v, has := a.opts["ttl"]; has {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			return "", "", nil, false
		}
		q.Set("ttl", v)
	}
	for _, f := range []string{"dir", "recursive", "sorted", "refresh"} {
		if a.flags[f] {
			q.Set(f, "true")
		}
	}
	for _, o := range []string{"prevValue", "prevIndex"} {
		if v, has := a.opts[o]; has {
			q.Set(o, v)
		}
	}
	switch cmd {
	case "get":
		q.Set("sorted", "true") // ours is always sorted
		method = "GET"
		form = nil
	case "set":
		method = "PUT"
	case "create":
		method = "PUT"
		q.Set("prevExist", "false")
	case "mkdir":
		method = "PUT"
		q.Set("prevExist", "false")
		q.Set("dir", "true")
	case "post":
		method = "POST"
	case "update":
		method = "PUT"
		q.Set("prevExist", "true")
	case "cas":
		if q.Get("prevValue") == "" && q.Get("prevIndex") == "" {
			return "", "", nil, false // over HTTP this is an update
		}
		method = "PUT"
	case "cad":
		method = "DELETE"
		form = nil
	case "delete":
		method = "DELETE"
		form = nil
	default:
		return "", "", nil, false
	}
	if key == "/" {
		key = ""
	}
	target = base + (&url.URL{Path: key}).EscapedPath()
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	return method, target, form, true
}

type refResult struct {
	body  []byte
	index uint64
}

func refDo(t *testing.T, client *http.Client, method, target string, form url.Values) refResult {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := strconv.ParseUint(resp.Header.Get(v2api.HeaderEtcdIndex), 10, 64)
	return refResult{body: b, index: idx}
}

// normalize drops ttl and expiration (clock dependent) from an event or
// error body and re-encodes it.
func normalize(t *testing.T, body string) string {
	var v map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(body)), &v); err != nil {
		return fmt.Sprintf("unparsable %q", body)
	}
	var strip func(any)
	strip = func(x any) {
		switch n := x.(type) {
		case map[string]any:
			delete(n, "ttl")
			delete(n, "expiration")
			for _, c := range n {
				strip(c)
			}
		case []any:
			for _, c := range n {
				strip(c)
			}
		}
	}
	strip(v)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
