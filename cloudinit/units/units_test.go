package units

import (
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	m, err := Render("/opt/corekit/bin/coreos-cloudinit")
	if err != nil {
		t.Fatal(err)
	}
	svc := m["coreos-cloudinit.service"]
	if !strings.Contains(svc, "\nExecStart=/opt/corekit/bin/coreos-cloudinit --from-file="+UserDataPath+"\n") {
		t.Errorf("ExecStart not substituted:\n%s", svc)
	}
	if strings.Contains(svc, DefaultBinary) {
		t.Errorf("default binary still present:\n%s", svc)
	}
	if !strings.Contains(m["coreos-cloudinit.path"], "PathExists="+UserDataPath+"\n") {
		t.Errorf("path unit:\n%s", m["coreos-cloudinit.path"])
	}
	def, err := Render(DefaultBinary)
	if err != nil || !strings.Contains(def["coreos-cloudinit.service"], "ExecStart="+DefaultBinary+" ") {
		t.Errorf("default render: %v", err)
	}
	for _, bad := range []string{"relative/bin", "/with space/bin", ""} {
		if _, err := Render(bad); err == nil {
			t.Errorf("Render(%q) accepted", bad)
		}
	}
}
