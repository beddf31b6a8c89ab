package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// ParseDestination reads an -on-failure value. This version writes
// file:///path (JSON lines, fsynced); SQS and S3 destinations are named in
// the design but not built yet and are refused with that reason.
func ParseDestination(s string) (Destination, error) {
	switch {
	case strings.HasPrefix(s, "file://"):
		u, err := url.Parse(s)
		if err != nil || u.Path == "" || (u.Host != "" && u.Host != "localhost") {
			return nil, fmt.Errorf("allowed file:///absolute/path")
		}
		return &FileDestination{Path: u.Path}, nil
	case strings.HasPrefix(s, "s3://"), strings.HasPrefix(s, "https://sqs."):
		return nil, fmt.Errorf("S3 and SQS destinations are not supported by this version; allowed file:///path")
	}
	return nil, fmt.Errorf("allowed file:///path (JSON lines)")
}

// FileDestination appends one JSON line per given-up record to a file and
// syncs it before Send returns.
type FileDestination struct {
	Path string
	mu   sync.Mutex
}

// fileLine is one given-up record.
type fileLine struct {
	ShardID                     string    `json:"shardId"`
	SequenceNumber              string    `json:"sequenceNumber"`
	SubSequenceNumber           int64     `json:"subSequenceNumber"`
	PartitionKey                string    `json:"partitionKey"`
	ApproximateArrivalTimestamp time.Time `json:"approximateArrivalTimestamp"`
	Data                        []byte    `json:"data"`
	Reason                      string    `json:"reason"`
	Attempts                    int       `json:"attempts"`
	LastError                   string    `json:"lastError,omitempty"`
	Time                        time.Time `json:"time"`
}

// Send writes f's records.
func (d *FileDestination) Send(_ context.Context, f Failure) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	file, err := os.OpenFile(d.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(file)
	for _, r := range f.Records {
		err = enc.Encode(fileLine{
			ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber,
			PartitionKey: r.PartitionKey, ApproximateArrivalTimestamp: r.ApproximateArrivalTimestamp, Data: r.Data,
			Reason: f.Reason, Attempts: f.Attempts, LastError: f.LastError, Time: f.Time,
		})
		if err != nil {
			file.Close()
			return err
		}
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}
