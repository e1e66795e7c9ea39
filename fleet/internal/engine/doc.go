// Package engine is fleetd's cluster scheduler. Plan (scheduler.go) is a
// pure function from a cluster Snapshot to schedule Decisions; Engine
// (engine.go) holds the leader lease in the registry, builds snapshots,
// applies decisions, wakes the agents of the machines they concern
// (machines/<id>/schedule) and, while it leads, reconciles on every change
// below job/ and on a timer.
package engine
