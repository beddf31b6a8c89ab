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
	// OwnerMax is the owner's -max-leases as it wrote it with its take
	// (0: no limit), so that the others count its capacity.
	OwnerMax int
	// Handoff: a KCL 3.x graceful handoff is under way and its time is
	// not up; the lease counts as Owner's (the holder) and is neither
	// taken nor stolen, even by Owner.
	Handoff bool
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
	// Unassignable is how many leases no live worker may take: every
	// worker is at its -max-leases. They stay unowned until a worker with
	// room comes; the worker says so every round.
	Unassignable int
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

// Targets shares leases among workers whose capacities are caps (0: no
// limit): as evenly as the capacities allow, a capped worker's share at
// most its cap and the rest shared by the others (water-filling). Each
// share is a ceiling, as Target's, so the shares may add up to more than
// leases; when every worker is capped they may add up to less, and the
// rest is Unassignable.
func Targets(leases int, caps map[string]int) map[string]int {
	out := make(map[string]int, len(caps))
	ws := make([]string, 0, len(caps))
	for w := range caps {
		ws = append(ws, w)
	}
	// Capped workers first, the smallest cap first; then the others.
	sort.Slice(ws, func(i, j int) bool {
		ci, cj := caps[ws[i]], caps[ws[j]]
		switch {
		case ci == 0 || cj == 0:
			return cj == 0 && ci != 0 || ci == cj && ws[i] < ws[j]
		case ci != cj:
			return ci < cj
		}
		return ws[i] < ws[j]
	})
	rest, n := leases, len(ws)
	i := 0
	// Workers capped below the fair share of what is left hold their cap.
	for ; i < len(ws); i++ {
		c := caps[ws[i]]
		if c == 0 || c >= (rest+n-1)/n {
			break
		}
		out[ws[i]] = c
		rest, n = rest-c, n-1
	}
	// The others share the rest evenly (a ceiling, as Target's).
	for _, w := range ws[i:] {
		out[w] = Target(max(rest, 0), n, caps[w])
	}
	return out
}

// Decide plans a round: count the live workers (Me and every owner of a
// lease not expired) with their capacities, aim for Me's share of Targets,
// take what is free, and when nothing is free steal one lease from the
// worker most above its own share, if it holds more than its share, or
// holds its share while Me is two or more short. At most one lease is
// stolen per round, so workers converge without churn.
func Decide(in Input) Plan {
	counts := map[string]int{in.Me: 0}
	caps := map[string]int{in.Me: max(in.MaxLeases, 0)}
	var free []string
	for _, l := range in.Leases {
		switch {
		case in.Held[l.Key]:
			counts[in.Me]++
		case !l.Handoff && (l.Owner == "" || l.Expired || l.Owner == in.Me):
			// Me's own lease that Me does not hold is from an earlier
			// process with the same worker id: take it at once.
			free = append(free, l.Key)
		default:
			counts[l.Owner]++
			if c, seen := caps[l.Owner]; !seen || l.OwnerMax > 0 && (c == 0 || l.OwnerMax < c) {
				caps[l.Owner] = max(l.OwnerMax, 0)
			}
		}
	}
	// An owner whose leases carry no cap (or that holds more than its
	// cap, an older version's lease) counts as unlimited.
	for w, c := range caps {
		if w != in.Me && c > 0 && counts[w] > c {
			caps[w] = 0
		}
	}
	targets := Targets(len(in.Leases), caps)
	var plan Plan
	room := 0
	for w, t := range targets {
		room += t
		if caps[w] == 0 {
			room = len(in.Leases) // someone without a limit can take them all
			break
		}
	}
	if room < len(in.Leases) {
		plan.Unassignable = len(in.Leases) - room
	}
	target := targets[in.Me]
	need := target - counts[in.Me]
	if need <= 0 {
		return plan
	}
	if len(free) > 0 {
		// Each worker tries the free leases in its own order, so that
		// workers starting together spread out instead of colliding.
		sort.Slice(free, func(i, j int) bool { return rank(in.Me, free[i]) < rank(in.Me, free[j]) })
		plan.Take = free[:min(need, len(free))]
		return plan
	}
	most, over := "", 0
	for w, n := range counts {
		if w == in.Me {
			continue
		}
		o := n - targets[w]
		if most == "" || o > over || o == over && w < most {
			most, over = w, o
		}
	}
	if most == "" || !(over > 0 || over == 0 && need > 1 && counts[most] > 0) {
		return plan
	}
	var theirs []string
	for _, l := range in.Leases {
		if l.Owner == most && !l.Expired && !l.Handoff && !in.Held[l.Key] {
			theirs = append(theirs, l.Key)
		}
	}
	if len(theirs) == 0 {
		return plan
	}
	slices.SortFunc(theirs, func(a, b string) int { return int(rank(in.Me, a)) - int(rank(in.Me, b)) })
	plan.Steal = theirs[0]
	return plan
}

func rank(me, key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(me))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return h.Sum32() >> 1
}
