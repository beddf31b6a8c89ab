// Package peers holds the peer comparison of issue #11: one small consumer
// per Kinesis consumer library (cmd/peer: harlow, vmware, shardline), each
// reading a stream from TRIM_HORIZON and exiting with a JSON report once it
// has counted N user records, and a driver (cmd/compare) that starts the
// stand-ins, preloads the streams, runs every consumer as a child process
// and prints a Markdown table.
//
// It is a module of its own so that the peers' dependencies stay out of
// the main go.mod and the root `go test ./...` does not build it.
package peers
