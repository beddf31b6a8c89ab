package balance

import (
	"hash/fnv"
	"slices"
	"sort"
)

// Lease is what the planner needs to know of one lease that can be read now
// (not ended; its parents done).
type Lease struct {
	Key     string
	Owner   string // "" when unowned
	Expired bool   // counter still for the failover time
}

// Input is one planning round for worker Me.
type Input struct {
	Me        string
	Leases    []Lease
	Held      map[string]bool // leases Me holds now (it renews them)
	MaxLeases int             // most leases Me may hold; 0 = no limit
}

// Plan is what Me should do this round.
type Plan struct {
	Take  []string // unowned or expired leases to take, or Me's own from an earlier life
	Steal string   // a lease to take from the most loaded worker; "" for none
}

// Target is the share each worker should hold: the ceiling of leases over
// workers, capped by maxLeases.
func Target(leases, workers, maxLeases int) int {
	if workers < 1 {
		workers = 1
	}
	t := (leases + workers - 1) / workers
	if maxLeases > 0 && t > maxLeases {
		t = maxLeases
	}
	return t
}

// Decide plans a round: count the live workers (Me and every owner of a
// lease not expired), aim for Target, take what is free, and when nothing
// is free steal one lease from the most loaded worker if it holds more
// than the target, or holds the target while Me is two or more short. At
// most one lease is stolen per round, so workers converge without churn.
func Decide(in Input) Plan {
	counts := map[string]int{in.Me: 0}
	var free []string
	for _, l := range in.Leases {
		switch {
		case in.Held[l.Key]:
			counts[in.Me]++
		case l.Owner == "" || l.Expired || l.Owner == in.Me:
			// Me's own lease that Me does not hold is from an earlier
			// process with the same worker id: take it at once.
			free = append(free, l.Key)
		default:
			counts[l.Owner]++
		}
	}
	target := Target(len(in.Leases), len(counts), in.MaxLeases)
	need := target - counts[in.Me]
	if need <= 0 {
		return Plan{}
	}
	if len(free) > 0 {
		// Each worker tries the free leases in its own order, so that
		// workers starting together spread out instead of colliding.
		sort.Slice(free, func(i, j int) bool { return rank(in.Me, free[i]) < rank(in.Me, free[j]) })
		return Plan{Take: free[:min(need, len(free))]}
	}
	most, mostN := "", 0
	for w, n := range counts {
		if w != in.Me && (n > mostN || n == mostN && w < most) {
			most, mostN = w, n
		}
	}
	if most == "" || !(mostN > target || mostN == target && need > 1) {
		return Plan{}
	}
	var theirs []string
	for _, l := range in.Leases {
		if l.Owner == most && !l.Expired && !in.Held[l.Key] {
			theirs = append(theirs, l.Key)
		}
	}
	slices.SortFunc(theirs, func(a, b string) int { return int(rank(in.Me, a)) - int(rank(in.Me, b)) })
	return Plan{Steal: theirs[0]}
}

func rank(me, key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(me))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return h.Sum32() >> 1
}
