// Package fakekinesis is a fast, in-memory Kinesis for the peer
// comparison: it serves streams copied from a real Kinesis endpoint (here
// kinesis-mock) with the same shard ids, hash ranges, sequence numbers,
// partition keys, data and arrival timestamps, so that every consumer
// reads the same records and the server's own CPU (in the process that
// serves it, not the consumer's) stays small; and it takes puts (PutRecord,
// PutRecords) into new or copied streams, for latency runs at rates a
// stand-in cannot take.
//
// It answers ListShards, DescribeStream, DescribeStreamSummary,
// ListStreams, GetShardIterator, GetRecords, PutRecord, PutRecords,
// CreateStream, DeleteStream, SplitShard and MergeShards, and for
// enhanced fan-out RegisterStreamConsumer, DescribeStreamConsumer,
// ListStreamConsumers, DeregisterStreamConsumer and SubscribeToShard
// (pushing each record as it is put: see subscribe.go), in both wire
// protocols of Kinesis, chosen by the request's Content-Type:
//
//   - AWS JSON 1.1 (application/x-amz-json-1.1): Data base64, timestamps
//     epoch seconds as a JSON number (1796051652.086).
//   - CBOR (application/x-amz-cbor-1.1), as real Kinesis answers the Java
//     SDK: a map with text keys; Data a byte string; timestamps tag 1
//     wrapping an integer of epoch milliseconds.
//
// Every record is encoded once per protocol when its stream is added or
// when it is put, so a GetRecords answer is mostly copying. A shard's
// records only grow: a reader copies the slice headers under the shard's
// read lock and builds its answer outside it, so readers hold writers up
// for no more than that copy. Anything else is logged and
// answered 400 (UnknownOperationException). Errors are 400 with a
// {"__type", "message"} body in the request's protocol and an
// x-amzn-ErrorType header.
//
// A Server is an http.Handler; Start serves it on a loopback port, over
// plain HTTP/1.1 or over TLS with HTTP/2 (a certificate made at start,
// its PEM written for AWS_CA_BUNDLE), as Kinesis serves SubscribeToShard.
package fakekinesis

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fxamacker/cbor/v2"
)

const (
	contentJSON = "application/x-amz-json-1.1"
	contentCBOR = "application/x-amz-cbor-1.1"
	targetPfx   = "Kinesis_20131202."
	// maxAnswer caps a GetRecords answer's records (data + partition key),
	// as Kinesis caps it at 10 MB.
	maxAnswer = 10 << 20
	// AccountID is used in the stream ARNs.
	AccountID = "000000000000"
)

// Record is one Kinesis record as stored.
type Record struct {
	SequenceNumber string
	PartitionKey   string
	Data           []byte
	Arrival        time.Time // millisecond precision, as Kinesis keeps it
}

// Shard is one shard of a stream.
type Shard struct {
	ID                    string
	ParentShardID         string
	AdjacentParentShardID string
	StartingHashKey       string
	EndingHashKey         string
	StartingSequence      string
	EndingSequence        string // "": open
	// Records are the shard's records; once the stream is added, read
	// and written only under the shard's lock (Server.Put appends).
	Records []Record

	mu         sync.RWMutex
	json, cbor [][]byte // each record pre-encoded
	size       []int    // bytes each record counts towards the 10 MB cap
	lo, hi     hashKey  // the hash key range, parsed
	lastSeq    string   // the last sequence number handed out (or StartingSequence)
	// ended: the shard is closed (EndingSequence set, by Add or by a
	// split or merge) and takes no more records; children are then its
	// child shards. Both change under the stream's and the shard's locks.
	ended    bool
	children []childShard
	// wake, when a subscriber waits for records, is closed (and cleared)
	// by the next put or by the shard's closing: no channel is made while
	// nobody waits.
	wake chan struct{}
}

// childShard is one child of a closed shard, as ChildShards lists it.
type childShard struct {
	ID         string
	Parents    []string
	Start, End string // hash key range
}

// view is a shard's records as of one moment: all four slices have the
// same length, and the elements below it never change. If ended, they are
// all the shard will ever hold.
type view struct {
	recs       []Record
	json, cbor [][]byte
	size       []int
	ended      bool
	children   []childShard
}

func (sh *Shard) view() view {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.viewLocked()
}

func (sh *Shard) viewLocked() view {
	return view{sh.Records, sh.json, sh.cbor, sh.size, sh.ended, sh.children}
}

// watch is view, and a channel closed when the shard next changes (a put
// or its closing).
func (sh *Shard) watch() (view, <-chan struct{}) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.wake == nil {
		sh.wake = make(chan struct{})
	}
	return sh.viewLocked(), sh.wake
}

// wakeLocked wakes the shard's subscribers; the caller holds sh.mu.
func (sh *Shard) wakeLocked() {
	if sh.wake != nil {
		close(sh.wake)
		sh.wake = nil
	}
}

// behind is MillisBehindLatest after the records below end: the arrival
// of the shard's last record less that of the last one read (or of the
// first, if none was read), 0 at the tip.
func (v view) behind(end int) int64 {
	n := len(v.recs)
	switch {
	case end >= n:
		return 0
	case end > 0:
		return v.recs[n-1].Arrival.Sub(v.recs[end-1].Arrival).Milliseconds()
	}
	return v.recs[n-1].Arrival.Sub(v.recs[0].Arrival).Milliseconds()
}

// Len is how many records the shard holds.
func (sh *Shard) Len() int {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return len(sh.Records)
}

// Stream is one stream.
type Stream struct {
	Name    string
	Created time.Time
	// Shards are the stream's shards; once the stream is added, a split
	// or a merge appends to them, under mu (read them with a lock held, or
	// before Add).
	Shards []*Shard
	Region string // "": us-east-1

	mu    sync.RWMutex // Shards, index, and each shard's EndingSequence and ended
	arn   string
	index map[string]int // shard id to index
}

// shardsNow is the stream's shards as of now.
func (st *Stream) shardsNow() []*Shard {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.Shards
}

// shard is the shard of that id and its index.
func (st *Stream) shard(id string) (*Shard, int, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	i, ok := st.index[id]
	if !ok {
		return nil, 0, false
	}
	return st.Shards[i], i, true
}

// ARN is the stream's ARN.
func (s *Stream) ARN() string { return s.arn }

// Server serves streams over HTTP. Streams may be added, removed and put
// into while it serves; any number of requests may be served at once.
// Set its fields before it serves.
type Server struct {
	mu        sync.RWMutex
	streams   map[string]*Stream
	byARN     map[string]*Stream
	consumers map[string]*consumer // by ARN
	// Logf receives one line per unknown operation or malformed request
	// (default: log.Printf).
	Logf func(format string, args ...any)
	// IteratorTTL is how long a shard iterator stays valid (0: 5 minutes,
	// as in Kinesis); older ones get ExpiredIteratorException.
	IteratorTTL time.Duration
	// ConsumerActivation is how long a registered consumer stays CREATING
	// before it is ACTIVE (0: ACTIVE at once; Kinesis takes some seconds).
	ConsumerActivation time.Duration
	// SubscriptionLength is how long a SubscribeToShard stream lasts
	// before the fake ends it (0: 5 minutes, as Kinesis).
	SubscriptionLength time.Duration
	// SubscribeWindow is how long after a successful SubscribeToShard
	// another one for the same consumer and shard gets
	// ResourceInUseException; a later one takes the subscription over
	// (0: 5 seconds, as Kinesis; < 0: never refused).
	SubscribeWindow time.Duration
	// Heartbeat is how long a subscription may go without an event
	// before it gets an empty one (0: 5 seconds, as Kinesis).
	Heartbeat time.Duration

	calls  sync.Map // operation -> *atomic.Int64
	protos sync.Map // "OPERATION PROTO" -> *atomic.Int64
	now    func() time.Time
	// onRead: see SetOnRead.
	onRead atomic.Pointer[func()]
	subs   subscriptions
}

// SetOnRead makes f be called when a read request (GetRecords or
// SubscribeToShard) arrives, before its body is read or it is answered,
// in the request's goroutine (so the answer waits for f); nil removes it.
// It may be set while the server serves: cmd/compare sets one per
// consumer run to learn when the consumer's first read came.
func (s *Server) SetOnRead(f func()) {
	if f == nil {
		s.onRead.Store(nil)
		return
	}
	s.onRead.Store(&f)
}

// New returns a server with no streams.
func New() *Server {
	return &Server{streams: map[string]*Stream{}, byARN: map[string]*Stream{}, consumers: map[string]*consumer{}, now: time.Now}
}

// Add adds (or replaces) a stream, encoding its records. Records of each
// shard must be in sequence-number order (sequence numbers of one length,
// decimal, as Kinesis's are); puts get sequence numbers after the last.
// A shard with an EndingSequence is closed: it takes no puts, and its
// readers learn of its children (the shards naming it as a parent).
func (s *Server) Add(st *Stream) {
	for _, sh := range st.Shards {
		if n := len(sh.Records); n > 0 {
			sh.lastSeq = sh.Records[n-1].SequenceNumber
		}
		sh.json = make([][]byte, len(sh.Records))
		sh.cbor = make([][]byte, len(sh.Records))
		sh.size = make([]int, len(sh.Records))
		for j := range sh.Records {
			r := &sh.Records[j]
			sh.json[j] = encodeRecordJSON(r)
			sh.cbor[j] = encodeRecordCBOR(r)
			sh.size[j] = len(r.Data) + len(r.PartitionKey)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(st)
}

func (s *Server) addLocked(st *Stream) {
	if st.Region == "" {
		st.Region = "us-east-1"
	}
	st.arn = fmt.Sprintf("arn:aws:kinesis:%s:%s:stream/%s", st.Region, AccountID, st.Name)
	st.index = make(map[string]int, len(st.Shards))
	for i, sh := range st.Shards {
		st.index[sh.ID] = i
		sh.lo, sh.hi = parseRange(sh.StartingHashKey, sh.EndingHashKey)
		if sh.lastSeq == "" {
			sh.lastSeq = sh.StartingSequence
		}
		sh.ended = sh.EndingSequence != ""
	}
	st.linkChildren()
	if old := s.streams[st.Name]; old != nil {
		s.dropLocked(old)
	}
	s.streams[st.Name] = st
	s.byARN[st.arn] = st
}

// dropLocked removes a stream, its consumers and their subscriptions; the
// caller holds s.mu.
func (s *Server) dropLocked(st *Stream) {
	delete(s.byARN, st.arn)
	delete(s.streams, st.Name)
	for arn, c := range s.consumers {
		if c.stream == st {
			delete(s.consumers, arn)
			s.subs.endConsumer(arn, errorf("ResourceNotFoundException", "Consumer %s not found.", arn))
		}
	}
}

// Calls returns how many requests each operation got.
func (s *Server) Calls() map[string]int64 { return counts(&s.calls) }

// Protocols returns how many requests each operation got in each HTTP
// version, keyed "GetRecords HTTP/2.0", "SubscribeToShard HTTP/1.1", …
func (s *Server) Protocols() map[string]int64 { return counts(&s.protos) }

func counts(m *sync.Map) map[string]int64 {
	out := map[string]int64{}
	m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

func (s *Server) count(op, proto string) {
	add(&s.calls, op)
	add(&s.protos, op+" "+proto)
}

func add(m *sync.Map, key string) {
	v, ok := m.Load(key)
	if !ok {
		v, _ = m.LoadOrStore(key, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// apiError is an error answer.
type apiError struct {
	Type, Message string
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

func errorf(typ, format string, args ...any) *apiError {
	return &apiError{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// request holds the fields of every operation served; both protocols
// decode into it (fxamacker/cbor reads the json tags).
type request struct {
	StreamName             string `json:"StreamName,omitempty"`
	StreamARN              string `json:"StreamARN,omitempty"`
	ShardID                string `json:"ShardId,omitempty"`
	ShardIteratorType      string `json:"ShardIteratorType,omitempty"`
	StartingSequenceNumber string `json:"StartingSequenceNumber,omitempty"`
	Timestamp              any    `json:"Timestamp,omitempty"`
	ShardIterator          string `json:"ShardIterator,omitempty"`
	Limit                  *int64 `json:"Limit,omitempty"`
	NextToken              string `json:"NextToken,omitempty"`
	// PutRecord (one entry) and PutRecords (Records).
	putEntry
	Records []putEntry `json:"Records,omitempty"`
	// CreateStream.
	ShardCount *int64 `json:"ShardCount,omitempty"`
	// Consumers and SubscribeToShard.
	ConsumerName     string            `json:"ConsumerName,omitempty"`
	ConsumerARN      string            `json:"ConsumerARN,omitempty"`
	StartingPosition *startingPosition `json:"StartingPosition,omitempty"`
	// SplitShard and MergeShards.
	ShardToSplit         string `json:"ShardToSplit,omitempty"`
	NewStartingHashKey   string `json:"NewStartingHashKey,omitempty"`
	ShardToMerge         string `json:"ShardToMerge,omitempty"`
	AdjacentShardToMerge string `json:"AdjacentShardToMerge,omitempty"`
}

// putEntry is one record to put: Data is base64 in JSON (encoding/json
// decodes it into bytes), a byte string in CBOR.
type putEntry struct {
	Data            []byte `json:"Data,omitempty"`
	PartitionKey    string `json:"PartitionKey,omitempty"`
	ExplicitHashKey string `json:"ExplicitHashKey,omitempty"`
}

var cborDec = func() cbor.DecMode {
	m, err := cbor.DecOptions{DefaultMapType: nil}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// ServeHTTP answers one Kinesis request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	isCBOR := strings.HasPrefix(ct, contentCBOR)
	if !isCBOR && !strings.HasPrefix(ct, contentJSON) {
		// Neither protocol: answer JSON, the SDKs' default.
		s.logf("fakekinesis: %s %s: unsupported Content-Type %q", r.Method, r.URL.Path, ct)
		s.writeError(w, false, errorf("UnknownOperationException", "unsupported Content-Type %q", ct))
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPfx)
	if !ok {
		s.logf("fakekinesis: request without a Kinesis X-Amz-Target: %q", r.Header.Get("X-Amz-Target"))
		s.writeError(w, isCBOR, errorf("UnknownOperationException", "X-Amz-Target %q", r.Header.Get("X-Amz-Target")))
		return
	}
	s.count(op, r.Proto)
	if op == "GetRecords" || op == "SubscribeToShard" {
		if f := s.onRead.Load(); f != nil {
			(*f)()
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.writeError(w, isCBOR, errorf("SerializationException", "read body: %v", err))
		return
	}
	var req request
	if len(bytes.TrimSpace(body)) > 0 {
		if isCBOR {
			err = cborDec.Unmarshal(body, &req)
		} else {
			err = json.Unmarshal(body, &req)
		}
		if err != nil {
			s.logf("fakekinesis: %s: malformed request: %v", op, err)
			s.writeError(w, isCBOR, errorf("SerializationException", "decode request: %v", err))
			return
		}
	}
	if op == "SubscribeToShard" {
		s.subscribe(w, r, &req, isCBOR)
		return
	}
	var out []byte
	var aerr *apiError
	switch op {
	case "RegisterStreamConsumer", "DescribeStreamConsumer", "ListStreamConsumers", "DeregisterStreamConsumer":
		out, aerr = s.consumerOp(op, &req, isCBOR)
	case "SplitShard", "MergeShards":
		out, aerr = s.reshardOp(op, &req, isCBOR)
	case "GetRecords":
		out, aerr = s.getRecords(&req, isCBOR)
	case "GetShardIterator":
		aerr = s.withStream(&req, func(st *Stream) *apiError {
			it, err := s.iterator(st, &req)
			if err != nil {
				return err
			}
			out = encode(isCBOR, map[string]any{"ShardIterator": it})
			return nil
		})
	case "ListShards":
		aerr = s.listShards(&req, func(st *Stream) *apiError {
			out = encode(isCBOR, map[string]any{"Shards": st.shardList(isCBOR)})
			return nil
		})
	case "DescribeStream":
		aerr = s.withStream(&req, func(st *Stream) *apiError {
			out = encode(isCBOR, map[string]any{"StreamDescription": map[string]any{
				"StreamName": st.Name, "StreamARN": st.arn, "StreamStatus": "ACTIVE",
				"StreamModeDetails": map[string]any{"StreamMode": "PROVISIONED"},
				"Shards":            st.shardList(isCBOR), "HasMoreShards": false,
				"RetentionPeriodHours":    24,
				"StreamCreationTimestamp": timestamp(isCBOR, st.Created),
				"EnhancedMonitoring":      []any{map[string]any{"ShardLevelMetrics": []any{}}},
				"EncryptionType":          "NONE",
			}})
			return nil
		})
	case "DescribeStreamSummary":
		aerr = s.withStream(&req, func(st *Stream) *apiError {
			st.mu.RLock()
			open := 0
			for _, sh := range st.Shards {
				if !sh.ended {
					open++
				}
			}
			st.mu.RUnlock()
			out = encode(isCBOR, map[string]any{"StreamDescriptionSummary": map[string]any{
				"StreamName": st.Name, "StreamARN": st.arn, "StreamStatus": "ACTIVE",
				"StreamModeDetails":       map[string]any{"StreamMode": "PROVISIONED"},
				"RetentionPeriodHours":    24,
				"StreamCreationTimestamp": timestamp(isCBOR, st.Created),
				"EnhancedMonitoring":      []any{map[string]any{"ShardLevelMetrics": []any{}}},
				"EncryptionType":          "NONE",
				"OpenShardCount":          open,
				"ConsumerCount":           s.consumerCount(st),
			}})
			return nil
		})
	case "PutRecord":
		aerr = s.withStream(&req, func(st *Stream) *apiError {
			res, err := s.put(st, []putEntry{req.putEntry})
			if err != nil {
				return err
			}
			out = encode(isCBOR, map[string]any{"ShardId": res[0].shard, "SequenceNumber": res[0].seq, "EncryptionType": "NONE"})
			return nil
		})
	case "PutRecords":
		aerr = s.withStream(&req, func(st *Stream) *apiError {
			if len(req.Records) == 0 || len(req.Records) > 500 {
				return errorf("ValidationException", "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to 500 and greater than or equal to 1 (got %d)", len(req.Records))
			}
			res, err := s.put(st, req.Records)
			if err != nil {
				return err
			}
			recs := make([]any, len(res))
			for i, r := range res {
				recs[i] = map[string]any{"ShardId": r.shard, "SequenceNumber": r.seq}
			}
			out = encode(isCBOR, map[string]any{"FailedRecordCount": 0, "Records": recs, "EncryptionType": "NONE"})
			return nil
		})
	case "CreateStream":
		if req.ShardCount == nil || *req.ShardCount < 1 || *req.ShardCount > 10000 {
			aerr = errorf("InvalidArgumentException", "ShardCount must be between 1 and 10000")
			break
		}
		if req.StreamName == "" {
			aerr = errorf("InvalidArgumentException", "StreamName is required")
			break
		}
		if err := s.AddEmptyStream(req.StreamName, int(*req.ShardCount)); err != nil {
			aerr = errorf("ResourceInUseException", "%v", err)
			break
		}
		out = encode(isCBOR, map[string]any{})
	case "DeleteStream":
		aerr = s.withStream(&req, func(st *Stream) *apiError {
			s.Remove(st.Name)
			out = encode(isCBOR, map[string]any{})
			return nil
		})
	case "ListStreams":
		s.mu.RLock()
		names := make([]string, 0, len(s.streams))
		for n := range s.streams {
			names = append(names, n)
		}
		s.mu.RUnlock()
		sort.Strings(names)
		out = encode(isCBOR, map[string]any{"StreamNames": names, "HasMoreStreams": false})
	default:
		s.logf("fakekinesis: UNKNOWN OPERATION %s (%d bytes): answered 400; add it to the fake if a consumer needs it", op, len(body))
		aerr = errorf("UnknownOperationException", "operation %s is not served by fakekinesis", op)
	}
	if aerr != nil {
		s.writeError(w, isCBOR, aerr)
		return
	}
	if isCBOR {
		w.Header().Set("Content-Type", contentCBOR)
	} else {
		w.Header().Set("Content-Type", contentJSON)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

func (s *Server) writeError(w http.ResponseWriter, isCBOR bool, e *apiError) {
	body := encode(isCBOR, map[string]any{"__type": e.Type, "message": e.Message})
	if isCBOR {
		w.Header().Set("Content-Type", contentCBOR)
	} else {
		w.Header().Set("Content-Type", contentJSON)
	}
	w.Header().Set("x-amzn-ErrorType", e.Type)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusBadRequest)
	w.Write(body)
}

func (s *Server) stream(req *request) (*Stream, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if req.StreamARN != "" {
		if st := s.byARN[req.StreamARN]; st != nil {
			return st, nil
		}
		return nil, errorf("ResourceNotFoundException", "Stream %s not found", req.StreamARN)
	}
	if req.StreamName == "" {
		return nil, errorf("InvalidArgumentException", "StreamName or StreamARN is required")
	}
	if st := s.streams[req.StreamName]; st != nil {
		return st, nil
	}
	return nil, errorf("ResourceNotFoundException", "Stream %s under account %s not found.", req.StreamName, AccountID)
}

func (s *Server) withStream(req *request, f func(*Stream) *apiError) *apiError {
	st, err := s.stream(req)
	if err != nil {
		return err
	}
	return f(st)
}

// listShards answers with every shard on one page; a NextToken is the
// stream name (never handed out, but accepted).
func (s *Server) listShards(req *request, f func(*Stream) *apiError) *apiError {
	if req.NextToken != "" && req.StreamName == "" && req.StreamARN == "" {
		req.StreamName = req.NextToken
	}
	return s.withStream(req, f)
}

func (st *Stream) shardList(isCBOR bool) []any {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]any, 0, len(st.Shards))
	for _, sh := range st.Shards {
		m := map[string]any{
			"ShardId":      sh.ID,
			"HashKeyRange": map[string]any{"StartingHashKey": sh.StartingHashKey, "EndingHashKey": sh.EndingHashKey},
		}
		seq := map[string]any{"StartingSequenceNumber": sh.StartingSequence}
		if sh.EndingSequence != "" {
			seq["EndingSequenceNumber"] = sh.EndingSequence
		}
		m["SequenceNumberRange"] = seq
		if sh.ParentShardID != "" {
			m["ParentShardId"] = sh.ParentShardID
		}
		if sh.AdjacentParentShardID != "" {
			m["AdjacentParentShardId"] = sh.AdjacentParentShardID
		}
		out = append(out, m)
	}
	return out
}

// Iterators are "fk1." + base64url(stream name) + "." + shard index + "."
// + record index + "." + creation time (Unix milliseconds).
func (s *Server) makeIterator(st *Stream, shard, pos int) string {
	return "fk1." + base64.RawURLEncoding.EncodeToString([]byte(st.Name)) + "." + strconv.Itoa(shard) + "." + strconv.Itoa(pos) + "." + strconv.FormatInt(s.now().UnixMilli(), 10)
}

func (s *Server) parseIterator(it string) (st *Stream, shard, pos int, err *apiError) {
	bad := func() (*Stream, int, int, *apiError) {
		return nil, 0, 0, errorf("InvalidArgumentException", "Invalid ShardIterator %q", it)
	}
	parts := strings.Split(it, ".")
	if len(parts) != 5 || parts[0] != "fk1" {
		return bad()
	}
	name, e1 := base64.RawURLEncoding.DecodeString(parts[1])
	sh, e2 := strconv.Atoi(parts[2])
	p, e3 := strconv.Atoi(parts[3])
	made, e4 := strconv.ParseInt(parts[4], 10, 64)
	if e1 != nil || e2 != nil || e3 != nil || e4 != nil {
		return bad()
	}
	ttl := s.IteratorTTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	if age := s.now().Sub(time.UnixMilli(made)); age > ttl {
		return nil, 0, 0, errorf("ExpiredIteratorException", "Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			time.UnixMilli(made).UTC().Format(time.RFC1123), s.now().UTC().Format(time.RFC1123), ttl.Milliseconds())
	}
	s.mu.RLock()
	st = s.streams[string(name)]
	s.mu.RUnlock()
	if st == nil {
		return nil, 0, 0, errorf("ResourceNotFoundException", "Stream %s under account %s not found.", name, AccountID)
	}
	if shards := st.shardsNow(); sh < 0 || sh >= len(shards) || p < 0 || p > shards[sh].Len() {
		return bad()
	}
	return st, sh, p, nil
}

// seqLess compares decimal sequence numbers.
func seqLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func (s *Server) iterator(st *Stream, req *request) (string, *apiError) {
	sh, i, ok := st.shard(req.ShardID)
	if !ok {
		return "", noShard(st, req.ShardID)
	}
	pos, err := position(sh.view().recs, req.ShardIteratorType, req.StartingSequenceNumber, req.Timestamp)
	if err != nil {
		return "", err
	}
	return s.makeIterator(st, i, pos), nil
}

func noShard(st *Stream, id string) *apiError {
	return errorf("ResourceNotFoundException", "Shard %s in stream %s under account %s does not exist", id, st.Name, AccountID)
}

// position is where a reader starting at typ (a ShardIteratorType or a
// StartingPosition Type) begins in recs.
func position(recs []Record, typ, seq string, ts any) (int, *apiError) {
	n := len(recs)
	switch typ {
	case "TRIM_HORIZON":
		return 0, nil
	case "LATEST":
		return n, nil
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		if seq == "" || strings.Trim(seq, "0123456789") != "" {
			return 0, errorf("InvalidArgumentException", "StartingSequenceNumber %q: must be a decimal number", seq)
		}
		if typ == "AT_SEQUENCE_NUMBER" {
			return sort.Search(n, func(j int) bool { return !seqLess(recs[j].SequenceNumber, seq) }), nil
		}
		return sort.Search(n, func(j int) bool { return seqLess(seq, recs[j].SequenceNumber) }), nil
	case "AT_TIMESTAMP":
		t, ok := toTime(ts)
		if !ok {
			return 0, errorf("InvalidArgumentException", "AT_TIMESTAMP needs a Timestamp, got %T %v", ts, ts)
		}
		return sort.Search(n, func(j int) bool { return !recs[j].Arrival.Before(t) }), nil
	}
	return 0, errorf("InvalidArgumentException", "ShardIteratorType %q", typ)
}

// toTime reads a request Timestamp: epoch seconds in JSON, tag 1 (epoch
// seconds or, as AWS's CBOR sends it, milliseconds) in CBOR.
func toTime(v any) (time.Time, bool) {
	sec := func(f float64) time.Time {
		if f > 1e11 { // milliseconds
			f /= 1000
		}
		s, frac := math.Modf(f)
		return time.Unix(int64(s), int64(math.Round(frac*1e9)))
	}
	switch t := v.(type) {
	case float64:
		return sec(t), true
	case int64:
		return sec(float64(t)), true
	case uint64:
		return sec(float64(t)), true
	case time.Time:
		// fxamacker reads tag 1 as seconds; AWS's CBOR puts millis there.
		if t.Year() > 9999-1 || t.After(time.Unix(1e11, 0)) {
			return time.UnixMilli(t.Unix()), true
		}
		return t, true
	case cbor.Tag:
		return toTime(t.Content)
	case json.Number:
		f, err := t.Float64()
		return sec(f), err == nil
	}
	return time.Time{}, false
}

func (s *Server) getRecords(req *request, isCBOR bool) ([]byte, *apiError) {
	if req.ShardIterator == "" {
		return nil, errorf("InvalidArgumentException", "ShardIterator is required")
	}
	st, shi, pos, err := s.parseIterator(req.ShardIterator)
	if err != nil {
		return nil, err
	}
	limit := 10000
	if req.Limit != nil {
		if *req.Limit < 1 || *req.Limit > 10000 {
			return nil, errorf("InvalidArgumentException", "1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000 and greater than or equal to 1", *req.Limit)
		}
		limit = int(*req.Limit)
	}
	v := st.shardsNow()[shi].view()
	n := len(v.recs)
	end, size := pos, 0
	for end < n && end-pos < limit {
		if end > pos && size+v.size[end] > maxAnswer {
			break
		}
		size += v.size[end]
		end++
	}
	// At the end of a closed shard: no NextShardIterator, and the children.
	var next string
	var children []childShard
	if v.ended && end == n {
		children = v.children
	} else {
		next = s.makeIterator(st, shi, end)
	}
	return v.appendAnswer(nil, isCBOR, pos, end, "NextShardIterator", next, children), nil
}

// appendAnswer appends a GetRecords answer or a SubscribeToShardEvent: the
// records [pos, end), then next under key (null if ""), MillisBehindLatest
// and, if the shard is closed and end its end, ChildShards.
func (v view) appendAnswer(b []byte, isCBOR bool, pos, end int, key, next string, children []childShard) []byte {
	size := 0
	for j := pos; j < end; j++ {
		if isCBOR {
			size += len(v.cbor[j])
		} else {
			size += len(v.json[j]) + 1
		}
	}
	behind := v.behind(end)
	var kids []byte
	if children != nil {
		kids = encodeAny(isCBOR, childShardList(children))
	}
	b = slices.Grow(b, 128+size+len(kids))
	if isCBOR {
		fields := uint64(3)
		if kids != nil {
			fields++
		}
		b = cborHead(b, 5, fields) // map
		b = cborText(b, "Records")
		b = cborHead(b, 4, uint64(end-pos))
		for j := pos; j < end; j++ {
			b = append(b, v.cbor[j]...)
		}
		b = cborText(b, key)
		if next == "" {
			b = append(b, 0xf6) // null
		} else {
			b = cborText(b, next)
		}
		b = cborText(b, "MillisBehindLatest")
		b = cborHead(b, 0, uint64(behind))
		if kids != nil {
			b = cborText(b, "ChildShards")
			b = append(b, kids...)
		}
		return b
	}
	b = append(b, `{"Records":[`...)
	for j := pos; j < end; j++ {
		if j > pos {
			b = append(b, ',')
		}
		b = append(b, v.json[j]...)
	}
	b = append(b, `],"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	if next == "" {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendQuote(b, next)
	}
	b = append(b, `,"MillisBehindLatest":`...)
	b = strconv.AppendInt(b, behind, 10)
	if kids != nil {
		b = append(b, `,"ChildShards":`...)
		b = append(b, kids...)
	}
	return append(b, '}')
}

func childShardList(children []childShard) []any {
	out := make([]any, len(children))
	for i, c := range children {
		out[i] = map[string]any{
			"ShardId":      c.ID,
			"ParentShards": c.Parents,
			"HashKeyRange": map[string]any{"StartingHashKey": c.Start, "EndingHashKey": c.End},
		}
	}
	return out
}

// encodeRecordJSON: {"SequenceNumber":..,"ApproximateArrivalTimestamp":1.234,"Data":"base64","PartitionKey":..}
func encodeRecordJSON(r *Record) []byte {
	b := make([]byte, 0, 128+base64.StdEncoding.EncodedLen(len(r.Data)))
	b = append(b, `{"SequenceNumber":`...)
	b = appendJSONString(b, r.SequenceNumber)
	b = append(b, `,"ApproximateArrivalTimestamp":`...)
	b = appendEpochSeconds(b, r.Arrival)
	b = append(b, `,"Data":"`...)
	b = base64.StdEncoding.AppendEncode(b, r.Data)
	b = append(b, `","PartitionKey":`...)
	b = appendJSONString(b, r.PartitionKey)
	b = append(b, '}')
	return b
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// appendEpochSeconds writes seconds.millis, e.g. 1796051652.086.
func appendEpochSeconds(b []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	b = strconv.AppendInt(b, ms/1000, 10)
	b = append(b, '.')
	f := ms % 1000
	return append(b, byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}

// encodeRecordCBOR: map(4) with the data as a byte string and the arrival
// as tag 1 around epoch milliseconds.
func encodeRecordCBOR(r *Record) []byte {
	b := make([]byte, 0, 96+len(r.Data))
	b = append(b, 0xa4)
	b = cborText(b, "SequenceNumber")
	b = cborText(b, r.SequenceNumber)
	b = cborText(b, "ApproximateArrivalTimestamp")
	b = append(b, 0xc1) // tag 1
	b = cborHead(b, 0, uint64(r.Arrival.UnixMilli()))
	b = cborText(b, "Data")
	b = cborHead(b, 2, uint64(len(r.Data)))
	b = append(b, r.Data...)
	b = cborText(b, "PartitionKey")
	b = cborText(b, r.PartitionKey)
	return b
}

// cborHead appends a CBOR head of major type major with argument n.
func cborHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}

func cborText(b []byte, s string) []byte {
	return append(cborHead(b, 3, uint64(len(s))), s...)
}

// timestamp is a time in the protocol's form for encode: epoch seconds
// (JSON) or tag 1 around epoch milliseconds (CBOR).
func timestamp(isCBOR bool, t time.Time) any {
	if isCBOR {
		return cbor.Tag{Number: 1, Content: t.UnixMilli()}
	}
	return json.RawMessage(appendEpochSeconds(nil, t))
}

var cborEnc = func() cbor.EncMode {
	m, err := cbor.EncOptions{Sort: cbor.SortCanonical}.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// encode writes a small answer (not GetRecords) in the protocol.
func encode(isCBOR bool, v map[string]any) []byte { return encodeAny(isCBOR, v) }

// encodeAny writes v, our own maps and lists, in the protocol.
func encodeAny(isCBOR bool, v any) []byte {
	var b []byte
	var err error
	if isCBOR {
		b, err = cborEnc.Marshal(v)
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		panic(fmt.Sprintf("fakekinesis: encode answer: %v", err)) // only our own maps: a bug
	}
	return b
}
