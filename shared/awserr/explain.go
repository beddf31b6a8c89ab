package awserr

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// NoCredentials is the line for a call that found no AWS credentials.
const NoCredentials = "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
	"or AWS_PROFILE (a profile in ~/.aws/config), or run with a role (EC2 instance profile, ECS task role, Lambda execution role)"

// explained is an error said in one line, over the SDK's error.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

func explain(err error, format string, args ...any) error {
	return &explained{msg: fmt.Sprintf(format, args...), err: err}
}

// Explain turns an SDK error into one line a user can act on:
//
//   - no credentials: the ways to give them;
//   - a refused or unreachable endpoint: "endpoint URL does not answer (why)";
//   - an endpoint whose answer is not the service's (another service's
//     port, a plain web server): "endpoint URL does not answer as Kinesis: ...";
//   - a missing resource, denied access;
//   - any other service error: its code and message, without the SDK's
//     operation and HTTP wrapping.
//
// Other errors are returned as they are; nil stays nil.
func Explain(err error) error {
	if err == nil {
		return nil
	}
	var ex *explained
	if errors.As(err, &ex) {
		return err
	}
	if noCredentials(err) {
		return explain(err, NoCredentials)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		var oe *net.OpError
		if errors.As(err, &oe) {
			return explain(err, "endpoint %s does not answer (%v)", hostOf(ue.URL), oe.Err)
		}
		return explain(err, "endpoint %s: %v", hostOf(ue.URL), ue.Err)
	}
	service, operation := "the service", "the call"
	var op *smithy.OperationError
	if errors.As(err, &op) {
		service, operation = op.ServiceID, op.OperationName
	}
	var re *awshttp.ResponseError
	var de *smithy.DeserializationError
	if errors.As(err, &re) && errors.As(err, &de) {
		return explain(err, "endpoint %s does not answer as %s: its answer to %s (HTTP %d) is not a %s answer; is it another service's port?",
			endpointOf(re), service, operation, re.HTTPStatusCode(), service)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch code := ae.ErrorCode(); {
		case code == "InvalidAction" || code == "UnknownOperationException":
			// What a service answers to another service's operation.
			where := "the endpoint"
			if re != nil {
				where = "endpoint " + endpointOf(re)
			}
			return explain(err, "%s does not answer as %s: it does not know %s (%s); is it another service's port?", where, service, operation, code)
		case strings.Contains(code, "ResourceNotFound"):
			return explain(err, "does not exist: %s", ae.ErrorMessage())
		case strings.Contains(code, "AccessDenied"), strings.Contains(code, "UnrecognizedClient"), strings.Contains(code, "InvalidSignature"):
			return explain(err, "access denied (%s): %s", code, ae.ErrorMessage())
		default:
			return explain(err, "%s: %s", code, ae.ErrorMessage())
		}
	}
	return err
}

// noCredentials reports an error of the SDK's default credential chain
// that found nothing: the chain ends with the EC2 instance metadata
// service, so its failure is what a call without credentials returns.
func noCredentials(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if op, ok := e.(*smithy.OperationError); ok && op.ServiceID == "ec2imds" {
			return true
		}
	}
	return false
}

func endpointOf(re *awshttp.ResponseError) string {
	if re.Response == nil || re.Response.Response == nil {
		return "(unknown)"
	}
	var req *http.Request = re.Response.Request
	if req == nil || req.URL == nil {
		return "(unknown)"
	}
	return hostOf(req.URL.String())
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Scheme + "://" + u.Host
}
