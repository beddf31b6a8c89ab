package fetch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A reader of AWS's event stream encoding (application/vnd.amazon.eventstream),
// the framing of SubscribeToShard's answer: each message is
//
//	total length   uint32, big-endian: the whole message, these 4 bytes included
//	headers length uint32
//	prelude CRC    uint32: CRC-32 (IEEE) of the 8 bytes before
//	headers        name length (1 byte), name, value type (1 byte), value
//	payload        total - headers - 16 bytes
//	message CRC    uint32: CRC-32 of everything before it
//
// Only what SubscribeToShard sends is kept: the string headers
// :message-type, :event-type, :exception-type, :error-code,
// :error-message and :content-type (other headers of every type are read
// and skipped). One buffer is reused from message to message: a payload is
// valid until the next read, unless the buffer is handed over (buf = nil).

// maxMessage bounds one message: AWS's event stream messages are at most
// 16 MB (a SubscribeToShardEvent carries at most about 10 MB of records,
// base64 in JSON).
const maxMessage = 24 << 20

// preludeLen is the prelude's length with its CRC; a message is at least
// this and the message CRC.
const preludeLen = 12

// message is one event stream message.
type message struct {
	messageType   string // "event", "exception" or "error"
	eventType     string
	exceptionType string
	errorCode     string
	errorMessage  string
	contentType   string
	payload       []byte
}

// messageReader reads messages from r, one buffer for all (up to
// keepBuffer: a larger one is let go after its message).
type messageReader struct {
	r   io.Reader
	buf []byte
	// reserve, when set, is called with a message's length before the
	// rest of it is read (the worker's Budget).
	reserve func(total int) error
}

// keepBuffer is the largest message buffer a subscription keeps from one
// message to the next: a shard's events are often small, and a worker
// holding many shards should not hold a large buffer for each.
const keepBuffer = 64 << 10

// next reads the next message. At the end of the stream between messages
// it returns io.EOF; inside one, io.ErrUnexpectedEOF.
func (m *messageReader) next() (message, error) {
	var prelude [preludeLen]byte
	if _, err := io.ReadFull(m.r, prelude[:]); err != nil {
		return message{}, err
	}
	total := binary.BigEndian.Uint32(prelude[0:4])
	headers := binary.BigEndian.Uint32(prelude[4:8])
	if crc := crc32.ChecksumIEEE(prelude[:8]); crc != binary.BigEndian.Uint32(prelude[8:12]) {
		return message{}, fmt.Errorf("event stream: prelude checksum %08x, want %08x", crc, binary.BigEndian.Uint32(prelude[8:12]))
	}
	if total > maxMessage || total < preludeLen+4 || uint64(headers) > uint64(total)-preludeLen-4 {
		return message{}, fmt.Errorf("event stream: a message of %d bytes with %d of headers (allowed: %d–%d bytes, headers within)",
			total, headers, preludeLen+4, maxMessage)
	}
	if m.reserve != nil {
		if err := m.reserve(int(total)); err != nil {
			return message{}, err
		}
	}
	rest := int(total) - preludeLen
	if cap(m.buf) < rest {
		m.buf = make([]byte, rest)
	}
	b := m.buf[:rest]
	if _, err := io.ReadFull(m.r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return message{}, err
	}
	crc := crc32.Update(crc32.ChecksumIEEE(prelude[:]), crc32.IEEETable, b[:rest-4])
	if want := binary.BigEndian.Uint32(b[rest-4:]); crc != want {
		return message{}, fmt.Errorf("event stream: message checksum %08x, want %08x", crc, want)
	}
	msg := message{payload: b[headers : rest-4]}
	if err := readHeaders(b[:headers], &msg); err != nil {
		return message{}, err
	}
	return msg, nil
}

// errHeaders is a header block that does not parse.
var errHeaders = errors.New("event stream: malformed headers")

// readHeaders reads h into msg's fields.
func readHeaders(h []byte, msg *message) error {
	for len(h) > 0 {
		n := int(h[0])
		if n == 0 || len(h) < 1+n+1 {
			return errHeaders
		}
		name := h[1 : 1+n]
		typ := h[1+n]
		h = h[1+n+1:]
		var size int
		switch typ {
		case 0, 1: // true, false
		case 2: // byte
			size = 1
		case 3: // int16
			size = 2
		case 4: // int32
			size = 4
		case 5, 8: // int64, timestamp
			size = 8
		case 9: // uuid
			size = 16
		case 6, 7: // bytes, string: uint16 length first
			if len(h) < 2 {
				return errHeaders
			}
			size = 2 + int(binary.BigEndian.Uint16(h))
		default:
			return fmt.Errorf("event stream: header %q of unknown type %d", name, typ)
		}
		if len(h) < size {
			return errHeaders
		}
		if typ == 7 {
			v := string(h[2:size])
			switch string(name) {
			case ":message-type":
				msg.messageType = v
			case ":event-type":
				msg.eventType = v
			case ":exception-type":
				msg.exceptionType = v
			case ":error-code":
				msg.errorCode = v
			case ":error-message":
				msg.errorMessage = v
			case ":content-type":
				msg.contentType = v
			}
		}
		h = h[size:]
	}
	return nil
}
