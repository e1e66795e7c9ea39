package etcdctlmain

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/corekit/corekit/internal/etcdtest"
)

// debianEtcdctl is Debian's etcdctl 3.4, run in its v2 mode: the ground
// truth for output bytes.
const debianEtcdctl = "/usr/bin/etcdctl"

func runDebian(ctx context.Context, stdin string, args ...string) result {
	cmd := exec.CommandContext(ctx, debianEtcdctl, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "ETCDCTL_API=2")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString("exec: " + err.Error())
	}
	return result{out.String(), errb.String(), code}
}

// TestMatchesDebianEtcdctl runs the key and member scripts with our
// etcdctl and with Debian's etcdctl (ETCDCTL_API=2), each against its own
// fresh reference server, and requires identical normalised bytes and exit
// codes. (Usage errors are excluded: there we deliberately differ, see
// README.md.)
func TestMatchesDebianEtcdctl(t *testing.T) {
	if _, err := os.Stat(debianEtcdctl); err != nil {
		t.Skipf("SKIP: %s not installed (apt-get install etcd-client); .ci/run installs it", debianEtcdctl)
	}
	clearEnv(t)
	for _, sc := range []struct {
		name  string
		steps []step
	}{{"keys", keySteps}, {"members", memberSteps}} {
		t.Run(sc.name, func(t *testing.T) {
			ours := transcript(t, etcdtest.Start(t, etcdtest.Reference), sc.steps, run)
			theirs := transcript(t, etcdtest.Start(t, etcdtest.Reference), sc.steps, runDebian)
			if ours != theirs {
				t.Errorf("our etcdctl differs from Debian's:\n%s", lineDiff(theirs, ours))
			}
		})
	}
}
