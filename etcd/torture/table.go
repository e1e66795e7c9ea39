package torture

import (
	"fmt"
	"strings"
)

// Table renders results as a Markdown table: per fault kind, the runs that
// injected it, how often, and the runs among them that failed; then totals.
func Table(results []*Result) string {
	var b strings.Builder
	b.WriteString("| fault | runs with it | injections | failed runs | lost writes |\n|---|---|---|---|---|\n")
	for _, k := range KnownFaults {
		if !hasAny(AllFaults, []string{k}) && !injected(results, k) {
			continue // the optional kinds get a row only when used
		}
		var runs, inj, failed, lost int
		for _, r := range results {
			if r.Faults[k] == 0 {
				continue
			}
			runs++
			inj += r.Faults[k]
			lost += r.LostWrites
			if r.Failed() {
				failed++
			}
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d |\n", k, runs, inj, failed, lost)
	}
	var ops, unknown, failed, lost, illegal, unknownVerdict, watchEv, gaps, ttl int
	sizes := map[int]int{}
	var dur float64
	for _, r := range results {
		ops += r.Ops
		unknown += r.Unknown
		lost += r.LostWrites
		watchEv += r.WatchEvents
		gaps += r.WatchGaps
		ttl += r.TTLKeys
		sizes[r.Members]++
		dur += r.Duration.Seconds()
		if r.Failed() {
			failed++
		}
		switch r.Linearizable {
		case "Illegal":
			illegal++
		case "Unknown":
			unknownVerdict++
		}
	}
	fmt.Fprintf(&b, "| **all** | %d (3 members: %d, 5 members: %d; %.0f s of faults) | | %d | %d |\n",
		len(results), sizes[3], sizes[5], dur, failed, lost)
	fmt.Fprintf(&b, "\nops %d (unknown outcome %d), non-linearizable runs %d, checker timeouts %d, watch events %d, 401 recoveries %d, TTL keys %d\n",
		ops, unknown, illegal, unknownVerdict, watchEv, gaps, ttl)
	return b.String()
}

func injected(results []*Result, kind string) bool {
	for _, r := range results {
		if r.Faults[kind] > 0 {
			return true
		}
	}
	return false
}
