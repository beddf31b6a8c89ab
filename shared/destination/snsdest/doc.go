// Package snsdest is the on-failure destination of an SNS topic, named by
// its ARN (arn:aws:sns:us-east-1:123456789012:failed).
//
// Each batch given up is published as the on-failure record of package
// record: one message when it fits record.MaxMessageBytes (256 KiB, SNS's
// limit), else several in order, each with the batch's fields, "part" n
// of "parts" and a share of the records (see record.Split). Send returns
// once SNS has accepted every message; the first that fails ends it with
// an error naming the topic and the part, and the shard parks.
//
// A FIFO topic (.fifo) gets MessageGroupId = the shard id and a
// MessageDeduplicationId per part and Send (record.DeduplicationID).
// The call goes to the topic's region through the client's endpoint
// (AWS_ENDPOINT_URL_SNS when set).
package snsdest
