// Package s3dest is the on-failure destination s3://bucket/prefix: each
// batch given up is one object, written with a single PutObject.
//
// The object is the on-failure record of package record with Lambda's S3
// field "payload" (the invocation event the function was given, with
// every record, as an escaped JSON string, as Lambda writes it) and
// Shardline's "records" (the same records with their sub-sequence numbers
// and explicit hash keys), never split.
//
// Keys follow Lambda's layout with the application name in place of the
// event source mapping's UUID:
//
//	<prefix>/<app>/<shardId>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<random UUID>
//
// in UTC, at the time the batch was given up. Lambda's own keys begin
// aws/lambda/<ESM UUID>/: s3://bucket/aws/lambda gives the same layout.
// Without a prefix the key begins with the app name.
//
// The bucket is addressed in the client's region, through the client's
// endpoint (AWS_ENDPOINT_URL_S3 when set, with path-style addressing: see
// package awsconf).
package s3dest
