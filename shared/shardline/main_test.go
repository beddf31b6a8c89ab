package shardline

import (
	"context"
	"io"
	"testing"

	"github.com/shardline/shardline/shared/standin/standintest"
)

// The command line as the poller binary has it, for the tests of the
// commands.
func Main(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return New(WithName("poller")).Main(args, getenv, stdout, stderr)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return New(WithName("poller")).Run(ctx, args, getenv, stdout, stderr)
}

func TestMain(m *testing.M) {
	standintest.Main(m)
}
