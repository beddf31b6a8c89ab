package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin"
)

const (
	// recordSize is the size of every user record's data.
	recordSize = 100
	// Where a user record's producer timestamps lie (8 bytes each,
	// big-endian UnixNano): when it was made, and when it was handed to
	// PutRecords (cmd/peer reads both).
	createdStamp = 0
	putStamp     = 8
	stampsEnd    = 16
)

// userRecords makes n user records numbered from first: data is the
// producer timestamp ts, twice (made, and put: stampPut moves the second
// to the put), and text padding to recordSize bytes; partition keys cycle
// through 1,000.
func userRecords(first, n int, ts time.Time) []kpl.UserRecord {
	out := make([]kpl.UserRecord, n)
	buf := make([]byte, n*recordSize)
	for j := range out {
		i := first + j
		d := buf[j*recordSize : (j+1)*recordSize : (j+1)*recordSize]
		binary.BigEndian.PutUint64(d[createdStamp:], uint64(ts.UnixNano()))
		binary.BigEndian.PutUint64(d[putStamp:], uint64(ts.UnixNano()))
		pad := fmt.Appendf(d[stampsEnd:stampsEnd], " key-%d:%d ", i%1000, i)
		for k := stampsEnd + len(pad); k < recordSize; k++ {
			d[k] = '.'
		}
		out[j] = kpl.UserRecord{PartitionKey: fmt.Sprint("key-", i%1000), Data: d}
	}
	return out
}

// stampPut writes t, the moment the records are handed to PutRecords
// (for KPL ones, the flush, before they are aggregated), into each
// record's put stamp; records too short for it are left alone.
func stampPut(recs []kpl.UserRecord, t time.Time) {
	for _, r := range recs {
		if len(r.Data) >= stampsEnd {
			binary.BigEndian.PutUint64(r.Data[putStamp:], uint64(t.UnixNano()))
		}
	}
}

// latencyTarget is where the latency runs put and every consumer reads:
// the in-process fake or a kinesis-mock.
type latencyTarget struct {
	source   string // srcFake or srcMock
	endpoint string
	// tlsEndpoint is the fake's TLS endpoint, where the enhanced fan-out
	// libraries read ("": none).
	tlsEndpoint string
	client      *kinesis.Client
	create      func(ctx context.Context, name string, shards int) error // a new empty stream
	remove      func(name string)                                        // nil: streams stay
}

// latency runs one consumer on a new stream of lt and puts rate user
// records a second into it once the consumer has been started, until
// the consumer has taken rate × dur latency samples (records produced
// after its warm-up) and exited. Enhanced fan-out libraries read the
// fake's TLS endpoint. Records are made every plainTk
// (10 ms) and stamped when made; plain ones are put at once, KPL ones
// collected and put as aggregates every kplFlush (50 ms), so their latency
// from creation includes up to that wait, as with the KPL's
// RecordMaxBufferedTime. Each record is stamped a second time just before
// its put (the flush, for KPL), so its latency from the put is the
// consumer's alone.
func (r *runner) latency(ctx context.Context, lt latencyTarget, v dataset, lib string, round int, dur time.Duration) (report, error) {
	stream := fmt.Sprintf("lat-%s-%s-%d-%d", v.key, lib, round, time.Now().UnixNano()%1e9)
	if err := lt.create(ctx, stream, v.shards); err != nil {
		return report{}, err
	}
	if lt.remove != nil {
		defer lt.remove(stream)
	}
	endpoint, source := lt.endpoint, lt.source
	if isEFO(lib) {
		if lt.tlsEndpoint == "" {
			return report{}, fmt.Errorf("%s: enhanced fan-out needs the fake's TLS endpoint", lib)
		}
		endpoint, source = lt.tlsEndpoint, srcFakeTLS
	}
	p, err := produce.New(ctx, lt.client, stream, v.aggregate)
	if err != nil {
		return report{}, err
	}
	samples := int(float64(r.opt.rate) * dur.Seconds())
	type result struct {
		rep report
		err error
	}
	done := make(chan result, 1)
	peerCtx, stopPeer := context.WithCancel(ctx)
	defer stopPeer()
	// putCtx ends when the peer has exited, so a slow PutRecords does
	// not hold the run.
	putCtx, stopPuts := context.WithCancel(ctx)
	defer stopPuts()
	p.GiveUpAfter = 30 * time.Second
	go func() {
		defer stopPuts()
		rep, err := r.peer(peerCtx, false, "-lib", lib, "-stream", stream, "-n", fmt.Sprint(samples), "-kinesis", endpoint,
			"-latency", "-warmup", fmt.Sprint(r.opt.warmup), "-warmup-shards", fmt.Sprint(v.shards))
		done <- result{rep, err}
	}()
	giveUp := time.Now().Add(dur + time.Duration(r.opt.warmup/max(r.opt.rate, 1))*time.Second + r.opt.timeout)
	tick := time.NewTicker(r.opt.plainTk)
	defer tick.Stop()
	start := time.Now()
	lastFlush := start
	made := 0
	var buf []kpl.UserRecord
	var putErr error
	for {
		select {
		case x := <-done:
			if x.err == nil && putErr != nil {
				x.err = putErr
			}
			if x.err == nil {
				x.rep.WallSeconds = time.Since(start).Seconds()
				x.rep.PutRate = float64(p.UserRecords) / time.Since(start).Seconds()
				l := x.rep.Latency
				r.logf("%s latency on %s (%s): %d samples, p50 %.0f ms, p99 %.0f ms, max %.0f ms; from the put (%d samples): p50 %.0f ms, p99 %.0f ms, max %.0f ms; %d of %d records put in %.1fs (%.0f/s)", lib, stream, source, l.Samples, l.P50MS, l.P99MS, l.MaxMS, l.PutSamples, l.PutP50MS, l.PutP99MS, l.PutMaxMS, p.UserRecords, made, time.Since(start).Seconds(), x.rep.PutRate)
			}
			return x.rep, x.err
		case <-ctx.Done():
			<-done
			return report{}, ctx.Err()
		case <-tick.C:
		}
		if putErr != nil {
			continue // wait for the peer to give up or finish
		}
		now := time.Now()
		if now.After(giveUp) {
			putErr = fmt.Errorf("no report after %v of producing", now.Sub(start).Round(time.Second))
			stopPeer()
			continue
		}
		if due := int(now.Sub(start).Seconds()*float64(r.opt.rate)) - made; due > 0 {
			buf = append(buf, userRecords(made, due, now)...)
			made += due
		}
		if len(buf) > 0 && (v.aggregate <= 1 || now.Sub(lastFlush) >= r.opt.kplFlush) {
			stampPut(buf, time.Now())
			if err := p.Put(putCtx, buf); err != nil {
				if putCtx.Err() != nil && ctx.Err() == nil {
					continue // the peer is done: its result is in done
				}
				putErr = fmt.Errorf("put: %w", err)
				stopPeer()
				continue
			}
			buf = nil
			lastFlush = now
		}
	}
}

// putProbe is what a fresh kinesis-mock took from the latency producer
// alone (plain records, no consumer).
type putProbe struct {
	rate    int           // the rate asked, user records/s
	put     int64         // records kinesis-mock accepted
	seconds float64       // the probe's length
	longest time.Duration // the longest Put (one PutRecords call of ~10 records)
	calls   int
	stuck   time.Duration // how long the Put cut off by the probe's end had waited (0: none)
	windows []int64       // records accepted in each probeWindow, by when their Put returned
}

const probeWindow = 5 * time.Second

// probeMockPuts starts a kinesis-mock of its own with one empty stream of
// shards shards, makes opt.rate plain user records a second for dur as
// the latency runs do (opt.plainTk apart, put at once, one Put at a time)
// and stops it; every Put ends with the probe.
func probeMockPuts(ctx context.Context, dur time.Duration, shards int, opt options, logf func(string, ...any)) (putProbe, error) {
	ks, err := standin.StartKinesis(ctx, standin.KinesisOptions{InitializeStreams: fmt.Sprintf("probe:%d", shards)})
	if err != nil {
		return putProbe{}, err
	}
	defer ks.Stop()
	p, err := produce.New(ctx, standin.KinesisClient(ks.Endpoint), "probe", 0)
	if err != nil {
		return putProbe{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	out := putProbe{rate: opt.rate}
	tick := time.NewTicker(opt.plainTk)
	defer tick.Stop()
	start := time.Now()
	made := 0
	var buf []kpl.UserRecord
	for pctx.Err() == nil {
		select {
		case <-pctx.Done():
		case <-tick.C:
		}
		now := time.Now()
		if due := int(now.Sub(start).Seconds()*float64(opt.rate)) - made; due > 0 {
			buf = append(buf, userRecords(made, due, now)...)
			made += due
		}
		if len(buf) == 0 || pctx.Err() != nil {
			continue
		}
		t0, before := time.Now(), p.UserRecords
		err := p.Put(pctx, buf)
		took := time.Since(t0)
		out.longest = max(out.longest, took)
		out.calls++
		if w := min(int(time.Since(start)/probeWindow), max(int((dur+probeWindow-1)/probeWindow), 1)-1); p.UserRecords > before {
			for len(out.windows) <= w {
				out.windows = append(out.windows, 0)
			}
			out.windows[w] += p.UserRecords - before
		}
		if err != nil {
			if pctx.Err() != nil && ctx.Err() == nil {
				out.stuck = took
				break
			}
			return out, err
		}
		buf = nil
	}
	if err := ctx.Err(); err != nil {
		return out, err
	}
	out.put, out.seconds = p.UserRecords, time.Since(start).Seconds()
	logf("kinesis-mock put probe: %d of %d plain records made at %d/s accepted in %.1fs (%.0f/s; per %v: %s); longest Put %v", out.put, made, opt.rate, out.seconds, float64(out.put)/out.seconds, probeWindow, out.windowRates(), out.longest.Round(time.Millisecond))
	return out, nil
}

// windowRates is the accepted records/s of each window, "990, 870, …".
func (p putProbe) windowRates() string {
	var parts []string
	for _, n := range p.windows {
		parts = append(parts, fmt.Sprintf("%.0f", float64(n)/probeWindow.Seconds()))
	}
	return strings.Join(parts, ", ")
}
