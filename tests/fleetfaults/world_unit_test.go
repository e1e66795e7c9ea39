package fleetfaults

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// testWorld is the real unit set of testdata/units on the real metadata.
func testWorld(t *testing.T) world {
	t.Helper()
	units, err := loadUnits("testdata/units")
	if err != nil {
		t.Fatal(err)
	}
	return world{units: units, meta: metadataFor(3)}
}

// placement is an exactly-once state on all three machines.
func placement() map[string][]string {
	return map[string][]string{
		"core-01": {"ff-plain-1.service", "ff-plain-2.service", "ff-conflict-1.service", "ff-ssd-1.service", "ff-global.service"},
		"core-02": {"ff-plain-3.service", "ff-plain-4.service", "ff-conflict-2.service", "ff-ssd-2.service", "ff-global.service"},
		"core-03": {"ff-plain-5.service", "ff-plain-6.service", "ff-pinned.service", "ff-global.service"},
	}
}

func TestUnitSet(t *testing.T) {
	w := testWorld(t)
	if len(w.units) != 12 {
		t.Fatalf("%d units in testdata/units, want 12", len(w.units))
	}
	var global, conflicts, meta int
	for _, u := range w.units {
		if !strings.Contains(u.Text, "/var/lib/fleetfaults/starts.log") {
			t.Errorf("%s does not record its starts", u.Name)
		}
		switch {
		case u.Req.Global:
			global++
		case len(u.Req.Conflicts) > 0:
			conflicts++
		case len(u.Req.Metadata) > 0:
			meta++
		}
	}
	if global != 1 || conflicts != 2 || meta != 3 {
		t.Errorf("global %d, conflicting %d, with metadata %d; want 1, 2, 3", global, conflicts, meta)
	}
	pinned, _ := w.unit("ff-pinned.service")
	if w.allowed(pinned, "core-01") || !w.allowed(pinned, "core-03") {
		t.Error("ff-pinned.service: allowed only on core-03")
	}
	ssd, _ := w.unit("ff-ssd-1.service")
	if !w.allowed(ssd, "core-02") || w.allowed(ssd, "core-03") {
		t.Error("ff-ssd-1.service: allowed on disk=ssd machines only")
	}
}

func TestExactlyOnceAndMissing(t *testing.T) {
	w := testWorld(t)
	all := []string{"core-01", "core-02", "core-03"}
	s := sample{Active: placement()}
	if e := w.exact(s, all); len(e) != 0 {
		t.Fatalf("exact placement reported: %v", e)
	}
	// core-03 gone: its plain units must run elsewhere, the pinned one cannot.
	down := sample{Active: placement()}
	delete(down.Active, "core-03")
	got := w.missing(down, all[:2])
	if want := []string{"ff-plain-5.service", "ff-plain-6.service"}; !slices.Equal(got, want) {
		t.Errorf("missing with core-03 down = %v, want %v", got, want)
	}
	// With core-03 live but not running the global unit, that copy is missing.
	s3 := sample{Active: placement()}
	s3.Active["core-03"] = []string{"ff-plain-5.service", "ff-plain-6.service", "ff-pinned.service"}
	if got := w.missing(s3, all); !slices.Equal(got, []string{"ff-global.service@core-03"}) {
		t.Errorf("missing = %v", got)
	}
	// A duplicate is not exactly-once, though nothing is missing.
	dup := sample{Active: placement()}
	dup.Active["core-01"] = append(dup.Active["core-01"], "ff-plain-5.service")
	if len(w.missing(dup, all)) != 0 {
		t.Error("duplicate reported as missing")
	}
	if e := w.exact(dup, all); len(e) != 1 || !strings.Contains(e[0], "ff-plain-5.service active on 2 machines") {
		t.Errorf("exact with a duplicate = %v", e)
	}
	// Units on a machine outside the live set (partitioned) break exactness.
	if e := w.exact(s, all[:2]); len(e) == 0 {
		t.Error("units on a non-live machine not reported")
	}
}

func TestMovable(t *testing.T) {
	w := testWorld(t)
	s := sample{Active: placement()}
	if !w.movable(s, "core-01") || !w.movable(s, "core-03") {
		t.Error("core-01 and core-03 run plain units: movable")
	}
	s.Active["core-03"] = []string{"ff-pinned.service", "ff-global.service"}
	if w.movable(s, "core-03") {
		t.Error("core-03 with only its pinned and the global unit: nothing can move")
	}
}

func TestDisallowed(t *testing.T) {
	w := testWorld(t)
	s := sample{Active: placement()}
	s.Active["core-03"] = append(s.Active["core-03"], "ff-ssd-1.service")
	s.Active["core-01"] = append(s.Active["core-01"], "ff-conflict-2.service")
	got := w.disallowed(s)
	want := []string{
		"ff-conflict-1.service and ff-conflict-2.service (conflicting) both active on core-01",
		"ff-ssd-1.service active on core-03, which it does not allow",
	}
	if !slices.Equal(got, want) {
		t.Errorf("disallowed = %q\nwant %q", got, want)
	}
}

func TestStreakAndDuplicates(t *testing.T) {
	w := testWorld(t)
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ok := placement()
	dup := placement()
	dup["core-01"] = append(dup["core-01"], "ff-plain-5.service", "ff-plain-6.service")
	dup3 := placement()
	dup3["core-01"] = append(dup3["core-01"], "ff-plain-5.service")
	dup3["core-02"] = append(dup3["core-02"], "ff-plain-5.service")
	bad := placement()
	bad["core-03"] = bad["core-03"][:1]
	samples := []sample{
		{at(0), ok}, {at(200), bad}, {at(400), dup}, {at(600), dup3}, {at(800), ok}, {at(1000), bad}, {at(1200), ok}, {at(1400), ok},
	}
	all := []string{"core-01", "core-02", "core-03"}
	from, lasted, found := streak(samples, at(100), func(s sample) bool { return len(w.exact(s, all)) == 0 })
	if !found || from != 1100*time.Millisecond || lasted != 200*time.Millisecond {
		t.Errorf("streak = %s, %s, %v; want 1.1s, 200ms, true", from, lasted, found)
	}
	if _, _, found := streak(samples[:6], at(100), func(s sample) bool { return len(w.exact(s, all)) == 0 }); found {
		t.Error("streak found though the last sample is bad")
	}
	// bad (core-03 runs only ff-plain-5: ff-plain-6, ff-pinned and the
	// global copy missing) at 200 and 1000 ms, each for 0.2 s.
	if u := w.unavailable(samples, at(0), at(1400), all); u < 1.199 || u > 1.201 {
		t.Errorf("unavailable %.3f unit-seconds, want 1.2 (2 samples × 3 missing × 0.2 s)", u)
	}
	d := w.duplicates(samples, at(100), at(1400))
	// At 400 ms plain-5 and plain-6 each get a second copy (2 runs); at
	// 600 ms plain-5 gets a third (1 run) and plain-6 is single again.
	if d.Runs != 3 || d.MaxCopies != 3 {
		t.Errorf("runs %d, max copies %d; want 3, 3", d.Runs, d.MaxCopies)
	}
	// 400–600: two extra copies × 0.2 s; 600–800: two extra copies × 0.2 s.
	if d.Seconds < 0.799 || d.Seconds > 0.801 {
		t.Errorf("duplicate-seconds %.3f, want 0.8", d.Seconds)
	}
	if d.First < 0.299 || d.First > 0.301 || d.Last < 0.499 || d.Last > 0.501 {
		t.Errorf("first %.3f last %.3f, want 0.3, 0.5", d.First, d.Last)
	}
	if d.ByUnit["ff-plain-5.service"] < 0.599 || d.ByUnit["ff-plain-6.service"] < 0.199 {
		t.Errorf("by unit: %v", d.ByUnit)
	}
}
