// Package record writes the JSON document an on-failure destination
// receives for one batch given up: the invocation record Lambda's Kinesis
// event source mapping writes (requestContext, responseContext, version,
// timestamp, KinesisBatchInfo, and for S3 the payload), plus Shardline's
// own records array, and splits it into messages that each fit a
// service's size limit. It does no I/O; the backends under
// shared/destination send what it writes.
package record
