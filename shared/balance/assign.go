package balance

import (
	"slices"
	"sort"
)

// Worker is a live worker the leader may give leases to.
type Worker struct {
	ID  string
	Max int // -max-leases; 0: no limit
}

// Slot is one lease as the leader sees it in a round: a lease that can be
// read now (not ended, not parked, its parents done).
type Slot struct {
	Key string
	// Owner holds the lease now (for a lease mid-handoff: the next owner,
	// which it counts for); "" when Free.
	Owner string
	// Free: unowned, expired, or owned by a worker that is gone; to be
	// given to a worker.
	Free bool
	// Pinned: not to be moved this round (mid-handoff, or held by a worker
	// that does not take part in the leader's assignments).
	Pinned bool
	// Prefer is the worker a free lease should go to when it has room
	// (the next owner of a handoff that timed out).
	Prefer string
}

// Move gives Key to To: an assignment (From is the owner it had, or "")
// or a graceful handoff from From.
type Move struct{ Key, From, To string }

// Assignment is what the leader does in a round.
type Assignment struct {
	Assign  []Move // free leases given to workers
	Handoff []Move // leases moved from a worker above its share to one below
	// Unassignable is how many free leases no worker may take: every
	// worker is at its -max-leases.
	Unassignable int
}

// Assign plans a leader's round (KCL 3.x's lease assignment, by count):
// each worker's share is Targets over the leases not pinned to a worker
// outside workers, with the workers' caps; free leases go to the workers
// furthest below their share; then leases move by graceful handoff from
// the worker furthest above its share to the one furthest below, while
// the two differ by two or more leases. Each lease moves at most once a
// round, and a round that finds the leases shared as evenly as the caps
// allow moves nothing, so rounds converge without churn.
func Assign(workers []Worker, slots []Slot) Assignment {
	var a Assignment
	if len(workers) == 0 {
		for _, s := range slots {
			if s.Free {
				a.Unassignable++
			}
		}
		return a
	}
	caps := make(map[string]int, len(workers))
	count := make(map[string]int, len(workers))
	ids := make([]string, 0, len(workers))
	for _, w := range workers {
		caps[w.ID] = max(w.Max, 0)
		count[w.ID] = 0
		ids = append(ids, w.ID)
	}
	slices.Sort(ids)
	shared := 0
	var free []Slot
	owned := map[string][]Slot{}
	for _, s := range slots {
		_, live := caps[s.Owner]
		switch {
		case s.Free:
			free = append(free, s)
			shared++
		case live:
			count[s.Owner]++
			shared++
			if !s.Pinned {
				owned[s.Owner] = append(owned[s.Owner], s)
			}
		}
	}
	target := Targets(shared, caps)
	room := func(w string) bool { return caps[w] == 0 || count[w] < caps[w] }
	// The worker furthest below its share with room; "" when none.
	neediest := func() string {
		best, bestNeed := "", 0
		for _, w := range ids {
			if !room(w) {
				continue
			}
			need := target[w] - count[w]
			if best == "" || need > bestNeed || need == bestNeed && count[w] < count[best] {
				best, bestNeed = w, need
			}
		}
		return best
	}
	sort.Slice(free, func(i, j int) bool { return free[i].Key < free[j].Key })
	for _, s := range free {
		to := ""
		if s.Prefer != "" {
			if _, live := caps[s.Prefer]; live && room(s.Prefer) {
				to = s.Prefer
			}
		}
		if to == "" {
			to = neediest()
		}
		if to == "" {
			a.Unassignable++
			continue
		}
		a.Assign = append(a.Assign, Move{Key: s.Key, From: s.Owner, To: to})
		count[to]++
	}
	for range len(slots) {
		from, over := "", 0
		for _, w := range ids {
			o := count[w] - target[w]
			if len(owned[w]) > 0 && (from == "" || o > over || o == over && count[w] > count[from]) {
				from, over = w, o
			}
		}
		to := neediest()
		if from == "" || to == "" || to == from || count[from]-count[to] < 2 || count[to] >= target[to] {
			break
		}
		theirs := owned[from]
		sort.Slice(theirs, func(i, j int) bool { return rank(to, theirs[i].Key) < rank(to, theirs[j].Key) })
		s := theirs[0]
		owned[from] = theirs[1:]
		a.Handoff = append(a.Handoff, Move{Key: s.Key, From: from, To: to})
		count[from]--
		count[to]++
	}
	return a
}
