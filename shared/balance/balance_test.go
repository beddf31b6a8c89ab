package balance

import (
	"maps"
	"slices"
	"testing"
	"time"
)

func TestTarget(t *testing.T) {
	tests := []struct {
		leases, workers, maxLeases, want int
	}{
		{0, 1, 0, 0},
		{1, 1, 0, 1},
		{4, 1, 0, 4},
		{4, 2, 0, 2},
		{4, 3, 0, 2},
		{5, 2, 0, 3},
		{3, 4, 0, 1},
		{10, 2, 3, 3},
		{10, 2, 5, 5},
		{10, 2, 6, 5},
		{4, 0, 0, 4}, // no workers counts as one
	}
	for _, tt := range tests {
		if got := Target(tt.leases, tt.workers, tt.maxLeases); got != tt.want {
			t.Errorf("Target(%d, %d, %d) = %d, want %d", tt.leases, tt.workers, tt.maxLeases, got, tt.want)
		}
	}
}

func TestObserverExpired(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	const failover = 10 * time.Second
	type step struct {
		observe bool // observe (owner, counter) at t0+at; else check Expired at t0+at
		owner   string
		counter int64
		at      time.Duration
		want    bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "never seen",
			steps: []step{
				{at: time.Hour, want: false},
			},
		},
		{
			name: "first sighting is not expired until failover has passed",
			steps: []step{
				{observe: true, owner: "A", counter: 7},
				{at: 0, want: false},
				{at: failover - time.Nanosecond, want: false},
				{at: failover, want: true},
			},
		},
		{
			name: "same counter seen again does not reset",
			steps: []step{
				{observe: true, owner: "A", counter: 7},
				{observe: true, owner: "A", counter: 7, at: 6 * time.Second},
				{at: failover, want: true},
			},
		},
		{
			name: "counter moved resets",
			steps: []step{
				{observe: true, owner: "A", counter: 7},
				{observe: true, owner: "A", counter: 8, at: 6 * time.Second},
				{at: failover, want: false},
				{at: 6*time.Second + failover - time.Nanosecond, want: false},
				{at: 6*time.Second + failover, want: true},
			},
		},
		{
			name: "owner change resets",
			steps: []step{
				{observe: true, owner: "A", counter: 7},
				{observe: true, owner: "B", counter: 7, at: 6 * time.Second},
				{at: failover, want: false},
				{at: 6*time.Second + failover, want: true},
			},
		},
		{
			name: "counter moved back (table recreated) resets",
			steps: []step{
				{observe: true, owner: "A", counter: 7},
				{observe: true, owner: "A", counter: 1, at: 6 * time.Second},
				{at: failover, want: false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewObserver()
			for i, s := range tt.steps {
				if s.observe {
					o.Observe("shard-0", s.owner, s.counter, t0.Add(s.at))
					continue
				}
				if got := o.Expired("shard-0", t0.Add(s.at), failover); got != s.want {
					t.Errorf("step %d: Expired at +%v = %v, want %v", i, s.at, got, s.want)
				}
			}
		})
	}
}

func TestObserverForgetAndKeys(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	o := NewObserver()
	o.Observe("a", "A", 1, t0)
	o.Observe("b", "", 0, t0)
	got := o.Keys()
	slices.Sort(got)
	if want := []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("Keys() = %v, want %v", got, want)
	}
	o.Forget("a")
	if got, want := o.Keys(), []string{"b"}; !slices.Equal(got, want) {
		t.Errorf("Keys() after Forget = %v, want %v", got, want)
	}
	if o.Expired("a", t0.Add(time.Hour), time.Second) {
		t.Errorf("Expired(forgotten) = true, want false")
	}
	// Seen again after Forget: a new sighting.
	o.Observe("a", "A", 1, t0.Add(time.Hour))
	if o.Expired("a", t0.Add(time.Hour), time.Second) {
		t.Errorf("Expired(seen again) = true, want false")
	}
}

func TestTargets(t *testing.T) {
	tests := []struct {
		leases int
		caps   map[string]int
		want   map[string]int
	}{
		{4, map[string]int{"a": 0, "b": 0}, map[string]int{"a": 2, "b": 2}},
		{4, map[string]int{"a": 1, "b": 0}, map[string]int{"a": 1, "b": 3}},                  // issue 17: the capped worker's room goes to the other
		{10, map[string]int{"a": 1, "b": 2, "c": 0}, map[string]int{"a": 1, "b": 2, "c": 7}}, // two caps below the share
		{6, map[string]int{"a": 5, "b": 0}, map[string]int{"a": 3, "b": 3}},                  // a cap above the share changes nothing
		{5, map[string]int{"a": 1, "b": 1}, map[string]int{"a": 1, "b": 1}},                  // all capped: 3 unassignable
		{7, map[string]int{"a": 2, "b": 0, "c": 0}, map[string]int{"a": 2, "b": 3, "c": 3}},
	}
	for _, tt := range tests {
		if got := Targets(tt.leases, tt.caps); !maps.Equal(got, tt.want) {
			t.Errorf("Targets(%d, %v) = %v, want %v", tt.leases, tt.caps, got, tt.want)
		}
	}
}
