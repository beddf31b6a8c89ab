package dispatch

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseDestination(t *testing.T) {
	tests := []struct {
		in       string
		wantPath string // "" means an error is wanted
		wantErr  string
	}{
		{in: "file:///var/log/failed.jsonl", wantPath: "/var/log/failed.jsonl"},
		{in: "file://localhost/var/log/failed.jsonl", wantPath: "/var/log/failed.jsonl"},
		{in: "file://", wantErr: "file:///"},
		{in: "file://otherhost/x.jsonl", wantErr: "file:///"},
		{in: "file://relative.jsonl", wantErr: "file:///"},
		{in: "file:relative.jsonl", wantErr: "file:///"},
		{in: "/var/log/failed.jsonl", wantErr: "file:///"},
		{in: "", wantErr: "file:///"},
		{in: "s3://bucket/prefix", wantErr: "not supported"},
		{in: "https://sqs.us-east-1.amazonaws.com/123456789012/dlq", wantErr: "not supported"},
		{in: "http://example.com/x", wantErr: "file:///"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := ParseDestination(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseDestination(%q) = %v, %v; want an error containing %q", tt.in, d, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDestination(%q): %v", tt.in, err)
			}
			fd, ok := d.(*FileDestination)
			if !ok {
				t.Fatalf("ParseDestination(%q) = %T, want *FileDestination", tt.in, d)
			}
			if got, want := fd.Path, tt.wantPath; got != want {
				t.Errorf("Path = %q, want %q", got, want)
			}
		})
	}
}

func TestFileDestination(t *testing.T) {
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	d := &FileDestination{Path: path}
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	all := recs(3)
	all[1].Data = []byte{0, 1, 2, 0xff, '\n'}
	first := Failure{ShardID: testShard, Records: all[:2], Attempts: 3, Reason: "retry attempts exhausted", LastError: "boom", Time: at}
	second := Failure{ShardID: testShard, Records: all[2:], Attempts: 1, Reason: "record age exceeded", Time: at.Add(time.Second)}
	for _, f := range []Failure{first, second} {
		if err := d.Send(context.Background(), f); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	type line struct {
		ShardID                     string    `json:"shardId"`
		SequenceNumber              string    `json:"sequenceNumber"`
		SubSequenceNumber           *int64    `json:"subSequenceNumber"`
		PartitionKey                string    `json:"partitionKey"`
		ApproximateArrivalTimestamp time.Time `json:"approximateArrivalTimestamp"`
		Data                        []byte    `json:"data"`
		Reason                      string    `json:"reason"`
		Attempts                    int       `json:"attempts"`
		LastError                   string    `json:"lastError"`
		Time                        time.Time `json:"time"`
	}
	var got []line
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d %q: %v", len(got)+1, sc.Text(), err)
		}
		got = append(got, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("file has %d lines, want 3", len(got))
	}
	wantFailure := []Failure{first, first, second}
	for i, l := range got {
		r, f := all[i], wantFailure[i]
		if l.ShardID != r.ShardID || l.SequenceNumber != r.SequenceNumber || l.PartitionKey != r.PartitionKey ||
			string(l.Data) != string(r.Data) || !l.ApproximateArrivalTimestamp.Equal(r.ApproximateArrivalTimestamp) {
			t.Errorf("line %d record = %+v, want %+v", i+1, l, r)
		}
		if l.SubSequenceNumber == nil || *l.SubSequenceNumber != r.SubSequenceNumber {
			t.Errorf("line %d subSequenceNumber = %v, want %d", i+1, l.SubSequenceNumber, r.SubSequenceNumber)
		}
		if l.Reason != f.Reason || l.Attempts != f.Attempts || l.LastError != f.LastError || !l.Time.Equal(f.Time) {
			t.Errorf("line %d = reason %q attempts %d lastError %q time %v, want %q %d %q %v",
				i+1, l.Reason, l.Attempts, l.LastError, l.Time, f.Reason, f.Attempts, f.LastError, f.Time)
		}
	}
}

func TestFileDestinationError(t *testing.T) {
	d := &FileDestination{Path: filepath.Join(t.TempDir(), "no-such-dir", "failed.jsonl")}
	if err := d.Send(context.Background(), Failure{Records: recs(1)}); err == nil {
		t.Errorf("Send to a missing directory = nil, want an error")
	}
}
