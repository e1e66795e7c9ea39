package cloudinitmain

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corekit/corekit/cloudinit/internal/plan"
)

var update = flag.Bool("update", false, "rewrite golden files")

// archive is a tiny txtar: "-- name --" lines start files.
type archive struct {
	order []string
	files map[string]string
}

func parseArchive(t *testing.T, data string) archive {
	t.Helper()
	a := archive{files: map[string]string{}}
	cur := ""
	for _, line := range strings.SplitAfter(data, "\n") {
		trim := strings.TrimRight(line, "\n")
		if strings.HasPrefix(trim, "-- ") && strings.HasSuffix(trim, " --") && len(trim) > 6 {
			cur = strings.TrimSpace(trim[3 : len(trim)-3])
			a.order = append(a.order, cur)
			a.files[cur] = ""
			continue
		}
		if cur == "" {
			continue // comment before the first file
		}
		a.files[cur] += line
	}
	return a
}

func formatArchive(names []string, files map[string]string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "-- %s --\n", n)
		c := files[n]
		b.WriteString(c)
		if c != "" && !strings.HasSuffix(c, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// recorder is the unit-test Runner: it records commands instead of running
// useradd/chpasswd/hostnamectl, and simulates useradd by appending to the
// root's /etc/passwd so later steps can find the user.
type recorder struct {
	root string
	log  []string
}

func (r *recorder) Run(_ context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	line := name + " " + strings.Join(args, " ")
	if stdin != nil {
		line += fmt.Sprintf("  <stdin %q>", stdin)
	}
	r.log = append(r.log, line)
	if name == "useradd" {
		user := args[len(args)-1]
		home := "/home/" + user
		for i, a := range args {
			if a == "--home-dir" {
				home = args[i+1]
			}
		}
		p := filepath.Join(r.root, "etc/passwd")
		os.MkdirAll(filepath.Dir(p), 0o755)
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		fmt.Fprintf(f, "%s:x:%d:%d::%s:/bin/sh\n", user, 2000+len(r.log), 2000+len(r.log), home)
	}
	return nil, nil
}

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, args []string, env Env) result {
	t.Helper()
	var out, errb bytes.Buffer
	env.Stdout, env.Stderr = &out, &errb
	if env.Now == nil {
		env.Now = func() time.Time { return time.Date(2014, 12, 6, 14, 28, 56, 0, time.UTC) }
	}
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Hostname == nil {
		env.Hostname = func() (string, error) { return "testhost", nil }
	}
	if env.SelectTimeout == 0 {
		env.SelectTimeout = 2 * time.Second
	}
	code := Run(t.Context(), args, env)
	return result{code, out.String(), errb.String()}
}

// dumpTree lists every file, directory symlink under root: path, mode,
// owner when not root, content (or link target).
func dumpTree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root || d.IsDir() {
			return nil
		}
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		if strings.Contains(rel, "/scripts/") && !strings.HasSuffix(rel, "/unit-name") {
			rel = filepath.ToSlash(filepath.Dir(rel)) + "/<random>"
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			lines = append(lines, fmt.Sprintf("%s -> %s\n", rel, target))
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s%s\n", rel, plan.OctalMode(fi.Mode()), owner(fi))
		body := string(data)
		if strings.ContainsRune(body, 0) {
			fmt.Fprintf(&b, "    | <binary %d bytes>\n", len(data))
		} else if body != "" {
			for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
				fmt.Fprintf(&b, "    | %s\n", l)
			}
			if !strings.HasSuffix(body, "\n") {
				b.WriteString("    \\ no newline at end\n")
			}
		}
		lines = append(lines, b.String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "")
}

// TestGoldenApply runs each testdata/apply/*.txt case through Run twice:
// with --dry-run (the printed plan; the tree must stay untouched) and for
// real against a temporary root with no systemd behind it (files, modes,
// contents, symlinks, recorded useradd/chpasswd calls, log lines).
func TestGoldenApply(t *testing.T) {
	cases, err := filepath.Glob("../testdata/apply/*.txt")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, c := range cases {
		name := strings.TrimSuffix(filepath.Base(c), ".txt")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(c)
			if err != nil {
				t.Fatal(err)
			}
			ar := parseArchive(t, string(data))
			if _, ok := ar.files["needs-root"]; ok && os.Geteuid() != 0 {
				t.Skip("SKIP: this case chowns files and needs root")
			}
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, n := range ar.order {
				content := ar.files[n]
				switch {
				case n == "args" || n == "env" || n == "needs-root":
					continue
				case strings.HasSuffix(n, ".b64"):
					raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(content), ""))
					if err != nil {
						t.Fatalf("%s: %v", n, err)
					}
					content, n = string(raw), strings.TrimSuffix(n, ".b64")
				case strings.HasPrefix(n, "seed:"):
					raw, err := os.ReadFile(filepath.Join("../testdata/seeds", strings.TrimPrefix(n, "seed:")))
					if err != nil {
						t.Fatal(err)
					}
					content, n = string(raw), "user-data"
				}
				p := filepath.Join(dir, filepath.FromSlash(n))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := strings.Fields(strings.ReplaceAll(ar.files["args"], "$TMP", dir))
			if !strings.Contains(ar.files["args"], "--root") {
				args = append(args, "--root="+root)
			}
			envVars := map[string]string{}
			for _, l := range strings.Split(ar.files["env"], "\n") {
				if k, v, ok := strings.Cut(l, "="); ok {
					envVars[k] = v
				}
			}
			getenv := func(k string) string { return envVars[k] }
			before := dumpTree(t, root)

			rec := &recorder{root: root}
			dry := runCLI(t, append(append([]string(nil), args...), "--dry-run"), Env{Getenv: getenv, Runner: rec})
			if after := dumpTree(t, root); after != before {
				t.Errorf("--dry-run changed the root:\n%s", after)
			}
			if len(rec.log) > 0 {
				t.Errorf("--dry-run ran commands: %q", rec.log)
			}
			res := runCLI(t, args, Env{Getenv: getenv, Runner: rec})

			randomName := regexp.MustCompile(`/scripts/[0-9]+`)
			clean := func(s string) string {
				return randomName.ReplaceAllString(strings.ReplaceAll(s, dir, "$TMP"), "/scripts/<random>")
			}
			got := formatArchive(
				[]string{"exit", "stdout", "stderr", "dry-run exit", "dry-run stdout", "tree", "commands"},
				map[string]string{
					"exit":           fmt.Sprint(res.code),
					"stdout":         clean(res.stdout),
					"stderr":         clean(res.stderr),
					"dry-run exit":   fmt.Sprint(dry.code),
					"dry-run stdout": clean(dry.stdout),
					"tree":           clean(dumpTree(t, root)),
					"commands":       clean(strings.Join(rec.log, "\n")),
				})
			compareGolden(t, strings.TrimSuffix(c, ".txt")+".golden", got)
		})
	}
}

// TestGoldenValidate runs --validate (and --validate --strict) on each
// testdata/validate/*.yaml: report lines (sorted by line) and exit codes.
func TestGoldenValidate(t *testing.T) {
	cases, err := filepath.Glob("../testdata/validate/*.yaml")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	seeds, _ := filepath.Glob("../testdata/seeds/*user-data")
	cases = append(cases, seeds...)
	for _, c := range cases {
		name := filepath.Base(c)
		t.Run(name, func(t *testing.T) {
			res := runCLI(t, []string{"--from-file", c, "--validate"}, Env{})
			strict := runCLI(t, []string{"--from-file", c, "--validate", "--strict"}, Env{})
			var report []string
			for _, l := range strings.Split(res.stderr, "\n") {
				if _, rest, ok := strings.Cut(l, " line "); ok {
					report = append(report, "line "+rest)
				}
			}
			got := fmt.Sprintf("exit: %d\nexit with --strict: %d\n%s\n", res.code, strict.code, strings.Join(report, "\n"))
			golden := strings.TrimSuffix(c, filepath.Ext(c)) + ".golden"
			if strings.Contains(c, "seeds") {
				golden = filepath.Join("../testdata/validate", "seed-"+name+".golden")
			}
			compareGolden(t, golden, got)
		})
	}
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run with -update to accept):\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func owner(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || (st.Uid == 0 && st.Gid == 0) {
		return ""
	}
	return fmt.Sprintf(" owner=%d:%d", st.Uid, st.Gid)
}
