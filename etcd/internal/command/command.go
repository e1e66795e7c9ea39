// Package command defines the replicated commands of an etcd member: the
// values that travel through the raft log and that the FSM applies to the
// store, one store method per command.
//
// An encoded command is one type byte followed by a JSON payload. The type
// byte's high bit (IgnoreUnknown) tells an older member that it may skip a
// command type it does not know instead of failing, so that later versions can
// add commands during a rolling upgrade. Payload field names are part of the
// log format: testdata/*.golden pins every encoding, and changing one is a
// format change that needs a new type.
//
// Times are carried as Unix nanoseconds (0 = none) so that encodings are
// exact and independent of time zones.
package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Type identifies a command in the log. Values are permanent.
type Type uint8

// IgnoreUnknown is or-ed into a Type whose command an older member may skip.
const IgnoreUnknown Type = 0x80

// Command types. Never renumber; add new ones at the end.
const (
	TypeSet              Type = 1
	TypeCreate           Type = 2
	TypeUpdate           Type = 3
	TypeCompareAndSwap   Type = 4
	TypeDelete           Type = 5
	TypeCompareAndDelete Type = 6
	TypeExpire           Type = 7
	TypeGet              Type = 8  // quorum read through the log (unused by default)
	TypeMembers          Type = 9  // replace the member list (part 2 groundwork)
	TypeMemberAttrs      Type = 10 // a member publishes its name and client URLs
)

// ErrUnknown is returned by Decode for a type this version does not know and
// that does not carry IgnoreUnknown.
var ErrUnknown = errors.New("command: unknown command type")

// ErrIgnored is returned by Decode for an unknown type that carries
// IgnoreUnknown: the caller skips the entry.
var ErrIgnored = errors.New("command: unknown command type marked ignorable")

// Command is one replicated operation.
type Command interface {
	// Type is the command's type byte.
	Type() Type
}

// Set is store.Set: create or replace Key.
type Set struct {
	Key     string `json:"key"`
	Dir     bool   `json:"dir,omitempty"`
	Value   string `json:"value,omitempty"`
	Expire  int64  `json:"expire,omitempty"` // absolute, Unix ns; 0 = permanent
	Refresh bool   `json:"refresh,omitempty"`
}

// Create is store.Create; Unique makes Key a directory in which a new
// in-order node is created (POST).
type Create struct {
	Key    string `json:"key"`
	Dir    bool   `json:"dir,omitempty"`
	Value  string `json:"value,omitempty"`
	Unique bool   `json:"unique,omitempty"`
	Expire int64  `json:"expire,omitempty"`
}

// Update is store.Update.
type Update struct {
	Key     string `json:"key"`
	Value   string `json:"value,omitempty"`
	Expire  int64  `json:"expire,omitempty"`
	Refresh bool   `json:"refresh,omitempty"`
}

// CompareAndSwap is store.CompareAndSwap.
type CompareAndSwap struct {
	Key       string `json:"key"`
	PrevValue string `json:"prevValue,omitempty"`
	PrevIndex uint64 `json:"prevIndex,omitempty"`
	Value     string `json:"value,omitempty"`
	Expire    int64  `json:"expire,omitempty"`
	Refresh   bool   `json:"refresh,omitempty"`
}

// Delete is store.Delete.
type Delete struct {
	Key       string `json:"key"`
	Dir       bool   `json:"dir,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
}

// CompareAndDelete is store.CompareAndDelete.
type CompareAndDelete struct {
	Key       string `json:"key"`
	PrevValue string `json:"prevValue,omitempty"`
	PrevIndex uint64 `json:"prevIndex,omitempty"`
}

// Expire is store.DeleteExpiredKeys with the leader's clock reading.
type Expire struct {
	Cutoff int64 `json:"cutoff"` // Unix ns
}

// Get is a quorum read applied through the log (etcd's QGET).
type Get struct {
	Key       string `json:"key"`
	Recursive bool   `json:"recursive,omitempty"`
	Sorted    bool   `json:"sorted,omitempty"`
}

// Member is one cluster member as replicated in Members.
type Member struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
}

// Members replaces the replicated member list (attributes published by
// members, additions and removals).
type Members struct {
	Members []Member `json:"members"`
	Removed []uint64 `json:"removed,omitempty"`
}

// MemberAttrs is a member publishing its name and client URLs (etcd's
// publish to /0/members/<id>/attributes).
type MemberAttrs struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name"`
	ClientURLs []string `json:"clientURLs"`
}

func (MemberAttrs) Type() Type      { return TypeMemberAttrs | IgnoreUnknown }
func (Set) Type() Type              { return TypeSet }
func (Create) Type() Type           { return TypeCreate }
func (Update) Type() Type           { return TypeUpdate }
func (CompareAndSwap) Type() Type   { return TypeCompareAndSwap }
func (Delete) Type() Type           { return TypeDelete }
func (CompareAndDelete) Type() Type { return TypeCompareAndDelete }
func (Expire) Type() Type           { return TypeExpire }
func (Get) Type() Type              { return TypeGet }
func (Members) Type() Type          { return TypeMembers | IgnoreUnknown }

// Encode returns c's log encoding: type byte, then JSON.
func Encode(c Command) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("command: encode %T: %w", c, err)
	}
	out := make([]byte, 0, len(b)+1)
	out = append(out, byte(c.Type()))
	return append(out, b...), nil
}

// Decode parses an encoding made by Encode. The returned Command is a value
// (Set, not *Set).
func Decode(b []byte) (Command, error) {
	if len(b) == 0 {
		return nil, errors.New("command: empty entry")
	}
	t := Type(b[0])
	var c Command
	var err error
	switch t &^ IgnoreUnknown {
	case TypeSet:
		c, err = decode[Set](b[1:])
	case TypeCreate:
		c, err = decode[Create](b[1:])
	case TypeUpdate:
		c, err = decode[Update](b[1:])
	case TypeCompareAndSwap:
		c, err = decode[CompareAndSwap](b[1:])
	case TypeDelete:
		c, err = decode[Delete](b[1:])
	case TypeCompareAndDelete:
		c, err = decode[CompareAndDelete](b[1:])
	case TypeExpire:
		c, err = decode[Expire](b[1:])
	case TypeGet:
		c, err = decode[Get](b[1:])
	case TypeMembers:
		c, err = decode[Members](b[1:])
	case TypeMemberAttrs:
		c, err = decode[MemberAttrs](b[1:])
	default:
		if t&IgnoreUnknown != 0 {
			return nil, fmt.Errorf("%w: 0x%02x", ErrIgnored, byte(t))
		}
		return nil, fmt.Errorf("%w: 0x%02x", ErrUnknown, byte(t))
	}
	if err != nil {
		return nil, fmt.Errorf("command: decode type 0x%02x: %w", byte(t), err)
	}
	return c, nil
}

func decode[T Command](b []byte) (Command, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// UnixNano converts t to the wire form: 0 for the zero time.
func UnixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Time converts the wire form back: the zero time for 0.
func Time(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
