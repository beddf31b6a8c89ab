package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// CBOR is the content type of Kinesis's binary protocol: the same
// operations as its JSON protocol, with blobs carried as raw bytes instead
// of base64. The AWS SDK for Java (and so the KCL) reads Kinesis this way by
// default; the Go SDK only speaks JSON.
const CBOR = "application/x-amz-cbor-1.1"

// JSON is the content type of Kinesis's JSON protocol (AWS JSON 1.1).
const JSON = "application/x-amz-json-1.1"

// CBORDisabled reports whether AWS_CBOR_DISABLE asks for JSON (the
// variable the AWS SDK for Java honours, so KCL users know it).
func CBORDisabled() bool {
	v := strings.TrimSpace(os.Getenv("AWS_CBOR_DISABLE"))
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// Client is a Kinesis client that makes GetRecords, the one call on the
// hot path, itself, and every other call through the SDK client it wraps
// (its credentials, region, endpoint and HTTP client are used for
// GetRecords too).
//
// It reads in Kinesis's CBOR protocol. A CBOR answer is decoded in place:
// the records' data, partition keys and sequence numbers share the
// answer's one buffer, so a read costs a few allocations, not several per
// record, and no base64. The records are what the SDK would return.
//
// An endpoint that does not speak CBOR (moto_server, some stand-ins) is
// read in JSON instead, by a decoder of the same kind (a few allocations
// an answer; the data decoded from base64 straight into one buffer), for
// the whole client from the first GetRecords that shows it: a CBOR request
// refused (a server error, HTTP 415, SerializationException,
// InvalidArgumentException, or an answer that is not CBOR) that the same
// request in JSON is not, and that a second CBOR request confirms. One INFO
// line says so. ClientConfig.JSON (AWS_CBOR_DISABLE=true) reads JSON from
// the start.
//
// Either way every answer is read to its end, so that the connection is
// kept for the next call. It makes one attempt per GetRecords (the Reader
// retries, with its own back-off); errors carry the SDK's types
// (*types.ExpiredIteratorException and the rest) inside a
// *smithy.OperationError and an *awshttp.ResponseError with the HTTP
// status, as the SDK's do. It is safe for concurrent use.
type Client struct {
	*kinesis.Client
	http   aws.HTTPClient
	creds  aws.CredentialsProvider
	region string
	url    string // the endpoint, resolved once
	urlErr error
	signer *v4.Signer
	skew   atomic.Int64 // the server's clock minus ours (ns), learnt from a refused signature
	json   atomic.Bool  // GetRecords in JSON
	// subscribeJSON: the endpoint refused SubscribeToShard in CBOR and
	// took it in JSON (the events come in the request's protocol).
	subscribeJSON atomic.Bool
	log           *slog.Logger

	// Subscriptions (Subscribe): their HTTP client, and the endpoint
	// rules' parameters and resolver for each consumer's data endpoint.
	subscribeHTTP  aws.HTTPClient
	budget         *Budget
	endpointParams kinesis.EndpointParameters
	resolver       kinesis.EndpointResolverV2
	mu             sync.Mutex
	dataURLs       map[string]string // by consumer ARN
}

// ClientConfig configures NewClient. The zero value reads CBOR and logs
// nothing.
type ClientConfig struct {
	// JSON reads GetRecords in JSON from the start (CBORDisabled).
	JSON bool
	// Logger gets the line saying that the endpoint refuses CBOR.
	Logger *slog.Logger
	// Budget, when set, bounds the bytes of subscription events the
	// client's subscriptions hold at once (the worker's read budget).
	Budget *Budget
	// SubscribeHTTP makes Subscribe's requests: a client with no overall
	// timeout (a subscription streams for 5 minutes), such as
	// awsconf.Clients.KinesisFanOut's. Default: the wrapped client's.
	SubscribeHTTP aws.HTTPClient
}

// NewClient wraps c.
func NewClient(c *kinesis.Client, cfg ClientConfig) *Client {
	o := c.Options()
	hc := o.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cc := &Client{Client: c, http: hc, creds: o.Credentials, region: o.Region, signer: v4.NewSigner(), log: log,
		subscribeHTTP: cfg.SubscribeHTTP, budget: cfg.Budget}
	if cc.subscribeHTTP == nil {
		cc.subscribeHTTP = hc
	}
	cc.json.Store(cfg.JSON)
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
	cc.endpointParams, cc.resolver = p, r
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

var _ KinesisAPI = (*Client)(nil)

// Protocol is the content type GetRecords is read in now: CBOR or JSON.
func (c *Client) Protocol() string {
	if c.json.Load() {
		return JSON
	}
	return CBOR
}

// GetRecords reads in. Only ShardIterator and Limit are sent (StreamARN
// is not).
func (c *Client) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	out, err := c.read(ctx, in)
	if err != nil {
		return nil, &smithy.OperationError{ServiceID: "Kinesis", OperationName: "GetRecords", Err: err}
	}
	return out, nil
}

// read makes the call in the protocol of the moment, and finds out
// whether a CBOR request refused is refused for its protocol.
func (c *Client) read(ctx context.Context, in *kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) {
	if c.json.Load() {
		return c.getRecords(ctx, in, jsonProtocol)
	}
	out, err := c.getRecords(ctx, in, cborProtocol)
	why := refusal(err)
	if why == "" {
		return out, err
	}
	// The same request in JSON (GetRecords does not move an iterator):
	// refused in the same way, or not answered, it says nothing about
	// CBOR, and the CBOR answer is what the caller gets.
	jout, jerr := c.getRecords(ctx, in, jsonProtocol)
	if !answered(jerr, why) {
		return nil, err
	}
	// Answered in JSON: a second CBOR request tells a refusal from a
	// server's passing fault.
	out, err2 := c.getRecords(ctx, in, cborProtocol)
	if refusal(err2) == "" {
		return out, err2
	}
	if c.json.CompareAndSwap(false, true) {
		c.log.Info("the Kinesis endpoint refuses GetRecords in CBOR and answers it in JSON: reading it in JSON from now on",
			"endpoint", c.url, "cborAnswer", err2.Error())
	}
	return jout, jerr
}

// refusal says how an answer refused a GetRecords request for what it
// may not have understood: "" when it did not. A server error is one: a
// server that cannot parse a request may fail with one (moto_server does).
func refusal(err error) string {
	if err == nil {
		return ""
	}
	var pe *protocolError
	if errors.As(err, &pe) {
		return "an answer not in the protocol asked for"
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "SerializationException", "InvalidArgumentException":
			return api.ErrorCode()
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		if s := re.HTTPStatusCode(); s >= 500 || s == http.StatusUnsupportedMediaType {
			return "HTTP " + strconv.Itoa(s)
		}
	}
	return ""
}

// answered reports whether a JSON request's outcome shows that the
// endpoint understood it where a CBOR one was refused (why): it succeeded,
// or failed with a Kinesis error of the request's content (an expired
// iterator, a stream not found, ...) that is not the CBOR one's. A
// throttle, a server error or a broken connection says nothing.
func answered(err error, why string) bool {
	if err == nil {
		return true
	}
	if IsThrottle(err) {
		return false
	}
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch refusal(err) {
	case "":
		return true
	case "InvalidArgumentException":
		return why != "InvalidArgumentException"
	}
	return false
}

// protocol is how GetRecords is asked and answered in one protocol.
type protocol struct {
	contentType string
	encode      func(iterator string, limit *int32) []byte
	decode      func([]byte) (*kinesis.GetRecordsOutput, error)
	name        string
}

var (
	cborProtocol = &protocol{CBOR, encodeGetRecords, decodeGetRecords, "CBOR"}
	jsonProtocol = &protocol{JSON, encodeGetRecordsJSON, decodeGetRecordsJSON, "JSON"}
)

// protocolError is a successful answer that is not in the protocol asked
// for: of another type, or one that does not decode.
type protocolError struct{ err error }

func (e *protocolError) Error() string { return e.err.Error() }
func (e *protocolError) Unwrap() error { return e.err }

func (c *Client) getRecords(ctx context.Context, in *kinesis.GetRecordsInput, p *protocol) (*kinesis.GetRecordsOutput, error) {
	if in.ShardIterator == nil {
		return nil, &types.InvalidArgumentException{Message: aws.String("ShardIterator is required")}
	}
	body := p.encode(aws.ToString(in.ShardIterator), in.Limit)
	if c.urlErr != nil {
		return nil, c.urlErr
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", p.contentType)
	req.Header.Set("Accept", p.contentType)
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
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, p.contentType) {
		return nil, &protocolError{fmt.Errorf("answer of type %q, want %s", ct, p.contentType)}
	}
	out, err := p.decode(buf)
	if err != nil {
		return nil, &protocolError{fmt.Errorf("decode the %s answer (%d bytes): %w", p.name, len(buf), err)}
	}
	return out, nil
}

// learnSkew: a signature refused for its time (this host's clock is off
// by more than the 5 minutes SigV4 allows) sets the offset the next
// requests are signed with from the answer's Date, as the SDK does for its
// own calls; the Reader retries the call.
func (c *Client) learnSkew(resp *http.Response, err error) {
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
// (the body's __type, or the x-amzn-ErrorType header), inside an
// *awshttp.ResponseError with the answer's status, as the SDK returns it.
func errorFrom(resp *http.Response, body []byte) error {
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: apiError(resp, body)},
		RequestID:     resp.Header.Get("X-Amzn-Requestid"),
	}
}

func apiError(resp *http.Response, body []byte) error {
	code, msg := "", ""
	if len(body) > 0 {
		switch ct := resp.Header.Get("Content-Type"); {
		case strings.HasPrefix(ct, CBOR):
			code, msg = decodeError(body)
		case strings.HasPrefix(ct, JSON), strings.HasPrefix(ct, "application/json"):
			code, msg = decodeJSONError(body)
		}
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
	return apiErrorOf(code, msg)
}

// apiErrorOf is the SDK's error type for a Kinesis error code.
func apiErrorOf(code, msg string) error {
	m := aws.String(msg)
	switch code {
	case "ExpiredIteratorException":
		return &types.ExpiredIteratorException{Message: m}
	case "ProvisionedThroughputExceededException":
		return &types.ProvisionedThroughputExceededException{Message: m}
	case "LimitExceededException":
		return &types.LimitExceededException{Message: m}
	case "ResourceInUseException":
		return &types.ResourceInUseException{Message: m}
	case "InternalFailureException":
		return &types.InternalFailureException{Message: m}
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
