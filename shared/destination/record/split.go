package record

import (
	"errors"
	"fmt"
)

// MaxMessageBytes is the size limit Shardline keeps every SQS and SNS
// message under: 256 KiB, SNS's limit and SQS's before it raised its own
// to 1 MiB (a queue's MaximumMessageSize may still be lower: such a queue
// refuses the message and the shard parks, naming it).
const MaxMessageBytes = 256 * 1024

// ErrTooSmall means a message limit leaves no room for any record data.
var ErrTooSmall = errors.New("message size limit too small for the record's fields")

// placeholder stands for Part and Parts while sizes are measured: no
// record is split into more parts than it has digits for.
const placeholder = 999999

// Split writes r as messages of at most limit bytes each: one message
// holding r whole when it fits, else several, each with r's fields but
// Payload, Part n of Parts, and a share of the records in order. A record
// too large for a message of its own goes in chunks of its data (see
// Item), each in a message of its own. Nothing is left out: the messages'
// records, chunks joined, are r's records.
func Split(r Record, limit int) ([][]byte, error) {
	whole, err := Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(whole) <= limit {
		return [][]byte{whole}, nil
	}
	head := r
	head.Payload = ""
	head.Part, head.Parts = placeholder, placeholder
	head.Records = nil
	empty, err := Marshal(head)
	if err != nil {
		return nil, err
	}
	base := len(empty) // with "records":[]

	var groups [][]Item
	var cur []Item
	size := base
	flush := func() {
		if len(cur) > 0 {
			groups = append(groups, cur)
			cur, size = nil, base
		}
	}
	for _, it := range r.Records {
		b, err := encode(it)
		if err != nil {
			return nil, err
		}
		n := len(b)
		if len(cur) > 0 {
			n++ // the comma
		}
		if size+n <= limit {
			cur = append(cur, it)
			size += n
			continue
		}
		flush()
		if base+len(b) <= limit {
			cur = append(cur, it)
			size += len(b)
			continue
		}
		chunks, err := chunk(it, limit-base)
		if err != nil {
			return nil, err
		}
		for _, c := range chunks {
			groups = append(groups, []Item{c})
		}
	}
	flush()
	if len(groups) > placeholder {
		return nil, fmt.Errorf("a record split into %d messages: more than %d", len(groups), placeholder)
	}
	out := make([][]byte, len(groups))
	for i, g := range groups {
		m := head
		m.Part, m.Parts, m.Records = i+1, len(groups), g
		b, err := Marshal(m)
		if err != nil {
			return nil, err
		}
		if len(b) > limit { // cannot happen: sizes were measured with wider numbers
			return nil, fmt.Errorf("part %d of %d is %d bytes, over the %d byte limit", i+1, len(groups), len(b), limit)
		}
		out[i] = b
	}
	return out, nil
}

// chunk cuts the data of it into items whose JSON is at most room bytes
// each.
func chunk(it Item, room int) ([]Item, error) {
	total := int64(len(it.Data))
	probe := it
	probe.Data = []byte{}
	wide := int64(1) << 62 // as many digits as any offset or size
	probe.DataOffset, probe.DataSize = &wide, &wide
	b, err := encode(probe)
	if err != nil {
		return nil, err
	}
	per := (room - len(b)) / 4 * 3 // raw bytes whose base64 fits
	if per <= 0 || total == 0 {
		return nil, fmt.Errorf("record %s/%d: %w", it.SequenceNumber, it.SubSequenceNumber, ErrTooSmall)
	}
	var out []Item
	for off := int64(0); off < total; off += int64(per) {
		end := min(off+int64(per), total)
		c := it
		c.Data = it.Data[off:end]
		c.DataOffset, c.DataSize = new(off), new(total)
		out = append(out, c)
	}
	return out, nil
}
