package config

import (
	"sort"
	"strings"
)

// Variables returns the four substitution variable names (without "$"), in
// the order they are documented. The slice is fresh on every call.
func Variables() []string {
	return []string{"public_ipv4", "private_ipv4", "public_ipv6", "private_ipv6"}
}

// EnvName returns the /etc/environment (and process environment) name that
// carries variable v: public_ipv4 → COREOS_PUBLIC_IPV4.
func EnvName(v string) string { return "COREOS_" + strings.ToUpper(v) }

// Substitute replaces $public_ipv4, $private_ipv4, $public_ipv6 and
// $private_ipv6 in text with values from vals, scanning once left to right.
//
// Differences from coreos-cloudinit v1.14, on purpose: a token must end at a
// word boundary ($private_ipv4x is left alone), tokens directly after one
// another are all replaced, and a token whose value is missing or empty is an
// error entry naming its line instead of silently becoming "". Escapes work
// as before: one backslash right before a token is removed and the token is
// kept literally (\$public_ipv4 → $public_ipv4, \\$public_ipv4 → \$public_ipv4).
func Substitute(text string, vals map[string]string) (string, Report) {
	var rep Report
	b := make([]byte, 0, len(text))
	names := Variables()
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	line := 1
	reported := map[[2]any]bool{}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '\n' {
			line++
		}
		if c != '$' {
			b = append(b, c)
			continue
		}
		name := ""
		for _, n := range names {
			if strings.HasPrefix(text[i+1:], n) && !isWordByte(text, i+1+len(n)) {
				name = n
				break
			}
		}
		if name == "" {
			b = append(b, c)
			continue
		}
		if i > 0 && text[i-1] == '\\' {
			// Escaped: drop the one backslash already written, keep the token.
			b = append(b[:len(b)-1], '$')
			b = append(b, name...)
			i += len(name)
			continue
		}
		v := vals[name]
		if v == "" {
			key := [2]any{line, name}
			if !reported[key] {
				reported[key] = true
				rep.add(Error, line, "$%s has no value (set --%s, %s in /etc/environment, or provide it through metadata)",
					name, strings.ReplaceAll(name, "_", "-"), EnvName(name))
			}
		}
		b = append(b, v...)
		i += len(name)
	}
	return string(b), rep
}

func isWordByte(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	c := s[i]
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
