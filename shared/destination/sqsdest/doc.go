// Package sqsdest is the on-failure destination of an SQS queue, named by
// its URL (https://sqs.us-east-1.amazonaws.com/123456789012/failed) or its
// ARN (arn:aws:sqs:us-east-1:123456789012:failed).
//
// Each batch given up is sent as the on-failure record of package record:
// one message when it fits record.MaxMessageBytes (256 KiB), else several
// messages in order, each with the batch's fields, "part" n of "parts" and
// a share of the records (see record.Split). Send returns once SQS has
// accepted every message; the first that fails ends it with an error
// naming the queue and the part, and the shard parks (the parts already
// sent stay; the next Send sends all parts again under a new timestamp).
//
// A FIFO queue (.fifo) gets MessageGroupId = the shard id, so one shard's
// records and parts stay in order, and a MessageDeduplicationId per part
// and Send (record.DeduplicationID).
//
// A queue given by ARN is sent to at the URL the ARN names
// (https://sqs.<region>.amazonaws.com/<account>/<name>): no GetQueueUrl
// call, so the sender needs sqs:SendMessage alone, as Lambda's does. A
// call goes to the queue's region (from its ARN or its URL's host) through
// the client's endpoint (AWS_ENDPOINT_URL_SQS when set).
package sqsdest
