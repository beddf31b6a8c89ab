package coordinator_test

import (
	"testing"

	"github.com/shardline/shardline/shared/standin/standintest"
)

func TestMain(m *testing.M) { standintest.Main(m) }

// needStandins skips under -short and returns the package's stand-ins'
// endpoints otherwise, starting them on first use.
func needStandins(t *testing.T) (kinesisEP, dynamoEP string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the stand-ins (run without -short)")
	}
	k, d := standintest.Both(t)
	return k.Endpoint, d.Endpoint
}
