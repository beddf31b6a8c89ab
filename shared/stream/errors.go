package stream

import "errors"

// Errors a handler (or the adapter in front of it, such as the Lambda
// Invoke client) wraps so that the dispatcher can tell why a call failed.
// Test with errors.Is.
var (
	// ErrThrottled: the handler's host refused the call for now (Lambda's
	// 429 TooManyRequestsException). The dispatcher retries it with
	// back-off and does not count it as an attempt, as Lambda's event
	// source mapping does.
	ErrThrottled = errors.New("throttled")
	// ErrTooLarge: the batch is too large for the handler's host (Lambda's
	// 413 RequestEntityTooLargeException, 6 MB). The dispatcher splits the
	// batch; a single record that is still too large is given up with
	// that reason.
	ErrTooLarge = errors.New("request too large")
	// ErrHandlerTimeout: the call outlived its deadline (-handler-timeout,
	// or -function-timeout for an invoked function). It counts as a failed
	// attempt, as a function timeout does on Lambda.
	ErrHandlerTimeout = errors.New("handler timed out")
	// ErrNotInvoked: the call never reached the handler — the Lambda
	// Invoke API answered with an error of its own (a 5xx service error,
	// 409 ResourceConflict, 404 a function that does not exist, 403 no
	// permission) or the request could not be sent (connection refused).
	// As on Lambda, the dispatcher retries it with back-off until the
	// records expire or pass -max-record-age: it uses no retry attempt
	// and never bisects. A request that was sent and got no answer (a
	// timeout, a reset connection) is not this: the function may have
	// run, so it counts as an attempt.
	ErrNotInvoked = errors.New("function not invoked")
)
