package shardline

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/testwait"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReplayVsRun: one backlog on kinesis-mock (4 shards, 40,000 user
// records of 100 bytes over 400 keys, in KPL aggregates of 100), read to
// its end by `replay -from TRIM_HORIZON` and by `run -initial-position
// TRIM_HORIZON` (a new application each time), all with an in-process
// handler that only counts, batch size 100. replay is measured twice: with
// no read pacing (-read-share 0) and with run's own pacing (-read-share 1:
// each shard read at most every 200 ms, as run reads a shard that is
// behind; run has no setting that reads faster: -idle-time-between-reads
// paces only a shard that has caught up, and is 200ms at least). An op is
// one whole read of the backlog; records/s is user records over the wall
// time, cpu-ms/1M-records the process's user and system CPU time per
// million user records (the stand-ins' own CPU is not counted).
//
//	go test -run '^$' -bench BenchmarkReplayVsRun -benchtime 3x -count 3 ./shared/shardline/
func BenchmarkReplayVsRun(b *testing.B) {
	b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	b.Setenv("AWS_ACCESS_KEY_ID", "local")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	b.Setenv("AWS_REGION", "us-east-1")
	ks, ds := standintest.Both(b)
	name := standintest.NewStream(b, ks.Endpoint, 4)
	kc := standintest.KinesisClient(ks.Endpoint)
	const total = 40000
	prod, err := produce.New(context.Background(), kc, name, 100)
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 100)
	for i := 0; i < total; i += 4000 {
		var recs []kpl.UserRecord
		for j := range 4000 {
			recs = append(recs, kpl.UserRecord{PartitionKey: fmt.Sprint("key-", (i+j)%400), Data: data})
		}
		if err := prod.Put(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	var handled atomic.Int64
	h := func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		handled.Add(int64(len(ev.Records)))
		return events.KinesisEventResponse{}, nil
	}
	report := func(b *testing.B, start time.Time, cpu time.Duration) {
		recs := float64(handled.Load())
		b.ReportMetric(recs/time.Since(start).Seconds(), "records/s")
		b.ReportMetric(float64(cpuTime()-cpu)/1e6/(recs/1e6), "cpu-ms/1M-records")
	}
	quiet := func(vars map[string]string) func(string) string {
		return func(k string) string {
			if k == "SHARDLINE_LOG_LEVEL" {
				return "warn"
			}
			return env(vars)(k)
		}
	}
	for _, share := range []string{"0", "1"} {
		b.Run("replay/read-share="+share, func(b *testing.B) {
			handled.Store(0)
			start, cpu := time.Now(), cpuTime()
			for range b.N {
				var out bytes.Buffer
				err := New(WithName("poller"), Handle(h)).Run(context.Background(), []string{"replay", "-stream-name", name, "-kinesis-endpoint", ks.Endpoint,
					"-from", "TRIM_HORIZON", "-read-share", share, "-quiet"}, quiet(nil), &out, &out)
				if err != nil {
					b.Fatal(err, out.String())
				}
			}
			if handled.Load() != int64(b.N)*total {
				b.Fatalf("replay handled %d, want %d", handled.Load(), b.N*total)
			}
			report(b, start, cpu)
		})
	}
	b.Run("run", func(b *testing.B) {
		handled.Store(0)
		start, cpu := time.Now(), cpuTime()
		for i := range b.N {
			want := int64(i+1) * total
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			var out bytes.Buffer
			go func() {
				ran <- New(WithName("poller"), Handle(h)).Run(ctx, []string{"run", "-app-name", fmt.Sprintf("%s-bench-%d-%d", name[:20], time.Now().UnixNano(), i),
					"-stream-name", name, "-kinesis-endpoint", ks.Endpoint, "-dynamodb-endpoint", ds.Endpoint, "-initial-position", "TRIM_HORIZON",
					"-metrics-level", "NONE", "-quiet"}, quiet(nil), &out, &out)
			}()
			testwait.Until(b, 5*time.Minute, "run handles the backlog", func() bool { return handled.Load() >= want })
			cancel()
			if err := <-ran; err != nil {
				b.Fatal(err, out.String())
			}
		}
		report(b, start, cpu)
	})
}
