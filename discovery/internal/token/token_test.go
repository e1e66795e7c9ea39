package token

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestNewShape(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		tok, err := New(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if !Valid(tok) {
			t.Fatalf("New() = %q, not a valid token", tok)
		}
		if seen[tok] {
			t.Fatalf("New() repeated %q", tok)
		}
		seen[tok] = true
	}
}

func TestNewDeterministicReader(t *testing.T) {
	tok, err := New(bytes.NewReader([]byte{0x00, 0x01, 0xab, 0xff, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}))
	if err != nil {
		t.Fatal(err)
	}
	if want := "0001abff0405060708090a0b0c0d0e0f"; tok != want {
		t.Fatalf("New = %q, want %q", tok, want)
	}
}

func TestNewShortRead(t *testing.T) {
	if _, err := New(bytes.NewReader([]byte{1, 2, 3})); err == nil {
		t.Fatal("New with 3 random bytes: want error")
	}
	if _, err := New(iotest.ErrReader(errors.New("boom"))); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("New with failing reader: err = %v", err)
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"6a28e078895c5ec737174db2419bb2f3", true},
		{"00000000000000000000000000000000", true},
		{"6A28E078895C5EC737174DB2419BB2F3", false},
		{"6a28e078895c5ec737174db2419bb2f", false},
		{"6a28e078895c5ec737174db2419bb2f30", false},
		{"6a28e078895c5ec737174db2419bb2g3", false},
		{"", false},
		{"../../../../../../../../../../..", false},
		{"6a28e078895c5ec737174db2419bb2f3a1b2c3d4", false}, // 40-hex doc example
	}
	for _, tt := range tests {
		if got := Valid(tt.in); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.in, got, tt.want)
		}
		err := Check(tt.in)
		if (err == nil) != tt.want {
			t.Errorf("Check(%q) = %v", tt.in, err)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Check(%q) does not wrap ErrInvalid", tt.in)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		max     int
		want    int
		wantErr string
	}{
		{"", 99, 3, ""},
		{"1", 99, 1, ""},
		{"5", 99, 5, ""},
		{"99", 99, 99, ""},
		{"100", 99, 0, `invalid size "100": must be an integer from 1 to 99`},
		{"7", 5, 0, `invalid size "7": must be an integer from 1 to 5`},
		{"0", 99, 0, `invalid size "0": must be an integer from 1 to 99`},
		{"-3", 99, 0, `invalid size "-3": must be an integer from 1 to 99`},
		{"abc", 99, 0, `invalid size "abc": must be an integer from 1 to 99`},
		{"3.0", 99, 0, `invalid size "3.0": must be an integer from 1 to 99`},
		{"99999999999999999999999", 99, 0, `invalid size "99999999999999999999999": must be an integer from 1 to 99`},
		{strings.Repeat("9", 200), 99, 0, `invalid size "` + strings.Repeat("9", 64) + `…": must be an integer from 1 to 99`},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in, tt.max)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseSize(%q, %d) err = %v, want %q", tt.in, tt.max, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q, %d) = %d, %v; want %d", tt.in, tt.max, got, err, tt.want)
		}
	}
}

func TestCheckMember(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"1e41d48ff5022577", true},
		{"node-1.example", true},
		{"_state", true},
		{"", false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{"a/b", false},
		{"a%2Fb", false},
		{"a b", false},
		{strings.Repeat("a", MaxMemberLen), true},
		{strings.Repeat("a", MaxMemberLen+1), false},
	}
	for _, tt := range tests {
		err := CheckMember(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("CheckMember(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
	if !Reserved("_config") || !Reserved("_state") || Reserved("abc") {
		t.Error("Reserved misclassifies")
	}
}

func TestSecret(t *testing.T) {
	s, err := NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := HashSecret(s)
	if h == s || len(h) != 64 {
		t.Fatalf("HashSecret(%q) = %q", s, h)
	}
	if !SecretMatches(s, h) {
		t.Error("SecretMatches(secret, hash) = false")
	}
	for _, bad := range []string{"", s + "x", strings.ToUpper(s)} {
		if SecretMatches(bad, h) {
			t.Errorf("SecretMatches(%q) = true", bad)
		}
	}
	if SecretMatches(s, "") {
		t.Error("SecretMatches with empty hash = true")
	}
}

func TestKeys(t *testing.T) {
	const tok = "6a28e078895c5ec737174db2419bb2f3"
	for got, want := range map[string]string{
		Dir(tok):                "/_etcd/registry/6a28e078895c5ec737174db2419bb2f3",
		ConfigKey(tok):          "/_etcd/registry/6a28e078895c5ec737174db2419bb2f3/_config",
		SizeKey(tok):            "/_etcd/registry/6a28e078895c5ec737174db2419bb2f3/_config/size",
		MemberKey(tok, "abc12"): "/_etcd/registry/6a28e078895c5ec737174db2419bb2f3/abc12",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
