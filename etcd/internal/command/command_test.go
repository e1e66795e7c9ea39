package command

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func samples() map[string]Command {
	exp := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()
	return map[string]Command{
		"set":              Set{Key: "/foo", Value: "bar", Expire: exp},
		"set_dir":          Set{Key: "/dir", Dir: true},
		"set_refresh":      Set{Key: "/foo", Expire: exp, Refresh: true},
		"create":           Create{Key: "/foo", Value: "v"},
		"create_unique":    Create{Key: "/queue", Value: "job", Unique: true, Expire: exp},
		"update":           Update{Key: "/foo", Value: "new", Expire: exp},
		"compareAndSwap":   CompareAndSwap{Key: "/foo", PrevValue: "a", PrevIndex: 7, Value: "b"},
		"delete":           Delete{Key: "/dir", Dir: true, Recursive: true},
		"compareAndDelete": CompareAndDelete{Key: "/foo", PrevIndex: 9},
		"expire":           Expire{Cutoff: exp},
		"get":              Get{Key: "/foo", Recursive: true, Sorted: true},
		"member_attrs":     MemberAttrs{ID: 0x8e9e05c52164694d, Name: "infra1", ClientURLs: []string{"http://10.0.0.1:2379"}},
		"members": Members{Members: []Member{{ID: 0x8e9e05c52164694d, Name: "default",
			PeerURLs: []string{"http://localhost:2380"}, ClientURLs: []string{"http://localhost:2379"}}}},
	}
}

func TestGoldenEncodings(t *testing.T) {
	for name, c := range samples() {
		t.Run(name, func(t *testing.T) {
			got, err := Encode(c)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encoding of %s changed: the log format is fixed\n got %q\nwant %q", name, got, want)
			}
			// The golden bytes must decode to the same value: old logs stay readable.
			back, err := Decode(want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, c) {
				t.Errorf("round trip: got %#v, want %#v", back, c)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"unknown", []byte{0x42, '{', '}'}, ErrUnknown},
		{"unknown ignorable", []byte{0x80 | 0x42, '{', '}'}, ErrIgnored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode(%q) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
	for _, in := range [][]byte{nil, {byte(TypeSet), '{'}, {byte(TypeSet), '[', ']'}} {
		if _, err := Decode(in); err == nil {
			t.Errorf("Decode(%q): want error", in)
		}
	}
}

func TestTimeConversion(t *testing.T) {
	if UnixNano(time.Time{}) != 0 || !Time(0).IsZero() {
		t.Fatal("zero time must map to 0 and back")
	}
	now := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
	if got := Time(UnixNano(now)); !got.Equal(now) {
		t.Fatalf("got %v want %v", got, now)
	}
}
