package testwait

import (
	"fmt"
	"testing"
	"time"
)

func TestForReturnsOnceTrue(t *testing.T) {
	n := 0
	For(t, "three calls", time.Second, time.Millisecond, func() (bool, string) {
		n++
		return n == 3, fmt.Sprint(n)
	})
	if n != 3 {
		t.Fatalf("calls: %d, want 3", n)
	}
}

// fatalRecorder records Fatalf instead of stopping the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
}

func TestForFailsWithLastDetail(t *testing.T) {
	r := &fatalRecorder{TB: t}
	For(r, "never", 20*time.Millisecond, time.Millisecond, func() (bool, string) { return false, "still no" })
	if want := "timed out after 20ms waiting for never (last: still no)"; r.msg != want {
		t.Fatalf("message %q, want %q", r.msg, want)
	}
}
