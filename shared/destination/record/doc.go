// Package record writes the JSON document an on-failure destination
// receives for one batch given up, and splits it into messages that each
// fit a service's size limit. It does no I/O; the backends under
// shared/destination send what it writes.
//
// The document is the invocation record Lambda's Kinesis event source
// mapping writes to an on-failure destination, field for field, plus
// Shardline's "records" (and, when split, "part" and "parts"):
//
//	{
//	  "requestContext": {
//	    "requestId": "<the last call's request id>",
//	    "functionArn": "<the target function as -target-function names it>",
//	    "condition": "RetryAttemptsExhausted" | "RecordAgeExceeded" | "RecordTooLarge",
//	    "approximateInvokeCount": <calls made>
//	  },
//	  "responseContext": {            // null when no call was made
//	    "statusCode": 200,
//	    "executedVersion": "$LATEST",
//	    "functionError": "Unhandled" | "Handled"   // absent unless the last call failed so
//	  },
//	  "version": "1.0",
//	  "timestamp": "2026-03-04T05:07:00.009Z",    // when the batch was given up
//	  "KinesisBatchInfo": {
//	    "shardId": "shardId-000000000003",
//	    "startSequenceNumber": "<first record's>",
//	    "endSequenceNumber": "<last record's>",
//	    "approximateArrivalOfFirstRecord": "2026-03-04T05:06:07.125Z",
//	    "approximateArrivalOfLastRecord": "2026-03-04T05:06:08.125Z",
//	    "batchSize": <user records in the batch>,
//	    "streamArn": "arn:aws:kinesis:..."
//	  },
//	  "payload": "<the event, as a JSON string>", // S3 only, as Lambda writes it
//	  "part": 2, "parts": 3,                      // only when split
//	  "records": [
//	    {
//	      "sequenceNumber": "4966...",
//	      "subSequenceNumber": 0,                 // the user record's index in its KPL aggregate
//	      "partitionKey": "order-3",
//	      "explicitHashKey": "1701...",           // only when set
//	      "approximateArrivalTimestamp": "2026-03-04T05:06:08.125Z",
//	      "data": "<base64>",
//	      "dataOffset": 0, "dataSize": 1048576    // only in a chunk of a record too large for a message
//	    }
//	  ]
//	}
//
// Times are UTC with milliseconds, as Lambda writes them. Shardline does
// not learn the version a call ran: executedVersion is "$LATEST" (what
// Lambda writes for an unqualified function). testdata/ holds whole
// examples.
//
// Split keeps a record that fits the limit whole, in one message (no
// part numbers). Otherwise every message carries the same requestContext,
// responseContext, version, timestamp and KinesisBatchInfo (the whole
// batch's), "part" n of "parts" (1-based), and the next records in order,
// as many as fit; a record too large for a message of its own goes in
// chunks of its data, one chunk per message, each with the record's
// other fields, dataOffset (where the chunk starts in the record's data)
// and dataSize (the record's whole data length). Reading back: take the
// messages of one Send (same KinesisBatchInfo and timestamp), order them
// by part, concatenate their records, and join chunks of one record
// (same sequenceNumber and subSequenceNumber) by dataOffset. A Send
// repeated after a failure writes all parts again under a new timestamp.
package record
