package unitfile

import (
	"crypto/sha1"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

func TestCanonicalAndHash(t *testing.T) {
	in := "# comment\n[Unit]\nDescription = Hello\n\n[Service]\nExecStart=/bin/sh -c \\\n  'echo hi'\n[Unit]\nAfter=x.service\n; other comment\n[X-Fleet]\nGlobal=true\n"
	u, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	want := "[Unit]\nDescription=Hello\nAfter=x.service\n\n[Service]\nExecStart=/bin/sh -c \\\n  'echo hi'\n\n[X-Fleet]\nGlobal=true\n"
	if got := u.String(); got != want {
		t.Fatalf("canonical:\n%q\nwant\n%q", got, want)
	}
	sum := sha1.Sum([]byte(want))
	if u.Hash().String() != hex.EncodeToString(sum[:]) || u.Hash().Short() != hex.EncodeToString(sum[:])[:7] {
		t.Fatalf("hash %s", u.Hash())
	}
	// Comments and spacing do not change the hash; content does.
	u2, _ := Parse(want)
	if u2.Hash() != u.Hash() {
		t.Fatal("canonical text re-parsed has a different hash")
	}
	u3, _ := Parse(strings.Replace(want, "Hello", "Bye", 1))
	if u3.Hash() == u.Hash() {
		t.Fatal("different content, same hash")
	}
	if u.Description() != "Hello" {
		t.Fatalf("description %q", u.Description())
	}
	h, err := ParseHash(u.Hash().String())
	if err != nil || h != u.Hash() {
		t.Fatalf("ParseHash round trip: %v", err)
	}
	if _, err := Parse("[Service]\nExecStart=" + strings.Repeat("x", 3000) + "\n"); err == nil || !strings.Contains(err.Error(), "line too long (max 2048 bytes)") {
		t.Fatalf("long line: %v", err)
	}
}

func TestValidateName(t *testing.T) {
	for name, want := range map[string]string{
		"hello.service":                       "",
		"foo@.service":                        "",
		"foo@1.service":                       "",
		"a\\x2db.mount":                       "",
		"":                                    "unit name cannot be empty",
		"hello":                               `unit name must contain "."`,
		"hello.":                              `unit name cannot end in "."`,
		"hello.bogus":                         `invalid unit type: "bogus"`,
		"foo@1.mount":                         `invalid unit type for template: "mount"`,
		"he llo.service":                      "invalid character ' ' in unit name",
		"@foo.service":                        `unit name cannot start in "@"`,
		strings.Repeat("a", 250) + ".service": "unit name exceeds maximum length (256)",
	} {
		err := ValidateName(name)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("ValidateName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestTemplates(t *testing.T) {
	if !IsTemplate("foo@.service") || IsTemplate("foo@1.service") || !IsInstance("foo@1.service") {
		t.Fatal("template detection")
	}
	if TemplateOf("foo@1.service") != "foo@.service" || TemplateOf("foo.service") != "" {
		t.Fatal("TemplateOf")
	}
	if n, err := Instantiate("foo@.service", "1"); err != nil || n != "foo@1.service" {
		t.Fatalf("Instantiate = %q %v", n, err)
	}
	if Mangle("/tmp/x/hello") != "hello.service" || Mangle("a.socket") != "a.socket" || Mangle("foo.target") != "foo.target.service" {
		t.Fatal("Mangle")
	}
}

func TestRequirements(t *testing.T) {
	u, err := Parse(`[X-Fleet]
MachineMetadata="region=us" "disk=ssd"
MachineMetadata=region=eu
MachineMetadata=a=b c=d
MachineMetadata=bad
Conflicts=web@*.service %p-side.service
X-Conflicts=legacy.service
MachineOf=db@%i.service
Global=false
Global=yes
Replaces=old.service
MachineID=abc
X-ConditionMachineID=def
Bogus=1
`)
	if err != nil {
		t.Fatal(err)
	}
	r := u.Requirements("web@3.service")
	want := Requirements{
		MachineID: "abc",
		MachineOf: []string{"db@3.service"},
		Metadata:  map[string][]string{"region": {"us", "eu"}, "disk": {"ssd"}},
		Conflicts: []string{"web@*.service", "web-side.service", "legacy.service"},
		Global:    true,
		Replaces:  []string{"old.service"},
		Unknown:   []string{"Bogus"},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("requirements\n%+v\nwant\n%+v", r, want)
	}
	if ok, _ := r.MetadataMatches(map[string]string{"region": "eu", "disk": "ssd"}); !ok {
		t.Fatal("OR within key")
	}
	if ok, why := r.MetadataMatches(map[string]string{"region": "eu"}); ok || why == "" {
		t.Fatal("AND across keys")
	}
	if !r.ConflictsWith("web@9.service") || r.ConflictsWith("db.service") {
		t.Fatal("conflict globs")
	}
}

func TestValidateCombinations(t *testing.T) {
	for xf, want := range map[string]string{
		"MachineID=a\nMachineOf=b.service":        "MachineID cannot be used with Peers",
		"MachineID=a\nConflicts=b.service":        "MachineID cannot be used with Conflicts",
		"MachineID=a\nGlobal=true":                "MachineID cannot be used with Global",
		"MachineID=a\nReplaces=b.service":         "MachineID cannot be used with Replaces",
		"Global=true\nMachineOf=b.service":        "Global cannot be used with Peers",
		"Global=true\nReplaces=b.service":         "Global cannot be used with Replaces",
		"Conflicts=a.service\nReplaces=b.service": "Conflicts cannot be used with Replaces",
		"MachineOf=b.service\nConflicts=b*":       `unresolvable requirements: peer "b.service" matches conflict "b*"`,
		"MachineOf=b.service\nReplaces=b*":        `unresolvable requirements: peer "b.service" matches replace "b*"`,
		"MachineMetadata=a=b\nConflicts=c*":       "",
	} {
		u, err := Parse("[X-Fleet]\n" + xf + "\n")
		if err != nil {
			t.Fatal(err)
		}
		err = u.Validate("x.service")
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("%q: got %q want %q", xf, got, want)
		}
	}
}
