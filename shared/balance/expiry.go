package balance

import "time"

// Observer remembers when each lease's counter last moved, as seen by this
// worker. It is not safe for concurrent use.
type Observer struct {
	seen map[string]sighting
}

type sighting struct {
	owner   string
	counter int64
	since   time.Time
}

// NewObserver returns an empty observer.
func NewObserver() *Observer { return &Observer{seen: map[string]sighting{}} }

// Observe records the owner and counter of a lease read at now.
func (o *Observer) Observe(key, owner string, counter int64, now time.Time) {
	s, ok := o.seen[key]
	if !ok || s.counter != counter || s.owner != owner {
		o.seen[key] = sighting{owner: owner, counter: counter, since: now}
	}
}

// Forget drops a lease that no longer exists.
func (o *Observer) Forget(key string) { delete(o.seen, key) }

// Keys lists the leases observed.
func (o *Observer) Keys() []string {
	keys := make([]string, 0, len(o.seen))
	for k := range o.seen {
		keys = append(keys, k)
	}
	return keys
}

// Expired reports whether the lease's counter has stayed still for at least
// failover as of now. A lease seen for the first time is not expired until
// failover has passed since then.
func (o *Observer) Expired(key string, now time.Time, failover time.Duration) bool {
	s, ok := o.seen[key]
	return ok && now.Sub(s.since) >= failover
}
