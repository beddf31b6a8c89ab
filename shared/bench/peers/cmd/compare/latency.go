package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin"
)

// recordSize is the size of every user record's data.
const recordSize = 100

// userRecords makes n user records numbered from first: data is the
// producer timestamp ts (8 bytes, big-endian UnixNano) and text padding to
// recordSize bytes; partition keys cycle through 1,000.
func userRecords(first, n int, ts time.Time) []kpl.UserRecord {
	out := make([]kpl.UserRecord, n)
	buf := make([]byte, n*recordSize)
	for j := range out {
		i := first + j
		d := buf[j*recordSize : (j+1)*recordSize : (j+1)*recordSize]
		binary.BigEndian.PutUint64(d, uint64(ts.UnixNano()))
		pad := fmt.Appendf(d[8:8], " key-%d:%d ", i%1000, i)
		for k := 8 + len(pad); k < recordSize; k++ {
			d[k] = '.'
		}
		out[j] = kpl.UserRecord{PartitionKey: fmt.Sprint("key-", i%1000), Data: d}
	}
	return out
}

// latency runs one consumer on a new stream of kinesis-mock and puts rate
// user records a second into it once the consumer has been started, until
// the consumer has taken rate × latencyDuration latency samples (records
// produced after its warm-up) and exited. Records are made every plainTk
// (10 ms) and stamped when made; plain ones are put at once, KPL ones
// collected and put as aggregates every kplFlush (50 ms), so their latency
// includes up to that wait, as with the KPL's RecordMaxBufferedTime.
func (r *runner) latency(ctx context.Context, kc *kinesis.Client, endpoint string, v dataset, lib string, round int) (report, error) {
	stream := fmt.Sprintf("lat-%s-%s-%d-%d", v.key, lib, round, time.Now().UnixNano()%1e9)
	if err := standin.EnsureStreams(ctx, endpoint, fmt.Sprintf("%s:%d", stream, v.shards)); err != nil {
		return report{}, err
	}
	p, err := produce.New(ctx, kc, stream, v.aggregate)
	if err != nil {
		return report{}, err
	}
	samples := int(float64(r.opt.rate) * r.opt.latencyDuration.Seconds())
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
		rep, err := r.peer(peerCtx, "-lib", lib, "-stream", stream, "-n", fmt.Sprint(samples), "-kinesis", endpoint,
			"-latency", "-warmup", fmt.Sprint(r.opt.warmup))
		done <- result{rep, err}
	}()
	giveUp := time.Now().Add(r.opt.latencyDuration + time.Duration(r.opt.warmup/max(r.opt.rate, 1))*time.Second + r.opt.timeout)
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
				x.rep.PutRate = float64(made) / time.Since(start).Seconds()
				l := x.rep.Latency
				r.logf("%s latency on %s: %d samples, p50 %.0f ms, p99 %.0f ms, max %.0f ms; %d records put in %.1fs", lib, stream, l.Samples, l.P50MS, l.P99MS, l.MaxMS, made, time.Since(start).Seconds())
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
