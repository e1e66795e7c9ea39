package fleetregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/corekit/corekit/internal/unitfile"
	"github.com/corekit/corekit/internal/v2api"
	"github.com/corekit/corekit/internal/v2client"
)

// Registry reads and writes fleet's state below one key prefix. It is safe
// for concurrent use. Unit contents are content-addressed and immutable, so
// the registry caches them by hash and reads "unit/<hash>" only once.
type Registry struct {
	kv     KV
	prefix string

	mu       sync.Mutex
	contents map[unitfile.Hash]*unitfile.UnitFile
}

// New returns a Registry over kv below prefix ("" = DefaultPrefix).
func New(kv KV, prefix string) *Registry {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Registry{kv: kv, prefix: "/" + strings.Trim(prefix, "/"), contents: map[unitfile.Hash]*unitfile.UnitFile{}}
}

// NewEtcd returns a Registry stored in etcd through c.
func NewEtcd(c *v2client.Client, prefix string) *Registry { return New(NewEtcdKV(c), prefix) }

// NewInMemory returns a Registry over a fresh MemKV using clock now (nil =
// time.Now).
func NewInMemory(now func() time.Time) *Registry { return New(NewMemKV(now), "") }

// KV returns the store the registry uses.
func (r *Registry) KV() KV { return r.kv }

// Prefix returns the key prefix without a trailing slash.
func (r *Registry) Prefix() string { return r.prefix }

func (r *Registry) key(parts ...string) string {
	return path.Join(append([]string{r.prefix}, parts...)...)
}

// JobPrefix is the key below which every unit change happens (the tree the
// leading engine watches; agents do not, see ScheduleWakeKey).
func (r *Registry) JobPrefix() string { return r.key("job") }

// ScheduleWakeKey is machines/<id>/schedule, the per-machine wake-up key:
// the leading engine rewrites it (value: the store index of the job/ read
// its pass was based on) whenever a unit that concerns the machine changed,
// and the machine's agent watches only this key. See the package comment.
func (r *Registry) ScheduleWakeKey(machineID string) string {
	return r.key("machines", machineID, "schedule")
}

// WakeMachine rewrites machineID's schedule wake-up key so that its agent
// reconciles; index is informational (the job/ index the engine acted on).
func (r *Registry) WakeMachine(ctx context.Context, machineID string, index uint64) error {
	if _, err := r.kv.Set(ctx, r.ScheduleWakeKey(machineID), strconv.FormatUint(index, 10), SetOptions{}); err != nil {
		return fmt.Errorf("wake machine %s: %w", machineID, err)
	}
	return nil
}

// AbsentWakeTTL bounds how long the wake-up key of a machine that is not
// registered lives (see WakeAbsentMachine).
const AbsentWakeTTL = time.Hour

// WakeAbsentMachine rewrites the wake-up key of a machine whose presence
// has expired, with a TTL of AbsentWakeTTL. Such a machine may still run
// (partitioned, or its heartbeats lost): when it reaches the store again
// its agent's watch returns at once and it stops the units that were moved
// off it, instead of waiting for its next heartbeat to find it had been
// dropped. The TTL keeps keys of machines that are gone for good from
// piling up; a registered machine's wake-up (WakeMachine) clears it.
func (r *Registry) WakeAbsentMachine(ctx context.Context, machineID string, index uint64) error {
	if _, err := r.kv.Set(ctx, r.ScheduleWakeKey(machineID), strconv.FormatUint(index, 10), SetOptions{TTL: AbsentWakeTTL}); err != nil {
		return fmt.Errorf("wake absent machine %s: %w", machineID, err)
	}
	return nil
}

// ---- units ----

type jobObject struct {
	Name     string
	UnitHash unitfile.Hash
}

type unitContent struct {
	Raw string
}

// CreateUnit stores u's content and object and sets its target state
// (inactive when empty). An existing unit of that name is replaced, as
// fleet's create does; its schedule is left alone.
func (r *Registry) CreateUnit(ctx context.Context, u *Unit) error {
	if u.File == nil {
		return fmt.Errorf("create unit %s: no unit file", u.Name)
	}
	h := u.File.Hash()
	raw, _ := json.Marshal(unitContent{Raw: u.File.String()})
	if _, err := r.kv.Set(ctx, r.key("unit", h.String()), string(raw), SetOptions{PrevExist: v2client.PrevNoExist}); err != nil && errCode(err) != v2api.EcodeNodeExist {
		return fmt.Errorf("create unit %s: %w", u.Name, err)
	}
	obj, _ := json.Marshal(jobObject{Name: u.Name, UnitHash: h})
	if _, err := r.kv.Set(ctx, r.key("job", u.Name, "object"), string(obj), SetOptions{}); err != nil {
		return fmt.Errorf("create unit %s: %w", u.Name, err)
	}
	ts := u.TargetState
	if ts == "" {
		ts = StateInactive
	}
	if _, err := r.kv.Set(ctx, r.key("job", u.Name, "target-state"), string(ts), SetOptions{}); err != nil {
		return fmt.Errorf("create unit %s: %w", u.Name, err)
	}
	r.mu.Lock()
	r.contents[h] = u.File
	r.mu.Unlock()
	return nil
}

// DestroyUnit removes the unit (its whole job/<unit> directory). The content
// under unit/ stays, as in fleet. A missing unit is ErrUnitNotFound.
func (r *Registry) DestroyUnit(ctx context.Context, name string) error {
	err := r.kv.Delete(ctx, r.key("job", name), DeleteOptions{Recursive: true})
	if IsNotFound(err) {
		return ErrUnitNotFound
	}
	if err != nil {
		return fmt.Errorf("destroy unit %s: %w", name, err)
	}
	return nil
}

// SetUnitTargetState sets the desired state of an existing unit.
func (r *Registry) SetUnitTargetState(ctx context.Context, name string, ts TargetState) error {
	if _, err := ParseTargetState(string(ts)); err != nil {
		return err
	}
	_, err := r.kv.Set(ctx, r.key("job", name, "target-state"), string(ts), SetOptions{PrevExist: v2client.PrevExists})
	if IsNotFound(err) {
		return ErrUnitNotFound
	}
	if err != nil {
		return fmt.Errorf("set target state of %s: %w", name, err)
	}
	return nil
}

// Unit returns one unit, or ErrUnitNotFound.
func (r *Registry) Unit(ctx context.Context, name string) (*Unit, error) {
	n, _, err := r.kv.Get(ctx, r.key("job", name), true)
	if IsNotFound(err) {
		return nil, ErrUnitNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get unit %s: %w", name, err)
	}
	u, err := r.unitFromNode(ctx, n)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, ErrUnitNotFound
	}
	return u, nil
}

// Units returns every unit sorted by name, with its schedule, and the store
// index of the read (watch after it to see later changes). Units without an
// object or whose content is missing are skipped, as fleet does.
func (r *Registry) Units(ctx context.Context) ([]*Unit, uint64, error) {
	n, idx, err := r.kv.Get(ctx, r.key("job"), true)
	if IsNotFound(err) {
		var ve *v2api.Error
		errors.As(err, &ve)
		return nil, ve.Index, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("list units: %w", err)
	}
	var out []*Unit
	for _, c := range n.Nodes {
		u, err := r.unitFromNode(ctx, c)
		if err != nil {
			return nil, 0, err
		}
		if u != nil {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, idx, nil
}

func (r *Registry) unitFromNode(ctx context.Context, dir *v2api.Node) (*Unit, error) {
	if dir == nil || !dir.Dir {
		return nil, nil
	}
	u := &Unit{Name: path.Base(dir.Key), TargetState: StateInactive}
	var obj *jobObject
	for _, c := range dir.Nodes {
		switch path.Base(c.Key) {
		case "object":
			var o jobObject
			if err := json.Unmarshal([]byte(c.StringValue()), &o); err != nil {
				return nil, nil // unreadable objects are skipped like fleet does
			}
			obj = &o
		case "target-state":
			ts, err := ParseTargetState(c.StringValue())
			if err != nil {
				return nil, nil
			}
			u.TargetState = ts
		case "target":
			u.TargetMachine = c.StringValue()
		case "job-state":
			u.JobState = c.StringValue()
		case "reason":
			u.Reason = c.StringValue()
		}
	}
	if obj == nil {
		return nil, nil
	}
	f, err := r.content(ctx, obj.UnitHash)
	if err != nil || f == nil {
		return nil, err
	}
	u.File, u.Hash = f, obj.UnitHash
	return u, nil
}

// content returns the unit file stored under hash (cached), or nil.
func (r *Registry) content(ctx context.Context, h unitfile.Hash) (*unitfile.UnitFile, error) {
	r.mu.Lock()
	f, ok := r.contents[h]
	r.mu.Unlock()
	if ok {
		return f, nil
	}
	n, _, err := r.kv.Get(ctx, r.key("unit", h.String()), false)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get unit content %s: %w", h, err)
	}
	var c unitContent
	if err := json.Unmarshal([]byte(n.StringValue()), &c); err != nil {
		return nil, nil
	}
	f, err = unitfile.Parse(c.Raw)
	if err != nil {
		return nil, nil
	}
	r.mu.Lock()
	r.contents[h] = f
	r.mu.Unlock()
	return f, nil
}

// UnitChange is one change below job/.
type UnitChange struct {
	Index uint64
	// Unit is the unit's name; Field the key below it ("object",
	// "target-state", "target", "job-state"), or "" when the whole unit
	// directory was deleted.
	Unit, Field string
	Action      string
	// Value and PrevValue are the key's new and previous values.
	Value, PrevValue string
}

// WatchUnits blocks until something below job/ changes after index and
// returns that change. A *v2api.Error 401 (see ErrIsIndexCleared) means
// the history is gone: re-read with Units and watch from its index.
func (r *Registry) WatchUnits(ctx context.Context, after uint64) (UnitChange, error) {
	ev, err := r.kv.Watch(ctx, r.JobPrefix(), after)
	if err != nil {
		return UnitChange{}, err
	}
	ch := UnitChange{Index: ev.Index, Action: ev.Action, Value: ev.Value, PrevValue: ev.PrevValue}
	rest := strings.TrimPrefix(strings.TrimPrefix(ev.Key, r.JobPrefix()), "/")
	ch.Unit, ch.Field, _ = strings.Cut(rest, "/")
	return ch, nil
}

// ---- schedule ----

// ScheduleUnit assigns a unit to a machine (create-only, like fleet).
func (r *Registry) ScheduleUnit(ctx context.Context, name, machineID string) error {
	_, err := r.kv.Set(ctx, r.key("job", name, "target"), machineID, SetOptions{PrevExist: v2client.PrevNoExist})
	if errCode(err) == v2api.EcodeNodeExist {
		return ErrAlreadyScheduled
	}
	if err != nil {
		return fmt.Errorf("schedule %s to %s: %w", name, machineID, err)
	}
	return nil
}

// UnscheduleUnit removes the assignment if it still points to machineID.
func (r *Registry) UnscheduleUnit(ctx context.Context, name, machineID string) error {
	err := r.kv.Delete(ctx, r.key("job", name, "target"), DeleteOptions{PrevValue: machineID})
	if IsNotFound(err) || errCode(err) == v2api.EcodeTestFailed {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unschedule %s from %s: %w", name, machineID, err)
	}
	return nil
}

// SetUnitReason publishes why the engine cannot schedule a unit
// (job/<unit>/reason; fleet 1.0 only logged it and ignores the key).
// Reason "" removes it.
func (r *Registry) SetUnitReason(ctx context.Context, name, reason string) error {
	k := r.key("job", name, "reason")
	if reason == "" {
		if err := r.kv.Delete(ctx, k, DeleteOptions{}); err != nil && !IsNotFound(err) {
			return fmt.Errorf("clear reason of %s: %w", name, err)
		}
		return nil
	}
	if _, err := r.kv.Set(ctx, k, reason, SetOptions{}); err != nil {
		return fmt.Errorf("set reason of %s: %w", name, err)
	}
	return nil
}

// UnitHeartbeat writes the launched marker (job-state) of a unit; ttl 0
// makes it permanent. fleetd's agent writes it without a TTL when it starts
// a unit and deletes it when it stops or unloads it (fleet re-wrote it with
// a TTL every 24 s, which woke every job/ watcher once per unit and period).
func (r *Registry) UnitHeartbeat(ctx context.Context, name, machineID string, ttl time.Duration) error {
	if _, err := r.kv.Set(ctx, r.key("job", name, "job-state"), machineID, SetOptions{TTL: ttl}); err != nil {
		return fmt.Errorf("heartbeat %s: %w", name, err)
	}
	return nil
}

// ClearUnitHeartbeat deletes the launched heartbeat if machineID wrote it.
func (r *Registry) ClearUnitHeartbeat(ctx context.Context, name, machineID string) error {
	err := r.kv.Delete(ctx, r.key("job", name, "job-state"), DeleteOptions{PrevValue: machineID})
	if err != nil && !IsNotFound(err) && errCode(err) != v2api.EcodeTestFailed {
		return fmt.Errorf("clear heartbeat %s: %w", name, err)
	}
	return nil
}

// ---- unit states ----

// UnitStates returns every published state, sorted by unit then machine.
func (r *Registry) UnitStates(ctx context.Context) ([]UnitState, error) {
	n, _, err := r.kv.Get(ctx, r.key("states"), true)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list unit states: %w", err)
	}
	var out []UnitState
	for _, u := range n.Nodes {
		for _, m := range u.Nodes {
			var s UnitState
			if json.Unmarshal([]byte(m.StringValue()), &s) != nil {
				continue
			}
			s.UnitName = path.Base(u.Key)
			if s.MachineState.ID == "" {
				s.MachineState.ID = path.Base(m.Key)
			}
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].UnitName != out[j].UnitName {
			return out[i].UnitName < out[j].UnitName
		}
		return out[i].MachineID() < out[j].MachineID()
	})
	return out, nil
}

// SaveUnitState publishes a unit's systemd state from one machine (and the
// legacy state/<unit> copy). Empty hash or machine ID is refused, as fleet does.
func (r *Registry) SaveUnitState(ctx context.Context, s UnitState, ttl time.Duration) error {
	if s.UnitHash == "" || s.MachineID() == "" {
		return fmt.Errorf("refusing to save unit state of %s without hash or machine ID", s.UnitName)
	}
	s.MachineState = MachineState{ID: s.MachineID()}
	b, _ := json.Marshal(s)
	if _, err := r.kv.Set(ctx, r.key("states", s.UnitName, s.MachineID()), string(b), SetOptions{TTL: ttl}); err != nil {
		return fmt.Errorf("save unit state %s: %w", s.UnitName, err)
	}
	if _, err := r.kv.Set(ctx, r.key("state", s.UnitName), string(b), SetOptions{TTL: ttl}); err != nil {
		return fmt.Errorf("save unit state %s: %w", s.UnitName, err)
	}
	return nil
}

// RemoveUnitState removes the state one machine published for a unit (and
// the legacy copy if that machine wrote it last). Unlike fleet, other
// machines' states for the same unit stay.
func (r *Registry) RemoveUnitState(ctx context.Context, unit, machineID string) error {
	if err := r.kv.Delete(ctx, r.key("states", unit, machineID), DeleteOptions{}); err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove unit state %s: %w", unit, err)
	}
	n, _, err := r.kv.Get(ctx, r.key("state", unit), false)
	if err == nil {
		var s UnitState
		if json.Unmarshal([]byte(n.StringValue()), &s) == nil && s.MachineID() == machineID {
			_ = r.kv.Delete(ctx, r.key("state", unit), DeleteOptions{PrevIndex: n.ModifiedIndex})
		}
	}
	return nil
}

// ---- machines ----

// Machines returns the registered machines sorted by ID, with dynamic
// metadata overlaid on their published metadata ("" removes a key).
func (r *Registry) Machines(ctx context.Context) ([]MachineState, error) {
	n, _, err := r.kv.Get(ctx, r.key("machines"), true)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list machines: %w", err)
	}
	var out []MachineState
	for _, m := range n.Nodes {
		var ms *MachineState
		dyn := map[string]string{}
		for _, c := range m.Nodes {
			switch path.Base(c.Key) {
			case "object":
				var s MachineState
				if json.Unmarshal([]byte(c.StringValue()), &s) == nil {
					ms = &s
				}
			case "metadata":
				for _, kv := range c.Nodes {
					dyn[path.Base(kv.Key)] = kv.StringValue()
				}
			}
		}
		if ms == nil {
			continue
		}
		if len(dyn) > 0 {
			md := map[string]string{}
			for k, v := range ms.Metadata {
				md[k] = v
			}
			for k, v := range dyn {
				if v == "" {
					delete(md, k)
				} else {
					md[k] = v
				}
			}
			ms.Metadata = md
		}
		out = append(out, *ms)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// RegisterMachine announces ms with a TTL. owner identifies this fleetd's
// host (its boot ID): a restarted fleetd on the same host takes over its
// live record at once, while a live record of another owner is refused with
// ErrMachineIDInUse (two machines sharing a machine ID).
func (r *Registry) RegisterMachine(ctx context.Context, ms MachineState, owner string, ttl time.Duration) error {
	b, _ := json.Marshal(ms)
	okey := r.key("machines", ms.ID, "owner")
	_, err := r.kv.Set(ctx, okey, owner, SetOptions{PrevExist: v2client.PrevNoExist, TTL: ttl})
	if errCode(err) == v2api.EcodeNodeExist {
		_, err = r.kv.Set(ctx, okey, owner, SetOptions{PrevValue: owner, TTL: ttl})
		if errCode(err) == v2api.EcodeTestFailed {
			return fmt.Errorf("register machine %s: %w", ms.ID, ErrMachineIDInUse)
		}
	}
	if err != nil {
		return fmt.Errorf("register machine %s: %w", ms.ID, err)
	}
	if _, err := r.kv.Set(ctx, r.key("machines", ms.ID, "object"), string(b), SetOptions{TTL: ttl}); err != nil {
		return fmt.Errorf("register machine %s: %w", ms.ID, err)
	}
	return nil
}

// MachineHeartbeat refreshes a registration made with the same owner.
// ErrNotRegistered means the record expired (register again);
// ErrMachineIDInUse means another fleetd now holds the ID.
func (r *Registry) MachineHeartbeat(ctx context.Context, ms MachineState, owner string, ttl time.Duration) error {
	_, err := r.kv.Set(ctx, r.key("machines", ms.ID, "owner"), owner, SetOptions{PrevValue: owner, TTL: ttl})
	switch {
	case IsNotFound(err):
		return ErrNotRegistered
	case errCode(err) == v2api.EcodeTestFailed:
		return ErrMachineIDInUse
	case err != nil:
		return fmt.Errorf("machine heartbeat: %w", err)
	}
	b, _ := json.Marshal(ms)
	if _, err := r.kv.Set(ctx, r.key("machines", ms.ID, "object"), string(b), SetOptions{TTL: ttl}); err != nil {
		return fmt.Errorf("machine heartbeat: %w", err)
	}
	return nil
}

// RemoveMachine deletes the presence of machine id if owner holds it.
func (r *Registry) RemoveMachine(ctx context.Context, id, owner string) error {
	err := r.kv.Delete(ctx, r.key("machines", id, "owner"), DeleteOptions{PrevValue: owner})
	if err != nil {
		if IsNotFound(err) || errCode(err) == v2api.EcodeTestFailed {
			return nil
		}
		return fmt.Errorf("remove machine %s: %w", id, err)
	}
	if err := r.kv.Delete(ctx, r.key("machines", id, "object"), DeleteOptions{}); err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove machine %s: %w", id, err)
	}
	if err := r.kv.Delete(ctx, r.ScheduleWakeKey(id), DeleteOptions{}); err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove machine %s: %w", id, err)
	}
	return nil
}

// SetMachineMetadata sets dynamic metadata key of a machine; value "" is
// the tombstone that hides a configured key.
func (r *Registry) SetMachineMetadata(ctx context.Context, id, key, value string) error {
	if _, err := r.kv.Set(ctx, r.key("machines", id, "metadata", key), value, SetOptions{}); err != nil {
		return fmt.Errorf("set metadata %s of %s: %w", key, id, err)
	}
	return nil
}

// ---- lease and engine version ----

type leaseValue struct {
	MachineID string
	Version   int
}

func decodeLease(n *v2api.Node) *Lease {
	l := &Lease{Index: n.ModifiedIndex, TTL: n.TTL}
	var v leaseValue
	if err := json.Unmarshal([]byte(n.StringValue()), &v); err == nil {
		l.MachineID, l.Version = v.MachineID, v.Version
	} else {
		l.MachineID = n.StringValue() // a bare string is a version-0 lease
	}
	return l
}

// GetLease returns the lease called name, or nil when nobody holds it.
func (r *Registry) GetLease(ctx context.Context, name string) (*Lease, error) {
	n, _, err := r.kv.Get(ctx, r.key("lease", name), false)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get lease %s: %w", name, err)
	}
	return decodeLease(n), nil
}

// AcquireLease creates the lease for machineID; it returns nil, nil when
// somebody else already holds it.
func (r *Registry) AcquireLease(ctx context.Context, name, machineID string, version int, ttl time.Duration) (*Lease, error) {
	b, _ := json.Marshal(leaseValue{MachineID: machineID, Version: version})
	n, err := r.kv.Set(ctx, r.key("lease", name), string(b), SetOptions{PrevExist: v2client.PrevNoExist, TTL: ttl})
	if errCode(err) == v2api.EcodeNodeExist {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return decodeLease(n), nil
}

// RenewLease extends a held lease (compare-and-swap on its index, so a
// lease taken over in between is not overwritten: ErrLeaseLost).
func (r *Registry) RenewLease(ctx context.Context, name string, l *Lease, ttl time.Duration) (*Lease, error) {
	b, _ := json.Marshal(leaseValue{MachineID: l.MachineID, Version: l.Version})
	n, err := r.kv.Set(ctx, r.key("lease", name), string(b), SetOptions{PrevIndex: l.Index, TTL: ttl})
	if IsNotFound(err) || errCode(err) == v2api.EcodeTestFailed {
		return nil, ErrLeaseLost
	}
	if err != nil {
		return nil, fmt.Errorf("renew lease %s: %w", name, err)
	}
	return decodeLease(n), nil
}

// ReleaseLease deletes a held lease (compare-and-delete on its index).
func (r *Registry) ReleaseLease(ctx context.Context, name string, l *Lease) error {
	err := r.kv.Delete(ctx, r.key("lease", name), DeleteOptions{PrevIndex: l.Index})
	if err != nil && !IsNotFound(err) && errCode(err) != v2api.EcodeTestFailed {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// EngineVersion reads engine/version (0 when unset).
func (r *Registry) EngineVersion(ctx context.Context) (int, uint64, error) {
	n, _, err := r.kv.Get(ctx, r.key("engine", "version"), false)
	if IsNotFound(err) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("get engine version: %w", err)
	}
	v, err := strconv.Atoi(n.StringValue())
	if err != nil {
		return 0, n.ModifiedIndex, nil
	}
	return v, n.ModifiedIndex, nil
}

// EnsureEngineVersion raises engine/version to v if it is lower and
// returns the cluster's engine version afterwards, in one read when the
// version is already v or higher.
func (r *Registry) EnsureEngineVersion(ctx context.Context, v int) (int, error) {
	cur, idx, err := r.EngineVersion(ctx)
	if err != nil || cur >= v {
		return cur, err
	}
	o := SetOptions{PrevIndex: idx}
	if idx == 0 {
		o = SetOptions{PrevExist: v2client.PrevNoExist}
	}
	_, err = r.kv.Set(ctx, r.key("engine", "version"), strconv.Itoa(v), o)
	switch {
	case err == nil:
		return v, nil
	case errCode(err) == v2api.EcodeTestFailed || errCode(err) == v2api.EcodeNodeExist:
		cur, _, err = r.EngineVersion(ctx) // somebody else changed it: read theirs
		return cur, err
	default:
		return cur, fmt.Errorf("raise engine version: %w", err)
	}
}

// RaiseEngineVersion sets engine/version to v if it is lower (compare on
// the index read); a concurrent change is not an error.
func (r *Registry) RaiseEngineVersion(ctx context.Context, v int) error {
	cur, idx, err := r.EngineVersion(ctx)
	if err != nil || cur >= v {
		return err
	}
	o := SetOptions{PrevIndex: idx}
	if idx == 0 {
		o = SetOptions{PrevExist: v2client.PrevNoExist}
	}
	_, err = r.kv.Set(ctx, r.key("engine", "version"), strconv.Itoa(v), o)
	if err != nil && errCode(err) != v2api.EcodeTestFailed && errCode(err) != v2api.EcodeNodeExist {
		return fmt.Errorf("raise engine version: %w", err)
	}
	return nil
}

// ErrIsIndexCleared reports whether a watch error means "history gone".
func ErrIsIndexCleared(err error) bool { return errCode(err) == v2api.EcodeEventIndexCleared }

// FollowUnits calls f for every change below job/ until ctx ends. It
// watches with waitIndex, so no change is lost between calls; when the
// store's history no longer reaches back (or a watch fails) it re-reads
// and calls f with a zero UnitChange, meaning "anything may have changed".
func (r *Registry) FollowUnits(ctx context.Context, f func(UnitChange)) {
	r.FollowUnitsAfter(ctx, 0, f)
}

// FollowUnitsAfter is FollowUnits for a caller that has read job/ at store
// index after (0 = read it first and call f with a zero UnitChange).
func (r *Registry) FollowUnitsAfter(ctx context.Context, after uint64, f func(UnitChange)) {
	idx := after
	for ctx.Err() == nil {
		if idx == 0 {
			_, i, err := r.Units(ctx)
			if err != nil {
				pause(ctx, time.Second)
				continue
			}
			idx = i
			f(UnitChange{})
		}
		ch, err := r.WatchUnits(ctx, idx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if ErrIsIndexCleared(err) {
				idx = 0
			} else {
				pause(ctx, 250*time.Millisecond)
			}
			continue
		}
		idx = ch.Index
		f(ch)
	}
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// FollowScheduleWakeups calls wake whenever machineID's schedule wake-up key
// (ScheduleWakeKey) changes, until ctx ends: once after the first read of
// the key (a change may have come before), then once per change. It is
// the agent's only watch, so the agent makes no store request for changes
// that do not concern its machine. When the store's history no longer
// reaches back, it re-reads the key and calls wake only if the key changed
// since the last change seen.
func (r *Registry) FollowScheduleWakeups(ctx context.Context, machineID string, wake func()) {
	key := r.ScheduleWakeKey(machineID)
	var idx, seen uint64 // watch position; modifiedIndex of the last change seen
	known := false       // idx is valid (a fresh store's index may be 0)
	read := func() (changed bool) {
		n, i, err := r.kv.Get(ctx, key, false)
		var ve *v2api.Error
		switch {
		case err == nil:
			idx, known = max(i, n.ModifiedIndex), true
			if n.ModifiedIndex > seen {
				seen = n.ModifiedIndex
				return true
			}
		case errors.As(err, &ve) && ve.ErrorCode == v2api.EcodeKeyNotFound:
			idx, known = ve.Index, true
		}
		return false
	}
	first := true
	for ctx.Err() == nil {
		if !known {
			changed := read()
			if !known {
				pause(ctx, time.Second)
				continue
			}
			if changed || first {
				first = false
				wake()
			}
		}
		ev, err := r.kv.Watch(ctx, key, idx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if ErrIsIndexCleared(err) {
				known = false
			} else {
				pause(ctx, 250*time.Millisecond)
			}
			continue
		}
		idx, seen = ev.Index, ev.Index
		wake()
	}
}
