package raftnode

import (
	"math"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestFollowerStatsLatency(t *testing.T) {
	f := FollowerStats{Min: 1 << 63}
	for _, ms := range []int{2, 4, 4, 4, 5, 5, 7, 9} {
		f.succ(time.Duration(ms) * time.Millisecond)
	}
	f.Fail++
	if f.Success != 8 || f.Fail != 1 || f.Min != 2 || f.Max != 9 || f.Current != 9 || f.Average != 5 {
		t.Errorf("stats = %+v", f)
	}
	if math.Abs(f.StdDev-2) > 1e-9 { // population standard deviation
		t.Errorf("stddev = %v, want 2", f.StdDev)
	}
}

func TestRateWindow(t *testing.T) {
	var w rateWindow
	t0 := time.Unix(1000, 0)
	if p, b := w.rates(t0); p != 0 || b != 0 {
		t.Errorf("empty window rates %v %v", p, b)
	}
	// 300 samples of 100 bytes, 10 ms apart: the window keeps the last 200.
	for i := 0; i < 300; i++ {
		w.add(t0.Add(time.Duration(i)*10*time.Millisecond), 100)
	}
	last := t0.Add(299 * 10 * time.Millisecond)
	p, b := w.rates(last)
	// 200 samples over 199 intervals of 10 ms.
	if want := 200 / 1.99; math.Abs(p-want) > 1e-6 || math.Abs(b-want*100) > 1e-3 {
		t.Errorf("rates = %v pkg/s %v B/s, want %v and %v", p, b, want, want*100)
	}
	if p, _ := w.rates(last.Add(2 * time.Second)); p != 0 {
		t.Errorf("rate %v after 2 s of silence, want 0", p)
	}
}

func TestAppendStatsCounts(t *testing.T) {
	s := &AppendStats{followers: map[raft.ServerID]*FollowerStats{}}
	req := &raft.AppendEntriesRequest{Entries: []*raft.Log{{Data: make([]byte, 10)}}}
	s.sentTo(req)
	s.sentTo(req)
	s.result("a", time.Millisecond, true)
	s.result("a", 0, false)
	s.received(req)
	sent, recv, _, _, _, _ := s.Self()
	if sent != 2 || recv != 1 {
		t.Errorf("sent %d recv %d, want 2 and 1", sent, recv)
	}
	f := s.Followers()["a"]
	if f.Success != 1 || f.Fail != 1 || f.Current != 1 {
		t.Errorf("follower a = %+v", f)
	}
}
