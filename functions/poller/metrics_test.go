package main

import (
	"strings"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/telemetry/emf/emftest"
)

// TestInvocationWritesEMF: at the end of an invocation the function writes
// its metrics as CloudWatch Embedded Metric Format lines in its log: every
// line passes the specification's schema, the namespace is the app name,
// WorkerIdentifier is the function (not the invocation), the request id is
// on each line, and RecordsProcessed adds up to the records it handled,
// per shard. At -metrics-level NONE nothing is written.
func TestInvocationWritesEMF(t *testing.T) {
	e := newEnv(t, 2, 5*time.Second)
	e.put(300, 0)
	s := e.invoke(t)
	if s.Handled != 300 {
		t.Fatalf("summary %+v: want 300 records handled", s)
	}
	docs, err := emftest.Find(e.out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatalf("no EMF line in the function's log:\n%s", tail(e.out.String()))
	}
	inv := e.emu.Invocations("poller")[0]
	var total float64
	shards := map[string]float64{}
	for _, d := range docs {
		if d.Namespace != e.app {
			t.Errorf("namespace %q, want the app name %q", d.Namespace, e.app)
		}
		if w := d.DimValues[metrics.WorkerIdentifier]; w != "poller" {
			t.Errorf("WorkerIdentifier %q, want the function's name, poller", w)
		}
		if id, _ := d.Members["requestId"].(string); id == "" || !strings.HasSuffix(s.WorkerID, id) {
			t.Errorf("requestId %q, want the invocation's (worker %s)", id, s.WorkerID)
		}
		if ts := time.UnixMilli(d.Timestamp); ts.Before(inv.Start.Add(-time.Second)) || ts.After(inv.End.Add(time.Second)) {
			t.Errorf("timestamp %s outside the invocation (%s to %s)", ts, inv.Start, inv.End)
		}
		for _, v := range d.Values["RecordsProcessed"] {
			total += v
			shards[d.DimValues[metrics.ShardID]] += v
		}
	}
	if total != float64(s.Handled) || len(shards) != 2 {
		t.Fatalf("RecordsProcessed adds up to %v over shards %v, want %d over the 2 shards", total, shards, s.Handled)
	}
	t.Logf("%d EMF lines; RecordsProcessed by shard: %v", len(docs), shards)
}

func TestInvocationWritesNoEMFAtNone(t *testing.T) {
	e := newEnv(t, 1, 4*time.Second, "SHARDLINE_METRICS_LEVEL=NONE")
	e.put(20, 0)
	if s := e.invoke(t); s.Handled != 20 {
		t.Fatalf("summary %+v: want 20 records handled", s)
	}
	if strings.Contains(e.out.String(), `"_aws"`) {
		t.Fatalf("EMF written at -metrics-level NONE:\n%s", tail(e.out.String()))
	}
}
