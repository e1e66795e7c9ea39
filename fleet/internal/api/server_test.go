package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/unitfile"
)

func newServer(t *testing.T, limit uint16) (*httptest.Server, *fleetregistry.Registry) {
	t.Helper()
	reg := fleetregistry.NewInMemory(nil)
	srv := httptest.NewServer(&Handler{Registry: reg, TokenLimit: limit, Version: "1.0.0"})
	t.Cleanup(srv.Close)
	return srv, reg
}

func do(t *testing.T, srv *httptest.Server, method, path, ctype, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Server") != "fleetd/1.0.0" {
		t.Errorf("Server header = %q", resp.Header.Get("Server"))
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

const okUnit = `{"options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}`

func errBody(code int, msg string) string {
	b, _ := json.Marshal(fleetapi.ErrorBody{Error: &fleetapi.Error{Code: code, Message: msg}})
	return string(b)
}

func TestUnitsAPI(t *testing.T) {
	srv, _ := newServer(t, 0)
	const j = "application/json"
	steps := []struct {
		method, path, ctype, body string
		code                      int
		want                      string // exact body ("" = empty)
	}{
		{"GET", "/fleet/v1/units", "", "", 200, "{}"},
		{"GET", "/fleet/v1/units/a.service", "", "", 404, errBody(404, "unit does not exist")},
		{"PUT", "/fleet/v1/units/a.service", "text/plain", okUnit, 415, errBody(415, "only acceptable Content-Type is application/json")},
		{"PUT", "/fleet/v1/units/a.service", "", okUnit, 415, errBody(415, "expected 1 Content-Type, got 0")},
		{"PUT", "/fleet/v1/units/a.service", j, "{", 400, ""},
		{"PUT", "/fleet/v1/units/a.service", j, `{"name":"b.service"}`, 400, errBody(400, `name in URL "a.service" differs from unit name in request body "b.service"`)},
		{"PUT", "/fleet/v1/units/a.bogus", j, okUnit, 400, errBody(400, `invalid unit type: "bogus"`)},
		{"PUT", "/fleet/v1/units/a.service", j, `{"desiredState":"launched"}`, 409, errBody(409, "unit does not exist and options field empty")},
		{"PUT", "/fleet/v1/units/a.service", j, `{"options":[{"section":"X-Fleet","name":"MachineID","value":"x"},{"section":"X-Fleet","name":"Global","value":"true"}]}`, 400, errBody(400, "MachineID cannot be used with Global")},
		{"PUT", "/fleet/v1/units/a.service", "application/json; charset=utf-8", okUnit, 201, ""},
		{"PUT", "/fleet/v1/units/a.service", j, `{}`, 409, errBody(409, "must provide DesiredState to update existing unit")},
		{"PUT", "/fleet/v1/units/a.service", j, `{"desiredState":"running"}`, 400, errBody(400, `invalid desired state "running": expect inactive, loaded or launched`)},
		{"PUT", "/fleet/v1/units/a.service", j, `{"desiredState":"launched"}`, 204, ""},
		{"GET", "/fleet/v1/units/a.service", "", "", 200, `{"name":"a.service","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}],"desiredState":"launched","currentState":"inactive"}`},
		{"PUT", "/fleet/v1/units/t@.service", j, okUnit, 201, ""},
		{"PUT", "/fleet/v1/units/t@.service", j, `{"desiredState":"launched"}`, 400, errBody(400, `cannot activate template "t@.service"`)},
		{"POST", "/fleet/v1/units", j, "", 405, errBody(405, "only GET supported against this resource")},
		{"POST", "/fleet/v1/units/a.service", j, "", 405, errBody(405, "only GET, PUT and DELETE supported against this resource")},
		{"GET", "/fleet/v1/units/a.service/", "", "", 404, errBody(404, "")},
		{"GET", "/fleet/v1", "", "", 405, errBody(405, "")},
		{"GET", "/nope", "", "", 404, errBody(404, "")},
		{"GET", "/v1-alpha/units/a.service", "", "", 200, ""},
		{"GET", "/fleet/v1/state/a.service", "", "", 404, errBody(404, "unit state does not exist")},
		{"DELETE", "/fleet/v1/units/a.service", "", "", 204, ""},
		{"DELETE", "/fleet/v1/units/a.service", "", "", 404, errBody(404, "unit does not exist")},
		{"POST", "/fleet/v1/discovery", "", "", 400, errBody(400, "only HTTP GET supported against this resource")},
	}
	for i, s := range steps {
		code, body := do(t, srv, s.method, s.path, s.ctype, s.body)
		if code != s.code {
			t.Fatalf("step %d %s %s: status %d want %d (%s)", i, s.method, s.path, code, s.code, body)
		}
		if s.want != "" && body != s.want {
			t.Fatalf("step %d %s %s: body\n%s\nwant\n%s", i, s.method, s.path, body, s.want)
		}
	}
}

func TestPaging(t *testing.T) {
	srv, reg := newServer(t, 2)
	ctx := context.Background()
	f, _ := unitfile.Parse("[Service]\nExecStart=/bin/true\n")
	for _, n := range []string{"a.service", "b.service", "c.service", "d.service"} {
		if err := reg.CreateUnit(ctx, &fleetregistry.Unit{Name: n, File: f}); err != nil {
			t.Fatal(err)
		}
	}
	if got := (fleetapi.PageToken{Limit: 100, Page: 2}).Encode(); got != "ZAACAA==" {
		t.Fatalf("token = %s", got)
	}
	var names []string
	tok := ""
	pages := 0
	for {
		code, body := do(t, srv, "GET", "/fleet/v1/units?nextPageToken="+tok, "", "")
		if code != 200 {
			t.Fatalf("page %d: %d %s", pages, code, body)
		}
		var p fleetapi.UnitPage
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatal(err)
		}
		pages++
		for _, u := range p.Units {
			names = append(names, u.Name)
		}
		if p.NextPageToken == "" {
			break
		}
		tok = p.NextPageToken
	}
	// 4 items at 2 per page: two full pages and fleet's extra empty page.
	if pages != 3 || strings.Join(names, ",") != "a.service,b.service,c.service,d.service" {
		t.Fatalf("pages=%d names=%v", pages, names)
	}
	bad := fleetapi.PageToken{Limit: 100, Page: 1}.Encode()
	if code, body := do(t, srv, "GET", "/fleet/v1/units?nextPageToken="+bad, "", ""); code != 400 || body != errBody(400, "token limit must be 2") {
		t.Fatalf("bad token: %d %s", code, body)
	}
	zero := fleetapi.PageToken{Limit: 2, Page: 0}.Encode()
	if code, body := do(t, srv, "GET", "/fleet/v1/units?nextPageToken="+zero, "", ""); code != 400 || body != errBody(400, "token page must be greater than zero") {
		t.Fatalf("zero page: %d %s", code, body)
	}
}

func TestMachinesAndStates(t *testing.T) {
	srv, reg := newServer(t, 0)
	ctx := context.Background()
	if err := reg.RegisterMachine(ctx, fleetregistry.MachineState{ID: "m1", PublicIP: "10.0.0.1", Metadata: map[string]string{"a": "1"}}, "o", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := reg.SaveUnitState(ctx, fleetregistry.UnitState{UnitName: "x.service", LoadState: "loaded", ActiveState: "active", SubState: "running", MachineState: fleetregistry.MachineState{ID: "m1"}, UnitHash: "abc"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, srv, "GET", "/fleet/v1/machines", "", ""); code != 200 || body != `{"machines":[{"id":"m1","primaryIP":"10.0.0.1","metadata":{"a":"1"}}]}` {
		t.Fatalf("machines: %d %s", code, body)
	}
	want := `{"states":[{"name":"x.service","hash":"abc","machineID":"m1","systemdLoadState":"loaded","systemdActiveState":"active","systemdSubState":"running"}]}`
	if code, body := do(t, srv, "GET", "/fleet/v1/state?machineID=m1", "", ""); code != 200 || body != want {
		t.Fatalf("states: %d %s", code, body)
	}
	if code, body := do(t, srv, "GET", "/fleet/v1/state?machineID=m2", "", ""); code != 200 || body != "{}" {
		t.Fatalf("filtered states: %d %s", code, body)
	}
	for body, want := range map[string]string{
		`[{"op":"move","path":"/m1/metadata/a","value":{"value":"2"}}]`: errBody(400, "invalid op: expect add, remove, or replace"),
		`[{"op":"add","path":"/m1/meta/a","value":{"value":"2"}}]`:      errBody(400, "machine metadata path invalid"),
		`[{"op":"add","path":"/m1/metadata/a"}]`:                        errBody(400, "invalid value: add and replace require a value"),
	} {
		if code, got := do(t, srv, "PATCH", "/fleet/v1/machines", "application/json", body); code != 400 || got != want {
			t.Errorf("PATCH %s: %d %s", body, code, got)
		}
	}
	if code, _ := do(t, srv, "PATCH", "/fleet/v1/machines", "application/json", `[{"op":"add","path":"/m1/metadata/b","value":{"value":"2"}},{"op":"remove","path":"/m1/metadata/a"}]`); code != 204 {
		t.Fatalf("PATCH: %d", code)
	}
	if _, body := do(t, srv, "GET", "/fleet/v1/machines", "", ""); body != `{"machines":[{"id":"m1","primaryIP":"10.0.0.1","metadata":{"b":"2"}}]}` {
		t.Fatalf("after PATCH: %s", body)
	}
}

func TestNotReady(t *testing.T) {
	h := &Handler{Registry: fleetregistry.NewInMemory(nil), Ready: func() bool { return false }, Version: "1.0.0"}
	srv := httptest.NewServer(h)
	defer srv.Close()
	if code, body := do(t, srv, "GET", "/fleet/v1/units", "", ""); code != 503 || body != errBody(503, "fleet server unable to communicate with etcd") {
		t.Fatalf("%d %s", code, body)
	}
}

// The engine's reason for an unschedulable unit is an additive field of the
// unit entity; it is not shown once the unit is placed.
func TestUnitReason(t *testing.T) {
	srv, reg := newServer(t, 0)
	ctx := context.Background()
	f, _ := unitfile.Parse("[Service]\nExecStart=/bin/true\n")
	if err := reg.CreateUnit(ctx, &fleetregistry.Unit{Name: "a.service", File: f, TargetState: fleetregistry.StateLaunched}); err != nil {
		t.Fatal(err)
	}
	if err := reg.SetUnitReason(ctx, "a.service", "zero agents available"); err != nil {
		t.Fatal(err)
	}
	want := `{"name":"a.service","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}],"desiredState":"launched","currentState":"inactive","reason":"zero agents available"}`
	if code, body := do(t, srv, "GET", "/fleet/v1/units/a.service", "", ""); code != 200 || body != want {
		t.Fatalf("GET = %d %s, want %s", code, body, want)
	}
	if code, body := do(t, srv, "GET", "/fleet/v1/units", "", ""); code != 200 || body != `{"units":[`+want+`]}` {
		t.Fatalf("GET units = %d %s", code, body)
	}
	if err := reg.ScheduleUnit(ctx, "a.service", "machine1"); err != nil {
		t.Fatal(err)
	}
	if _, body := do(t, srv, "GET", "/fleet/v1/units/a.service", "", ""); strings.Contains(body, "reason") {
		t.Fatalf("reason shown for a scheduled unit: %s", body)
	}
}
