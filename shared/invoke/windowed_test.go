package invoke_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/handlers"
	"github.com/shardline/shardline/shared/invoke"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// TestWindowedOverInvoke: a windowed function behind the Invoke API (here
// the windowed wordcount, reading the request as aws-lambda-go does) gets
// its windows, state and final invokes through dispatch.Windowed and
// WindowHandler, and its counts come out per window.
func TestWindowedOverInvoke(t *testing.T) {
	var out testwait.Buffer
	fn := handlers.NewWindowWordCount(handlers.Options{Out: &out})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev events.KinesisTimeWindowEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			t.Errorf("the function cannot read the event: %v", err)
		}
		resp, err := fn.Handle(r.Context(), ev)
		if err != nil {
			t.Errorf("function: %v", err)
		}
		_ = json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(srv.Close)

	wd, err := dispatch.NewWindowed(dispatch.Config{Source: src, BatchSize: 2, MaxRetryAttempts: -1}, time.Minute,
		invoke.WindowHandler(lambdaClient(t, srv.URL), "wordcount"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC)
	var recs []stream.Record
	for i, l := range []struct {
		at   time.Duration
		line string
	}{{0, "1 2"}, {time.Second, "2 3"}, {2 * time.Second, "2"}, {65 * time.Second, "9 9"}} {
		recs = append(recs, stream.Record{ShardID: "shardId-000000000002", SequenceNumber: strconv.Itoa(100 + i),
			Data: []byte(l.line), ApproximateArrivalTimestamp: start.Add(l.at)})
	}
	var done []string
	mark := func(p stream.Position) { done = append(done, p.String()) }
	if err := wd.Deliver(context.Background(), nil, recs, mark); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if err := wd.ShardEnd(context.Background(), nil, mark); err != nil {
		t.Fatalf("ShardEnd: %v", err)
	}
	want := `{"shardId":"shardId-000000000002","start":"2026-01-02T15:04:00Z","end":"2026-01-02T15:05:00Z","terminatedEarly":false,"words":5,"counts":{"1":1,"2":3,"3":1}}` + "\n" +
		`{"shardId":"shardId-000000000002","start":"2026-01-02T15:05:00Z","end":"2026-01-02T15:06:00Z","terminatedEarly":false,"words":2,"counts":{"9":2}}` + "\n"
	if got := out.String(); got != want {
		t.Errorf("the function printed\n%s\nwant\n%s", got, want)
	}
	if !slices.Equal(done, []string{"102", "103"}) {
		t.Errorf("done = %v, want [102 103]", done)
	}
	if s := wd.Stats(); s.Batches != 5 || s.Failures != 0 {
		t.Errorf("Stats = %+v, want 5 calls (2 + 1 batches, 2 final invokes), no failures", s)
	}
}
