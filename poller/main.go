// Command poller reads a Kinesis data stream with shard leases and
// checkpoints in DynamoDB and hands de-aggregated batches to a handler with
// the AWS Lambda Kinesis signature, in process (the built-ins print and
// wordcount) or through Lambda Invoke (-target-function).
//
//	poller [run] -app-name A -stream-name S -handler print|wordcount
//	poller produce -stream-name S -rate 1000 -numbers 10 -aggregate 100
//	poller status -app-name A -stream-name S
//	poller reset -app-name A -stream-name S -to TRIM_HORIZON
//	poller resume -app-name A -stream-name S -shard shardId-000000000001
//	poller version
//
// It is the shardline package's command line with no handler of its own:
// a program with its own handler calls shardline.Start(handler) and gets
// all of this, and Lambda, in one binary.
package main

import (
	"io"

	"github.com/shardline/shardline/shared/shardline"
)

// commit is the VCS commit, when the build sets it (make build does, for
// git worktrees, whose commit the go command does not stamp):
//
//	go build -ldflags "-X main.commit=$(git rev-parse HEAD)" ./poller
var commit string

func app() *shardline.App {
	return shardline.New(shardline.WithName("poller"), shardline.WithCommit(commit))
}

func main() { app().Start() }

// Main runs the command line and returns its exit code (the tests run the
// test binary as the poller through it).
func Main(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return app().Main(args, getenv, stdout, stderr)
}
