package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// CBOR is the content type of Kinesis's binary protocol: the same
// operations as its JSON protocol, with blobs carried as raw bytes instead
// of base64. The AWS SDK for Java (and so the KCL) reads Kinesis this way by
// default; the Go SDK only speaks JSON.
const CBOR = "application/x-amz-cbor-1.1"

// CBORDisabled reports whether AWS_CBOR_DISABLE asks for JSON (the
// variable the AWS SDK for Java honours, so KCL users know it).
func CBORDisabled() bool {
	v := strings.TrimSpace(os.Getenv("AWS_CBOR_DISABLE"))
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// CBORClient is a Kinesis client that makes GetRecords, the one call on
// the hot path, in Kinesis's CBOR protocol, and every other call through
// the SDK client it wraps (its credentials, region, endpoint and HTTP
// client are used for GetRecords too). A CBOR answer is decoded in place:
// the records' data, partition keys and sequence numbers share the
// answer's one buffer, so a read costs a few allocations, not several per
// record, and no base64. The records are what the SDK would return.
//
// It makes one attempt per GetRecords (the Reader retries, with its own
// back-off); errors carry the SDK's types (*types.ExpiredIteratorException
// and the rest) inside a *smithy.OperationError, as the SDK's do.
type CBORClient struct {
	*kinesis.Client
	http   aws.HTTPClient
	creds  aws.CredentialsProvider
	region string
	url    string // the endpoint, resolved once
	urlErr error
	signer *v4.Signer
	skew   atomic.Int64 // the server's clock minus ours (ns), learnt from a refused signature
}

// NewCBORClient wraps c.
func NewCBORClient(c *kinesis.Client) *CBORClient {
	o := c.Options()
	hc := o.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	cc := &CBORClient{Client: c, http: hc, creds: o.Credentials, region: o.Region, signer: v4.NewSigner()}
	// The endpoint does not change: it is resolved once (no network).
	p := kinesis.EndpointParameters{
		Region:       aws.String(o.Region),
		Endpoint:     o.BaseEndpoint,
		UseFIPS:      aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		UseDualStack: aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
	}
	r := o.EndpointResolverV2
	if r == nil {
		r = kinesis.NewDefaultEndpointResolverV2()
	}
	ep, err := r.ResolveEndpoint(context.Background(), p)
	if err != nil {
		cc.urlErr = fmt.Errorf("resolve the Kinesis endpoint for region %q: %w", o.Region, err)
		return cc
	}
	u := ep.URI
	if u.Path == "" {
		u.Path = "/"
	}
	cc.url = u.String()
	return cc
}

var _ KinesisAPI = (*CBORClient)(nil)

// GetRecords reads in, in CBOR. Only ShardIterator and Limit are sent
// (StreamARN is not).
func (c *CBORClient) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	out, err := c.getRecords(ctx, in)
	if err != nil {
		return nil, &smithy.OperationError{ServiceID: "Kinesis", OperationName: "GetRecords", Err: err}
	}
	return out, nil
}

func (c *CBORClient) getRecords(ctx context.Context, in *kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) {
	if in.ShardIterator == nil {
		return nil, &types.InvalidArgumentException{Message: aws.String("ShardIterator is required")}
	}
	body := encodeGetRecords(aws.ToString(in.ShardIterator), in.Limit)
	if c.urlErr != nil {
		return nil, c.urlErr
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", CBOR)
	req.Header.Set("Accept", CBOR)
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.GetRecords")
	if c.creds != nil { // nil: anonymous, as the SDK
		creds, err := c.creds.Retrieve(ctx)
		if err != nil {
			return nil, fmt.Errorf("get credentials: %w", err)
		}
		sum := sha256.Sum256(body)
		signAt := time.Now().Add(time.Duration(c.skew.Load()))
		if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", c.region, signAt); err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	buf, err := readBody(resp)
	if err != nil {
		return nil, fmt.Errorf("read the answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		err := errorFrom(resp, buf)
		c.learnSkew(resp, err)
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, CBOR) {
		return nil, fmt.Errorf("answer of type %q, want %s", ct, CBOR)
	}
	out, err := decodeGetRecords(buf)
	if err != nil {
		return nil, fmt.Errorf("decode the CBOR answer (%d bytes): %w", len(buf), err)
	}
	return out, nil
}

// learnSkew: a signature refused for its time (this host's clock is off
// by more than the 5 minutes SigV4 allows) sets the offset the next
// requests are signed with from the answer's Date, as the SDK does for its
// own calls; the Reader retries the call.
func (c *CBORClient) learnSkew(resp *http.Response, err error) {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return
	}
	switch api.ErrorCode() {
	case "InvalidSignatureException", "SignatureDoesNotMatch", "RequestExpired", "RequestTimeTooSkewed", "RequestInTheFuture":
	default:
		return
	}
	server, perr := http.ParseTime(resp.Header.Get("Date"))
	if perr != nil {
		return
	}
	if skew := time.Until(server); skew > time.Minute || skew < -time.Minute {
		c.skew.Store(int64(skew))
	}
}

// maxAnswer bounds the body read: Kinesis answers at most 10 MB of data.
const maxAnswer = 64 << 20

// readBody reads an answer into a buffer of its own size.
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 {
		if n > maxAnswer {
			return nil, fmt.Errorf("answer of %d bytes, more than %d", n, maxAnswer)
		}
		buf := make([]byte, n)
		_, err := io.ReadFull(resp.Body, buf)
		return buf, err
	}
	buf, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err == nil && len(buf) > maxAnswer {
		err = fmt.Errorf("answer of more than %d bytes", maxAnswer)
	}
	return buf, err
}

// errorFrom turns a failed answer into the SDK's error type for its code
// (the body's __type, or the x-amzn-ErrorType header).
func errorFrom(resp *http.Response, body []byte) error {
	code, msg := "", ""
	if len(body) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), CBOR) {
		code, msg = decodeError(body)
	}
	if code == "" {
		code = resp.Header.Get("X-Amzn-ErrorType")
	}
	code = errorCode(code)
	if code == "" {
		return &smithy.GenericAPIError{
			Code:    "HTTP" + strconv.Itoa(resp.StatusCode),
			Message: fmt.Sprintf("HTTP %d with no error code (%d bytes)", resp.StatusCode, len(body)),
		}
	}
	m := aws.String(msg)
	switch code {
	case "ExpiredIteratorException":
		return &types.ExpiredIteratorException{Message: m}
	case "ProvisionedThroughputExceededException":
		return &types.ProvisionedThroughputExceededException{Message: m}
	case "LimitExceededException":
		return &types.LimitExceededException{Message: m}
	case "ResourceNotFoundException":
		return &types.ResourceNotFoundException{Message: m}
	case "InvalidArgumentException":
		return &types.InvalidArgumentException{Message: m}
	case "AccessDeniedException":
		return &types.AccessDeniedException{Message: m}
	case "KMSThrottlingException":
		return &types.KMSThrottlingException{Message: m}
	case "KMSDisabledException":
		return &types.KMSDisabledException{Message: m}
	case "KMSInvalidStateException":
		return &types.KMSInvalidStateException{Message: m}
	case "KMSNotFoundException":
		return &types.KMSNotFoundException{Message: m}
	case "KMSAccessDeniedException":
		return &types.KMSAccessDeniedException{Message: m}
	case "KMSOptInRequired":
		return &types.KMSOptInRequired{Message: m}
	}
	return &smithy.GenericAPIError{Code: code, Message: msg}
}

// errorCode trims a code as AWS protocols may write it:
// "aws.kinesis#ExpiredIteratorException:http://..." → the bare name.
func errorCode(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '#'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}
