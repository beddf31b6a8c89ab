package fakekinesis

import (
	"fmt"
	"sort"
	"time"
)

// maxConsumers is how many consumers a stream may have, as in Kinesis.
const maxConsumers = 20

// consumer is a registered enhanced fan-out consumer of a stream.
type consumer struct {
	name, arn string
	stream    *Stream
	created   time.Time
	activeAt  time.Time // CREATING until then
}

func (c *consumer) status(now time.Time) string {
	if now.Before(c.activeAt) {
		return "CREATING"
	}
	return "ACTIVE"
}

// consumerFields are the fields of a Consumer (and, with StreamARN, of a
// ConsumerDescription).
func (c *consumer) fields(isCBOR bool, now time.Time) map[string]any {
	return map[string]any{
		"ConsumerName":              c.name,
		"ConsumerARN":               c.arn,
		"ConsumerStatus":            c.status(now),
		"ConsumerCreationTimestamp": timestamp(isCBOR, c.created),
	}
}

// consumerCount is how many consumers st has.
func (s *Server) consumerCount(st *Stream) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, c := range s.consumers {
		if c.stream == st {
			n++
		}
	}
	return n
}

// consumerOp answers RegisterStreamConsumer, DescribeStreamConsumer,
// ListStreamConsumers and DeregisterStreamConsumer.
func (s *Server) consumerOp(op string, req *request, isCBOR bool) (out []byte, aerr *apiError) {
	switch op {
	case "RegisterStreamConsumer":
		out, aerr = s.registerConsumer(req, isCBOR)
	case "DescribeStreamConsumer":
		var c *consumer
		if c, aerr = s.findConsumer(req); aerr == nil {
			d := c.fields(isCBOR, s.now())
			d["StreamARN"] = c.stream.arn
			out = encode(isCBOR, map[string]any{"ConsumerDescription": d})
		}
	case "ListStreamConsumers":
		out, aerr = s.listConsumers(req, isCBOR)
	case "DeregisterStreamConsumer":
		var c *consumer
		if c, aerr = s.findConsumer(req); aerr == nil {
			s.mu.Lock()
			delete(s.consumers, c.arn)
			s.mu.Unlock()
			s.subs.endConsumer(c.arn, errorf("ResourceNotFoundException", "Consumer %s not found.", c.arn))
			out = encode(isCBOR, map[string]any{})
		}
	default:
		panic("fakekinesis: consumerOp " + op) // ServeHTTP calls it with its four only
	}
	return out, aerr
}

// consumerStream is the stream of a request's StreamARN.
func (s *Server) consumerStream(req *request) (*Stream, *apiError) {
	if req.StreamARN == "" {
		return nil, errorf("InvalidArgumentException", "StreamARN is required")
	}
	return s.stream(&request{StreamARN: req.StreamARN})
}

func (s *Server) registerConsumer(req *request, isCBOR bool) ([]byte, *apiError) {
	st, aerr := s.consumerStream(req)
	if aerr != nil {
		return nil, aerr
	}
	if req.ConsumerName == "" {
		return nil, errorf("InvalidArgumentException", "ConsumerName is required")
	}
	now := s.now()
	created := now.Truncate(time.Millisecond)
	c := &consumer{
		name: req.ConsumerName, stream: st, created: created, activeAt: created.Add(s.ConsumerActivation),
		// As Kinesis writes them: the stream's ARN, the name and the
		// creation time in epoch seconds.
		arn: fmt.Sprintf("%s/consumer/%s:%d", st.arn, req.ConsumerName, created.Unix()),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[st.Name] != st {
		return nil, errorf("ResourceNotFoundException", "Stream %s not found", st.arn)
	}
	n := 0
	for _, o := range s.consumers {
		if o.stream != st {
			continue
		}
		if o.name == c.name {
			return nil, errorf("ResourceInUseException", "Consumer %s under stream %s already exists for account %s.", o.arn, st.Name, AccountID)
		}
		n++
	}
	if n >= maxConsumers {
		return nil, errorf("LimitExceededException", "Stream %s under account %s already has %d consumers.", st.Name, AccountID, n)
	}
	s.consumers[c.arn] = c
	return encode(isCBOR, map[string]any{"Consumer": c.fields(isCBOR, now)}), nil
}

// findConsumer is the consumer of a request's ConsumerARN, or of its
// StreamARN and ConsumerName.
func (s *Server) findConsumer(req *request) (*consumer, *apiError) {
	if req.ConsumerARN != "" {
		return s.consumerByARN(req.ConsumerARN)
	}
	st, aerr := s.consumerStream(req)
	if aerr != nil {
		return nil, aerr
	}
	if req.ConsumerName == "" {
		return nil, errorf("InvalidArgumentException", "ConsumerARN, or StreamARN and ConsumerName, are required")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.consumers {
		if c.stream == st && c.name == req.ConsumerName {
			return c, nil
		}
	}
	return nil, errorf("ResourceNotFoundException", "Consumer %s under stream %s not found for account %s.", req.ConsumerName, st.Name, AccountID)
}

func (s *Server) consumerByARN(arn string) (*consumer, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.consumers[arn]; c != nil {
		return c, nil
	}
	return nil, errorf("ResourceNotFoundException", "Consumer %s not found.", arn)
}

// listConsumers answers with every consumer of the stream, oldest first,
// on one page.
func (s *Server) listConsumers(req *request, isCBOR bool) ([]byte, *apiError) {
	st, aerr := s.consumerStream(req)
	if aerr != nil {
		return nil, aerr
	}
	now := s.now()
	s.mu.RLock()
	var cs []*consumer
	for _, c := range s.consumers {
		if c.stream == st {
			cs = append(cs, c)
		}
	}
	s.mu.RUnlock()
	sort.Slice(cs, func(i, j int) bool {
		if !cs[i].created.Equal(cs[j].created) {
			return cs[i].created.Before(cs[j].created)
		}
		return cs[i].name < cs[j].name
	})
	list := make([]any, len(cs))
	for i, c := range cs {
		list[i] = c.fields(isCBOR, now)
	}
	return encode(isCBOR, map[string]any{"Consumers": list}), nil
}
