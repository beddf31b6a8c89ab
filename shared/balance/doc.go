// Package balance holds the pure lease decisions, with no I/O and time
// passed in: when a lease has expired (its counter has not moved for the
// failover time, as this worker saw it — no clocks compared across hosts),
// which leases a worker takes or steals to reach its share, and which new
// leases a shard listing calls for (children only after their parents).
package balance
