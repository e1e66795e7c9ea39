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
//	job/<unit>/job-state     machine ID, TTL agent_ttl (launched heartbeat)
//	unit/<sha1 hex>          {"Raw":"<canonical unit text>"} (content-addressed)
//	machines/<id>/object     {"ID","PublicIP","Metadata","Capabilities","Version"}, TTL
//	machines/<id>/owner      session token of the fleetd holding the ID, TTL (ours)
//	machines/<id>/metadata/<key>  dynamic metadata ("" hides a config key)
//	states/<unit>/<machine>  {"loadState","activeState","subState","machineState","unitHash"}, TTL
//	state/<unit>             legacy copy of the last published state, TTL
//	lease/<name>             {"MachineID":"<id>","Version":1}, TTL
//	engine/version           "1"
//
// A Registry runs over a KV: NewEtcd uses a real store through
// internal/v2client, NewInMemory an in-process MemKV. Both pass the same
// conformance tests (registry_test.go). Start reading at registry.go.
package fleetregistry
