package balance

import (
	"fmt"
	"testing"
)

func slots(owners ...string) []Slot {
	var out []Slot
	for i, o := range owners {
		s := Slot{Key: fmt.Sprintf("shard-%02d", i), Owner: o}
		if o == "" {
			s.Free = true
		}
		out = append(out, s)
	}
	return out
}

// apply returns the count per worker after a.
func apply(ss []Slot, a Assignment) map[string]int {
	owner := map[string]string{}
	for _, s := range ss {
		owner[s.Key] = s.Owner
	}
	for _, m := range a.Assign {
		owner[m.Key] = m.To
	}
	for _, m := range a.Handoff {
		owner[m.Key] = m.To
	}
	n := map[string]int{}
	for _, o := range owner {
		n[o]++
	}
	return n
}

func TestAssignSharesFreeLeases(t *testing.T) {
	ws := []Worker{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	ss := slots("", "", "", "", "", "", "", "")
	a := Assign(ws, ss)
	if len(a.Assign) != 8 || len(a.Handoff) != 0 {
		t.Fatalf("assign %v handoff %v: want 8 assignments, no handoff", a.Assign, a.Handoff)
	}
	n := apply(ss, a)
	for _, w := range []string{"a", "b", "c"} {
		if n[w] < 2 || n[w] > 3 {
			t.Fatalf("%s got %d of 8 over 3 workers: %v", w, n[w], n)
		}
	}
}

func TestAssignHandsOffToANewWorker(t *testing.T) {
	ws := []Worker{{ID: "a"}, {ID: "b"}}
	ss := slots("a", "a", "a", "a", "a", "a", "a", "a")
	a := Assign(ws, ss)
	if len(a.Assign) != 0 || len(a.Handoff) != 4 {
		t.Fatalf("assign %v handoff %v: want 4 handoffs a -> b", a.Assign, a.Handoff)
	}
	for _, m := range a.Handoff {
		if m.From != "a" || m.To != "b" {
			t.Fatalf("handoff %v: want a -> b", m)
		}
	}
	// Then a third: 4/4/0 -> at most one lease apart.
	ss = slots("a", "a", "a", "a", "b", "b", "b", "b")
	ws = append(ws, Worker{ID: "c"})
	n := apply(ss, Assign(ws, ss))
	if n["c"] < 2 || n["a"] > 3 || n["b"] > 3 {
		t.Fatalf("after a third worker: %v, want 3/3/2", n)
	}
}

func TestAssignStable(t *testing.T) {
	ws := []Worker{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	for _, ss := range [][]Slot{
		slots("a", "a", "a", "b", "b", "b", "c", "c"),
		slots("a", "a", "b", "b", "c", "c", "c", "a"),
		slots("a", "b", "c", "a"),
	} {
		if a := Assign(ws, ss); len(a.Assign)+len(a.Handoff) != 0 {
			t.Fatalf("%v: moved %v %v, want nothing (shared as evenly as can be)", ss, a.Assign, a.Handoff)
		}
	}
}

func TestAssignCountsCaps(t *testing.T) {
	ws := []Worker{{ID: "a", Max: 1}, {ID: "b"}}
	ss := slots("", "", "", "")
	n := apply(ss, Assign(ws, ss))
	if n["a"] != 1 || n["b"] != 3 {
		t.Fatalf("caps a=1: %v, want a 1, b 3", n)
	}
	ws = []Worker{{ID: "a", Max: 1}, {ID: "b", Max: 1}}
	a := Assign(ws, ss)
	if a.Unassignable != 2 || len(a.Assign) != 2 {
		t.Fatalf("both capped at 1 with 4 free: %+v, want 2 assigned, 2 unassignable", a)
	}
}

func TestAssignLeavesPinnedAndForeignLeases(t *testing.T) {
	ws := []Worker{{ID: "a"}, {ID: "b"}}
	ss := slots("a", "a", "a", "a", "kcl", "kcl")
	ss[0].Pinned, ss[1].Pinned, ss[2].Pinned = true, true, true
	a := Assign(ws, ss)
	for _, m := range a.Handoff {
		if m.Key == ss[0].Key || m.Key == ss[1].Key || m.Key == ss[2].Key || m.From == "kcl" {
			t.Fatalf("moved %v: pinned and foreign leases stay", m)
		}
	}
	if len(a.Handoff) != 1 || a.Handoff[0].Key != ss[3].Key {
		t.Fatalf("handoffs %v: want the one unpinned lease of a", a.Handoff)
	}
}

func TestAssignPrefersTheHandoffsNextOwner(t *testing.T) {
	ws := []Worker{{ID: "a"}, {ID: "b"}}
	ss := slots("a", "b", "")
	ss[2].Prefer = "a"
	a := Assign(ws, ss)
	if len(a.Assign) != 1 || a.Assign[0].To != "a" {
		t.Fatalf("assign %v: want the timed-out handoff's lease given to its next owner a", a.Assign)
	}
}

func TestAssignWithoutWorkers(t *testing.T) {
	if a := Assign(nil, slots("", "x")); a.Unassignable != 1 {
		t.Fatalf("%+v: want 1 unassignable", a)
	}
}

// TestAssignConverges: rounds of the plan, their moves applied, from one
// worker holding everything (and with caps): every lease ends owned, each
// worker at the floor or ceiling of its share, and then rounds move
// nothing.
func TestAssignConverges(t *testing.T) {
	tests := []struct {
		leases  int
		workers []Worker
	}{
		{4, []Worker{{ID: "w1"}, {ID: "w2"}}},
		{4, []Worker{{ID: "w1"}, {ID: "w2"}, {ID: "w3"}}},
		{10, []Worker{{ID: "w1"}, {ID: "w2"}, {ID: "w3"}}},
		{7, []Worker{{ID: "w1"}, {ID: "w2"}, {ID: "w3"}, {ID: "w4"}}},
		{2, []Worker{{ID: "w1"}, {ID: "w2"}, {ID: "w3"}}},
		{4, []Worker{{ID: "w1", Max: 1}, {ID: "w2"}}},
		{200, []Worker{{ID: "w1"}, {ID: "w2"}, {ID: "w3"}, {ID: "w4"}, {ID: "w5"}, {ID: "w6"}, {ID: "w7"}, {ID: "w8"}, {ID: "w9"}, {ID: "w10"}}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d", tt.leases, len(tt.workers)), func(t *testing.T) {
			owner := map[string]string{}
			var all []string
			for i := range tt.leases {
				k := fmt.Sprintf("shard-%03d", i)
				all = append(all, k)
				owner[k] = tt.workers[len(tt.workers)-1].ID // the last worker starts with everything
			}
			rounds, quiet := 0, 0
			for ; rounds < 20 && quiet < 2; rounds++ {
				var ss []Slot
				for _, k := range all {
					ss = append(ss, Slot{Key: k, Owner: owner[k], Free: owner[k] == ""})
				}
				a := Assign(tt.workers, ss)
				for _, m := range append(a.Assign, a.Handoff...) {
					owner[m.Key] = m.To
				}
				if len(a.Assign)+len(a.Handoff) == 0 {
					quiet++
				} else {
					quiet = 0
				}
			}
			if quiet < 2 {
				t.Fatalf("still moving leases after 20 rounds: %v", owner)
			}
			caps := map[string]int{}
			for _, w := range tt.workers {
				caps[w.ID] = w.Max
			}
			want := Targets(tt.leases, caps)
			counts := map[string]int{}
			for _, w := range owner {
				counts[w]++
			}
			for _, w := range tt.workers {
				if n := counts[w.ID]; n > want[w.ID] || n < want[w.ID]-1 {
					t.Errorf("%s holds %d, want %d or one less (all: %v)", w.ID, n, want[w.ID], counts)
				}
			}
			if rounds > 3 {
				t.Errorf("converged after %d rounds, want one round of moves (and two quiet ones)", rounds)
			}
		})
	}
}
