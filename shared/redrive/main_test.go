package redrive

import (
	"testing"

	"github.com/shardline/shardline/shared/standin/standintest"
)

func TestMain(m *testing.M) {
	standintest.Main(m)
}
