package main

import (
	"os"
	"regexp"
	"testing"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/telemetry"
)

// TestTemplateMetricNames: every metric template.yaml's alarms and
// dashboard query in the AppName namespace is one the poller emits
// (shared/telemetry's names), and the PutMetricData grant is conditional.
func TestTemplateMetricNames(t *testing.T) {
	b, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	emitted := map[string]bool{}
	snap := coordinator.Snapshot{Level: metrics.Detailed, Shards: []coordinator.ShardStats{{ShardID: "shardId-000000000000", MillisBehindLatest: 5}}}
	for _, p := range telemetry.Points(snap, metrics.DefaultDimensions) {
		emitted[p.Name] = true
	}
	query := regexp.MustCompile(`SELECT (?:MAX|SUM|MIN|AVG)\((\w+)\) FROM (\\?")\$\{AppName\}`)
	found := map[string]bool{}
	for _, m := range query.FindAllStringSubmatch(string(b), -1) {
		found[m[1]] = true
		if !emitted[m[1]] {
			t.Errorf("template.yaml queries %s, which the poller does not emit", m[1])
		}
	}
	for _, want := range []string{"MillisBehindLatest", "DroppedEventCount", "ParkedShards"} {
		if !found[want] {
			t.Errorf("template.yaml has no query of %s in the AppName namespace", want)
		}
	}
	// The function writes EMF log lines: no PutMetricData grant.
	if regexp.MustCompile(`Action:.*cloudwatch:PutMetricData`).Match(b) {
		t.Error("template.yaml grants cloudwatch:PutMetricData, which the function (EMF only) never calls")
	}
}
