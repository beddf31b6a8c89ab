package shards

import "github.com/shardline/shardline/shared/stream"

// NewLease is a lease the shard listing calls for: the shard and the
// position to start it at.
type NewLease struct {
	Shard Shard
	Start string // TRIM_HORIZON, LATEST or AT_TIMESTAMP
}

// Missing decides which shards of list need a lease, given the shards that
// have one (tracked), and where each starts, parents before children:
//   - a shard whose descendant is tracked gets none (it was read and its
//     lease cleaned up, or the application started below it);
//   - a shard whose parent was tracked before this round starts at
//     TRIM_HORIZON, so nothing written to it after the reshard is missed;
//   - a shard whose parent gets its lease in this same round inherits the
//     initial position;
//   - any other shard starts at the initial position, except that with
//     LATEST closed shards get none (they hold nothing after "now").
func Missing(list []Shard, tracked map[string]bool, initial string) []NewLease {
	ordered := Ancestors(list)
	children := map[string][]string{}
	for _, s := range list {
		for _, p := range s.Parents {
			children[p] = append(children[p], s.ID)
		}
	}
	var descTracked func(id string, seen map[string]bool) bool
	descTracked = func(id string, seen map[string]bool) bool {
		for _, c := range children[id] {
			if seen[c] {
				continue
			}
			seen[c] = true
			if tracked[c] || descTracked(c, seen) {
				return true
			}
		}
		return false
	}
	created := map[string]bool{}
	var out []NewLease
	for _, s := range ordered {
		if tracked[s.ID] || descTracked(s.ID, map[string]bool{}) {
			continue
		}
		start := initial
		inherited := false
		for _, p := range s.Parents {
			if tracked[p] {
				start = stream.TrimHorizon
				inherited = false
				break
			}
			if created[p] {
				inherited = true
			}
		}
		if !inherited && start == stream.Latest && s.Closed {
			continue
		}
		created[s.ID] = true
		out = append(out, NewLease{Shard: s, Start: start})
	}
	return out
}

// Ready reports whether a shard with these parents may be read: every
// parent that still has a lease has reached SHARD_END. ended tells, for a
// tracked shard, whether it has ended; untracked parents count as done.
func Ready(parents []string, ended func(id string) (ended, tracked bool)) bool {
	for _, p := range parents {
		if e, t := ended(p); t && !e {
			return false
		}
	}
	return true
}
