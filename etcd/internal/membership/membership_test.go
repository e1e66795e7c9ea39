package membership

import "testing"

// The reference values are what etcd prints for a default single member
// (peer URL http://localhost:2380, token etcd-cluster): member 8e9e05c52164694d
// in cluster cdf818194e3a8c32.
func TestIDsMatchEtcd(t *testing.T) {
	m := NewMember("default", []string{"http://localhost:2380"}, "etcd-cluster", nil)
	if got := IDString(m.ID); got != "8e9e05c52164694d" {
		t.Errorf("member ID = %s, want 8e9e05c52164694d", got)
	}
	if got := IDString(ClusterID([]uint64{m.ID})); got != "cdf818194e3a8c32" {
		t.Errorf("cluster ID = %s, want cdf818194e3a8c32", got)
	}
	// URL order does not matter.
	a := NewMember("x", []string{"http://b:2", "http://a:1"}, "t", nil)
	b := NewMember("x", []string{"http://a:1", "http://b:2"}, "t", nil)
	if a.ID != b.ID {
		t.Error("member ID depends on URL order")
	}
	if ClusterID([]uint64{1, 2}) != ClusterID([]uint64{2, 1}) {
		t.Error("cluster ID depends on member order")
	}
}

func TestParseInitialCluster(t *testing.T) {
	ic, err := ParseInitialCluster("default=http://localhost:2380,default=http://localhost:7001,b=http://10.0.0.2:2380")
	if err != nil {
		t.Fatal(err)
	}
	if len(ic.Names) != 2 || len(ic.URLs["default"]) != 2 {
		t.Fatalf("got %+v", ic)
	}
	if got := len(ic.Members("etcd-cluster")); got != 2 {
		t.Fatalf("members = %d", got)
	}
	for _, bad := range []string{"", "noequals", "=http://a:1", "a=ftp://x:1", "a=http://nohost", "a=http://a:1/path"} {
		if _, err := ParseInitialCluster(bad); err == nil {
			t.Errorf("ParseInitialCluster(%q): want error", bad)
		}
	}
}
