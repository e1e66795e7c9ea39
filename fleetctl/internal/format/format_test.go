package format

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/unitfile"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func unit(t *testing.T, name, text, desired, current, machine string) *fleetapi.Unit {
	t.Helper()
	f, err := unitfile.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return &fleetapi.Unit{Name: name, Options: fleetapi.OptionsOf(f), DesiredState: desired, CurrentState: current, MachineID: machine}
}

func TestLegends(t *testing.T) {
	for _, tc := range []struct {
		id, ip string
		full   bool
		want   string
	}{
		{"0acdd9bf5e0c4c1cbd2b5f1a7e0f7a11", "10.0.2.15", false, "0acdd9bf.../10.0.2.15"},
		{"0acdd9bf5e0c4c1cbd2b5f1a7e0f7a11", "10.0.2.15", true, "0acdd9bf5e0c4c1cbd2b5f1a7e0f7a11/10.0.2.15"},
		{"0acdd9bf5e0c4c1cbd2b5f1a7e0f7a11", "", false, "0acdd9bf..."},
		{"short", "1.2.3.4", false, "short.../1.2.3.4"}, // fleet appends ... even to short IDs
	} {
		if got := MachineLegend(tc.id, tc.ip, tc.full); got != tc.want {
			t.Errorf("MachineLegend(%q,%q,%v) = %q, want %q", tc.id, tc.ip, tc.full, got, tc.want)
		}
	}
	if got := Metadata(map[string]string{"z": "1", "a": "2"}); got != "a=2,z=1" {
		t.Errorf("Metadata = %q", got)
	}
	if got := Metadata(nil); got != "-" {
		t.Errorf("empty Metadata = %q", got)
	}
}

func TestParseFields(t *testing.T) {
	if _, err := ParseFields("", UnitStateFields); !errors.Is(err, ErrNoFields) || err.Error() != "Must define output format" {
		t.Errorf("empty: %v", err)
	}
	_, err := ParseFields("unit,bogus", UnitStateFields)
	var fe *FieldError
	if !errors.As(err, &fe) || err.Error() != `Invalid key in output format: "bogus"` {
		t.Errorf("bogus: %v", err)
	}
	cols, err := ParseFields("sub,unit", UnitStateFields)
	if err != nil || len(cols) != 2 || cols[0] != "sub" {
		t.Errorf("cols %v %v", cols, err)
	}
}

func TestExpandTabs(t *testing.T) {
	got := string(ExpandTabs([]byte("UNIT\t\tMACHINE\nhello.service\t0acdd9bf...\n")))
	want := "UNIT            MACHINE\nhello.service   0acdd9bf...\n"
	if got != want {
		t.Errorf("got %q want %q", got, want)
	}
}

// TestTablesGolden prints every table in every mode into
// testdata/tables.golden.
func TestTablesGolden(t *testing.T) {
	machines := []*fleetapi.Machine{
		{ID: "0acdd9bf5e0c4c1cbd2b5f1a7e0f7a11", PrimaryIP: "10.0.2.15"},
		{ID: "113f16a7a9a34c5f8a0c5b6f4d3e2c22", PrimaryIP: "172.17.8.103", Metadata: map[string]string{"role": "web", "az": "b"}},
		{ID: "c3c1", Metadata: map[string]string{}},
	}
	idx := Machines(machines)
	units := []*fleetapi.Unit{
		unit(t, "hello.service", "[Unit]\nDescription=Hello World\n[Service]\nExecStart=/bin/true\n", "launched", "launched", machines[0].ID),
		unit(t, "global.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n", "launched", "", ""),
		unit(t, "idle.service", "[Service]\nExecStart=/bin/true\n", "inactive", "inactive", ""),
		unit(t, "gone.service", "[Service]\nExecStart=/bin/false\n", "loaded", "loaded", "deadbeefdeadbeef"),
	}
	states := []*fleetapi.UnitState{
		{Name: "global.service", Hash: UnitHash(units[1]), MachineID: machines[0].ID, SystemdLoadState: "loaded", SystemdActiveState: "active", SystemdSubState: "running"},
		{Name: "global.service", Hash: UnitHash(units[1]), MachineID: machines[1].ID, SystemdLoadState: "loaded", SystemdActiveState: "failed", SystemdSubState: "failed"},
		{Name: "gone.service", Hash: UnitHash(units[3]), MachineID: "deadbeefdeadbeef", SystemdLoadState: "loaded", SystemdActiveState: "inactive", SystemdSubState: "dead"},
		{Name: "hello.service", MachineID: machines[0].ID, SystemdLoadState: "loaded", SystemdActiveState: "activating", SystemdSubState: "start-pre"},
	}
	var buf bytes.Buffer
	for _, o := range []Options{{}, {Full: true}, {NoLegend: true}, {TTY: true}, {TTY: true, Full: true}} {
		fmt.Fprintf(&buf, "==== options %+v\n", o)
		for _, spec := range []string{DefaultUnitFields, "unit,hash,load,active,sub,machine"} {
			cols, _ := ParseFields(spec, UnitStateFields)
			fmt.Fprintf(&buf, "-- list-units --fields=%s\n%s", spec, UnitStates(states, idx, cols, o))
		}
		for _, spec := range []string{DefaultUnitFileFields, "unit,desc,global,tmachine"} {
			cols, _ := ParseFields(spec, UnitFileFields)
			fmt.Fprintf(&buf, "-- list-unit-files --fields=%s\n%s", spec, UnitFiles(units, idx, cols, o))
		}
		cols, _ := ParseFields(DefaultMachineFields, MachineFields)
		fmt.Fprintf(&buf, "-- list-machines\n%s", MachineList(machines, cols, o))
	}
	path := filepath.Join("testdata", "tables.golden")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(want, buf.Bytes()) {
		t.Errorf("tables differ from %s (rerun with -update after checking):\n%s", path, buf.String())
	}
}
