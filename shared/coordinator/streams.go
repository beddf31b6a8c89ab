package coordinator

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/stream"
)

// MaxStreams is how many streams one application reads at most.
const MaxStreams = 50

// StreamNames splits a -stream-name value: one stream, or a
// comma-separated list of them (KCL's multi-stream mode). Names are
// trimmed; an empty name, a name given twice or more than MaxStreams
// names is an error naming what was given. A list ending in a comma is a
// multi-stream application's even with one stream left (MultiStream).
func StreamNames(v string) ([]string, error) {
	parts := strings.Split(strings.TrimSuffix(strings.TrimSpace(v), ","), ",")
	seen := map[string]bool{}
	var out []string
	for _, p := range parts {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
			return nil, fmt.Errorf("stream-name %q: an empty name in the list; allowed one stream name or a comma-separated list of them", v)
		case seen[p]:
			return nil, fmt.Errorf("stream-name %q: %s is named twice; allowed each stream once", v, p)
		}
		seen[p] = true
		out = append(out, p)
	}
	if len(out) > MaxStreams {
		return nil, fmt.Errorf("stream-name: %d streams given; allowed at most %d in one application", len(out), MaxStreams)
	}
	return out, nil
}

// streamInfo is one stream the worker reads.
type streamInfo struct {
	name string
	// id is KCL's stream identifier, account:stream:creationEpoch, the
	// prefix of the stream's lease keys in a multi-stream table; "" for a
	// single-stream application.
	id          string
	source      stream.Source
	consumerARN string // enhanced fan-out's, set by Check
}

// MultiStream reports whether a -stream-name value names a multi-stream
// application: more than one stream, or a list that ends in a comma
// ("orders," keeps a multi-stream table with one stream left).
func MultiStream(v string) bool {
	names, err := StreamNames(v)
	return err == nil && (len(names) > 1 || strings.HasSuffix(strings.TrimSpace(v), ","))
}

// multi reports whether the worker reads as a multi-stream application
// (lease keys account:stream:creationEpoch:shardId).
func (w *Worker) multi() bool { return w.multiMode }

// streamOf is the stream a lease is of; nil for a stream not (or no
// longer) in the list.
func (w *Worker) streamOf(l lease.Lease) *streamInfo {
	if !w.multi() {
		if len(w.streams) == 0 { // a Worker not made by New
			return &streamInfo{name: w.cfg.StreamName}
		}
		return w.streams[0]
	}
	for _, s := range w.streams {
		if s.id == l.StreamID {
			return s
		}
	}
	return nil
}

// keyOf is the lease key of shardID of s.
func (s *streamInfo) keyOf(shardID string) string {
	if s.id == "" {
		return shardID
	}
	return lease.MultiStreamKey(s.id, shardID)
}

// describeStreams reads each stream's ARN and, with several, its KCL
// stream identifier.
func (w *Worker) describeStreams(ctx context.Context) error {
	var out []*streamInfo
	for _, name := range w.names {
		d, err := w.cfg.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, Explain(err))
		}
		s := &streamInfo{name: name, source: stream.Source{StreamARN: aws.ToString(d.StreamDescriptionSummary.StreamARN), Region: w.cfg.Region}}
		if w.multi() {
			id, err := streamID(name, d)
			if err != nil {
				return err
			}
			s.id = id
		}
		out = append(out, s)
	}
	w.streams = out
	return nil
}

// checkSingleStream refuses a multi-stream worker a table that holds
// single-stream leases: their keys name no stream.
func (w *Worker) checkSingleStream(ctx context.Context) error {
	if !w.multi() {
		return nil
	}
	sc, err := w.table.Scan(ctx)
	if err != nil {
		return fmt.Errorf("lease table: %w", Explain(err))
	}
	if len(sc.SingleStream) > 0 {
		keys := slices.Sorted(slices.Values(sc.SingleStream))
		return fmt.Errorf("lease table %s holds single-stream leases (%s): a list of streams needs its own application; give a new -app-name (its streams then start at -initial-position), or migrate the table as the README's \"Several streams\" says",
			w.cfg.AppName, strings.Join(keys[:min(3, len(keys))], ", "))
	}
	return nil
}

// formerStreams handles, on the leader, the leases of streams not in the
// list (removed from it, or deleted): each is logged once, left alone for
// FormerStreamRetention from when this leader first saw it, then deleted
// (KCL's deferred deletion of former streams' leases). It returns the
// leases of the streams read.
func (w *Worker) formerStreams(ctx context.Context, leases []lease.Lease, now time.Time) []lease.Lease {
	if !w.multi() {
		return leases
	}
	s := &w.lead
	if s.former == nil {
		s.former = map[string]time.Time{}
	}
	var ours []lease.Lease
	seen := map[string]bool{}
	w.mu.Lock()
	gone := maps.Clone(w.goneStreams)
	w.mu.Unlock()
	for _, l := range leases {
		if w.streamOf(l) != nil && !gone[l.StreamID] {
			ours = append(ours, l)
			continue
		}
		seen[l.Key] = true
		first, ok := s.former[l.Key]
		if !ok {
			s.former[l.Key] = now
			if _, said := w.noted["former "+l.StreamID]; !said {
				w.noted["former "+l.StreamID] = ""
				w.log.Warn("leases of a stream not in -stream-name: left alone, then deleted after -former-stream-lease-retention",
					"stream", l.StreamID, "retention", w.cfg.FormerStreamRetention)
			}
			continue
		}
		if now.Sub(first) < w.cfg.FormerStreamRetention {
			continue
		}
		if err := w.table.Remove(ctx, l); err == nil {
			w.log.Info("lease of a former stream deleted", "leaseKey", l.Key, "stream", l.StreamID, "after", w.cfg.FormerStreamRetention)
			delete(s.former, l.Key)
		}
	}
	for k := range s.former {
		if !seen[k] {
			delete(s.former, k)
		}
	}
	return ours
}

// StreamID is KCL's stream identifier of the stream name,
// account:stream:creationEpoch, the prefix of its lease keys in a
// multi-stream application's table.
func StreamID(ctx context.Context, kc interface {
	DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}, name string) (string, error) {
	d, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("stream %s: %w", name, Explain(err))
	}
	return streamID(name, d)
}

func streamID(name string, d *kinesis.DescribeStreamSummaryOutput) (string, error) {
	sum := d.StreamDescriptionSummary
	arn := aws.ToString(sum.StreamARN)
	account := ""
	if parts := strings.Split(arn, ":"); len(parts) > 4 {
		account = parts[4]
	}
	if account == "" {
		return "", fmt.Errorf("stream %s: its ARN %q names no account", name, arn)
	}
	var epoch int64
	if sum.StreamCreationTimestamp != nil {
		epoch = sum.StreamCreationTimestamp.Unix()
	}
	return account + ":" + name + ":" + strconv.FormatInt(epoch, 10), nil
}
