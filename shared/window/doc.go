// Package window is the arithmetic of tumbling windows as Lambda's
// TumblingWindowInSeconds gives them to a Kinesis handler: which window a
// record belongs to, how large a window's state is, and the
// events.KinesisTimeWindowEvent a stream.WindowHandler receives. It does
// no I/O; dispatch.Windowed makes the calls.
//
// # Windows
//
// A window is 1 to 900 whole seconds long (MinSize, MaxSize) and aligned
// to multiples of its length since the Unix epoch: 120 s windows run
// 07:04:00–07:06:00, 07:06:00–07:08:00 and so on (UTC), start included,
// end excluded. A record belongs to the window of its
// approximateArrivalTimestamp, the time Kinesis accepted it: not a time
// inside its data, not the time it is read. Each shard has its own windows
// and state.
//
// # Calls
//
// The records of a window go to the handler in batches, as plain batches
// do (batch size, byte limit, retries, bisect, partial failures, record
// age, on-failure destination), each call with the state the previous call
// returned; the first call of a window gets an empty state. A batch never
// mixes windows. A response without state (a nil map; in JSON a missing or
// null "state") is a failed invocation, as on Lambda: return an empty
// state when there is nothing to keep. With batchItemFailures, the state
// returned must cover the records before the lowest failed item: the retry
// starts at that item with that state. State values are strings
// (map[string]string, as aws-lambda-go has it and as Lambda advises).
//
// The window's final invoke (isFinalInvokeForWindow true, no records, the
// state) comes when a record of a later window is met; or, on a shard
// that is caught up, once the wall clock is past the window's end plus
// Grace (1 s, for clock skew); or when the shard ends (its children start
// windows of their own with a fresh state, as on Lambda). The final invoke
// is retried with back-off until it succeeds and never given up: the
// shard waits, as Lambda pauses it; only stopping ends the wait, and then
// the window is left unfinished. Its response needs a state too (it is
// dropped); batchItemFailures in it are ignored, as it has no records.
//
// A state is at most MaxStateBytes (1 MB), measured as its JSON. A call
// that returns a larger state ends the window early: one invoke with
// isFinalInvokeForWindow and isWindowTerminatedEarly true and that state;
// then the same window goes on with a fresh state.
//
// # Checkpoints
//
// The records of a window are reported done, and so checkpointed, only
// when the window's final invoke has succeeded (an early termination's
// too): done then reports the last record of the window. A lease that
// moves mid-window (a failover, a drain, the end of a scheduled run)
// therefore makes the next owner read the window again from its start, or
// from its last early termination, with a fresh state: no record's
// contribution to a state is lost or counted twice, except that a final
// invoke is repeated when a worker died between it and the checkpoint
// write. Lambda instead keeps a window's state in its poller and carries
// it on; Shardline keeps none outside the handler's calls, so a drain does
// not finish an open window, it leaves it to the next owner. The
// checkpoint therefore lags by up to one window whatever
// -checkpoint-interval says, and a run that stops before the wall clock
// passes the end of the window it started in (plus Grace) never finishes
// a window on a caught-up shard.
//
// Arrival times are approximate. A record that arrived before the start
// of the open window counts in the open window; one whose window was
// already closed (it became readable after the grace) counts in the next
// window. A new owner does not know which windows its predecessor closed
// and may reopen such a window for a late record.
package window
