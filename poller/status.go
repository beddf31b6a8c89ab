package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/shards"
)

// shardStatus is one row of `poller status`.
type shardStatus struct {
	ShardID       string   `json:"shardId"`
	State         string   `json:"state"` // open, closed, or gone (trimmed)
	Parents       []string `json:"parents,omitempty"`
	Owner         string   `json:"owner,omitempty"`
	Checkpoint    string   `json:"checkpoint,omitempty"`
	SubSequence   int64    `json:"subSequenceNumber,omitempty"`
	LeaseCounter  int64    `json:"leaseCounter"`
	HasLease      bool     `json:"hasLease"`
	OwnerSwitches int64    `json:"ownerSwitchesSinceCheckpoint,omitempty"`
	// MillisBehindLatest is the lag of the owner's last read (-1: none
	// yet), as of LastRenewal; both are absent when never renewed.
	MillisBehindLatest *int64     `json:"millisBehindLatest,omitempty"`
	LastRenewal        *time.Time `json:"lastRenewal,omitempty"`
	// Timestamp is an AT_TIMESTAMP checkpoint's time.
	Timestamp *time.Time `json:"timestamp,omitempty"`
	// Parked says why the shard could not go on, when it is parked.
	Parked *lease.Park `json:"parked,omitempty"`
	// DroppedOutOfRange counts user records dropped outside the shard's
	// hash range over the lease's life.
	DroppedOutOfRange int64 `json:"droppedOutOfRange,omitempty"`
	// Unreadable says what is wrong with a lease item that does not decode.
	Unreadable string `json:"unreadable,omitempty"`
}

// statusCmd is `poller status`'s settings.
type statusCmd struct {
	c      config.Common
	asJSON bool
}

func (s *statusCmd) parse(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("status", stdout)
	s.c.Register(fs, true)
	fs.BoolVar(&s.asJSON, "json", false, "print JSON (one array) for scripts")
	if err := config.Parse(fs, args, getenv); err != nil {
		return err
	}
	return s.c.Validate(true)
}

func runStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var s statusCmd
	if err := s.parse(args, getenv, stdout); err != nil {
		return err
	}
	c := s.c
	clients, err := c.QuickClients(ctx)
	if err != nil {
		return err
	}
	list, err := shards.List(ctx, clients.Kinesis, c.StreamName)
	if err != nil {
		return fmt.Errorf("stream %s: %w", c.StreamName, explain(err))
	}
	leases, bad, err := lease.NewTable(clients.DynamoDB, c.AppName).Scan(ctx)
	if err != nil {
		return fmt.Errorf("lease table %s: %w", c.AppName, explain(err))
	}
	rows := statusRows(list, leases, bad)
	if s.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tSTATE\tPARENTS\tOWNER\tCHECKPOINT\tLAG\tLAST RENEWAL\tCOUNTER\tNOTE")
	for _, r := range rows {
		cp := r.Checkpoint
		if r.SubSequence != 0 {
			cp += fmt.Sprintf("/%d", r.SubSequence)
		}
		if !r.HasLease {
			cp = "(no lease)"
		}
		lag, renewed := "-", "-"
		if r.MillisBehindLatest != nil && *r.MillisBehindLatest >= 0 {
			lag = (time.Duration(*r.MillisBehindLatest) * time.Millisecond).String()
		}
		if r.LastRenewal != nil {
			renewed = fmt.Sprintf("%s (%s ago)", r.LastRenewal.Format(time.RFC3339), now.Sub(*r.LastRenewal).Round(100*time.Millisecond))
		}
		if r.Timestamp != nil {
			cp += " " + r.Timestamp.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ShardID, r.State, dash(strings.Join(r.Parents, ",")), dash(r.Owner), cp, lag, renewed, r.LeaseCounter, note(r, now))
	}
	return tw.Flush()
}

// note is a row's last column: why it is parked, what is wrong with its
// item, how many records were dropped outside its hash range.
func note(r shardStatus, now time.Time) string {
	var parts []string
	if p := r.Parked; p != nil {
		retry := "retry due"
		if now.Before(p.Until) {
			retry = "retry in " + p.Until.Sub(now).Round(time.Second).String()
		}
		parts = append(parts, fmt.Sprintf("PARKED x%d (%s): %s", p.Count, retry, p.Reason))
	}
	if r.Unreadable != "" {
		parts = append(parts, "UNREADABLE: "+r.Unreadable)
	}
	if r.DroppedOutOfRange > 0 {
		parts = append(parts, fmt.Sprintf("%d dropped outside the hash range", r.DroppedOutOfRange))
	}
	return dash(strings.Join(parts, "; "))
}

func statusRows(list []shards.Shard, leases []lease.Lease, bad []lease.BadItem) []shardStatus {
	byKey := map[string]lease.Lease{}
	for _, l := range leases {
		byKey[l.Key] = l
	}
	unreadable := map[string]string{}
	for _, b := range bad {
		unreadable[b.Key] = b.Problem
	}
	seen := map[string]bool{}
	var rows []shardStatus
	for _, s := range list {
		seen[s.ID] = true
		r := shardStatus{ShardID: s.ID, State: "open", Parents: s.Parents}
		if s.Closed {
			r.State = "closed"
		}
		if l, ok := byKey[s.ID]; ok {
			fill(&r, l)
		}
		if p, ok := unreadable[s.ID]; ok {
			r.HasLease, r.Unreadable = true, p
			delete(unreadable, s.ID)
		}
		rows = append(rows, r)
	}
	for k, p := range unreadable {
		rows = append(rows, shardStatus{ShardID: k, State: "gone", HasLease: true, Unreadable: p})
	}
	for _, l := range leases {
		if !seen[l.Key] {
			r := shardStatus{ShardID: l.Key, State: "gone", Parents: l.ParentShardIDs}
			fill(&r, l)
			rows = append(rows, r)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ShardID < rows[j].ShardID })
	return rows
}

func fill(r *shardStatus, l lease.Lease) {
	r.HasLease = true
	r.Owner = l.Owner
	r.Checkpoint = l.Checkpoint.Seq
	r.SubSequence = l.Checkpoint.SubSeq
	r.LeaseCounter = l.Counter
	r.OwnerSwitches = l.OwnerSwitchesSinceCheckpoint
	if l.Park != nil {
		p := *l.Park
		r.Parked = &p
		r.State = "parked"
	}
	if !l.Timestamp.IsZero() {
		ts := l.Timestamp
		r.Timestamp = &ts
	}
	r.DroppedOutOfRange = l.DroppedOutOfRange
	if !l.LastRenewal.IsZero() {
		t, behind := l.LastRenewal, l.MillisBehindLatest
		r.LastRenewal, r.MillisBehindLatest = &t, &behind
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
