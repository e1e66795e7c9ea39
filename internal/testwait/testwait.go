// Package testwait polls a condition in tests until it holds or a deadline
// passes, so that tests wait for what they need instead of sleeping.
package testwait

import (
	"testing"
	"time"
)

// For calls f every interval until it returns true or d has passed, then
// fails t with what and the last detail f returned.
func For(t testing.TB, what string, d, interval time.Duration, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for {
		ok, s := f()
		if ok {
			return
		}
		last = s
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last: %s)", d, what, last)
			return
		}
		time.Sleep(interval)
	}
}
