package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedCorpus adds every user-data file under the cloudinit testdata
// (seeds, validator cases, golden apply cases' user-data sections).
func seedCorpus(f *testing.F) {
	var files []string
	for _, g := range []string{"../../testdata/seeds/*user-data", "../../testdata/validate/*.yaml"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	apply, _ := filepath.Glob("../../testdata/apply/*.txt")
	for _, p := range apply {
		b, _ := os.ReadFile(p)
		if _, rest, ok := strings.Cut(string(b), "-- user-data --\n"); ok {
			body, _, _ := strings.Cut(rest, "\n-- ")
			f.Add([]byte(body))
		}
	}
	f.Add([]byte("#cloud-config\na: &a [*a]\n"))
	f.Add([]byte("#cloud-config\nx: &x {a: 1}\ncoreos: {<<: *x}\n"))
}

// FuzzParse: Parse and Validate never panic, every entry has a line within
// the document (or 0) and a non-empty message, and a config whose report has
// no errors is stable under re-validation.
func FuzzParse(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, rep := Parse(data)
		if cfg == nil {
			t.Fatal("nil config")
		}
		lines := strings.Count(string(data), "\n") + 1
		for _, e := range rep.Entries() {
			if e.Line < 0 || e.Line > lines+1 || e.Message == "" {
				t.Fatalf("bad entry %+v for %d lines", e, lines)
			}
		}
		v := Validate(data)
		if Classify(data) == CloudConfig && v.Len() != rep.Len() {
			t.Fatalf("Validate and Parse disagree: %v vs %v", v.Entries(), rep.Entries())
		}
	})
}

// FuzzSubstitute: substitution never panics, reports only lines that exist,
// and with every variable known leaves no unescaped token behind.
func FuzzSubstitute(f *testing.F) {
	seedCorpus(f)
	f.Add([]byte(`$public_ipv4$private_ipv4\$public_ipv6\\$private_ipv6`))
	f.Fuzz(func(t *testing.T, data []byte) {
		text := string(data)
		_, rep := Substitute(text, nil)
		lines := strings.Count(text, "\n") + 1
		for _, e := range rep.Entries() {
			if e.Line < 1 || e.Line > lines {
				t.Fatalf("line %d out of 1..%d", e.Line, lines)
			}
		}
		all := map[string]string{"public_ipv4": "1.1.1.1", "private_ipv4": "2.2.2.2", "public_ipv6": "::1", "private_ipv6": "::2"}
		out, rep2 := Substitute(text, all)
		if rep2.Len() != 0 {
			t.Fatalf("errors with all values known: %v", rep2.Entries())
		}
		if !strings.Contains(text, `\`) && strings.Contains(out, "$public_ipv4") && !strings.Contains(text, "$public_ipv4") {
			t.Fatalf("token appeared from nowhere: %q -> %q", text, out)
		}
	})
}
