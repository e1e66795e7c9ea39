// Package userdata prepares a user's cloud-config for one cluster without
// rewriting it: the discovery token is put in by editing the one line that
// holds it, so comments, quoting, key order and octal modes survive (the
// original coreos-vagrant config.rb round-tripped the file through a YAML
// library and lost all of them).
package userdata

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Header is the first line every cloud-config must start with.
const Header = "#cloud-config"

// Info is what the provider needs to know about a user-data file.
type Info struct {
	// EtcdSection is "etcd", "etcd2" or "" (no etcd configured).
	EtcdSection string
	// ClientPort is the etcd client port the machines advertise (from
	// etcd.addr or etcd2.advertise-client-urls; 2379 if not set).
	ClientPort int
	// Discovery is the discovery URL the file sets ("" if none).
	Discovery string
	// StartsEtcd and StartsFleet report `command: start` units.
	StartsEtcd, StartsFleet bool
}

// NeedsToken reports whether the file leaves the discovery URL to the
// provider: none set, or the sample's placeholder.
func (i Info) NeedsToken() bool {
	return i.EtcdSection != "" && (i.Discovery == "" || strings.Contains(i.Discovery, "<token>"))
}

type doc struct {
	Coreos struct {
		Etcd  map[string]any `yaml:"etcd"`
		Etcd2 map[string]any `yaml:"etcd2"`
		Units []struct {
			Name    string `yaml:"name"`
			Command string `yaml:"command"`
		} `yaml:"units"`
	} `yaml:"coreos"`
}

// Inspect checks that data is a cloud-config document and extracts Info.
func Inspect(data []byte) (Info, error) {
	first, _, _ := strings.Cut(string(data), "\n")
	if strings.TrimRight(first, "\r \t") != Header {
		return Info{}, fmt.Errorf("user-data: first line must be %q, got %q", Header, first)
	}
	var d doc
	if err := yaml.Unmarshal(data, &d); err != nil {
		return Info{}, fmt.Errorf("user-data: %w", err)
	}
	info := Info{ClientPort: 2379}
	var sec map[string]any
	switch {
	case d.Coreos.Etcd != nil:
		info.EtcdSection, sec = "etcd", d.Coreos.Etcd
	case d.Coreos.Etcd2 != nil:
		info.EtcdSection, sec = "etcd2", d.Coreos.Etcd2
	}
	if sec != nil {
		if p := clientPort(sec); p > 0 {
			info.ClientPort = p
		}
		info.Discovery, _ = lookup(sec, "discovery")
	}
	for _, u := range d.Coreos.Units {
		if u.Command != "start" && u.Command != "restart" {
			continue
		}
		switch u.Name {
		case "etcd.service", "etcd2.service":
			info.StartsEtcd = true
		case "fleet.service":
			info.StartsFleet = true
		}
	}
	return info, nil
}

func lookup(sec map[string]any, key string) (string, bool) {
	for _, k := range []string{key, strings.ReplaceAll(key, "-", "_")} {
		if v, ok := sec[k]; ok {
			if s, ok := v.(string); ok {
				return s, true
			}
		}
	}
	return "", false
}

func clientPort(sec map[string]any) int {
	if s, ok := lookup(sec, "advertise-client-urls"); ok {
		first, _, _ := strings.Cut(s, ",")
		first = strings.ReplaceAll(first, "$public_ipv4", "127.0.0.1")
		first = strings.ReplaceAll(first, "$private_ipv4", "127.0.0.1")
		if u, err := url.Parse(strings.TrimSpace(first)); err == nil {
			if p, err := strconv.Atoi(u.Port()); err == nil {
				return p
			}
		}
	}
	if s, ok := lookup(sec, "addr"); ok {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			if p, err := strconv.Atoi(s[i+1:]); err == nil {
				return p
			}
		}
	}
	return 0
}

// ErrNoEtcd is returned by SetDiscovery when the document has no
// coreos.etcd or coreos.etcd2 section to put the token in.
var ErrNoEtcd = errors.New("user-data: no coreos.etcd or coreos.etcd2 section to put the discovery URL in")

// SetDiscovery returns data with the discovery URL of the coreos.etcd (or
// etcd2) section set to discoveryURL. Only that one line changes: an
// existing `discovery:` line (also a commented-out `# discovery:` line) gets
// the new value; without one, a line is inserted as the section's first key.
// Every other byte of data is kept.
func SetDiscovery(data []byte, discoveryURL string) ([]byte, error) {
	if strings.ContainsAny(discoveryURL, "\n\r\"'#") || discoveryURL == "" {
		return nil, fmt.Errorf("user-data: bad discovery URL %q", discoveryURL)
	}
	lines := strings.SplitAfter(string(data), "\n")
	coreosAt := -1
	secAt, secIndent := -1, -1
	childIndent := -1
	realAt, commentAt := -1, -1
scan:
	for i, raw := range lines {
		line := strings.TrimRight(raw, "\r\n")
		trimmed := strings.TrimLeft(line, " ")
		ind := len(line) - len(trimmed)
		if trimmed == "" {
			continue
		}
		isComment := strings.HasPrefix(trimmed, "#")
		switch {
		case coreosAt < 0:
			if !isComment && ind == 0 && keyIs(trimmed, "coreos") {
				coreosAt = i
			}
		case secAt < 0:
			if isComment {
				continue
			}
			if ind == 0 {
				break scan // left the coreos mapping
			}
			if keyIs(trimmed, "etcd") || keyIs(trimmed, "etcd2") {
				secAt, secIndent = i, ind
			}
		default:
			if !isComment && ind <= secIndent {
				break scan // left the etcd mapping
			}
			if isComment {
				body := strings.TrimLeft(strings.TrimPrefix(trimmed, "#"), " ")
				if keyIs(body, "discovery") && commentAt < 0 {
					commentAt = i
				}
				continue
			}
			if childIndent < 0 {
				childIndent = ind
			}
			if ind == childIndent && keyIs(trimmed, "discovery") {
				realAt = i
				break scan
			}
		}
	}
	if secAt < 0 {
		return nil, ErrNoEtcd
	}
	discAt := realAt
	if discAt < 0 {
		discAt = commentAt
	}
	if childIndent < 0 {
		childIndent = secIndent + 2
	}
	eol := "\n"
	if strings.HasSuffix(lines[secAt], "\r\n") {
		eol = "\r\n"
	}
	if discAt >= 0 {
		line := strings.TrimRight(lines[discAt], "\r\n")
		ind := len(line) - len(strings.TrimLeft(line, " "))
		if strings.HasPrefix(strings.TrimLeft(line, " "), "#") {
			ind = childIndent
		}
		nl := eol
		if !strings.HasSuffix(lines[discAt], "\n") {
			nl = ""
		}
		lines[discAt] = strings.Repeat(" ", ind) + "discovery: " + discoveryURL + nl
		return []byte(strings.Join(lines, "")), nil
	}
	ins := strings.Repeat(" ", childIndent) + "discovery: " + discoveryURL + eol
	if !strings.HasSuffix(lines[secAt], "\n") {
		lines[secAt] += eol
	}
	out := append([]string{}, lines[:secAt+1]...)
	out = append(out, ins)
	out = append(out, lines[secAt+1:]...)
	return []byte(strings.Join(out, "")), nil
}

// keyIs reports whether a YAML line (without indentation) starts the
// mapping key k ("k:" followed by nothing, a space or a comment).
func keyIs(trimmed, k string) bool {
	rest, ok := strings.CutPrefix(trimmed, k+":")
	return ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t')
}
