package redrive

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/shardline/shardline/shared/destination/filedest"
	"github.com/shardline/shardline/shared/destination/s3dest"
	"github.com/shardline/shardline/shared/destination/sqsdest"
)

// Forms are the forms -from takes, for error messages.
const Forms = "an SQS queue URL (https://sqs.us-east-1.amazonaws.com/123456789012/name) or ARN (arn:aws:sqs:us-east-1:123456789012:name), s3://bucket/prefix, or file:///path"

// Clients are the clients the sources read with; a source whose client
// is nil is refused by Open.
type Clients struct {
	SQS SQSAPI
	S3  S3API
}

// Options are the sources' settings.
type Options struct {
	// Delete deletes S3 objects redriven instead of moving them.
	Delete bool
	// Visibility is how long an SQS message stays invisible between
	// extensions (default DefaultVisibility).
	Visibility time.Duration
}

// Check reads a -from value as Open does, without clients.
func Check(raw string) error {
	_, err := parse(raw)
	return err
}

type location struct {
	kind  string // sqs, s3, file
	queue sqsdest.Queue
	s3    s3dest.Location
	path  string
}

func parse(raw string) (location, error) {
	switch {
	case strings.HasPrefix(raw, "file:"):
		p, err := filedest.ParsePath(raw)
		if err != nil {
			return location{}, fmt.Errorf("%q: allowed %s", raw, Forms)
		}
		return location{kind: "file", path: filepath.Clean(p)}, nil
	case strings.HasPrefix(raw, "s3://"):
		l, err := s3dest.ParseLocation(raw)
		if err != nil {
			return location{}, err
		}
		return location{kind: "s3", s3: l}, nil
	case strings.HasPrefix(raw, "https://"), strings.HasPrefix(raw, "http://"), strings.HasPrefix(raw, "arn:aws:sqs:"), strings.HasPrefix(raw, "arn:aws-cn:sqs:"), strings.HasPrefix(raw, "arn:aws-us-gov:sqs:"):
		q, err := sqsdest.ParseQueue(raw)
		if err != nil {
			return location{}, err
		}
		return location{kind: "sqs", queue: q}, nil
	case strings.HasPrefix(raw, "arn:") && strings.Contains(raw, ":sns:"):
		return location{}, fmt.Errorf("%q is an SNS topic, which cannot be read back: redrive from the SQS queue subscribed to it; allowed %s", raw, Forms)
	}
	return location{}, fmt.Errorf("%q: allowed %s", raw, Forms)
}

// Open returns the source -from names. It makes no call.
func Open(raw string, c Clients, o Options) (Source, error) {
	l, err := parse(raw)
	if err != nil {
		return nil, err
	}
	switch l.kind {
	case "file":
		return NewFileSource(l.path), nil
	case "s3":
		if c.S3 == nil {
			return nil, fmt.Errorf("%s: no S3 client", raw)
		}
		return NewS3Source(l.s3, c.S3, o.Delete), nil
	}
	if c.SQS == nil {
		return nil, fmt.Errorf("%s: no SQS client", raw)
	}
	return NewSQSSource(l.queue, c.SQS, o.Visibility), nil
}

// Same reports whether an -on-failure value names the place -from reads
// (the same queue by URL or ARN, the same file, or an S3 location
// inside the one read): a redrive into it would read its own failures
// again.
func Same(from, onFailure string) bool {
	a, err := parse(from)
	if err != nil {
		return false
	}
	if onFailure == from {
		return true
	}
	b, err := parse(onFailure)
	if err != nil || a.kind != b.kind {
		return false
	}
	switch a.kind {
	case "file":
		return a.path == b.path
	case "s3":
		return a.s3.Bucket == b.s3.Bucket && (a.s3.Prefix == "" || b.s3.Prefix == a.s3.Prefix || strings.HasPrefix(b.s3.Prefix, a.s3.Prefix+"/"))
	}
	return a.queue.Name == b.queue.Name && accountOf(a.queue.URL) == accountOf(b.queue.URL)
}

// accountOf is the account in a queue URL's path.
func accountOf(u string) string {
	f := strings.Split(u, "/")
	if len(f) < 2 {
		return ""
	}
	return f[len(f)-2]
}
