package shardline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/shards"
	"github.com/shardline/shardline/shared/terminal"
)

// ShardStatus is one row of `poller status`.
type ShardStatus struct {
	// Stream is the shard's stream when the application reads several
	// (-stream-name a,b): rows are grouped by it. A former stream's
	// leases (not in the list) show under their stream identifier.
	Stream  string   `json:"stream,omitempty"`
	ShardID string   `json:"shardId"`
	State   string   `json:"state"` // open, closed, or gone (trimmed)
	Parents []string `json:"parents,omitempty"`
	Owner   string   `json:"owner,omitempty"` // the holder: checkpointOwner mid-handoff, else leaseOwner
	// HandoffTo is the next owner while a KCL 3.x graceful handoff is
	// under way (leaseOwner, with checkpointOwner the holder).
	HandoffTo     string `json:"handoffTo,omitempty"`
	Checkpoint    string `json:"checkpoint,omitempty"`
	SubSequence   int64  `json:"subSequenceNumber,omitempty"`
	LeaseCounter  int64  `json:"leaseCounter"`
	HasLease      bool   `json:"hasLease"`
	OwnerSwitches int64  `json:"ownerSwitchesSinceCheckpoint,omitempty"`
	// Reader is how the owner reads the shard, as its take recorded it:
	// "polling" or "fan-out" (enhanced fan-out).
	Reader string `json:"reader,omitempty"`
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
	// RecordsHandled counts user records the handler finished with over
	// the lease's life, as its owners reported them at their renewals.
	RecordsHandled int64 `json:"recordsHandled,omitempty"`
	// Unreadable says what is wrong with a lease item that does not decode.
	Unreadable string `json:"unreadable,omitempty"`
}

// statusCmd is `poller status`'s settings.
type statusCmd struct {
	c      config.Common
	asJSON bool
	watch  bool
	every  time.Duration
}

func (s *statusCmd) parse(a *App, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := a.newFlagSet("status", stdout)
	s.c.Register(fs, true)
	fs.BoolVar(&s.asJSON, "json", false, "print JSON (one array) for scripts")
	fs.BoolVar(&s.watch, "watch", false, "redraw the table every -watch-every, with each shard's records/s, until interrupted (on a terminal the screen is cleared; otherwise the table is printed again)")
	fs.DurationVar(&s.every, "watch-every", time.Second, "how often -watch reads the table and redraws (100ms or more)")
	if err := a.parse(fs, args, getenv); err != nil {
		return err
	}
	if s.every < 100*time.Millisecond {
		return config.Usagef("-watch-every %s: allowed 100ms or more", s.every)
	}
	if s.watch && s.asJSON {
		return config.Usagef("-watch and -json: allowed one of them (-json prints one array for scripts; run it again to poll)")
	}
	return s.c.Validate(true)
}

func (a *App) runStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var s statusCmd
	if err := s.parse(a, args, getenv, stdout); err != nil {
		return err
	}
	c := s.c
	clients, err := c.QuickClients(ctx)
	if err != nil {
		return err
	}
	table := lease.NewTable(clients.DynamoDB, c.AppName)
	names, err := coordinator.StreamNames(c.StreamName)
	if err != nil {
		return config.Usagef("-%s", err)
	}
	read := func() ([]ShardStatus, error) {
		list, err := shards.List(ctx, clients.Kinesis, c.StreamName)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", c.StreamName, explain(err))
		}
		sc, err := table.Scan(ctx)
		if err != nil {
			return nil, fmt.Errorf("lease table %s: %w", c.AppName, explain(err))
		}
		return statusRows(list, sc.Leases, sc.Bad), nil
	}
	if coordinator.MultiStream(c.StreamName) {
		table = table.WithMultiStream()
		ids := make([]string, len(names))
		for i, n := range names {
			if ids[i], err = coordinator.StreamID(ctx, clients.Kinesis, n); err != nil {
				return err
			}
		}
		read = func() ([]ShardStatus, error) { return multiStreamRows(ctx, clients.Kinesis, table, names, ids) }
	}
	rows, err := read()
	if err != nil {
		return err
	}
	if s.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if !s.watch {
		printGrouped(stdout, rows, nil, time.Now())
		return nil
	}
	return watchStatus(ctx, stdout, c, s.every, rows, read)
}

// watchStatus redraws the table every watchEvery (-watch-every) until ctx ends: on a
// terminal it clears the screen first, otherwise it prints the table again
// after a blank line. A read that fails is reported under the last table
// and tried again.
func watchStatus(ctx context.Context, stdout io.Writer, c config.Common, watchEvery time.Duration, rows []ShardStatus, read func() ([]ShardStatus, error)) error {
	tty := terminal.Is(stdout)
	var rates rateMeter
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	for first := true; ; first = false {
		now := time.Now()
		rates.observe(rows)
		switch {
		case tty:
			fmt.Fprint(stdout, clearScreen)
		case !first:
			fmt.Fprintln(stdout)
		}
		fmt.Fprintln(stdout, cutEnd(fmt.Sprintf("%s  app %s, stream %s, every %s (Ctrl-C stops)", now.UTC().Format(time.RFC3339),
			cutMiddle(c.AppName, 30), cutMiddle(c.StreamName, 30), watchEvery), statusWidth))
		printGrouped(stdout, rows, rates.rates, now)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
			next, err := read()
			if err == nil {
				rows = next
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(stdout, "%s  read failed, trying again: %s\n", time.Now().UTC().Format(time.RFC3339), cutEnd(err.Error(), 90))
		}
	}
}

// clearScreen moves the cursor home and clears the screen (ANSI).
const clearScreen = "\x1b[H\x1b[2J"

// rateMeter derives each shard's records/s from the records its lease
// counts at each renewal: the change of the count over the time between
// two renewals seen. A shard keeps its last rate until its next renewal;
// it has none before its second renewal is seen, or when no one owns it.
type rateMeter struct {
	last  map[string]rateSample
	rates map[string]float64
}

type rateSample struct {
	handled int64
	renewed time.Time
}

func (m *rateMeter) observe(rows []ShardStatus) {
	if m.last == nil {
		m.last, m.rates = map[string]rateSample{}, map[string]float64{}
	}
	for _, r := range rows {
		if r.LastRenewal == nil || r.Owner == "" {
			delete(m.rates, r.ShardID)
			delete(m.last, r.ShardID)
			continue
		}
		cur := rateSample{handled: r.RecordsHandled, renewed: *r.LastRenewal}
		prev, ok := m.last[r.ShardID]
		switch {
		case !ok || cur.handled < prev.handled: // first seen, or the item was reset
			delete(m.rates, r.ShardID)
		case cur.renewed.After(prev.renewed):
			m.rates[r.ShardID] = float64(cur.handled-prev.handled) / cur.renewed.Sub(prev.renewed).Seconds()
		default:
			continue // no renewal since: the rate stands
		}
		m.last[r.ShardID] = cur
	}
}

// statusWidth is the most columns a line of the table takes: long owners,
// checkpoints, parents and notes are cut with an ellipsis (-json has them
// whole).
const statusWidth = 120

// Column caps: a value longer than its cap is cut with an ellipsis (in the
// middle for owners and checkpoints, whose ends tell them apart). With the
// two spaces between columns a row takes at most 120 columns.
const (
	capShard      = 20 // shardId-000000000000
	capParents    = 9
	capOwner      = 22
	capCheckpoint = 23
	capLag        = 8
	capRate       = 8
	capRenewed    = 10 // 59m59s ago
)

// notePrefix starts the line under a row that carries its note.
const notePrefix = "  note: "

// printStatus writes the table, rows of at most statusWidth columns, each
// row with a note (a park, an unreadable item, records dropped) followed by
// a line with it, then a summary row. rates (nil: no RATE column) are
// records/s by shard.
func printStatus(w io.Writer, rows []ShardStatus, rates map[string]float64, now time.Time) {
	// A READ column (poll, fan-out) when some owner reads with enhanced
	// fan-out; the owner and checkpoint columns give it their room.
	read := false
	for _, r := range rows {
		read = read || r.Reader == fetch.ModeFanOut
	}
	owner, checkpoint := capOwner, capCheckpoint
	header := []string{"SHARD", "STATE", "PARENTS", "OWNER", "CHECKPOINT", "LAG"}
	if read {
		owner, checkpoint = capOwner-5, capCheckpoint-5
		header = append(header, "READ")
	}
	if rates != nil {
		header = append(header, "RATE")
	}
	header = append(header, "RENEWED")
	cells := [][]string{header}
	notes := []string{""}
	var maxLag int64 = -1
	owners := map[string]bool{}
	parked, unowned := 0, 0
	var total float64
	for _, r := range rows {
		cp := r.Checkpoint
		if r.SubSequence != 0 {
			cp += fmt.Sprintf("/%d", r.SubSequence)
		}
		if r.Timestamp != nil {
			cp += " " + r.Timestamp.UTC().Format(time.RFC3339)
		}
		if !r.HasLease {
			cp = "(no lease)"
		}
		lag, renewed := "-", "-"
		if r.MillisBehindLatest != nil && *r.MillisBehindLatest >= 0 {
			lag = shortDuration(time.Duration(*r.MillisBehindLatest) * time.Millisecond)
			if r.Owner != "" {
				maxLag = max(maxLag, *r.MillisBehindLatest)
			}
		}
		if r.LastRenewal != nil {
			renewed = shortDuration(now.Sub(*r.LastRenewal)) + " ago"
		}
		row := []string{cutEnd(r.ShardID, capShard), r.State, cutEnd(dash(shortIDs(r.Parents)), capParents),
			cutMiddle(dash(r.Owner), owner), cutMiddle(cp, checkpoint), cutEnd(lag, capLag)}
		if read {
			mode := map[string]string{fetch.ModePolling: "poll", fetch.ModeFanOut: fetch.ModeFanOut}[r.Reader]
			row = append(row, dash(mode))
		}
		if rates != nil {
			rate := "-"
			if v, ok := rates[r.ShardID]; ok {
				rate = rateText(v)
				total += v
			}
			row = append(row, cutEnd(rate, capRate))
		}
		row = append(row, cutEnd(renewed, capRenewed))
		cells = append(cells, row)
		notes = append(notes, note(r, now))
		if r.Owner != "" {
			owners[r.Owner] = true
		}
		if r.Parked != nil {
			parked++
		}
		if r.HasLease && r.Owner == "" && r.State == "open" {
			unowned++
		}
	}
	for i, line := range table(cells) {
		fmt.Fprintln(w, line)
		if notes[i] != "" {
			fmt.Fprintln(w, notePrefix+cutEnd(notes[i], statusWidth-len(notePrefix)))
		}
	}
	sum := fmt.Sprintf("%d shards | %d owners | max lag %s | %d parked", len(rows), len(owners), lagText(maxLag), parked)
	if unowned > 0 {
		// Open shards no worker holds: between rounds, or none may take
		// them (every worker at its -max-leases: its log says so).
		sum += fmt.Sprintf(" | %d unowned", unowned)
	}
	if rates != nil {
		sum += fmt.Sprintf(" | %.0f records/s", total)
	}
	fmt.Fprintln(w, cutEnd(sum, statusWidth))
}

// table pads each column to its widest cell, two spaces apart.
func table(cells [][]string) []string {
	widths := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	lines := make([]string, len(cells))
	for j, row := range cells {
		var b strings.Builder
		for i, c := range row {
			fmt.Fprintf(&b, "%-*s  ", widths[i], c)
		}
		lines[j] = strings.TrimRight(b.String(), " ")
	}
	return lines
}

// rateText writes records/s in a few characters: 850/s, 12.3k/s, 1.2M/s.
func rateText(v float64) string {
	switch {
	case v < 10_000:
		return fmt.Sprintf("%.0f/s", v)
	case v < 1_000_000:
		return fmt.Sprintf("%.1fk/s", v/1_000)
	}
	return fmt.Sprintf("%.1fM/s", v/1_000_000)
}

func lagText(ms int64) string {
	if ms < 0 {
		return "-"
	}
	return shortDuration(time.Duration(ms) * time.Millisecond)
}

// shortDuration writes d in a few characters: 0s, 0.9s, 1.2s, 42s, 3m5s,
// 2h4m, 3d2h.
func shortDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 24*time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	d = d.Round(time.Hour)
	return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
}

// shortIDs writes shard ids by their number (shardId-000000000004 → 4),
// other ids as they are.
func shortIDs(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		n := strings.TrimLeft(strings.TrimPrefix(id, "shardId-"), "0")
		if !strings.HasPrefix(id, "shardId-") {
			n = id
		} else if n == "" {
			n = "0"
		}
		out[i] = n
	}
	return strings.Join(out, ",")
}

// cutEnd shortens s to n runes, the last an ellipsis.
func cutEnd(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// cutMiddle shortens s to n runes with an ellipsis in the middle, keeping
// both ends (a sequence number's and an owner's ends tell them apart).
func cutMiddle(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	head := (n - 1) / 2
	tail := n - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// note is what the line under a row says: why it is parked and when it is
// retried, what is wrong with its item, how many records were dropped
// outside its hash range; "" for none.
func note(r ShardStatus, now time.Time) string {
	var parts []string
	if p := r.Parked; p != nil {
		retry := "retry due"
		if now.Before(p.Until) {
			retry = "retry in " + shortDuration(p.Until.Sub(now))
		}
		parts = append(parts, fmt.Sprintf("PARKED x%d, %s: %s", p.Count, retry, p.Reason))
	}
	if r.HandoffTo != "" {
		parts = append(parts, "HANDOFF to "+r.HandoffTo)
	}
	if r.Unreadable != "" {
		parts = append(parts, "UNREADABLE: "+r.Unreadable)
	}
	if r.DroppedOutOfRange > 0 {
		parts = append(parts, fmt.Sprintf("%d dropped outside the hash range", r.DroppedOutOfRange))
	}
	return strings.Join(parts, "; ")
}

func statusRows(list []shards.Shard, leases []lease.Lease, bad []lease.BadItem) []ShardStatus {
	byKey := map[string]lease.Lease{}
	for _, l := range leases {
		byKey[l.Key] = l
	}
	unreadable := map[string]string{}
	for _, b := range bad {
		unreadable[b.Key] = b.Problem
	}
	seen := map[string]bool{}
	var rows []ShardStatus
	for _, s := range list {
		seen[s.ID] = true
		r := ShardStatus{ShardID: s.ID, State: "open", Parents: s.Parents}
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
		rows = append(rows, ShardStatus{ShardID: k, State: "gone", HasLease: true, Unreadable: p})
	}
	for _, l := range leases {
		if !seen[l.Key] {
			r := ShardStatus{ShardID: l.Key, State: "gone", Parents: l.ParentShardIDs}
			fill(&r, l)
			rows = append(rows, r)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ShardID < rows[j].ShardID })
	return rows
}

func fill(r *ShardStatus, l lease.Lease) {
	r.HasLease = true
	r.Owner = l.Holder()
	if l.MidHandoff() {
		r.HandoffTo = l.Owner
	}
	r.Checkpoint = l.Checkpoint.Seq
	r.SubSequence = l.Checkpoint.SubSeq
	r.LeaseCounter = l.Counter
	r.OwnerSwitches = l.OwnerSwitchesSinceCheckpoint
	if l.Owner != "" {
		r.Reader = l.Reader
	}
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
	r.RecordsHandled = l.RecordsHandled
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

// multiStreamRows is status's rows for an application reading several
// streams: each stream's shards with its leases, then the leases of
// streams no longer in the list.
func multiStreamRows(ctx context.Context, kc *kinesis.Client, table *lease.Table, names, ids []string) ([]ShardStatus, error) {
	sc, err := table.Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("lease table %s: %w", table.Name(), explain(err))
	}
	byStream := map[string][]lease.Lease{}
	for _, l := range sc.Leases {
		l.Key = l.Shard()
		byStream[l.StreamID] = append(byStream[l.StreamID], l)
	}
	var rows []ShardStatus
	for i, name := range names {
		list, err := shards.List(ctx, kc, name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, explain(err))
		}
		for _, r := range statusRows(list, byStream[ids[i]], nil) {
			r.Stream = name
			rows = append(rows, r)
		}
		delete(byStream, ids[i])
	}
	for _, id := range slices.Sorted(maps.Keys(byStream)) {
		for _, l := range byStream[id] {
			r := ShardStatus{Stream: id + " (not in -stream-name)", ShardID: l.Key, State: "former stream", Parents: l.ParentShardIDs}
			fill(&r, l)
			rows = append(rows, r)
		}
	}
	for _, b := range sc.Bad {
		rows = append(rows, ShardStatus{Stream: "(unreadable)", ShardID: b.Key, State: "gone", HasLease: true, Unreadable: b.Problem})
	}
	return rows, nil
}

// printGrouped prints the status table, one per stream when the rows
// carry streams.
func printGrouped(w io.Writer, rows []ShardStatus, rates map[string]float64, now time.Time) {
	if len(rows) == 0 || rows[0].Stream == "" {
		printStatus(w, rows, rates, now)
		return
	}
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].Stream == rows[i].Stream {
			j++
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "stream %s\n", rows[i].Stream)
		printStatus(w, rows[i:j], rates, now)
		i = j
	}
}
