package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// TestTemplateFanOut: the enhanced fan-out switches. Each creates its
// reader's consumer only with that reader on (PollerFanOutOn,
// NativeTriggerFanOutOn), off by default; the two consumers are separate
// resources with different names, and each reader reads through its own
// alone: the scheduled poller's SHARDLINE_CONSUMER_ARN is PollerConsumer's,
// the native trigger's EventSourceArn NativeTriggerConsumer's (Kinesis
// keeps one subscription per consumer and shard).
func TestTemplateFanOut(t *testing.T) {
	path := filepath.Join(repoRoot, "template.yaml")
	for _, c := range []struct {
		params       map[string]string
		poller, trig bool
	}{
		{nil, false, false},
		{map[string]string{"PollerFanOut": "true"}, true, false},
		{map[string]string{"UseNativeTrigger": "true", "NativeTriggerFanOut": "true"}, false, true},
		{map[string]string{"UseNativeTrigger": "true", "PollerFanOut": "true", "NativeTriggerFanOut": "true"}, true, true},
		// Refused by the Rule FanOutConsumerPerReader; never a consumer
		// without its reader.
		{map[string]string{"UseScheduledPoller": "false", "UseNativeTrigger": "true", "PollerFanOut": "true"}, false, false},
		{map[string]string{"NativeTriggerFanOut": "true"}, false, false},
	} {
		tpl := readTemplate(t, path, c.params)
		for cond, want := range map[string]bool{"PollerFanOutOn": c.poller, "NativeTriggerFanOutOn": c.trig} {
			if got, err := tpl.Condition(cond); err != nil || got != want {
				t.Errorf("%v: %s = %v, %v; want %v", c.params, cond, got, err, want)
			}
		}
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	_, res := entries(section(t, text, "Resources"))
	names := map[string]string{}
	for id, cond := range map[string]string{"PollerConsumer": "PollerFanOutOn", "NativeTriggerConsumer": "NativeTriggerFanOutOn"} {
		if typ, _ := field(res[id], 4, "Type"); typ != "AWS::Kinesis::StreamConsumer" {
			t.Errorf("%s: Type %q, want AWS::Kinesis::StreamConsumer", id, typ)
		}
		if got, _ := field(res[id], 4, "Condition"); got != cond {
			t.Errorf("%s: Condition %q, want %s", id, got, cond)
		}
		names[id], _ = field(res[id], 6, "ConsumerName")
	}
	if names["PollerConsumer"] == "" || names["PollerConsumer"] == names["NativeTriggerConsumer"] {
		t.Errorf("the consumers' names %q: want two different names", names)
	}
	env, _ := field(res["HandlerFunction"], 10, "SHARDLINE_CONSUMER_ARN")
	if !strings.Contains(env, "PollerConsumer.") || strings.Contains(env, "NativeTriggerConsumer") {
		t.Errorf("SHARDLINE_CONSUMER_ARN: %s: want PollerConsumer's ARN alone", env)
	}
	src := strings.Join(res["NativeTriggerMapping"], "\n")
	if !strings.Contains(src, "NativeTriggerConsumer.ConsumerARN") || strings.Contains(src, "PollerConsumer") {
		t.Errorf("NativeTriggerMapping: want NativeTriggerConsumer's ARN as its source, never PollerConsumer's:\n%s", src)
	}
}
