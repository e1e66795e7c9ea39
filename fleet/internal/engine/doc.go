// Package engine is fleetd's cluster scheduler. Plan (scheduler.go) is a
// pure function from a cluster Snapshot to schedule Decisions; Engine
// (engine.go) holds the leader lease in the registry, builds snapshots,
// applies decisions and reconciles on every registry change and on a timer.
package engine
