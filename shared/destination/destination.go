package destination

import (
	"fmt"
	"strings"

	"github.com/shardline/shardline/shared/destination/filedest"
	"github.com/shardline/shardline/shared/destination/s3dest"
	"github.com/shardline/shardline/shared/destination/snsdest"
	"github.com/shardline/shardline/shared/destination/sqsdest"
	"github.com/shardline/shardline/shared/dispatch"
)

// Forms lists the allowed forms, for error messages.
const Forms = "an SQS queue URL (https://sqs.us-east-1.amazonaws.com/123456789012/name) or ARN (arn:aws:sqs:us-east-1:123456789012:name), " +
	"an SNS topic ARN (arn:aws:sns:us-east-1:123456789012:name), s3://bucket/prefix, file:///path, or discard (drop them, as Lambda does with no destination)"

// Clients are the service clients the destinations send with. A nil
// client is refused when a destination needs it: its Send fails, naming
// what is missing.
type Clients struct {
	SQS sqsdest.API
	SNS snsdest.API
	S3  s3dest.API
}

// Parse reads an -on-failure value and returns its destination. app is
// the application name, in S3 keys. It makes no AWS call.
func Parse(raw, app string, c Clients) (dispatch.Destination, error) {
	if raw == "discard" {
		return dispatch.Discard, nil
	}
	switch kind(raw) {
	case "file":
		path, err := filedest.ParsePath(raw)
		if err != nil {
			return nil, err
		}
		return filedest.New(path), nil
	case "s3":
		loc, err := s3dest.ParseLocation(raw)
		if err != nil {
			return nil, err
		}
		return s3dest.New(loc, app, c.S3), nil
	case "sqs":
		q, err := sqsdest.ParseQueue(raw)
		if err != nil {
			return nil, err
		}
		return sqsdest.New(q, c.SQS), nil
	case "sns":
		t, err := snsdest.ParseTopic(raw)
		if err != nil {
			return nil, err
		}
		return snsdest.New(t, c.SNS), nil
	}
	return nil, fmt.Errorf("%q: allowed %s", raw, Forms)
}

// Check reads an -on-failure value as Parse does, without clients: for
// validating settings.
func Check(raw string) error {
	_, err := Parse(raw, "app", Clients{})
	return err
}

// kind tells the backend a value names by its form, "" when none.
func kind(raw string) string {
	switch {
	case strings.HasPrefix(raw, "file:"):
		return "file"
	case strings.HasPrefix(raw, "s3://"):
		return "s3"
	case strings.HasPrefix(raw, "https://"), strings.HasPrefix(raw, "http://"):
		return "sqs"
	case strings.HasPrefix(raw, "arn:"):
		f := strings.SplitN(raw, ":", 4)
		if len(f) == 4 && (f[2] == "sqs" || f[2] == "sns") {
			return f[2]
		}
	}
	return ""
}
