// Package awsconf builds the AWS clients Shardline uses from its settings:
// region, per-service endpoints (for local stand-ins) and per-service roles
// to assume (Spark's per-service credentials), with retry policies that
// suit each service.
package awsconf
