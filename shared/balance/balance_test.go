package balance

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
)

// owned returns n leases owned by owner, keyed prefix-0, prefix-1, ….
func owned(prefix, owner string, n int) []Lease {
	out := make([]Lease, n)
	for i := range out {
		out[i] = Lease{Key: fmt.Sprintf("%s-%d", prefix, i), Owner: owner}
	}
	return out
}

func expired(ls []Lease) []Lease {
	for i := range ls {
		ls[i].Expired = true
	}
	return ls
}

func handoff(ls []Lease) []Lease {
	for i := range ls {
		ls[i].Handoff = true
	}
	return ls
}

func held(ls []Lease) map[string]bool {
	m := map[string]bool{}
	for _, l := range ls {
		m[l.Key] = true
	}
	return m
}

func keys(ls []Lease) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Key
	}
	return out
}

func concat(lss ...[]Lease) []Lease { return slices.Concat(lss...) }

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

func TestDecide(t *testing.T) {
	mine := owned("mine", "me", 1)
	tests := []struct {
		name string
		in   Input
		// wantTake lists the leases Take may choose from; wantTakeN how
		// many it must choose (the choice among equals is the worker's
		// own hash order).
		wantTake  []string
		wantTakeN int
		// wantSteal lists the leases Steal may choose from; nil: no steal.
		wantSteal []string
	}{
		{
			name:      "alone, everything free",
			in:        Input{Me: "me", Leases: owned("free", "", 5)},
			wantTake:  keys(owned("free", "", 5)),
			wantTakeN: 5,
		},
		{
			name: "nothing to do",
			in:   Input{Me: "me"},
		},
		{
			name:      "4 leases 2 workers: take the 2 free",
			in:        Input{Me: "me", Leases: concat(owned("a", "A", 2), owned("free", "", 2))},
			wantTake:  keys(owned("free", "", 2)),
			wantTakeN: 2,
		},
		{
			name:      "4 free leases 2 workers, other holds 1: take 2 of 3",
			in:        Input{Me: "me", Leases: concat(owned("a", "A", 1), owned("free", "", 3))},
			wantTake:  keys(owned("free", "", 3)),
			wantTakeN: 2,
		},
		{
			name: "4 leases 2 workers, at target",
			in: Input{Me: "me", Leases: concat(owned("a", "A", 2), owned("m", "me", 2)),
				Held: held(owned("m", "me", 2))},
		},
		{
			name: "4 leases 3 workers, most holds target and I am one short: no steal",
			in: Input{Me: "me", Leases: concat(owned("a", "A", 2), owned("b", "B", 1), owned("m", "me", 1)),
				Held: held(owned("m", "me", 1))},
		},
		{
			name:      "4 leases 3 workers, most holds target and I am two short: steal",
			in:        Input{Me: "me", Leases: concat(owned("a", "A", 2), owned("b", "B", 2))},
			wantSteal: keys(owned("a", "A", 2)), // A and B tie; the smaller name is the most loaded
		},
		{
			name:      "4 leases 3 workers, most holds more than target: steal",
			in:        Input{Me: "me", Leases: concat(owned("a", "A", 1), owned("b", "B", 3))},
			wantSteal: keys(owned("b", "B", 3)),
		},
		{
			name: "4 leases 2 workers, I am one short and most holds more than target: steal",
			in: Input{Me: "me", Leases: concat(owned("a", "A", 3), owned("m", "me", 1)),
				Held: held(owned("m", "me", 1))},
			wantSteal: keys(owned("a", "A", 3)),
		},
		{
			name:      "never more than one steal per round",
			in:        Input{Me: "me", Leases: owned("a", "A", 8)},
			wantSteal: keys(owned("a", "A", 8)),
		},
		{
			name:      "expired leases are free and their owner is not counted",
			in:        Input{Me: "me", Leases: expired(owned("a", "A", 3))},
			wantTake:  keys(owned("a", "A", 3)),
			wantTakeN: 3,
		},
		{
			name:      "expired lease among live ones",
			in:        Input{Me: "me", Leases: concat(owned("a", "A", 1), expired(owned("x", "X", 1)))},
			wantTake:  keys(owned("x", "X", 1)),
			wantTakeN: 1,
		},
		{
			name:      "my own worker id's lease not held is free",
			in:        Input{Me: "me", Leases: concat(owned("a", "A", 1), mine)},
			wantTake:  keys(mine),
			wantTakeN: 1,
		},
		{
			name: "held lease counts as mine even if expired",
			in: Input{Me: "me", Leases: concat(owned("a", "A", 1), expired(owned("m", "me", 1))),
				Held: held(owned("m", "me", 1))},
		},
		{
			name: "mid-handoff leases are neither taken nor stolen, and count as their holder's",
			in:   Input{Me: "me", Leases: concat(handoff(owned("h", "H", 3)), handoff(owned("m", "me", 1)))},
		},
		{
			name:      "a mid-handoff holder's other lease may be stolen",
			in:        Input{Me: "me", Leases: concat(handoff(owned("h", "H", 2)), owned("a", "H", 2))},
			wantSteal: keys(owned("a", "H", 2)),
		},
		{
			name:      "MaxLeases caps the take",
			in:        Input{Me: "me", Leases: owned("free", "", 10), MaxLeases: 3},
			wantTake:  keys(owned("free", "", 10)),
			wantTakeN: 3,
		},
		{
			name: "MaxLeases reached: no steal",
			in: Input{Me: "me", Leases: concat(owned("a", "A", 7), owned("m", "me", 3)),
				Held: held(owned("m", "me", 3)), MaxLeases: 3},
		},
		{
			name: "MaxLeases below the even share, one short: no steal from a worker at target",
			in: Input{Me: "me", Leases: concat(owned("a", "A", 2), owned("m", "me", 1)),
				Held: held(owned("m", "me", 1)), MaxLeases: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.in)
			if len(got.Take) != tt.wantTakeN {
				t.Errorf("Take = %v (%d), want %d of %v", got.Take, len(got.Take), tt.wantTakeN, tt.wantTake)
			}
			seen := map[string]bool{}
			for _, k := range got.Take {
				if !slices.Contains(tt.wantTake, k) {
					t.Errorf("Take has %q, want only from %v", k, tt.wantTake)
				}
				if seen[k] {
					t.Errorf("Take has %q twice", k)
				}
				seen[k] = true
			}
			switch {
			case tt.wantSteal == nil && got.Steal != "":
				t.Errorf("Steal = %q, want none", got.Steal)
			case tt.wantSteal != nil && !slices.Contains(tt.wantSteal, got.Steal):
				t.Errorf("Steal = %q, want one of %v", got.Steal, tt.wantSteal)
			}
			if got.Steal != "" && len(got.Take) > 0 {
				t.Errorf("Take %v and Steal %q in one round, want one or the other", got.Take, got.Steal)
			}
		})
	}
}

// TestDecideConverges runs rounds of several workers against one set of
// leases, applying each plan at once, and checks that every worker ends
// with the floor or the ceiling of the even share and that the steals
// stop.
func TestDecideConverges(t *testing.T) {
	tests := []struct {
		leases  int
		workers []string
	}{
		{4, []string{"w1", "w2"}},
		{4, []string{"w1", "w2", "w3"}},
		{10, []string{"w1", "w2", "w3"}},
		{7, []string{"w1", "w2", "w3", "w4"}},
		{2, []string{"w1", "w2", "w3"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d", tt.leases, len(tt.workers)), func(t *testing.T) {
			owner := map[string]string{}
			var all []string
			for i := range tt.leases {
				k := fmt.Sprintf("shard-%d", i)
				all = append(all, k)
				owner[k] = tt.workers[0] // the first worker starts with everything
			}
			input := func(me string) Input {
				in := Input{Me: me, Held: map[string]bool{}}
				for _, k := range all {
					in.Leases = append(in.Leases, Lease{Key: k, Owner: owner[k]})
					if owner[k] == me {
						in.Held[k] = true
					}
				}
				return in
			}
			quiet := 0
			for round := 0; round < 100 && quiet < 2; round++ {
				moved := false
				for _, w := range tt.workers {
					p := Decide(input(w))
					for _, k := range p.Take {
						owner[k] = w
						moved = true
					}
					if p.Steal != "" {
						if owner[p.Steal] == w {
							t.Fatalf("round %d: %s steals its own lease %s", round, w, p.Steal)
						}
						owner[p.Steal] = w
						moved = true
					}
				}
				if moved {
					quiet = 0
				} else {
					quiet++
				}
			}
			if quiet < 2 {
				t.Fatalf("still moving leases after 100 rounds: %v", owner)
			}
			counts := map[string]int{}
			for _, w := range owner {
				counts[w]++
			}
			lo, hi := tt.leases/len(tt.workers), (tt.leases+len(tt.workers)-1)/len(tt.workers)
			for _, w := range tt.workers {
				if n := counts[w]; n < lo || n > hi {
					t.Errorf("%s holds %d, want %d–%d (all: %v)", w, n, lo, hi, counts)
				}
			}
		})
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

func TestObserverMoved(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		owner   string
		counter int64
		want    bool
	}{
		{"A", 5, false}, // first sighting: not known to move
		{"A", 5, false}, // still
		{"A", 6, true},  // renewed by A
		{"A", 6, true},  // stays true
		{"B", 7, false}, // a new owner starts over
		{"B", 9, true},
	}
	o := NewObserver()
	for i, s := range steps {
		o.Observe("k", s.owner, s.counter, t0.Add(time.Duration(i)*time.Second))
		if got := o.Moved("k"); got != s.want {
			t.Errorf("step %d (%s, %d): Moved = %v, want %v", i, s.owner, s.counter, got, s.want)
		}
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

// TestDecideCountsCapacity: a worker counts the others' -max-leases (from
// their leases), so no shard is left without an owner while a worker has
// room; when none has room, the plan says how many are left.
func TestDecideCountsCapacity(t *testing.T) {
	capped := func(ls []Lease, max int) []Lease {
		for i := range ls {
			ls[i].OwnerMax = max
		}
		return ls
	}
	// A holds 1 with -max-leases 1, me 2: the 4th shard is mine to take.
	in := Input{Me: "me", Leases: concat(capped(owned("a", "A", 1), 1), owned("m", "me", 2), owned("f", "", 1)), Held: held(owned("m", "me", 2))}
	if p := Decide(in); !slices.Equal(p.Take, []string{"f-0"}) || p.Unassignable != 0 {
		t.Errorf("Decide = %+v, want to take f-0", p)
	}
	// Both capped at 1: two shards no one may take.
	in = Input{Me: "me", MaxLeases: 1, Leases: concat(capped(owned("a", "A", 1), 1), owned("m", "me", 1), owned("f", "", 2)), Held: held(owned("m", "me", 1))}
	if p := Decide(in); len(p.Take) != 0 || p.Steal != "" || p.Unassignable != 2 {
		t.Errorf("Decide = %+v, want nothing to do and 2 unassignable", p)
	}
}

// TestDecideConvergesWithCaps: 4 shards, w1 with -max-leases 1 and w2
// without, w1 first: every shard ends owned, w1 with 1.
func TestDecideConvergesWithCaps(t *testing.T) {
	caps := map[string]int{"w1": 1, "w2": 0}
	owner := map[string]string{}
	all := []string{"s0", "s1", "s2", "s3"}
	input := func(me string) Input {
		in := Input{Me: me, Held: map[string]bool{}, MaxLeases: caps[me]}
		for _, k := range all {
			in.Leases = append(in.Leases, Lease{Key: k, Owner: owner[k], OwnerMax: caps[owner[k]]})
			if owner[k] == me {
				in.Held[k] = true
			}
		}
		return in
	}
	for range 20 {
		for _, w := range []string{"w1", "w2"} {
			p := Decide(input(w))
			for _, k := range p.Take {
				owner[k] = w
			}
			if p.Steal != "" {
				owner[p.Steal] = w
			}
		}
	}
	counts := map[string]int{}
	for _, k := range all {
		counts[owner[k]]++
	}
	if counts["w1"] != 1 || counts["w2"] != 3 {
		t.Errorf("owners %v: want w1 1 and w2 3, none unowned", counts)
	}
}
