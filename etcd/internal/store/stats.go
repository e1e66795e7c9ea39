package store

import (
	"encoding/json"
	"sync/atomic"
)

// Stats is the body of /v2/stats/store, with etcd's field names in etcd's
// order. Write counters count applied operations (so every member counts
// them), get counters count reads this member served. Counters live in memory
// only: they are not part of Save and survive Recovery unchanged.
type Stats struct {
	GetSuccess              uint64 `json:"getsSuccess"`
	GetFail                 uint64 `json:"getsFail"`
	SetSuccess              uint64 `json:"setsSuccess"`
	SetFail                 uint64 `json:"setsFail"`
	DeleteSuccess           uint64 `json:"deleteSuccess"`
	DeleteFail              uint64 `json:"deleteFail"`
	UpdateSuccess           uint64 `json:"updateSuccess"`
	UpdateFail              uint64 `json:"updateFail"`
	CreateSuccess           uint64 `json:"createSuccess"`
	CreateFail              uint64 `json:"createFail"`
	CompareAndSwapSuccess   uint64 `json:"compareAndSwapSuccess"`
	CompareAndSwapFail      uint64 `json:"compareAndSwapFail"`
	CompareAndDeleteSuccess uint64 `json:"compareAndDeleteSuccess"`
	CompareAndDeleteFail    uint64 `json:"compareAndDeleteFail"`
	ExpireCount             uint64 `json:"expireCount"`
	Watchers                uint64 `json:"watchers"`
}

// counters are the live Stats counters. Gets are counted under the read
// lock, hence atomics.
type counters struct {
	getSuccess, getFail                           atomic.Uint64
	setSuccess, setFail                           atomic.Uint64
	deleteSuccess, deleteFail                     atomic.Uint64
	updateSuccess, updateFail                     atomic.Uint64
	createSuccess, createFail                     atomic.Uint64
	compareAndSwapSuccess, compareAndSwapFail     atomic.Uint64
	compareAndDeleteSuccess, compareAndDeleteFail atomic.Uint64
	expireCount                                   atomic.Uint64
}

// count bumps ok or fail depending on err.
func count(err error, ok, fail *atomic.Uint64) {
	if err == nil {
		ok.Add(1)
	} else {
		fail.Add(1)
	}
}

func (c *counters) snapshot() Stats {
	return Stats{
		GetSuccess:              c.getSuccess.Load(),
		GetFail:                 c.getFail.Load(),
		SetSuccess:              c.setSuccess.Load(),
		SetFail:                 c.setFail.Load(),
		DeleteSuccess:           c.deleteSuccess.Load(),
		DeleteFail:              c.deleteFail.Load(),
		UpdateSuccess:           c.updateSuccess.Load(),
		UpdateFail:              c.updateFail.Load(),
		CreateSuccess:           c.createSuccess.Load(),
		CreateFail:              c.createFail.Load(),
		CompareAndSwapSuccess:   c.compareAndSwapSuccess.Load(),
		CompareAndSwapFail:      c.compareAndSwapFail.Load(),
		CompareAndDeleteSuccess: c.compareAndDeleteSuccess.Load(),
		CompareAndDeleteFail:    c.compareAndDeleteFail.Load(),
		ExpireCount:             c.expireCount.Load(),
	}
}

func (c *counters) copyFrom(o *counters) {
	s := o.snapshot()
	c.getSuccess.Store(s.GetSuccess)
	c.getFail.Store(s.GetFail)
	c.setSuccess.Store(s.SetSuccess)
	c.setFail.Store(s.SetFail)
	c.deleteSuccess.Store(s.DeleteSuccess)
	c.deleteFail.Store(s.DeleteFail)
	c.updateSuccess.Store(s.UpdateSuccess)
	c.updateFail.Store(s.UpdateFail)
	c.createSuccess.Store(s.CreateSuccess)
	c.createFail.Store(s.CreateFail)
	c.compareAndSwapSuccess.Store(s.CompareAndSwapSuccess)
	c.compareAndSwapFail.Store(s.CompareAndSwapFail)
	c.compareAndDeleteSuccess.Store(s.CompareAndDeleteSuccess)
	c.compareAndDeleteFail.Store(s.CompareAndDeleteFail)
	c.expireCount.Store(s.ExpireCount)
}

// Stats returns a snapshot of the store's counters; Watchers is the number of
// live registered watchers.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.stats.snapshot()
	st.Watchers = uint64(s.hub.count)
	return st
}

// JSONStats returns the /v2/stats/store body (no trailing newline).
func (s *Store) JSONStats() []byte {
	b, err := json.Marshal(s.Stats())
	if err != nil { // a struct of integers always encodes
		panic("store: encoding stats: " + err.Error())
	}
	return b
}
