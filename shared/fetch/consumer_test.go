package fetch

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

const (
	testStreamARN   = "arn:aws:kinesis:us-east-1:123456789012:stream/words"
	testConsumerARN = testStreamARN + "/consumer/efo:1525898737"
)

// consumerAnswer is one scripted answer of fakeConsumers: a status, or an error.
type consumerAnswer struct {
	status types.ConsumerStatus
	err    error
}

var (
	active   = consumerAnswer{status: types.ConsumerStatusActive}
	creating = consumerAnswer{status: types.ConsumerStatusCreating}
	deleting = consumerAnswer{status: types.ConsumerStatusDeleting}
	notFound = consumerAnswer{err: &types.ResourceNotFoundException{Message: aws.String("Consumer efo not found")}}
)

// fakeConsumers answers DescribeStreamConsumer and RegisterStreamConsumer
// from scripts, in order; the last answer of a script repeats. Its
// consumer is efo (testConsumerARN) of stream (testStreamARN unless set).
type fakeConsumers struct {
	describe, register []consumerAnswer
	stream             string

	mu        sync.Mutex
	described []*kinesis.DescribeStreamConsumerInput
	registers []*kinesis.RegisterStreamConsumerInput
}

var _ ConsumerAPI = (*fakeConsumers)(nil)

func scripted(script []consumerAnswer, n int) consumerAnswer {
	if len(script) == 0 {
		panic("no answer scripted")
	}
	return script[min(n, len(script)-1)]
}

func (f *fakeConsumers) DescribeStreamConsumer(_ context.Context, in *kinesis.DescribeStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := scripted(f.describe, len(f.described))
	f.described = append(f.described, in)
	if a.err != nil {
		return nil, a.err
	}
	stream := f.stream
	if stream == "" {
		stream = testStreamARN
	}
	return &kinesis.DescribeStreamConsumerOutput{ConsumerDescription: &types.ConsumerDescription{
		ConsumerName: aws.String("efo"), ConsumerARN: aws.String(testConsumerARN), StreamARN: aws.String(stream),
		ConsumerStatus: a.status, ConsumerCreationTimestamp: aws.Time(time.Now()),
	}}, nil
}

func (f *fakeConsumers) RegisterStreamConsumer(_ context.Context, in *kinesis.RegisterStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := scripted(f.register, len(f.registers))
	f.registers = append(f.registers, in)
	if a.err != nil {
		return nil, a.err
	}
	return &kinesis.RegisterStreamConsumerOutput{Consumer: &types.Consumer{
		ConsumerName: aws.String("efo"), ConsumerARN: aws.String(testConsumerARN), ConsumerStatus: a.status,
	}}, nil
}

// fastWait is a ConsumerWait for tests: 3 tries, 1ms apart.
var fastWait = ConsumerWait{Tries: 3, Interval: time.Millisecond}

func TestEnsureConsumer(t *testing.T) {
	denied := &types.AccessDeniedException{Message: aws.String("User x is not authorized to perform kinesis:DescribeStreamConsumer")}
	inUse := &types.ResourceInUseException{Message: aws.String("Consumer efo exists")}
	throttled := consumerAnswer{err: &types.LimitExceededException{Message: aws.String("Rate exceeded")}}
	tests := []struct {
		name               string
		describe, register []consumerAnswer
		wantDescribes      int
		wantRegisters      int
		wantErr            []string // parts of the error; none: success
		wantStatus         types.ConsumerStatus
		wantAs             any
	}{
		{name: "exists ACTIVE", describe: []consumerAnswer{active}, wantDescribes: 1},
		{name: "registered, CREATING then ACTIVE", describe: []consumerAnswer{notFound, creating, active}, register: []consumerAnswer{creating},
			wantDescribes: 3, wantRegisters: 1},
		{name: "registered ACTIVE at once", describe: []consumerAnswer{notFound}, register: []consumerAnswer{active}, wantDescribes: 1, wantRegisters: 1},
		{name: "another worker registers it meanwhile", describe: []consumerAnswer{notFound, creating, active}, register: []consumerAnswer{{err: inUse}},
			wantDescribes: 3, wantRegisters: 1},
		{name: "stuck CREATING", describe: []consumerAnswer{creating}, wantDescribes: 4, wantStatus: types.ConsumerStatusCreating,
			wantErr: []string{"consumer efo", testConsumerARN, "still CREATING after", "ACTIVE"}},
		{name: "stuck DELETING", describe: []consumerAnswer{deleting}, wantDescribes: 4, wantStatus: types.ConsumerStatusDeleting,
			wantErr: []string{"consumer efo", "still DELETING after"}},
		{name: "DELETING, gone, registered anew", describe: []consumerAnswer{deleting, notFound, active}, register: []consumerAnswer{creating},
			wantDescribes: 3, wantRegisters: 1},
		{name: "access denied", describe: []consumerAnswer{{err: denied}}, wantDescribes: 1,
			wantErr: []string{"consumer efo: access denied (AccessDeniedException)", "kinesis:DescribeStreamConsumer"}, wantAs: new(*types.AccessDeniedException)},
		{name: "register denied", describe: []consumerAnswer{notFound}, register: []consumerAnswer{{err: denied}}, wantDescribes: 1, wantRegisters: 1,
			wantErr: []string{"consumer efo: access denied"}, wantAs: new(*types.AccessDeniedException)},
		{name: "stream not found", describe: []consumerAnswer{notFound}, register: []consumerAnswer{{err: &types.ResourceNotFoundException{Message: aws.String("Stream words not found")}}},
			wantDescribes: 1, wantRegisters: 1, wantErr: []string{"consumer efo: does not exist: Stream words not found"}, wantAs: new(*types.ResourceNotFoundException)},
		{name: "throttled, then ACTIVE", describe: []consumerAnswer{throttled, throttled, active}, wantDescribes: 3},
		{name: "throttled throughout", describe: []consumerAnswer{throttled}, wantDescribes: 4,
			wantErr: []string{"consumer efo: still throttled after 4 tries: LimitExceededException"}, wantAs: new(*types.LimitExceededException)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeConsumers{describe: tt.describe, register: tt.register}
			arn, err := EnsureConsumer(context.Background(), f, testStreamARN, "efo", fastWait)
			if len(f.described) != tt.wantDescribes || len(f.registers) != tt.wantRegisters {
				t.Errorf("%d DescribeStreamConsumer and %d RegisterStreamConsumer calls, want %d and %d",
					len(f.described), len(f.registers), tt.wantDescribes, tt.wantRegisters)
			}
			for _, in := range f.described {
				if aws.ToString(in.StreamARN) != testStreamARN || aws.ToString(in.ConsumerName) != "efo" || in.ConsumerARN != nil {
					t.Errorf("DescribeStreamConsumer(stream %v, name %v, ARN %v), want by stream ARN and name",
						aws.ToString(in.StreamARN), aws.ToString(in.ConsumerName), aws.ToString(in.ConsumerARN))
				}
			}
			for _, in := range f.registers {
				if aws.ToString(in.StreamARN) != testStreamARN || aws.ToString(in.ConsumerName) != "efo" {
					t.Errorf("RegisterStreamConsumer(%v, %v), want %s and efo", aws.ToString(in.StreamARN), aws.ToString(in.ConsumerName), testStreamARN)
				}
			}
			if tt.wantErr == nil {
				if err != nil || arn != testConsumerARN {
					t.Fatalf("EnsureConsumer = %q, %v, want %s", arn, err, testConsumerARN)
				}
				return
			}
			if err == nil {
				t.Fatalf("EnsureConsumer = %q, want an error", arn)
			}
			for _, p := range tt.wantErr {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not contain %q", err, p)
				}
			}
			if tt.wantStatus != "" {
				var se *ConsumerStateError
				if !errors.As(err, &se) || se.Status != tt.wantStatus || se.Name != "efo" || se.Waited < 3*time.Millisecond {
					t.Errorf("error %#v, want a *ConsumerStateError of efo, %s, after 3ms or more", err, tt.wantStatus)
				}
			}
			if tt.wantAs != nil && !errors.As(err, tt.wantAs) {
				t.Errorf("error %v does not hold a %T", err, tt.wantAs)
			}
		})
	}
}

// TestEnsureConsumerBadName: a name AWS would refuse makes no call.
func TestEnsureConsumerBadName(t *testing.T) {
	f := &fakeConsumers{}
	_, err := EnsureConsumer(context.Background(), f, testStreamARN, "my consumer", fastWait)
	if err == nil || !strings.Contains(err.Error(), `"my consumer"`) || len(f.described)+len(f.registers) > 0 {
		t.Errorf("EnsureConsumer(\"my consumer\") = %v after %d calls, want an error naming it and no call", err, len(f.described)+len(f.registers))
	}
}

// TestEnsureConsumerCancelled: the wait ends with its context.
func TestEnsureConsumerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fakeConsumers{describe: []consumerAnswer{creating}}
	_, err := EnsureConsumer(ctx, f, testStreamARN, "efo", ConsumerWait{Interval: time.Hour})
	if !errors.Is(err, context.Canceled) || len(f.described) != 1 {
		t.Errorf("EnsureConsumer = %v after %d describes, want context.Canceled after 1", err, len(f.described))
	}
}

// TestConsumerWaitDefaults: the zero value is KCL's 10 tries, 1s apart.
func TestConsumerWaitDefaults(t *testing.T) {
	if got := (ConsumerWait{}).fill(); got != (ConsumerWait{Tries: 10, Interval: time.Second}) {
		t.Errorf("ConsumerWait{}.fill() = %+v, want 10 tries, 1s", got)
	}
	if got := fastWait.fill(); got != fastWait {
		t.Errorf("fill changed %+v to %+v", fastWait, got)
	}
}

func TestCheckConsumer(t *testing.T) {
	other := "arn:aws:kinesis:us-east-1:123456789012:stream/other"
	tests := []struct {
		name          string
		describe      []consumerAnswer
		stream        string
		wantDescribes int
		wantErr       []string
		wantAs        any
	}{
		{name: "ACTIVE", describe: []consumerAnswer{active}, wantDescribes: 1},
		{name: "CREATING then ACTIVE", describe: []consumerAnswer{creating, creating, active}, wantDescribes: 3},
		{name: "stuck CREATING", describe: []consumerAnswer{creating}, wantDescribes: 4, wantErr: []string{"consumer efo", testConsumerARN, "still CREATING after"}, wantAs: new(*ConsumerStateError)},
		{name: "DELETING", describe: []consumerAnswer{deleting}, wantDescribes: 1, wantErr: []string{"consumer efo", testConsumerARN, "is DELETING, not ACTIVE"}, wantAs: new(*ConsumerStateError)},
		{name: "not found", describe: []consumerAnswer{notFound}, wantDescribes: 1, wantErr: []string{"consumer " + testConsumerARN + ": does not exist"}, wantAs: new(*types.ResourceNotFoundException)},
		{name: "another stream's", describe: []consumerAnswer{active}, stream: other, wantDescribes: 1,
			wantErr: []string{"consumer " + testConsumerARN + ": a consumer of stream " + other + ", not of " + testStreamARN}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeConsumers{describe: tt.describe, stream: tt.stream}
			err := CheckConsumer(context.Background(), f, testStreamARN, testConsumerARN, fastWait)
			if len(f.described) != tt.wantDescribes || len(f.registers) > 0 {
				t.Errorf("%d DescribeStreamConsumer and %d RegisterStreamConsumer calls, want %d and none", len(f.described), len(f.registers), tt.wantDescribes)
			}
			for _, in := range f.described {
				if aws.ToString(in.ConsumerARN) != testConsumerARN || in.StreamARN != nil || in.ConsumerName != nil {
					t.Errorf("DescribeStreamConsumer(ARN %v, stream %v, name %v), want by the consumer ARN alone",
						aws.ToString(in.ConsumerARN), aws.ToString(in.StreamARN), aws.ToString(in.ConsumerName))
				}
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("CheckConsumer = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckConsumer = nil, want an error")
			}
			for _, p := range tt.wantErr {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not contain %q", err, p)
				}
			}
			if tt.wantAs != nil && !errors.As(err, tt.wantAs) {
				t.Errorf("error %v does not hold a %T", err, tt.wantAs)
			}
		})
	}
	// An ARN that does not parse makes no call.
	f := &fakeConsumers{}
	if err := CheckConsumer(context.Background(), f, testStreamARN, "efo", fastWait); err == nil || !strings.Contains(err.Error(), `"efo"`) || len(f.described) > 0 {
		t.Errorf("CheckConsumer(\"efo\") = %v after %d calls, want an error naming it and no call", err, len(f.described))
	}
}

func TestValidConsumerName(t *testing.T) {
	for name, ok := range map[string]bool{
		"efo": true, "a": true, "App_1.v-2": true, strings.Repeat("x", 128): true,
		"": false, strings.Repeat("x", 129): false, "my consumer": false, "a/b": false, "a:b": false, "é": false,
	} {
		err := ValidConsumerName(name)
		if (err == nil) != ok {
			t.Errorf("ValidConsumerName(%q) = %v, want ok %v", name, err, ok)
		}
		if err != nil && (!strings.Contains(err.Error(), `"`+name+`"`) || !strings.Contains(err.Error(), "1–128")) {
			t.Errorf("ValidConsumerName(%q) = %q: want the value and the rule", name, err)
		}
	}
}

func TestConsumerARNStream(t *testing.T) {
	tests := []struct {
		arn, want string
	}{
		{testConsumerARN, testStreamARN},
		{"arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s.1/consumer/c_2-x:1", "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s.1"},
		{"arn:aws-us-gov:kinesis:us-gov-west-1:000000000000:stream/s/consumer/c:1700000000", "arn:aws-us-gov:kinesis:us-gov-west-1:000000000000:stream/s"},
		{"", ""},
		{"efo", ""},
		{testStreamARN, ""},                                              // a stream's ARN
		{testStreamARN + "/consumer/efo", ""},                            // no epoch
		{testStreamARN + "/consumer/efo:x", ""},                          // epoch not a number
		{testStreamARN + "/consumer/:1", ""},                             // no name
		{testStreamARN + "/consumer/my efo:1", ""},                       // bad name
		{testStreamARN + "/consumers/efo:1", ""},                         // not consumer
		{testStreamARN + "/consumer/efo/x:1", ""},                        // too many parts
		{"arn:aws:sqs:us-east-1:123456789012:stream/s/consumer/c:1", ""}, // another service
		{"arn:aws:kinesis:us-east-1:1234:stream/s/consumer/c:1", ""},     // short account
		{"arn:aws:kinesis::123456789012:stream/s/consumer/c:1", ""},      // no region
		{"arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1:2", ""},
		{"arn::kinesis:us-east-1:123456789012:stream/s/consumer/c:1", ""},
	}
	for _, tt := range tests {
		got, err := ConsumerARNStream(tt.arn)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("ConsumerARNStream(%q) = %q, %v; want %q", tt.arn, got, err, tt.want)
		}
		if err != nil && (!strings.Contains(err.Error(), `"`+tt.arn+`"`) || !strings.Contains(err.Error(), "/consumer/")) {
			t.Errorf("ConsumerARNStream(%q) error %q: want the value and the form", tt.arn, err)
		}
	}
}
