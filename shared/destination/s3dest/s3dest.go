package s3dest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shardline/shardline/shared/awserr"
	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/dispatch"
)

// API is the S3 call the destination makes.
type API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

var _ API = (*s3.Client)(nil)

// Form is the form of a location, for error messages.
const Form = "s3://bucket/prefix (the prefix may be empty)"

// Location is a parsed s3://bucket/prefix.
type Location struct {
	Bucket string
	Prefix string // without leading or trailing slashes; may be ""
}

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ParseLocation reads s3://bucket/prefix.
func ParseLocation(raw string) (Location, error) {
	rest, ok := strings.CutPrefix(raw, "s3://")
	if !ok {
		return Location{}, fmt.Errorf("%q: allowed %s", raw, Form)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if !bucketName.MatchString(bucket) || strings.Contains(bucket, "..") {
		return Location{}, fmt.Errorf("%q: bucket name %q: allowed 3–63 lower-case letters, digits, '.' and '-'; allowed %s", raw, bucket, Form)
	}
	prefix = strings.Trim(prefix, "/")
	if strings.Contains(prefix, "//") {
		return Location{}, fmt.Errorf("%q: prefix %q has an empty path segment; allowed %s", raw, prefix, Form)
	}
	return Location{Bucket: bucket, Prefix: prefix}, nil
}

// Key is the object key for a batch of shard given up at t, with id as
// the random UUID.
func (l Location) Key(app, shard string, t time.Time, id string) string {
	t = t.UTC()
	return path.Join(l.Prefix, app, shard, t.Format("2006/01/02"), t.Format("2006-01-02T15.04.05")+"-"+id)
}

// Destination writes records to a bucket.
type Destination struct {
	loc    Location
	app    string
	client API
	uuid   func() string
}

var _ dispatch.Destination = (*Destination)(nil)

// New returns the destination for l, whose keys carry app. A nil client
// makes every Send fail.
func New(l Location, app string, client API) *Destination {
	return &Destination{loc: l, app: app, client: client, uuid: randomUUID}
}

func (d *Destination) String() string {
	return "S3 location s3://" + path.Join(d.loc.Bucket, d.loc.Prefix)
}

// Send writes f's record as one object and returns once S3 has it.
func (d *Destination) Send(ctx context.Context, f dispatch.Failure) error {
	if d.client == nil {
		return fmt.Errorf("%s: no S3 client", d)
	}
	r, err := record.WithPayload(f)
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	body, err := record.Marshal(r)
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	key := d.loc.Key(d.app, f.ShardID, f.Time, d.uuid())
	_, err = d.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(d.loc.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String("application/json"),
	})
	if err != nil {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			err = awserr.Explain(err)
		}
		return fmt.Errorf("%s: put object %s: %w", d, key, err)
	}
	return nil
}

// randomUUID is a random (version 4) UUID.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
