package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

var update = flag.Bool("update", false, "rewrite the expected output of testdata/scenarios/*.txt")

// scenarioEpoch is the fake clock's start in every scenario.
var scenarioEpoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// TestScenarios runs the scripts in testdata/scenarios. Each script is a
// sequence of blocks:
//
//	# comments
//	<command> <args...>
//	----
//	<expected output, one JSON document or line per line>
//
// separated by blank lines. Commands (keys are store keys; flags are bare
// words, options are name=value, values may be double-quoted Go strings):
//
//	set|create|post <key> [value=V] [dir] [ttl=N] [refresh]
//	mkdir <key> [ttl=N]                 create a directory
//	update <key> [value=V] [ttl=N] [refresh]
//	cas <key> [prevValue=V] [prevIndex=N] [value=V] [ttl=N] [refresh]
//	cad <key> [prevValue=V] [prevIndex=N]
//	delete <key> [dir] [recursive]
//	get <key> [recursive] [sorted]
//	advance-clock <duration>            move the fake clock (reads only)
//	expire                              DeleteExpiredKeys(clock), prints the expire events
//	next-expiry                         NextExpiry relative to the clock
//	watch <name> <key> [recursive] [stream] [since=N]
//	events <name>                       what the watcher's channel holds now
//	pending <name>                      drain the channel, print the count and whether it is closed
//	remove <name>                       Watcher.Remove
//	index | stats | save-restore
//	repeat <N> <command>                run command N times, print the last output
//
// ttl=N sets the expiry to clock+N seconds (ttl=0: expire at the next sweep).
// Run with -update to rewrite the expectations.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios found")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

type block struct {
	pre      []string // comments and blank lines before the command
	cmd      string
	expected string
	line     int
}

func parseScenario(t *testing.T, data string) (blocks []block, trailer []string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(data, "\n"), "\n")
	var pre []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			pre = append(pre, l)
			continue
		}
		b := block{pre: pre, cmd: l, line: i + 1}
		pre = nil
		i++
		if i >= len(lines) || lines[i] != "----" {
			t.Fatalf("line %d: command %q not followed by ----", b.line, l)
		}
		var out []string
		for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "" {
			i++
			out = append(out, lines[i])
		}
		b.expected = strings.Join(out, "\n")
		blocks = append(blocks, b)
	}
	return blocks, pre
}

func runScenario(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blocks, trailer := parseScenario(t, string(data))
	r := &runner{t: t, now: scenarioEpoch, watchers: map[string]*Watcher{}}
	r.s = New(func() time.Time { return r.now })
	var rewritten strings.Builder
	for _, b := range blocks {
		got := r.run(t, b.cmd)
		if !*update && got != b.expected {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, b.line, b.cmd, got, b.expected)
		}
		for _, p := range b.pre {
			rewritten.WriteString(p + "\n")
		}
		rewritten.WriteString(b.cmd + "\n----\n")
		if got != "" {
			rewritten.WriteString(got + "\n")
		}
	}
	for _, p := range trailer {
		rewritten.WriteString(p + "\n")
	}
	if *update {
		if err := os.WriteFile(file, []byte(rewritten.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type runner struct {
	t        *testing.T
	s        *Store
	now      time.Time
	watchers map[string]*Watcher
}

// tokenize splits a command line on spaces; a double-quoted Go string (also
// after name=) is one token.
func tokenize(line string) ([]string, error) {
	var toks []string
	for {
		line = strings.TrimLeft(line, " ")
		if line == "" {
			return toks, nil
		}
		end := strings.IndexByte(line, ' ')
		if q := strings.IndexByte(line, '"'); q >= 0 && (end < 0 || q < end) {
			rest, err := strconv.QuotedPrefix(line[q:])
			if err != nil {
				return nil, err
			}
			s, _ := strconv.Unquote(rest)
			toks = append(toks, line[:q]+s)
			line = line[q+len(rest):]
			continue
		}
		if end < 0 {
			end = len(line)
		}
		toks = append(toks, line[:end])
		line = line[end:]
	}
}

type args struct {
	pos   []string
	flags map[string]bool
	opts  map[string]string
}

func parseArgs(toks []string) args {
	a := args{flags: map[string]bool{}, opts: map[string]string{}}
	for _, tok := range toks {
		if k, v, ok := strings.Cut(tok, "="); ok {
			a.opts[k] = v
		} else if tok == "dir" || tok == "recursive" || tok == "sorted" || tok == "stream" || tok == "refresh" {
			a.flags[tok] = true
		} else {
			a.pos = append(a.pos, tok)
		}
	}
	return a
}

func (r *runner) expiry(t *testing.T, a args) Expiry {
	e := Expiry{Refresh: a.flags["refresh"]}
	if v, ok := a.opts["ttl"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("bad ttl %q", v)
		}
		e.ExpireTime = r.now.Add(time.Duration(n) * time.Second)
	}
	return e
}

func (r *runner) uint(t *testing.T, a args, name string) uint64 {
	v, ok := a.opts[name]
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("bad %s %q", name, v)
	}
	return n
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (r *runner) result(e *v2api.Event, err error) string {
	t := r.t
	if err != nil {
		var ve *v2api.Error
		if !errors.As(err, &ve) {
			t.Fatalf("error is not *v2api.Error: %v", err)
		}
		return toJSON(t, ve)
	}
	return toJSON(t, e)
}

func (r *runner) run(t *testing.T, line string) string {
	toks, err := tokenize(line)
	if err != nil || len(toks) == 0 {
		t.Fatalf("bad command %q: %v", line, err)
	}
	a := parseArgs(toks[1:])
	key := func() string {
		if len(a.pos) < 1 {
			t.Fatalf("%q: missing key", line)
		}
		return a.pos[0]
	}
	s := r.s
	switch toks[0] {
	case "repeat":
		n, err := strconv.Atoi(toks[1])
		if err != nil || n < 1 || len(toks) < 3 {
			t.Fatalf("%q: want repeat <N> <command>", line)
		}
		_, rest, _ := strings.Cut(strings.TrimLeft(line, " "), " ")
		_, rest, _ = strings.Cut(strings.TrimLeft(rest, " "), " ")
		var out string
		for range n {
			out = r.run(t, rest)
		}
		return out
	case "set":
		return r.result(s.Set(key(), a.flags["dir"], a.opts["value"], r.expiry(t, a)))
	case "create":
		return r.result(s.Create(key(), a.flags["dir"], a.opts["value"], false, r.expiry(t, a)))
	case "post":
		return r.result(s.Create(key(), a.flags["dir"], a.opts["value"], true, r.expiry(t, a)))
	case "mkdir":
		return r.result(s.Create(key(), true, "", false, r.expiry(t, a)))
	case "update":
		return r.result(s.Update(key(), a.opts["value"], r.expiry(t, a)))
	case "cas":
		return r.result(s.CompareAndSwap(key(), a.opts["prevValue"], r.uint(t, a, "prevIndex"), a.opts["value"], r.expiry(t, a)))
	case "cad":
		return r.result(s.CompareAndDelete(key(), a.opts["prevValue"], r.uint(t, a, "prevIndex")))
	case "delete":
		return r.result(s.Delete(key(), a.flags["dir"], a.flags["recursive"]))
	case "get":
		return r.result(s.Get(key(), a.flags["recursive"], a.flags["sorted"]))
	case "advance-clock":
		d, err := time.ParseDuration(key())
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		r.now = r.now.Add(d)
		return "clock: " + r.now.Format(time.RFC3339Nano)
	case "expire":
		before := s.Index()
		s.DeleteExpiredKeys(r.now)
		var out []string
		for _, e := range s.history.entries() {
			if e.index() > before {
				out = append(out, toJSON(t, e.delivered(r.now)))
			}
		}
		out = append(out, fmt.Sprintf("index: %d", s.Index()))
		return strings.Join(out, "\n")
	case "next-expiry":
		at, ok := s.NextExpiry()
		if !ok {
			return "none"
		}
		return "in " + at.Sub(r.now).String()
	case "watch":
		if len(a.pos) != 2 {
			t.Fatalf("%q: want watch <name> <key>", line)
		}
		w, err := s.Watch(a.pos[1], a.flags["recursive"], a.flags["stream"], r.uint(t, a, "since"))
		if err != nil {
			return r.result(nil, err)
		}
		r.watchers[a.pos[0]] = w
		return fmt.Sprintf("startIndex: %d", w.StartIndex) + "\n" + r.drain(t, w)
	case "events":
		w := r.watchers[key()]
		if w == nil {
			t.Fatalf("%q: no such watcher", line)
		}
		return r.drain(t, w)
	case "pending":
		w := r.watchers[key()]
		if w == nil {
			t.Fatalf("%q: no such watcher", line)
		}
		n, closed := 0, false
		for !closed {
			select {
			case _, ok := <-w.EventChan:
				if ok {
					n++
				} else {
					closed = true
				}
				continue
			default:
			}
			break
		}
		return fmt.Sprintf("%d events, closed: %v", n, closed)
	case "remove":
		w := r.watchers[key()]
		if w == nil {
			t.Fatalf("%q: no such watcher", line)
		}
		w.Remove()
		return r.drain(t, w)
	case "index":
		return fmt.Sprintf("index: %d", s.Index())
	case "stats":
		return string(s.JSONStats())
	case "save-restore":
		b1, err := s.Save()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Recovery(b1); err != nil {
			t.Fatal(err)
		}
		b2, err := s.Save()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("Save after Recovery differs:\n%s\n%s", b1, b2)
		}
		return "restored: index " + strconv.FormatUint(s.Index(), 10)
	}
	t.Fatalf("unknown command %q", line)
	return ""
}

// drain reports what the watcher's channel holds right now, without waiting:
// one event per line, then "closed" if the channel is closed, or "(no
// events)" when it is empty and open.
func (r *runner) drain(t *testing.T, w *Watcher) string {
	var out []string
	for {
		select {
		case e, ok := <-w.EventChan:
			if !ok {
				return strings.Join(append(out, "closed"), "\n")
			}
			out = append(out, toJSON(t, e))
			continue
		default:
		}
		break
	}
	if len(out) == 0 {
		return "(no events)"
	}
	return strings.Join(out, "\n")
}
