package v2http

import (
	"context"
	"sync"

	"github.com/corekit/corekit/etcd/internal/etcdserver"
	"github.com/corekit/corekit/internal/v2api"
)

// fakeServer is an in-memory etcdserver.Server for the HTTP layer's unit
// tests: it records requests and answers with canned values. It has no key
// space; the conformance suite tests the real server.
type fakeServer struct {
	mu          sync.Mutex
	reqs        []etcdserver.Request
	do          func(etcdserver.Request) (etcdserver.Response, error)
	index       uint64
	members     []v2api.Member
	leader      uint64
	noLead      bool
	healthy     bool
	addErr      error
	rmErr       error
	updErr      error
	added       [][]string
	leaderStats []byte
}

func (f *fakeServer) Do(_ context.Context, r etcdserver.Request) (etcdserver.Response, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	do := f.do
	f.mu.Unlock()
	if do == nil {
		v := "v"
		return etcdserver.Response{Event: &v2api.Event{Action: "get", Node: &v2api.Node{Key: r.Path, Value: &v, ModifiedIndex: 3, CreatedIndex: 3}}, EtcdIndex: 7, RaftIndex: 11, RaftTerm: 2}, nil
	}
	return do(r)
}

func (f *fakeServer) lastRequest() etcdserver.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeServer) Index() uint64     { return f.index }
func (f *fakeServer) ID() uint64        { return 0xbdae9bbc11dd390d }
func (f *fakeServer) ClusterID() uint64 { return 0x0d1cfaf999eb97a2 }
func (f *fakeServer) Leader() (uint64, bool) {
	return f.leader, !f.noLead
}
func (f *fakeServer) Members() []v2api.Member { return f.members }
func (f *fakeServer) AddMember(_ context.Context, urls []string) (v2api.Member, error) {
	f.added = append(f.added, urls)
	if f.addErr != nil {
		return v2api.Member{}, f.addErr
	}
	return v2api.Member{ID: "1234", PeerURLs: urls}, nil
}
func (f *fakeServer) RemoveMember(context.Context, uint64) error           { return f.rmErr }
func (f *fakeServer) UpdateMember(context.Context, uint64, []string) error { return f.updErr }
func (f *fakeServer) SelfStats() []byte                                    { return []byte(`{"name":"default"}`) }
func (f *fakeServer) LeaderStats() ([]byte, bool)                          { return f.leaderStats, f.leaderStats != nil }
func (f *fakeServer) StoreStats() []byte                                   { return []byte(`{"getsSuccess":1}`) }
func (f *fakeServer) Healthy(context.Context) bool                         { return f.healthy }

var _ etcdserver.Server = (*fakeServer)(nil)
