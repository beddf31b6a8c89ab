// Package balance holds the pure lease decisions, with no I/O and time
// passed in: when a lease has expired (its counter has not moved for the
// failover time, as the leader saw it — no clocks compared across hosts),
// and the leader's plan (Assign): which free leases go to which workers,
// and which leases move by graceful handoff so that each worker holds its
// share (Targets, with the workers' -max-leases).
package balance
