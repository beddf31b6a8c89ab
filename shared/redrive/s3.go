package redrive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/shardline/shardline/shared/awserr"
	"github.com/shardline/shardline/shared/destination/s3dest"
)

// S3API are the S3 calls the source makes.
type S3API interface {
	HeadBucket(ctx context.Context, in *s3.HeadBucketInput, optFns ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

var _ S3API = (*s3.Client)(nil)

// RedrivenSuffix is added to the prefix of objects redriven: an object
// <prefix>/k is moved to <prefix>-redriven/k, which a listing of
// <prefix>/ does not read.
const RedrivenSuffix = "-redriven"

// S3Source reads the objects under a prefix, one message per object.
// Done moves an object to <prefix>-redriven/ (CopyObject, then
// DeleteObject), or deletes it when Delete is set.
type S3Source struct {
	Loc    s3dest.Location
	Client S3API
	Delete bool

	token string   // the listing's continuation token
	keys  []string // listed, not yet read
	ended bool     // the listing is over
}

var _ Source = (*S3Source)(nil)

// NewS3Source returns the source of l.
func NewS3Source(l s3dest.Location, c S3API, del bool) *S3Source {
	return &S3Source{Loc: l, Client: c, Delete: del}
}

func (s *S3Source) String() string {
	return "s3://" + s.Loc.Bucket + "/" + s.Loc.Prefix
}

func (s *S3Source) listPrefix() string {
	if s.Loc.Prefix == "" {
		return ""
	}
	return s.Loc.Prefix + "/"
}

// Moved is where Done moves key.
func (s *S3Source) Moved(key string) string {
	if s.Loc.Prefix == "" {
		return RedrivenSuffix + "/" + key
	}
	return s.Loc.Prefix + RedrivenSuffix + "/" + strings.TrimPrefix(key, s.listPrefix())
}

// Check asks for the bucket: one that does not exist is a *NotFoundError.
func (s *S3Source) Check(ctx context.Context) error {
	_, err := s.Client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.Loc.Bucket)})
	if err == nil {
		return nil
	}
	if isNotFound(err) {
		return &NotFoundError{What: "S3 bucket " + s.Loc.Bucket}
	}
	return fmt.Errorf("S3 bucket %s: %w", s.Loc.Bucket, awserr.Explain(err))
}

func isNotFound(err error) bool {
	var nf *types.NotFound
	var nb *types.NoSuchBucket
	var re *smithyhttp.ResponseError
	return errors.As(err, &nf) || errors.As(err, &nb) || errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

// Next reads up to n objects.
func (s *S3Source) Next(ctx context.Context, n int) ([]*Message, error) {
	for len(s.keys) == 0 && !s.ended {
		in := &s3.ListObjectsV2Input{Bucket: aws.String(s.Loc.Bucket), Prefix: aws.String(s.listPrefix())}
		if s.token != "" {
			in.ContinuationToken = aws.String(s.token)
		}
		out, err := s.Client.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", s, awserr.Explain(err))
		}
		for _, o := range out.Contents {
			k := aws.ToString(o.Key)
			if s.Loc.Prefix == "" && strings.HasPrefix(k, RedrivenSuffix+"/") {
				continue // redriven before
			}
			s.keys = append(s.keys, k)
		}
		s.token = aws.ToString(out.NextContinuationToken)
		s.ended = !aws.ToBool(out.IsTruncated) || s.token == ""
	}
	var msgs []*Message
	for len(msgs) < n && len(s.keys) > 0 {
		k := s.keys[0]
		s.keys = s.keys[1:]
		out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Loc.Bucket), Key: aws.String(k)})
		if err != nil {
			var nk *types.NoSuchKey
			if errors.As(err, &nk) {
				continue // gone since the listing (another redrive)
			}
			return msgs, fmt.Errorf("get s3://%s/%s: %w", s.Loc.Bucket, k, awserr.Explain(err))
		}
		b, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			return msgs, fmt.Errorf("get s3://%s/%s: %w", s.Loc.Bucket, k, err)
		}
		msgs = append(msgs, &Message{ID: "s3://" + s.Loc.Bucket + "/" + k, Body: b, ref: k})
	}
	return msgs, nil
}

// Done moves (or deletes) the objects.
func (s *S3Source) Done(ctx context.Context, msgs []*Message) error {
	var errs []error
	for _, m := range msgs {
		k := m.ref.(string)
		if !s.Delete {
			to := s.Moved(k)
			_, err := s.Client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(s.Loc.Bucket), Key: aws.String(to),
				CopySource: aws.String(s.Loc.Bucket + "/" + escapeKey(k))})
			if err != nil {
				errs = append(errs, fmt.Errorf("copy s3://%s/%s to %s: %w", s.Loc.Bucket, k, to, awserr.Explain(err)))
				continue
			}
		}
		if _, err := s.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Loc.Bucket), Key: aws.String(k)}); err != nil {
			errs = append(errs, fmt.Errorf("delete s3://%s/%s: %w", s.Loc.Bucket, k, awserr.Explain(err)))
		}
	}
	return errors.Join(errs...)
}

// Release leaves the objects where they are.
func (s *S3Source) Release(context.Context, []*Message) error { return nil }

// Close has nothing to do.
func (s *S3Source) Close(context.Context) error { return nil }

// escapeKey escapes a key for CopySource, keeping its slashes.
func escapeKey(k string) string {
	parts := strings.Split(k, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}
