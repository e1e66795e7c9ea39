// Package api serves fleet's HTTP API v1 (/fleet/v1, alias /v1-alpha) over
// the registry: units, unit states and machines, with fleet's status codes,
// error JSON and page tokens. Handlers parse the request, call the registry
// and write one JSON answer (writeJSON / writeError).
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/unitfile"
)

// Handler serves the API.
type Handler struct {
	Registry *fleetregistry.Registry
	// TokenLimit is the page size (token_limit).
	TokenLimit uint16
	// Ready reports whether the machine is registered; until then every
	// request answers 503, as fleet does.
	Ready   func() bool
	Version string
	Logger  *slog.Logger
}

func (h *Handler) limit() uint16 {
	if h.TokenLimit == 0 {
		return fleetapi.DefaultTokenLimit
	}
	return h.TokenLimit
}

// ServeHTTP routes a request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "fleetd/"+h.Version)
	if h.Ready != nil && !h.Ready() {
		writeError(w, http.StatusServiceUnavailable, "fleet server unable to communicate with etcd")
		return
	}
	p := r.URL.Path
	var rest string
	switch {
	case strings.HasPrefix(p, fleetapi.BasePath+"/"):
		rest = strings.TrimPrefix(p, fleetapi.BasePath)
	case strings.HasPrefix(p, fleetapi.LegacyBasePath+"/"):
		rest = strings.TrimPrefix(p, fleetapi.LegacyBasePath)
	case p == "/" || p == fleetapi.BasePath || p == fleetapi.LegacyBasePath:
		writeError(w, http.StatusMethodNotAllowed, "")
		return
	default:
		writeError(w, http.StatusNotFound, "")
		return
	}
	switch {
	case rest == "/units":
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "only GET supported against this resource")
			return
		}
		h.listUnits(w, r)
	case strings.HasPrefix(rest, "/units/"):
		name := strings.TrimPrefix(rest, "/units/")
		if name == "" || strings.Contains(name, "/") {
			writeError(w, http.StatusNotFound, "")
			return
		}
		switch r.Method {
		case http.MethodGet:
			h.getUnit(w, r, name)
		case http.MethodPut:
			h.putUnit(w, r, name)
		case http.MethodDelete:
			h.deleteUnit(w, r, name)
		default:
			writeError(w, http.StatusMethodNotAllowed, "only GET, PUT and DELETE supported against this resource")
		}
	case rest == "/state":
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "only GET supported against this resource")
			return
		}
		h.listStates(w, r)
	case strings.HasPrefix(rest, "/state/"):
		name := strings.TrimPrefix(rest, "/state/")
		if name == "" || strings.Contains(name, "/") {
			writeError(w, http.StatusNotFound, "")
			return
		}
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "only GET supported against this resource")
			return
		}
		h.getState(w, r, name)
	case rest == "/machines":
		switch r.Method {
		case http.MethodGet:
			h.listMachines(w, r)
		case http.MethodPatch:
			h.patchMachines(w, r)
		default:
			writeError(w, http.StatusMethodNotAllowed, "only GET and PATCH supported against this resource")
		}
	case rest == "/discovery":
		if r.Method != http.MethodGet {
			writeError(w, http.StatusBadRequest, "only HTTP GET supported against this resource")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"kind": "discovery#restDescription", "name": "fleet", "version": "v1",
			"rootUrl": "$ENDPOINT/", "servicePath": "fleet/v1/"})
	default:
		writeError(w, http.StatusNotFound, "")
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, fleetapi.ErrorBody{Error: &fleetapi.Error{Code: code, Message: msg}})
}

func (h *Handler) internal(w http.ResponseWriter, err error) {
	if h.Logger != nil {
		h.Logger.Error("API request failed", "err", err)
	}
	writeError(w, http.StatusInternalServerError, "")
}

// page returns the [start, end) window of n items for the request's token
// and the next token ("" when the page is not full).
func (h *Handler) page(r *http.Request, n int) (int, int, string, error) {
	lim := h.limit()
	tok := fleetapi.PageToken{Limit: lim, Page: 1}
	if s := r.URL.Query().Get("nextPageToken"); s != "" {
		t, err := fleetapi.DecodePageToken(s, lim)
		if err != nil {
			return 0, 0, "", err
		}
		tok = t
	}
	start := int(tok.Page-1) * int(lim)
	if start > n {
		start = n
	}
	end := start + int(lim)
	next := ""
	if end <= n {
		next = fleetapi.PageToken{Limit: lim, Page: tok.Page + 1}.Encode()
	} else {
		end = n
	}
	return start, end, next, nil
}

func (h *Handler) apiUnits(ctx context.Context) ([]*fleetapi.Unit, error) {
	units, _, err := h.Registry.Units(ctx)
	if err != nil {
		return nil, err
	}
	states, err := h.Registry.UnitStates(ctx)
	if err != nil {
		return nil, err
	}
	has := map[string]bool{}
	for _, s := range states {
		has[s.UnitName+"\x00"+s.MachineID()] = true
	}
	out := make([]*fleetapi.Unit, 0, len(units))
	for _, u := range units {
		out = append(out, toAPIUnit(u, func(un, m string) bool { return has[un+"\x00"+m] }))
	}
	return out, nil
}

func toAPIUnit(u *fleetregistry.Unit, hasState func(string, string) bool) *fleetapi.Unit {
	au := &fleetapi.Unit{Name: u.Name, Options: fleetapi.OptionsOf(u.File), DesiredState: string(u.TargetState)}
	if !u.IsGlobal() {
		au.CurrentState = string(u.CurrentState(hasState))
		au.MachineID = u.TargetMachine
		if u.TargetMachine == "" && u.TargetState != fleetregistry.StateInactive {
			au.Reason = u.Reason // a stale reason of a placed unit is not shown
		}
	}
	return au
}

func (h *Handler) listUnits(w http.ResponseWriter, r *http.Request) {
	units, err := h.apiUnits(r.Context())
	if err != nil {
		h.internal(w, err)
		return
	}
	start, end, next, err := h.page(r, len(units))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, fleetapi.UnitPage{Units: units[start:end], NextPageToken: next})
}

func (h *Handler) getUnit(w http.ResponseWriter, r *http.Request, name string) {
	u, err := h.Registry.Unit(r.Context(), name)
	if errors.Is(err, fleetregistry.ErrUnitNotFound) {
		writeError(w, http.StatusNotFound, "unit does not exist")
		return
	}
	if err != nil {
		h.internal(w, err)
		return
	}
	states, err := h.Registry.UnitStates(r.Context())
	if err != nil {
		h.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIUnit(u, func(un, m string) bool {
		for _, s := range states {
			if s.UnitName == un && s.MachineID() == m {
				return true
			}
		}
		return false
	}))
}

func (h *Handler) putUnit(w http.ResponseWriter, r *http.Request, name string) {
	cts := r.Header.Values("Content-Type")
	if len(cts) != 1 {
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("expected 1 Content-Type, got %d", len(cts)))
		return
	}
	if mt, _, err := mime.ParseMediaType(cts[0]); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "only acceptable Content-Type is application/json")
		return
	}
	var body fleetapi.Unit
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "unable to decode body: "+err.Error())
		return
	}
	if body.Name == "" {
		body.Name = name
	} else if body.Name != name {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("name in URL %q differs from unit name in request body %q", name, body.Name))
		return
	}
	if err := unitfile.ValidateName(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var desired fleetregistry.TargetState
	if body.DesiredState != "" {
		ds, err := fleetregistry.ParseTargetState(body.DesiredState)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		desired = ds
		if unitfile.IsTemplate(name) && ds != fleetregistry.StateInactive {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("cannot activate template %q", name))
			return
		}
	}
	ctx := r.Context()
	cur, err := h.Registry.Unit(ctx, name)
	if err != nil && !errors.Is(err, fleetregistry.ErrUnitNotFound) {
		h.internal(w, err)
		return
	}
	if len(body.Options) > 0 {
		f := body.File()
		if cur == nil || cur.Hash != f.Hash() {
			// Validate on create and on replace (fleet skips the latter).
			if err := validateOptions(name, f); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			if err := h.Registry.CreateUnit(ctx, &fleetregistry.Unit{Name: name, File: f, TargetState: desired}); err != nil {
				h.internal(w, err)
				return
			}
			w.WriteHeader(http.StatusCreated)
			return
		}
	}
	if cur == nil {
		writeError(w, http.StatusConflict, "unit does not exist and options field empty")
		return
	}
	if desired == "" {
		writeError(w, http.StatusConflict, "must provide DesiredState to update existing unit")
		return
	}
	if err := h.Registry.SetUnitTargetState(ctx, name, desired); err != nil {
		h.internal(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// validateOptions checks that the options survive a parse round trip and
// that the [X-Fleet] combinations are allowed.
func validateOptions(name string, f *unitfile.UnitFile) error {
	text := f.String()
	back, err := unitfile.Parse(text)
	if err != nil {
		return err
	}
	if back.String() != text {
		return errors.New("unit options do not survive a parse round trip")
	}
	return f.Requirements(name).Validate()
}

func (h *Handler) deleteUnit(w http.ResponseWriter, r *http.Request, name string) {
	err := h.Registry.DestroyUnit(r.Context(), name)
	if errors.Is(err, fleetregistry.ErrUnitNotFound) {
		writeError(w, http.StatusNotFound, "unit does not exist")
		return
	}
	if err != nil {
		h.internal(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func toAPIState(s fleetregistry.UnitState) *fleetapi.UnitState {
	return &fleetapi.UnitState{Name: s.UnitName, Hash: s.UnitHash, MachineID: s.MachineID(),
		SystemdLoadState: s.LoadState, SystemdActiveState: s.ActiveState, SystemdSubState: s.SubState}
}

func (h *Handler) listStates(w http.ResponseWriter, r *http.Request) {
	states, err := h.Registry.UnitStates(r.Context())
	if err != nil {
		h.internal(w, err)
		return
	}
	q := r.URL.Query()
	mid, un := q.Get("machineID"), q.Get("unitName")
	var out []*fleetapi.UnitState
	for _, s := range states {
		if (mid == "" || s.MachineID() == mid) && (un == "" || s.UnitName == un) {
			out = append(out, toAPIState(s))
		}
	}
	start, end, next, err := h.page(r, len(out))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, fleetapi.UnitStatePage{States: out[start:end], NextPageToken: next})
}

func (h *Handler) getState(w http.ResponseWriter, r *http.Request, name string) {
	states, err := h.Registry.UnitStates(r.Context())
	if err != nil {
		h.internal(w, err)
		return
	}
	for _, s := range states {
		if s.UnitName == name {
			writeJSON(w, http.StatusOK, toAPIState(s))
			return
		}
	}
	writeError(w, http.StatusNotFound, "unit state does not exist")
}

func (h *Handler) listMachines(w http.ResponseWriter, r *http.Request) {
	ms, err := h.Registry.Machines(r.Context())
	if err != nil {
		h.internal(w, err)
		return
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	out := make([]*fleetapi.Machine, 0, len(ms))
	for _, m := range ms {
		out = append(out, &fleetapi.Machine{ID: m.ID, PrimaryIP: m.PublicIP, Metadata: m.Metadata})
	}
	start, end, next, err := h.page(r, len(out))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, fleetapi.MachinePage{Machines: out[start:end], NextPageToken: next})
}

var metadataPath = regexp.MustCompile(`^/([^/]+)/metadata/([A-Za-z0-9_.-]+)$`)

func (h *Handler) patchMachines(w http.ResponseWriter, r *http.Request) {
	var ops []fleetapi.MachineOp
	if err := json.NewDecoder(r.Body).Decode(&ops); err != nil {
		writeError(w, http.StatusBadRequest, "unable to decode body: "+err.Error())
		return
	}
	for _, op := range ops {
		switch op.Operation {
		case "add", "remove", "replace":
		default:
			writeError(w, http.StatusBadRequest, "invalid op: expect add, remove, or replace")
			return
		}
		if !metadataPath.MatchString(op.Path) {
			writeError(w, http.StatusBadRequest, "machine metadata path invalid")
			return
		}
		if op.Operation != "remove" && (op.Value == nil || op.Value.Value == "") {
			writeError(w, http.StatusBadRequest, "invalid value: add and replace require a value")
			return
		}
	}
	for _, op := range ops {
		m := metadataPath.FindStringSubmatch(op.Path)
		v := ""
		if op.Operation != "remove" {
			v = op.Value.Value
		}
		if err := h.Registry.SetMachineMetadata(r.Context(), m[1], m[2], v); err != nil {
			h.internal(w, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
