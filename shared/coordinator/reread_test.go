package coordinator_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/testwait"
)

// destinationLog is an on-failure destination that keeps what it gets.
type destinationLog struct {
	mu   sync.Mutex
	data []string
}

func (d *destinationLog) Send(_ context.Context, f dispatch.Failure) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range f.Records {
		d.data = append(d.data, string(r.Data))
	}
	return nil
}

func (d *destinationLog) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.data)
}

// TestRetryGetsBytesAsRead (issue 17): an in-process handler that decodes
// Data in place and fails: its retries, its bisected halves and the
// on-failure destination get the bytes as written to the stream (read
// again from kinesis-mock after the failed call), for plain records, KPL
// user records and lanes alike; the calls that succeed first time get the
// bytes as read, with no copy.
func TestRetryGetsBytesAsRead(t *testing.T) {
	for _, tc := range []struct {
		name      string
		aggregate int
		factor    int
		giveUp    bool // no retries: every record goes to the destination
	}{
		{name: "plain", aggregate: 0, factor: 1},
		{name: "kpl", aggregate: 7, factor: 1},
		{name: "kpl lanes", aggregate: 7, factor: 3},
		{name: "destination", aggregate: 7, factor: 1, giveUp: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 1)
			ids := f.put(6, 60, 0, tc.aggregate)
			want := map[string]bool{}
			for _, id := range ids {
				want[id] = true
			}
			var mu sync.Mutex
			var bad []string
			ok := map[string]bool{}
			calls := 0
			h := func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
				mu.Lock()
				defer mu.Unlock()
				calls++
				for i := range ev.Records {
					d := ev.Records[i].Kinesis.Data
					if !want[string(d)] {
						bad = append(bad, string(d))
					}
					for j := range d {
						d[j] = 'X' // decoded in place
					}
				}
				if tc.giveUp || calls%2 == 1 { // every other call fails
					return events.KinesisEventResponse{}, errors.New("decoded, then failed")
				}
				for i := range ev.Records {
					ok[ev.Records[i].EventID] = true
				}
				return events.KinesisEventResponse{}, nil
			}
			dest := &destinationLog{}
			r := f.start(h, func(c *coordinator.Config) {
				c.BatchSize = 10
				c.ParallelizationFactor = tc.factor
				c.BisectOnError = true
				if tc.giveUp {
					c.MaxRetryAttempts, c.BisectOnError = 0, false
					c.OnFailure = dest
				}
			})
			testwait.Until(t, 30*time.Second, "every record handled (or given up)", func() bool {
				mu.Lock()
				defer mu.Unlock()
				if tc.giveUp {
					return dest.count() >= len(ids)
				}
				return len(ok) >= len(ids)
			})
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(bad) > 0 {
				t.Errorf("%d records reached a call changed by an earlier call, e.g. %q", len(bad), bad[0])
			}
			for _, d := range dest.data {
				if !want[d] {
					t.Errorf("the destination got %q, changed by a call", d)
				}
			}
		})
	}
}
