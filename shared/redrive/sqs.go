package redrive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/shardline/shardline/shared/awserr"
	"github.com/shardline/shardline/shared/destination/sqsdest"
)

// SQSAPI are the SQS calls the source makes.
type SQSAPI interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

// DefaultVisibility is how long a message received stays invisible
// before the redrive extends it again (every third of it) while it runs.
const DefaultVisibility = 60 * time.Second

// SQSSource receives the messages of a queue. Every message received is
// kept invisible (ChangeMessageVisibility every third of Visibility) until
// it is deleted (Done) or made visible again (Release); a redrive that
// dies leaves its messages invisible for at most Visibility. It reads
// until a receive that waits a second finds nothing. A FIFO queue gives
// the next messages of a shard (its message group) only once those held
// are deleted: Partial says so, and the redrive reads it in rounds.
type SQSSource struct {
	Queue      sqsdest.Queue
	Client     SQSAPI
	Visibility time.Duration // default DefaultVisibility
	Wait       time.Duration // receive wait; default 1s

	backlog     int    // ApproximateNumberOfMessages at Check
	maxReceives int    // the redrive policy's maxReceiveCount; 0: none
	deadLetter  string // the redrive policy's deadLetterTargetArn

	mu     sync.Mutex
	held   map[string]string // receipt handle → message id
	stop   chan struct{}
	ticker sync.WaitGroup
	errs   int // failed visibility extensions, in a row
}

var _ Source = (*SQSSource)(nil)

// NewSQSSource returns the source of q.
func NewSQSSource(q sqsdest.Queue, c SQSAPI, visibility time.Duration) *SQSSource {
	if visibility <= 0 {
		visibility = DefaultVisibility
	}
	return &SQSSource{Queue: q, Client: c, Visibility: visibility, Wait: time.Second, held: map[string]string{}}
}

func (s *SQSSource) String() string {
	if s.Queue.ARN != "" {
		return "SQS queue " + s.Queue.ARN
	}
	return "SQS queue " + s.Queue.URL
}

// Partial: a FIFO queue holds back a group's next messages while some are
// held.
func (s *SQSSource) Partial() bool { return s.Queue.FIFO }

func (s *SQSSource) region(o *sqs.Options) {
	if s.Queue.Region != "" {
		o.Region = s.Queue.Region
	}
}

// Backlog is about how many messages the queue held (visible) at Check.
func (s *SQSSource) Backlog() int { return s.backlog }

// ReceiveLimit is the queue's redrive policy: the receives after which
// SQS moves a message to the dead-letter queue, and that queue's ARN; 0
// when the queue has none.
func (s *SQSSource) ReceiveLimit() (int, string) { return s.maxReceives, s.deadLetter }

// Check asks for the queue's attributes (its count of messages and its
// redrive policy): a queue that does not exist is a *NotFoundError.
func (s *SQSSource) Check(ctx context.Context) error {
	out, err := s.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(s.Queue.URL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameRedrivePolicy}}, s.region)
	if err == nil {
		s.backlog, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
		s.maxReceives, s.deadLetter = parseRedrivePolicy(out.Attributes[string(types.QueueAttributeNameRedrivePolicy)])
		return nil
	}
	if isNoQueue(err) {
		return &NotFoundError{What: s.String()}
	}
	return fmt.Errorf("%s: %w", s, awserr.Explain(err))
}

// parseRedrivePolicy reads a queue's RedrivePolicy attribute:
// {"deadLetterTargetArn":"arn:…","maxReceiveCount":5} (the count a
// number or a string, as SQS gives either); 0 when there is none or it
// cannot be read.
func parseRedrivePolicy(raw string) (maxReceives int, deadLetter string) {
	if raw == "" {
		return 0, ""
	}
	var p struct {
		DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
		MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
	}
	if json.Unmarshal([]byte(raw), &p) != nil {
		return 0, ""
	}
	n, err := strconv.Atoi(strings.Trim(string(p.MaxReceiveCount), `"`))
	if err != nil || n < 1 {
		return 0, ""
	}
	return n, p.DeadLetterTargetArn
}

func isNoQueue(err error) bool {
	var nq *types.QueueDoesNotExist
	if errors.As(err, &nq) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && (strings.Contains(ae.ErrorCode(), "NonExistentQueue") || strings.Contains(ae.ErrorCode(), "QueueDoesNotExist"))
}

// receivers is how many ReceiveMessage calls Next makes at once: SQS
// answers each with at most 10 messages.
const receivers = 4

// Next receives up to n messages (up to 10 per ReceiveMessage, up to
// receivers calls at once), waiting up to Wait. An empty answer is not
// taken for an empty queue while the queue says it holds visible
// messages (a receive samples SQS's servers; concurrent receives can all
// miss the last few): it is asked again, up to emptyChecks times.
func (s *SQSSource) Next(ctx context.Context, n int) ([]*Message, error) {
	for i := 0; ; i++ {
		msgs, err := s.next(ctx, n)
		// A FIFO queue holds a group's next messages back while this
		// redrive holds earlier ones: visible, yet not received.
		fifo := strings.HasSuffix(s.Queue.URL, ".fifo")
		if len(msgs) > 0 || err != nil || fifo || i == emptyChecks || ctx.Err() != nil || s.visible(ctx) == 0 {
			return msgs, err
		}
	}
}

// emptyChecks is how many times an empty receive is tried again while the
// queue holds visible messages.
const emptyChecks = 5

// visible is the queue's ApproximateNumberOfMessages (0 when it cannot
// be read).
func (s *SQSSource) visible(ctx context.Context) int {
	out, err := s.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(s.Queue.URL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages}}, s.region)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	return n
}

func (s *SQSSource) next(ctx context.Context, n int) ([]*Message, error) {
	s.start()
	calls := min(max((n+9)/10, 1), receivers)
	type answer struct {
		out *sqs.ReceiveMessageOutput
		err error
	}
	answers := make([]answer, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			answers[i].out, answers[i].err = s.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
				QueueUrl: aws.String(s.Queue.URL), MaxNumberOfMessages: int32(min(max(n-10*i, 1), 10)),
				VisibilityTimeout: int32(s.Visibility / time.Second), WaitTimeSeconds: int32(s.Wait / time.Second),
				MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
			}, s.region)
		})
	}
	wg.Wait()
	var msgs []*Message
	var errs []error
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range answers {
		if a.err != nil {
			errs = append(errs, awserr.Explain(a.err))
			continue
		}
		for _, m := range a.out.Messages {
			rh, id := aws.ToString(m.ReceiptHandle), aws.ToString(m.MessageId)
			s.held[rh] = id
			receives, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
			msgs = append(msgs, &Message{ID: "message " + id, Body: []byte(aws.ToString(m.Body)), Receives: receives, ref: rh})
		}
	}
	if len(errs) > 0 {
		// Messages received are held: they are given back with the rest.
		return msgs, errors.Join(errs...)
	}
	return msgs, nil
}

// start starts the visibility heartbeat once.
func (s *SQSSource) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return
	}
	s.stop = make(chan struct{})
	s.ticker.Go(s.heartbeat)
}

// heartbeat extends the visibility of the messages held every third of
// Visibility.
func (s *SQSSource) heartbeat() {
	t := time.NewTicker(max(s.Visibility/3, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		handles := make([]string, 0, len(s.held))
		for rh := range s.held {
			handles = append(handles, rh)
		}
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), s.Visibility/3+time.Second)
		_ = s.visibility(ctx, handles, s.Visibility) // a failure shows in Done or Release
		cancel()
	}
}

// visibility sets the visibility timeout of the messages handles names.
func (s *SQSSource) visibility(ctx context.Context, handles []string, to time.Duration) error {
	var errs []error
	for chunk := range chunks(handles, 10) {
		in := &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(s.Queue.URL)}
		for i, rh := range chunk {
			in.Entries = append(in.Entries, types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(fmt.Sprint(i)), ReceiptHandle: aws.String(rh), VisibilityTimeout: int32(to / time.Second)})
		}
		out, err := s.Client.ChangeMessageVisibilityBatch(ctx, in, s.region)
		if err != nil {
			errs = append(errs, awserr.Explain(err))
			continue
		}
		for _, f := range out.Failed {
			errs = append(errs, fmt.Errorf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}

// Done deletes the messages.
func (s *SQSSource) Done(ctx context.Context, msgs []*Message) error {
	var errs []error
	for chunk := range chunks(msgs, 10) {
		in := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(s.Queue.URL)}
		for i, m := range chunk {
			in.Entries = append(in.Entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: aws.String(m.ref.(string))})
		}
		out, err := s.Client.DeleteMessageBatch(ctx, in, s.region)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: delete %d messages: %w", s, len(chunk), awserr.Explain(err)))
			continue
		}
		failed := map[string]bool{}
		for _, f := range out.Failed {
			failed[aws.ToString(f.Id)] = true
			errs = append(errs, fmt.Errorf("%s: delete %s: %s: %s", s, chunk[atoi(aws.ToString(f.Id))].ID, aws.ToString(f.Code), aws.ToString(f.Message)))
		}
		s.mu.Lock()
		for i, m := range chunk {
			if !failed[fmt.Sprint(i)] {
				delete(s.held, m.ref.(string))
			}
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Release makes the messages visible again at once.
func (s *SQSSource) Release(ctx context.Context, msgs []*Message) error {
	handles := make([]string, len(msgs))
	s.mu.Lock()
	for i, m := range msgs {
		handles[i] = m.ref.(string)
		delete(s.held, handles[i])
	}
	s.mu.Unlock()
	if err := s.visibility(ctx, handles, 0); err != nil {
		return fmt.Errorf("%s: make %d messages visible again: %w", s, len(msgs), err)
	}
	return nil
}

// Close stops the heartbeat.
func (s *SQSSource) Close(context.Context) error {
	s.mu.Lock()
	stop := s.stop
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		s.ticker.Wait()
	}
	return nil
}

// chunks yields s in pieces of at most n.
func chunks[T any](s []T, n int) func(func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
