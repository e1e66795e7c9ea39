package command

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/corekit/corekit/fleetctl/internal/client"
	"github.com/corekit/corekit/fleetctl/internal/format"
	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/unitfile"
)

// diagnose explains why no machine can run unit u, or returns "" when at
// least one machine could (the engine just has not placed it yet). It
// applies fleet's eligibility rules (MachineID, MachineMetadata, MachineOf,
// Conflicts) to the machines and schedule the client sees.
//
// It is the fallback for a fleetd that does not publish the engine's own
// reason (fleetapi.Unit.Reason); see README.md ("Unschedulable units").
func diagnose(ctx context.Context, api client.API, u *fleetapi.Unit) (string, error) {
	ms, err := api.Machines(ctx)
	if err != nil {
		return "", err
	}
	if len(ms) == 0 {
		return "no machines are registered in the cluster", nil
	}
	units, err := api.Units(ctx)
	if err != nil {
		return "", err
	}
	req := u.File().Requirements(u.Name)
	// units placed on each machine (desired state not inactive)
	on := map[string][]*fleetapi.Unit{}
	byName := map[string]*fleetapi.Unit{}
	for _, o := range units {
		byName[o.Name] = o
		if o.MachineID != "" && o.DesiredState != "inactive" && o.Name != u.Name {
			on[o.MachineID] = append(on[o.MachineID], o)
		}
	}
	var whys []string
	same := true
	first := ""
	for i, m := range ms {
		why := ineligible(u.Name, req, m, on[m.ID], byName)
		if why == "" {
			return "", nil
		}
		if i == 0 {
			first = why
		}
		same = same && why == first
		whys = append(whys, format.MachineIDLegend(m.ID, false)+" "+why)
	}
	if req.MachineID != "" {
		return fmt.Sprintf("MachineID=%s matches no registered machine", req.MachineID), nil
	}
	if same {
		return fmt.Sprintf("no machine can run it: every machine (%d) %s", len(ms), first), nil
	}
	sort.Strings(whys)
	return "no machine can run it (" + strings.Join(whys, "; ") + ")", nil
}

// ineligible is why unit name cannot run on m ("" when it can).
func ineligible(name string, req unitfile.Requirements, m *fleetapi.Machine, there []*fleetapi.Unit, all map[string]*fleetapi.Unit) string {
	if req.MachineID != "" && req.MachineID != m.ID && req.MachineID != format.ShortID(m.ID) {
		return "is not MachineID " + req.MachineID
	}
	if ok, why := req.MetadataMatches(m.Metadata); !ok {
		return "lacks " + strings.TrimSuffix(why, " required")
	}
	for _, peer := range req.MachineOf {
		p := all[peer]
		if p == nil {
			return fmt.Sprintf("does not run MachineOf peer %s (not submitted)", peer)
		}
		if p.MachineID != m.ID || p.DesiredState == "inactive" {
			return "does not run MachineOf peer " + peer
		}
	}
	for _, o := range there {
		oreq := o.File().Requirements(o.Name)
		if req.ConflictsWith(o.Name) || oreq.ConflictsWith(name) {
			return "runs conflicting unit " + o.Name
		}
	}
	return ""
}
