package main

import (
	"context"
	"fmt"
	"github.com/shardline/shardline/shared/config"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/produce"
)

// runProduce is the seeds' word producer (Spark's KinesisWordProducerASL):
// lines of random numbers 0–9, -rate lines a second, -numbers per line,
// each line its own partition key, optionally packed -aggregate per Kinesis
// record in the KPL format. At the end it prints how often each number was
// sent, so a word count can be checked against it.
func runProduce(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config.Common
	var rate, numbers, aggregate int
	var count int64
	fs := config.NewFlagSet("produce", stdout)
	c.Register(fs, false)
	fs.IntVar(&rate, "rate", 1000, "lines per second")
	fs.IntVar(&numbers, "numbers", 10, "random numbers (0–9) per line")
	fs.IntVar(&aggregate, "aggregate", 0, "user records per Kinesis record in the KPL format (0 or 1: no aggregation)")
	fs.Int64Var(&count, "count", 0, "stop after this many lines (0: until interrupted)")
	if err := config.Parse(fs, args, getenv); err != nil {
		return err
	}
	if err := c.Validate(false); err != nil {
		return err
	}
	switch {
	case rate < 1 || rate > 1_000_000:
		return config.Usagef("-rate %d: allowed 1–1000000 lines per second", rate)
	case numbers < 1 || numbers > 10000:
		return config.Usagef("-numbers %d: allowed 1–10000", numbers)
	case aggregate < 0 || aggregate > 10000:
		return config.Usagef("-aggregate %d: allowed 0–10000", aggregate)
	case count < 0:
		return config.Usagef("-count %d: allowed 0 (no limit) or more", count)
	}
	clients, err := c.Clients(ctx)
	if err != nil {
		return err
	}
	p, err := produce.New(ctx, clients.Kinesis, c.StreamName, aggregate)
	if err != nil {
		return fmt.Errorf("cannot start: stream %s: %w", c.StreamName, explain(err))
	}
	progress := newProgress(stderr)
	totals := make([]int64, 10)
	var sent int64
	const tick = 100 * time.Millisecond
	start := time.Now()
	next := start
	var buf []kpl.UserRecord
	var line strings.Builder
	for count == 0 || sent < count {
		// Lines due by now at -rate per second, sent in one go per tick.
		due := int64(float64(rate)*time.Since(start).Seconds()) + 1 - sent
		if count > 0 {
			due = min(due, count-sent)
		}
		buf = buf[:0]
		for i := int64(0); i < due; i++ {
			line.Reset()
			for j := 0; j < numbers; j++ {
				n := rand.IntN(10)
				totals[n]++
				if j > 0 {
					line.WriteByte(' ')
				}
				line.WriteString(strconv.Itoa(n))
			}
			buf = append(buf, kpl.UserRecord{PartitionKey: "partitionKey-" + strconv.FormatInt(sent+i, 10), Data: []byte(line.String())})
		}
		if len(buf) > 0 {
			if err := p.Put(ctx, buf); err != nil {
				if ctx.Err() != nil {
					break
				}
				return fmt.Errorf("put records: %w", explain(err))
			}
			sent += int64(len(buf))
		}
		progress.update(sent, p.KinesisRecords)
		next = next.Add(tick)
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(next)):
		}
		if ctx.Err() != nil {
			break
		}
	}
	progress.done(sent, p.KinesisRecords)
	fmt.Fprintf(stdout, "sent %d lines (%d numbers) in %d Kinesis records to %s\n", sent, sent*int64(numbers), p.KinesisRecords, c.StreamName)
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
