package coordinator_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/testwait"
)

// contentTypes records the Content-Type of every GetRecords request.
type contentTypes struct {
	mu   sync.Mutex
	seen map[string]int
	next http.RoundTripper
}

func (c *contentTypes) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") == "Kinesis_20131202.GetRecords" {
		c.mu.Lock()
		c.seen[r.Header.Get("Content-Type")]++
		c.mu.Unlock()
	}
	return c.next.RoundTrip(r)
}

func (c *contentTypes) only() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) != 1 {
		return "", len(c.seen)
	}
	for k := range c.seen {
		return k, 1
	}
	return "", 0
}

// A worker reads GetRecords over CBOR by default, and over JSON with
// AWS_CBOR_DISABLE=true (the AWS SDK for Java's variable); both deliver
// every record once, KPL aggregates de-aggregated.
func TestReadProtocols(t *testing.T) {
	for _, tc := range []struct {
		name, disable, want string
	}{
		{"cbor", "", "application/x-amz-cbor-1.1"},
		{"json", "true", "application/x-amz-json-1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_CBOR_DISABLE", tc.disable)
			f := newFixture(t, 2)
			want := f.put(50, 400, 0, 50)
			want = append(want, f.put(50, 100, 400, 0)...)
			ct := &contentTypes{seen: map[string]int{}, next: http.DefaultTransport}
			client := kinesis.New(f.kinesis.Options(), func(o *kinesis.Options) {
				o.HTTPClient = &http.Client{Transport: ct}
			})
			c := &collector{}
			r := f.start(c.handle, func(cfg *coordinator.Config) { cfg.Kinesis = client })
			testwait.Until(t, time.Minute, "500 records", func() bool { return c.count() >= len(want) })
			if err := r.stop(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
			seen := map[string]int{}
			for _, g := range c.snapshot() {
				seen[g.id]++
			}
			for _, id := range want {
				if seen[id] != 1 {
					t.Fatalf("record %s delivered %d times, want 1", id, seen[id])
				}
			}
			if len(c.snapshot()) != len(want) {
				t.Errorf("delivered %d records, want %d", len(c.snapshot()), len(want))
			}
			if got, n := ct.only(); got != tc.want {
				t.Errorf("GetRecords sent as %q (%d content types: %v), want %s", got, n, ct.seen, tc.want)
			}
			checkOrder(t, c.snapshot())
		})
	}
}
