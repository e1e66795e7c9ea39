package v2http

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/corekit/corekit/internal/v2api"
)

// appendEventJSON appends the JSON of e followed by "\n", byte for byte what
// json.NewEncoder(w).Encode(e) writes (field order, omitempty, HTML
// escaping of <, > and &), without reflection. eventjson_test.go holds it
// to encoding/json on random events. Anything it does not handle itself
// (strings needing escapes, unusual times) goes through encoding/json.
func appendEventJSON(b []byte, e *v2api.Event) ([]byte, error) {
	b = append(b, `{"action":`...)
	b = appendString(b, e.Action)
	var err error
	if e.Node != nil {
		b = append(b, `,"node":`...)
		if b, err = appendNodeJSON(b, e.Node); err != nil {
			return b, err
		}
	}
	if e.PrevNode != nil {
		b = append(b, `,"prevNode":`...)
		if b, err = appendNodeJSON(b, e.PrevNode); err != nil {
			return b, err
		}
	}
	return append(b, '}', '\n'), nil
}

func appendNodeJSON(b []byte, n *v2api.Node) ([]byte, error) {
	b = append(b, '{')
	comma := false
	field := func(name string) {
		if comma {
			b = append(b, ',')
		}
		comma = true
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if n.Key != "" {
		field("key")
		b = appendString(b, n.Key)
	}
	if n.Value != nil {
		field("value")
		b = appendString(b, *n.Value)
	}
	if n.Dir {
		field("dir")
		b = append(b, "true"...)
	}
	if n.Expiration != nil {
		field("expiration")
		var err error
		if b, err = appendTime(b, *n.Expiration); err != nil {
			return b, err
		}
	}
	if n.TTL != 0 {
		field("ttl")
		b = strconv.AppendInt(b, n.TTL, 10)
	}
	if len(n.Nodes) > 0 {
		field("nodes")
		b = append(b, '[')
		for i, c := range n.Nodes {
			if i > 0 {
				b = append(b, ',')
			}
			if c == nil {
				b = append(b, "null"...)
				continue
			}
			var err error
			if b, err = appendNodeJSON(b, c); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	if n.ModifiedIndex != 0 {
		field("modifiedIndex")
		b = strconv.AppendUint(b, n.ModifiedIndex, 10)
	}
	if n.CreatedIndex != 0 {
		field("createdIndex")
		b = strconv.AppendUint(b, n.CreatedIndex, 10)
	}
	return append(b, '}'), nil
}

// appendTime is time.Time's MarshalJSON (RFC 3339 with nanoseconds) for UTC
// times of years 0-9999, which is every expiration the store hands out;
// anything else takes MarshalJSON itself (and its error).
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); t.Location() != time.UTC || y < 0 || y > 9999 {
		j, err := t.MarshalJSON()
		if err != nil {
			return b, fmt.Errorf("v2http: encoding expiration: %w", err)
		}
		return append(b, j...), nil
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendString appends s as a JSON string. Printable ASCII other than
// '"', '\\', '<', '>' and '&' is copied; any other byte sends the whole
// string through encoding/json, whose escaping is then the definition.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s) // a string always marshals
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// bufPool recycles response buffers (pointers to slices, so Put does not
// allocate); the zero value is ready. Buffers that grew past 64 KiB are
// dropped rather than kept.
type bufPool struct{ p sync.Pool }

func (bp *bufPool) get() *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 1024)
	return &b
}

func (bp *bufPool) put(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		bp.p.Put(b)
	}
}
