// Package fleetregistry is fleet's state in the store: units, their desired
// and scheduled state, machine presence, published systemd unit states and
// the engine leader lease, in coreos/fleet's key layout and JSON shapes so
// that fleet-aware tools can read it.
//
// Key layout below the prefix (default "/_coreos.com/fleet/"):
//
//	job/<unit>/object        {"Name":"<unit>","UnitHash":[20 numbers]}
//	job/<unit>/target-state  inactive | loaded | launched
//	job/<unit>/target        machine ID (engine; create-only / compare-and-delete)
//	job/<unit>/job-state     machine ID of the agent that started the unit (no TTL, see below)
//	job/<unit>/reason        why the engine cannot place the unit (ours)
//	unit/<sha1 hex>          {"Raw":"<canonical unit text>"} (content-addressed)
//	machines/<id>/object     {"ID","PublicIP","Metadata","Capabilities","Version"}, TTL
//	machines/<id>/owner      session token of the fleetd holding the ID, TTL (ours)
//	machines/<id>/schedule   per-machine wake-up: store index, rewritten by the engine (ours)
//	machines/<id>/metadata/<key>  dynamic metadata ("" hides a config key)
//	states/<unit>/<machine>  {"loadState","activeState","subState","machineState","unitHash"}, TTL
//	state/<unit>             legacy copy of the last published state, TTL
//	lease/<name>             {"MachineID":"<id>","Version":1}, TTL
//	engine/version           "1"
//
// # Who watches what (per-machine wake-ups)
//
// fleet 1.0 had two watchers per fleetd (engine and agent) on all of job/,
// so every change below job/ — every schedule, and every unit's launched
// heartbeat every 24 s — cost one long-poll per watcher: machines × changes.
// Here:
//
//   - Only the engine that holds the leader lease watches job/ (with
//     waitIndex, FollowUnitsAfter). Engines that do not lead watch nothing;
//     they read the lease on their timer.
//   - After each pass the leading engine compares every unit's content hash,
//     desired state, target machine and globalness, and every machine's
//     metadata, with what it saw in its previous pass, and rewrites
//     machines/<id>/schedule (WakeMachine) once for each registered machine
//     concerned: the old and new target of a changed unit, every machine for
//     a changed global unit, a machine whose metadata changed. A pass that
//     applies a thousand decisions to three machines writes three wake-ups
//     (plus three every 500 ms while such a long pass runs, so agents start
//     early). On gaining the lease it wakes the targets of every unit once.
//   - Each agent watches only its own machines/<id>/schedule
//     (FollowScheduleWakeups), plus its reconcile timer. Its store requests
//     therefore do not grow with changes to other machines' units. A change
//     made by anybody (API, fleetctl's etcd driver, another tool) reaches the
//     agent through the engine's job/ watch; with no engine leading (e.g.
//     every fleetd has disable_engine), or a leader that does not write
//     wake-ups (fleet 1.0, an older fleetd), agents fall back to their
//     reconcile timer (5 s).
//   - job/<unit>/job-state is written without a TTL when an agent starts a
//     unit and deleted (compare-and-delete on the machine ID) when it stops
//     or unloads it, not re-written as a periodic TTL heartbeat, so nothing
//     below job/ changes while the cluster is idle. The derived current state
//     is unchanged for fleet-aware tools: "launched" still needs job-state ==
//     target and a published states/<unit>/<target>, and those states keep
//     their TTL, so a dead machine's units stop counting when they expire.
//     The agent repairs a missing or stale job-state of a unit it runs from
//     the job/ read of its reconcile pass (no extra request).
//   - Unit states (states/, state/) are re-published with their TTL as in
//     fleet; nobody watches them.
//
// machines/<id>/schedule has no TTL: it is deleted with the machine's
// presence (RemoveMachine) and otherwise stays, like fleet's dynamic
// metadata; Machines skips machine directories without an object.
//
// A Registry runs over a KV: NewEtcd uses a real store through
// internal/v2client, NewInMemory an in-process MemKV. Both pass the same
// conformance tests (registry_test.go). Start reading at registry.go.
package fleetregistry
