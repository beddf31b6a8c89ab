package config

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/destination"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/stream"
)

// Replay are the settings of `replay`: a range of the stream into the
// handler with no lease table. The delivery settings are Run's (the same
// flags, defaults and checks); the rest of Run keeps its defaults.
type Replay struct {
	Run
	From, Until string
	Shards      ShardList
	Rate        float64
	ReadShare   float64

	// Set by Validate.
	FromBound, UntilBound Bound
}

// Bound is a parsed -from or -until: a sentinel (TRIM_HORIZON, LATEST), a
// time, or a position in one shard.
type Bound struct {
	Sentinel string          // stream.TrimHorizon or stream.Latest, or ""
	Time     time.Time       // a time, or zero
	Pos      stream.Position // a sequence number (and sub-sequence number), or zero
}

// IsTime reports whether b is a time.
func (b Bound) IsTime() bool { return !b.Time.IsZero() }

// IsPosition reports whether b is a sequence number.
func (b Bound) IsPosition() bool { return b.Pos.Seq != "" }

// ShardList is a repeatable -shard; the variable takes a comma-separated
// list.
type ShardList []string

func (l *ShardList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

// Set adds a shard id, or several separated by commas.
func (l *ShardList) Set(v string) error {
	for id := range strings.SplitSeq(v, ",") {
		if id = strings.TrimSpace(id); id == "" {
			return fmt.Errorf("allowed a shard id such as shardId-000000000001 (or several, comma-separated)")
		}
		*l = append(*l, id)
	}
	return nil
}

// Register adds replay's settings to fs: its own, -handler and
// -target-function, the delivery settings run has, Kinesis and Lambda
// access and logging (no lease table: no -app-name, no DynamoDB).
func (s *Replay) Register(fs *flag.FlagSet) {
	// Every Run field at its default first, so that the settings replay
	// does not take pass Run's checks.
	scratch := flag.NewFlagSet("run", flag.ContinueOnError)
	scratch.SetOutput(io.Discard)
	s.Run.Register(scratch)
	s.Common.register(fs, usesLambda|usesLog)
	fs.StringVar(&s.From, "from", "", "first record: an RFC 3339 `time` (approximate arrival, inclusive), TRIM_HORIZON, or a sequence number (seq or seq:sub, with one -shard) (required)")
	fs.StringVar(&s.Until, "until", stream.Latest, "end, exclusive: an RFC 3339 time, LATEST (the tip when the replay began), or a sequence number (seq or seq:sub, with one -shard)")
	fs.Var(&s.Shards, "shard", "replay only this `shard` id; give it again for more (the variable: comma-separated); default every shard")
	fs.Float64Var(&s.Rate, "rate", 0, "most user records per second over the whole replay (0: no cap)")
	fs.Float64Var(&s.ReadShare, "read-share", 0.5, "share of each shard's Kinesis read limits (5 reads/s, 2 MB/s) the replay takes, 0–1: the rest is the running pollers'; 0: no read pacing (a stand-in, or a stream no one else reads)")
	s.registerHandler(fs)
	s.registerDelivery(fs)
}

// Validate checks the settings at now: one line naming the first bad one
// (a *UsageError). It parses -from and -until into FromBound and
// UntilBound.
func (s *Replay) Validate(now time.Time) error {
	r := s.Run
	r.AppName = "replay" // no lease table: Run's check of it is moot
	if err := r.validate(now); err != nil {
		return err
	}
	s.Run.Timestamp = r.Timestamp
	if s.From == "" {
		return Usagef("-from (%s) is required: an RFC 3339 time such as 2026-01-02T15:04:05Z, TRIM_HORIZON, or a sequence number with -shard", EnvName("from"))
	}
	var err error
	if s.FromBound, err = parseBound("from", s.From, now); err != nil {
		return err
	}
	if s.UntilBound, err = parseBound("until", s.Until, now); err != nil {
		return err
	}
	f, u := s.FromBound, s.UntilBound
	switch {
	case s.Rate < 0:
		return Usagef("-rate %g: allowed 0 (no cap) or a positive number of records per second", s.Rate)
	case s.ReadShare < 0 || s.ReadShare > 1:
		return Usagef("-read-share %g: allowed 0 (no read pacing) to 1 (all of each shard's 5 reads/s and 2 MB/s)", s.ReadShare)
	case (f.IsPosition() || u.IsPosition()) && len(s.Shards) != 1:
		which, v := "from", s.From
		if !f.IsPosition() {
			which, v = "until", s.Until
		}
		return Usagef("-%s %s is a sequence number: it needs exactly one -shard (%s), the shard it belongs to; %d given", which, v, EnvName("shard"), len(s.Shards))
	case f.Sentinel == stream.Latest:
		return Usagef("-from LATEST: the tip when the replay begins is where -until LATEST ends it, so nothing would be replayed; allowed a time, TRIM_HORIZON or a sequence number")
	case u.Sentinel == stream.TrimHorizon:
		return Usagef("-until TRIM_HORIZON: nothing is before it; allowed a time, LATEST or a sequence number")
	case f.IsTime() && u.IsTime() && !f.Time.Before(u.Time):
		return Usagef("-from %s is not before -until %s: allowed a -from earlier than -until", s.From, s.Until)
	case f.IsPosition() && u.IsPosition() && !u.Pos.After(f.Pos):
		return Usagef("-from %s is not before -until %s in shard %s: allowed a -from earlier than -until", s.From, s.Until, s.Shards[0])
	}
	return nil
}

// Destination is -on-failure's destination (nil without it), sending
// with clients.
func (s *Replay) Destination(clients *awsconf.Clients) (dispatch.Destination, error) {
	if s.OnFailure == "" {
		return nil, nil
	}
	return destination.Parse(s.OnFailure, "replay", destinationClients(clients))
}

// parseBound reads -from or -until.
func parseBound(name, v string, now time.Time) (Bound, error) {
	switch v {
	case stream.TrimHorizon, stream.Latest:
		return Bound{Sentinel: v}, nil
	}
	if v != "" && (v[0] < '0' || v[0] > '9' || strings.ContainsAny(v, "-T")) {
		t, err := ParseTimestamp(name, v, now)
		if err != nil {
			return Bound{}, Usagef("%v; or TRIM_HORIZON, LATEST, or a sequence number (seq or seq:sub)", err)
		}
		return Bound{Time: t}, nil
	}
	seq, sub, hasSub := strings.Cut(v, ":")
	if !hasSub {
		seq, sub, hasSub = strings.Cut(v, "/")
	}
	p := stream.Position{Seq: seq}
	if hasSub {
		n, err := strconv.ParseInt(sub, 10, 64)
		if err != nil || n < 0 {
			return Bound{}, Usagef("-%s %q: sub-sequence number %q: allowed seq or seq:sub with sub a whole number", name, v, sub)
		}
		p.SubSeq = n
	}
	if !digits(seq) {
		return Bound{}, Usagef("-%s %q: allowed an RFC 3339 time such as 2026-01-02T15:04:05Z, TRIM_HORIZON, LATEST, or a sequence number (seq or seq:sub)", name, v)
	}
	return Bound{Pos: p}, nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
