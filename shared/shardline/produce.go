package shardline

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/produce"
)

// produceCmd is `poller produce`'s settings.
type produceCmd struct {
	c                        config.Common
	rate, numbers, aggregate int
	count                    int64
}

func (p *produceCmd) parse(a *App, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := a.newFlagSet("produce", stdout)
	fs.IntVar(&p.rate, "rate", 1000, "lines per second")
	fs.IntVar(&p.numbers, "numbers", 10, "random numbers (0–9) per line")
	fs.IntVar(&p.aggregate, "aggregate", 0, "user records per Kinesis record in the KPL format (0 or 1: no aggregation)")
	fs.Int64Var(&p.count, "count", 0, "stop after this many lines (0: until interrupted)")
	p.c.RegisterKinesis(fs)
	if err := a.parse(fs, args, getenv); err != nil {
		return err
	}
	if err := p.c.OneStream("produce"); err != nil {
		return err
	}
	if err := p.c.Validate(false); err != nil {
		return err
	}
	switch {
	case p.rate < 1 || p.rate > 1_000_000:
		return config.Usagef("-rate %d: allowed 1–1000000 lines per second", p.rate)
	case p.numbers < 1 || p.numbers > 10000:
		return config.Usagef("-numbers %d: allowed 1–10000", p.numbers)
	case p.aggregate < 0 || p.aggregate > 10000:
		return config.Usagef("-aggregate %d: allowed 0–10000", p.aggregate)
	case p.count < 0:
		return config.Usagef("-count %d: allowed 0 (no limit) or more", p.count)
	}
	return nil
}

// Producing stops when PutRecords calls have failed for putGiveUp, and
// on the first signal lets the call in flight finish for up to putGrace,
// so that its records are counted if Kinesis accepts them.
var (
	putGiveUp = 10 * time.Second
	putGrace  = 5 * time.Second
)

// runProduce is the seeds' word producer (Spark's KinesisWordProducerASL):
// lines of random numbers 0–9, -rate lines a second, -numbers per line,
// each line its own partition key, optionally packed -aggregate per Kinesis
// record in the KPL format. At the end it prints how often each number was
// sent, counting only the lines Kinesis accepted, so a word count can be
// checked against it. A stream or endpoint it cannot use ends it at once
// with the line `run` prints; an endpoint that stops answering, after
// putGiveUp.
func (a *App) runProduce(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var pc produceCmd
	if err := pc.parse(a, args, getenv, stdout); err != nil {
		return err
	}
	c := pc.c
	clients, err := c.Clients(ctx)
	if err != nil {
		return err
	}
	// What `run` checks first, with few attempts: a dead endpoint or a
	// missing stream is reported at once.
	if _, err := clients.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(c.StreamName)},
		func(o *kinesis.Options) { o.RetryMaxAttempts = 2 }); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot start: stream %s: %w", c.StreamName, explain(err))
	}
	p, err := produce.New(ctx, clients.Kinesis, c.StreamName, pc.aggregate)
	if err != nil {
		return fmt.Errorf("cannot start: stream %s: %w", c.StreamName, explain(err))
	}
	p.GiveUpAfter = putGiveUp
	// Totals of the numbers in the lines Kinesis accepted.
	totals := make([]int64, 10)
	p.OnAccepted = func(users []kpl.UserRecord) {
		for _, u := range users {
			for _, b := range u.Data {
				if b >= '0' && b <= '9' {
					totals[b-'0']++
				}
			}
		}
	}
	// The first signal stops making lines; the call in flight may finish.
	putCtx, cancelPut := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelPut()
	stopGrace := context.AfterFunc(ctx, func() { time.AfterFunc(putGrace, cancelPut) })
	defer stopGrace()

	progress := newProgress(stderr)
	var made int64 // lines made, accepted or not
	const tick = 100 * time.Millisecond
	start := time.Now()
	next := start
	var buf []kpl.UserRecord
	var line strings.Builder
	var putErr error
	for (pc.count == 0 || made < pc.count) && ctx.Err() == nil {
		// Lines due by now at -rate per second, sent in one go per tick.
		due := int64(float64(pc.rate)*time.Since(start).Seconds()) + 1 - made
		if pc.count > 0 {
			due = min(due, pc.count-made)
		}
		buf = buf[:0]
		for i := int64(0); i < due; i++ {
			line.Reset()
			for j := 0; j < pc.numbers; j++ {
				if j > 0 {
					line.WriteByte(' ')
				}
				line.WriteString(strconv.Itoa(rand.IntN(10)))
			}
			buf = append(buf, kpl.UserRecord{PartitionKey: "partitionKey-" + strconv.FormatInt(made+i, 10), Data: []byte(line.String())})
		}
		made += int64(len(buf))
		if len(buf) > 0 {
			if err := p.Put(putCtx, buf); err != nil {
				if putCtx.Err() == nil {
					putErr = err
				}
				break
			}
		}
		progress.update(p.UserRecords, p.KinesisRecords)
		next = next.Add(tick)
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(next)):
		}
	}
	sent := p.UserRecords
	if putErr != nil && sent == 0 { // nothing to report but the error
		return fmt.Errorf("put records: stream %s: %w", c.StreamName, explain(putErr))
	}
	progress.done(sent, p.KinesisRecords)
	if unsent := made - sent; unsent > 0 {
		fmt.Fprintf(stderr, "produce: %d lines not accepted by Kinesis, not counted\n", unsent)
	}
	fmt.Fprintf(stdout, "sent %d lines (%d numbers) in %d Kinesis records to %s\n", sent, sent*int64(pc.numbers), p.KinesisRecords, c.StreamName)
	type kv struct {
		n int
		c int64
	}
	var ts []kv
	for n, c := range totals {
		ts = append(ts, kv{n, c})
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].c > ts[j].c || ts[i].c == ts[j].c && ts[i].n < ts[j].n })
	fmt.Fprintln(stdout, "totals of the numbers sent:")
	for _, t := range ts {
		fmt.Fprintf(stdout, "%d %d\n", t.n, t.c)
	}
	if putErr != nil {
		return fmt.Errorf("put records: stream %s: %w", c.StreamName, explain(putErr))
	}
	return nil
}

// progress shows lines/s and totals: a line rewritten in place on a
// terminal, a log line every 5 s otherwise.
type progress struct {
	w        io.Writer
	tty      bool
	start    time.Time
	last     time.Time
	lastSent int64
}

func newProgress(w io.Writer) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	now := time.Now()
	return &progress{w: w, tty: tty, start: now, last: now}
}

func (p *progress) update(sent, kinesis int64) {
	now := time.Now()
	every := 5 * time.Second
	if p.tty {
		every = 500 * time.Millisecond
	}
	if now.Sub(p.last) < every {
		return
	}
	rate := float64(sent-p.lastSent) / now.Sub(p.last).Seconds()
	p.last, p.lastSent = now, sent
	if p.tty {
		fmt.Fprintf(p.w, "\rproduced %d lines in %d Kinesis records, %.0f lines/s   ", sent, kinesis, rate)
	} else {
		fmt.Fprintf(p.w, "produced %d lines in %d Kinesis records, %.0f lines/s\n", sent, kinesis, rate)
	}
}

func (p *progress) done(sent, kinesis int64) {
	if p.tty {
		fmt.Fprintln(p.w)
	}
	el := time.Since(p.start).Seconds()
	fmt.Fprintf(p.w, "produced %d lines in %d Kinesis records in %.1fs (%.0f lines/s)\n", sent, kinesis, el, float64(sent)/max(el, 0.001))
}
