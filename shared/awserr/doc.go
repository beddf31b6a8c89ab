// Package awserr turns the AWS SDK's errors into one line a user can act
// on: an endpoint that does not answer, or answers as another service;
// missing credentials; a missing resource; denied access. The coordinator
// logs with it and the poller's commands print it. It keeps the original
// error underneath (errors.Is and errors.As still see it).
package awserr
