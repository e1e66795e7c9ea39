package v2http

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// randString mixes plain ASCII with every byte class encoding/json escapes:
// quotes, backslash, HTML characters, control bytes, U+2028, invalid UTF-8.
func randString(rng *rand.Rand) string {
	pieces := []string{"a", "key", "/", "_h", " ", "\"", "\\", "<", ">", "&", "\n", "\t", "\b", "\f", "\x00", "\x1f",
		"\x7f", "é", "\u2028", "\u2029", "\xff", "\xc3(", "日本", "😀", "{}", "0"}
	n := rng.IntN(6)
	if rng.IntN(3) == 0 {
		n = 0
	}
	var b []byte
	for range n {
		b = append(b, pieces[rng.IntN(len(pieces))]...)
	}
	return string(b)
}

func randNode(rng *rand.Rand, depth int) *v2api.Node {
	if rng.IntN(8) == 0 {
		return nil
	}
	n := &v2api.Node{Key: randString(rng), Dir: rng.IntN(2) == 0}
	if rng.IntN(3) > 0 {
		v := randString(rng)
		n.Value = &v
	}
	if rng.IntN(3) == 0 {
		var t time.Time
		switch rng.IntN(5) {
		case 0:
			t = time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9)).UTC()
		case 1:
			t = time.Unix(rng.Int64N(1<<34), 0).UTC()
		case 2:
			t = time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9)).In(time.FixedZone("x", 3600))
		case 3:
			t = time.Date(10000+rng.IntN(5), 1, 1, 0, 0, 0, 0, time.UTC) // MarshalJSON fails
		default:
			t = time.Time{}
		}
		n.Expiration = &t
	}
	if rng.IntN(3) == 0 {
		n.TTL = rng.Int64N(1<<40) - 1<<39
	}
	if depth < 3 && rng.IntN(3) == 0 {
		n.Nodes = []*v2api.Node{}
		for range rng.IntN(4) {
			n.Nodes = append(n.Nodes, randNode(rng, depth+1))
		}
	}
	if rng.IntN(4) > 0 {
		n.ModifiedIndex = rng.Uint64N(1 << (1 + rng.IntN(63)))
	}
	if rng.IntN(4) > 0 {
		n.CreatedIndex = rng.Uint64()
	}
	return n
}

// TestEventJSONMatchesEncodingJSON: the hand-written encoder writes exactly
// what json.Encoder writes for random events, and fails exactly when it
// fails.
func TestEventJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fails := 0
	for i := range 20000 {
		e := &v2api.Event{Action: randString(rng), Node: randNode(rng, 0), PrevNode: randNode(rng, 0)}
		var want bytes.Buffer
		werr := json.NewEncoder(&want).Encode(e)
		got, gerr := appendEventJSON(nil, e)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("event %d: encoding/json error %v, ours %v", i, werr, gerr)
		}
		if werr != nil {
			fails++
			continue
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want.Bytes())
		}
	}
	if fails == 0 || fails > 10000 {
		t.Fatalf("%d of 20000 events failed to encode: the generator does not cover both paths", fails)
	}
}

// TestHeaderNamesCanonical: setIndexHeaders and setClusterID write the
// header map directly, which is only right for canonical names.
func TestHeaderNamesCanonical(t *testing.T) {
	for _, h := range []string{v2api.HeaderEtcdIndex, v2api.HeaderRaftIndex, v2api.HeaderRaftTerm, v2api.HeaderClusterID, "Content-Type"} {
		if c := http.CanonicalHeaderKey(h); c != h {
			t.Errorf("header %q is not canonical (%q)", h, c)
		}
	}
}

func BenchmarkEventJSON(b *testing.B) {
	v := string(bytes.Repeat([]byte("v"), 256))
	e := &v2api.Event{Action: "get", Node: &v2api.Node{Key: "/bench/key-123", Value: &v, ModifiedIndex: 12345, CreatedIndex: 12345}}
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for range b.N {
			buf, _ = appendEventJSON(buf[:0], e)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for range b.N {
			buf.Reset()
			_ = json.NewEncoder(&buf).Encode(e)
		}
	})
}

// BenchmarkGetHandler is one GET through the whole client handler with the
// fake server (no network): the per-request cost of the HTTP layer.
func BenchmarkGetHandler(b *testing.B) {
	h := NewClientHandler(&fakeServer{}, Options{})
	r, _ := http.NewRequest("GET", "http://x/v2/keys/bench/key-1", nil)
	r.RequestURI = "/v2/keys/bench/key-1"
	b.ReportAllocs()
	for range b.N {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, r)
		if w.code != 0 && w.code != 200 {
			b.Fatal(w.code)
		}
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
