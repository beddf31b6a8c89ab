// Package httpserve is the poller's HTTP endpoint at -metrics-addr:
// /metrics (the handler it is given, Prometheus' in shared/telemetry/prom),
// /healthz and /readyz from the worker's coordinator.Snapshot.
//
//   - /healthz answers 200 while the worker runs and 503 once Run has
//     returned (Snapshot.Stopped): a liveness probe.
//   - /readyz answers 503 until the worker has read the lease table and
//     taken its first round of leases (Snapshot.Ready), 200 from then on
//     until Run returns. It does not ask for a lease held: with more
//     workers than shards a worker rightly holds none, and would otherwise
//     never be ready (a rollout would wait for it forever).
//
// The server binds the address it is given (port 0 picks a free one: Addr
// says which) when Start returns, so a bad or busy address is an error at
// startup; Close shuts it down after the worker's Run has returned.
// Every answer is computed when asked: nothing runs on the worker's hot
// path.
package httpserve
