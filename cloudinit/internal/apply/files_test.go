package apply

import (
	"testing"

	"github.com/corekit/corekit/cloudinit/internal/config"
)

func TestEditEnv(t *testing.T) {
	for _, tc := range []struct {
		name, old, want string
		vars            config.Env
	}{
		{"new file, sorted", "", "A=1\nB=2\n", config.Env{ev("B", "2"), ev("A", "1")}},
		{"in place, others kept", "# c\nB=old\nX=y", "# c\nB=new\nX=y\nA=1\n", config.Env{ev("A", "1"), ev("B", "new")}},
		{"prefix is not a match", "GROUPX=1\nGROUP=a\n", "GROUPX=1\nGROUP=b\n", config.Env{ev("GROUP", "b")}},
		{"only the first line", "A=1\nA=2\n", "A=9\nA=2\n", config.Env{ev("A", "9")}},
	} {
		if got := string(EditEnv([]byte(tc.old), tc.vars)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func ev(name, value string) config.EnvVar { return config.EnvVar{Name: name, Value: value} }
