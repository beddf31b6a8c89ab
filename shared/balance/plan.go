package balance

import (
	"hash/fnv"
	"sort"
)

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

func rank(me, key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(me))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return h.Sum32() >> 1
}
