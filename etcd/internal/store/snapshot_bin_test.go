package store

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// goldenStore builds a state that uses every part of the snapshot format:
// nested dirs, a dir and a file with expiry, a non-UTF-8 key and value, a
// refresh, a recursive delete (event with a dir prevNode) and an expiry.
func goldenStore(t *testing.T) *Store {
	s, c := newTestStore(t)
	exp := func(d time.Duration) Expiry { return Expiry{ExpireTime: c.t.Add(d)} }
	must(t)(s.Set("/a/b", false, "v", Expiry{}))
	must(t)(s.Set("/a/b", false, "v", Expiry{ExpireTime: c.t.Add(5*time.Second + 7), Refresh: true}))
	must(t)(s.Set("/dir/x\xff", true, "", exp(time.Hour)))
	must(t)(s.Create("/q", false, "\x00<&>\xc3(", true, Expiry{}))
	must(t)(s.Set("/gone/deep/k", false, "1", Expiry{}))
	must(t)(s.Delete("/gone", true, true))
	must(t)(s.Set("/t", false, "soon", exp(time.Second)))
	s.DeleteExpiredKeys(c.t.Add(2 * time.Second))
	must(t)(s.Set("/_hidden", false, strings.Repeat("x", 300), Expiry{}))
	return s
}

// TestSnapshotGolden pins the binary format: Save of a fixed state equals
// testdata/snapshot/v2.golden (-update rewrites it), the golden bytes
// recover to the same state, and that state saves to the same bytes.
func TestSnapshotGolden(t *testing.T) {
	s := goldenStore(t)
	got, err := s.Save()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join("testdata", "snapshot", "v2.golden")
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Save differs from %s (run with -update if the format changed on purpose, and bump binVersion):\n%q\n%q", file, got, want)
	}
	r := New(s.now)
	if err := r.Recovery(want); err != nil {
		t.Fatal(err)
	}
	if d1, d2 := dump(s), dump(r); d1 != d2 {
		t.Fatalf("recovered state differs:\n%s\n%s", d1, d2)
	}
	again, _ := r.Save()
	if !bytes.Equal(again, want) {
		t.Fatal("Save of the recovered state differs")
	}
}

// TestSnapshotLegacyJSON: a version 1 (JSON) snapshot still recovers, and
// the binary Save of that state recovers to an identical state.
func TestSnapshotLegacyJSON(t *testing.T) {
	legacy := `{"version":1,"index":3,"nodes":[{"key":"/a","dir":true,"createdIndex":1,"modifiedIndex":1},` +
		`{"key":"/a/b","value":{"base64":"/w=="},"expireTime":"2026-01-01T00:00:05Z","createdIndex":3,"modifiedIndex":3}],` +
		`"history":[{"action":"set","node":{"key":"/a/b","value":"v","modifiedIndex":1,"createdIndex":1}},` +
		`{"refresh":true,"action":"update","node":{"key":"/a/b","value":"v","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/a/b","value":"v","modifiedIndex":1,"createdIndex":1}},` +
		`{"action":"set","node":{"key":"/a/b","value":{"base64":"/w=="},"expiration":"2026-01-01T00:00:05Z","modifiedIndex":3,"createdIndex":3},"prevNode":{"key":"/a/b","value":"v","modifiedIndex":2,"createdIndex":1}}]}`
	s := New(func() time.Time { return scenarioEpoch })
	if err := s.Recovery([]byte(legacy)); err != nil {
		t.Fatal(err)
	}
	if v := must(t)(s.Get("/a/b", false, false)).Node.StringValue(); v != "\xff" {
		t.Fatalf("value %q", v)
	}
	b, _ := s.Save()
	if !bytes.HasPrefix(b, []byte(binMagic)) {
		t.Fatalf("Save wrote %q, want the binary format", b[:8])
	}
	r := New(s.now)
	if err := r.Recovery(b); err != nil {
		t.Fatal(err)
	}
	if d1, d2 := dump(s), dump(r); d1 != d2 {
		t.Fatalf("states differ:\n%s\n%s", d1, d2)
	}
}

// TestRecoveryRejectsBadBinary: every truncation of a good snapshot, extra
// bytes, unknown flags and a wrong version fail without touching the store.
func TestRecoveryRejectsBadBinary(t *testing.T) {
	good, _ := goldenStore(t).Save()
	var bad [][]byte
	for i := len(binMagic); i < len(good); i++ {
		bad = append(bad, good[:i])
	}
	bad = append(bad, append(bytes.Clone(good), 0))
	v := bytes.Clone(good)
	v[len(binMagic)] = 3
	bad = append(bad, v)
	// the first node's flags byte: magic, version, index, count, parent 0,
	// name "_hidden" (sorts first)
	f := bytes.Clone(good)
	at := len(binMagic) + 1 + 1 + 1 + 1 + 1 + len("_hidden")
	if f[at] != 0 || f[at-1] != 'n' {
		t.Fatalf("byte %d is %#x, not the flags of file /_hidden", at, f[at])
	}
	f[at] |= 0x80
	bad = append(bad, f)
	for i, b := range bad {
		s, _ := newTestStore(t)
		must(t)(s.Set("/keep", false, "1", Expiry{}))
		if err := s.Recovery(b); err == nil {
			t.Errorf("case %d: Recovery(%q) succeeded", i, b)
		}
		if _, err := s.Get("/keep", false, false); err != nil || s.Index() != 1 {
			t.Errorf("case %d: Recovery changed the store", i)
		}
	}
}

func benchSnapshotStore(b *testing.B) *Store {
	s := New(func() time.Time { return scenarioEpoch })
	v := []byte(strings.Repeat("v", 256))
	for i := range 100000 {
		// a fresh string per value, as values decoded from commands are
		if _, err := s.Set(fmt.Sprintf("/bench/key-%d", i), false, string(v), Expiry{}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkSave100k(b *testing.B) {
	s := benchSnapshotStore(b)
	b.ResetTimer()
	for range b.N {
		if _, err := s.Save(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecovery100k(b *testing.B) {
	data, _ := benchSnapshotStore(b).Save()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		if err := New(nil).Recovery(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLiveHeap100k reports the live heap of a store holding 100,000
// keys of 256 B (set one by one, as the bench does), per key and in total.
func BenchmarkLiveHeap100k(b *testing.B) {
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := benchSnapshotStore(b)
		runtime.GC()
		runtime.ReadMemStats(&after)
		live := float64(after.HeapAlloc) - float64(before.HeapAlloc)
		b.ReportMetric(live/100000, "B/key")
		b.ReportMetric(live/(1<<20), "MiB")
		runtime.KeepAlive(s)
	}
}

// TestNodeSize keeps the node in the 80-byte size class (see node).
func TestNodeSize(t *testing.T) {
	if sz := unsafe.Sizeof(node{}); sz > 80 {
		t.Fatalf("node is %d bytes, want at most 80", sz)
	}
}

// TestCleanMatchesPathClean: the no-copy clean equals path.Clean("/"+key).
func TestCleanMatchesPathClean(t *testing.T) {
	for _, k := range []string{"", "/", "a", "/a", "//a", "/a/", "a/../b", "/./x", "/..", "/a//b/", "\xff/_x"} {
		if got, want := clean(k), path.Clean("/"+k); got != want {
			t.Errorf("clean(%q) = %q, want %q", k, got, want)
		}
	}
}

// TestWriteToMatchesSave: the streamed snapshot is Save's bytes, also when
// it spans many chunks, and a failing writer's error is returned.
func TestWriteToMatchesSave(t *testing.T) {
	s := goldenStore(t)
	for i := range 3000 {
		must(t)(s.Set(fmt.Sprintf("/many/k%d", i), false, strings.Repeat("v", i%300), Expiry{}))
	}
	want, _ := s.Save()
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	if err != nil || n != int64(len(want)) || !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("WriteTo wrote %d bytes (err %v), Save %d; equal %v", n, err, len(want), bytes.Equal(buf.Bytes(), want))
	}
	if _, err := s.WriteTo(failWriter{}); err == nil {
		t.Fatal("WriteTo to a failing writer succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }
