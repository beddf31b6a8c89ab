package standintest

import (
	"testing"

	"github.com/shardline/shardline/shared/standin"
)

// TestWithoutMain: outside Main, each test gets its own stand-in, stopped
// when the test ends.
func TestWithoutMain(t *testing.T) {
	mainMu.Lock()
	was := inMain
	inMain = false
	mainMu.Unlock()
	defer func() {
		mainMu.Lock()
		inMain = was
		mainMu.Unlock()
	}()
	var srv *standin.Server
	t.Run("sub", func(t *testing.T) {
		srv = DynamoDB(t)
		if _, ok := standin.IsStandin(srv.PID); !ok {
			t.Fatalf("pid %d is no stand-in", srv.PID)
		}
	})
	if srv == nil {
		t.Skip("no stand-in (skipped under -short)")
	}
	if exited, _ := srv.Exited(); !exited {
		t.Errorf("per-test DynamoDB Local (pid %d) still running after its test", srv.PID)
	}
	if _, ok := standin.IsStandin(srv.PID); ok {
		t.Errorf("pid %d still a stand-in after its test", srv.PID)
	}
}
