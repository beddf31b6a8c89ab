// Package lambdaemu runs built Lambda `bootstrap` binaries (the
// provided.al2023 runtime, built with -tags lambda.norpc) the way AWS Lambda
// runs them, behind the Lambda Invoke API, so that tests can call them with
// the real aws-sdk-go-v2 Lambda client.
//
// Two hosts run the functions in the tests, each for what it does well:
//
//   - AWS's runtime interface emulator (standin.StartRIE, the pinned
//     aws-lambda-rie that runs inside `sam local invoke`): the real Runtime
//     API, init, deadlines and the environment a function gets, and the
//     emulator's own answers, which the poller must read as `sam local`
//     gives them (a returned error as 200 without X-Amz-Function-Error, a
//     crash as 502, a timeout as plain text). One invocation at a time per
//     process, and one name, "function". Used by functions/*/rie_test.go,
//     poller/rie_target_test.go and `standins invoke` / `start-lambda`.
//   - this package, for what the emulator cannot do: concurrent
//     invocations of one function in one host (a sandbox per invocation,
//     cold and warm starts), throttling (429), payload limits (413, 400),
//     Lambda's exact error answers and headers (X-Amz-Function-Error,
//     X-Amzn-ErrorType, Sandbox.Timedout, Runtime.ExitError), Event and
//     DryRun invocations, function names, partial and full ARNs, and
//     Invocations/Processes for tests to inspect.
//
// [Start] serves the Invoke API on one listener on 127.0.0.1
// ([Server.Endpoint], for the SDK's BaseEndpoint):
//
//	POST /2015-03-31/functions/{FunctionName}/invocations
//
// with X-Amz-Invocation-Type RequestResponse (the default), Event (202, run
// in the background) or DryRun (204). FunctionName is a name, name:qualifier,
// a partial ARN (123456789012:function:name) or a full ARN; the only
// qualifier is $LATEST. Answers are Lambda's: 200 with the function's
// payload, or 200 with the error payload and X-Amz-Function-Error: Unhandled;
// 404 ResourceNotFoundException, 429 TooManyRequestsException, 413
// RequestTooLargeException, 400 InvalidRequestContentException (the payload
// is not JSON), each as JSON with the X-Amzn-ErrorType header.
//
// Every runtime process (a sandbox) gets its own Runtime API listener,
// given to it as AWS_LAMBDA_RUNTIME_API, so the server always knows which
// process asks: GET /2018-06-01/runtime/invocation/next, POST
// .../invocation/{id}/response, POST .../invocation/{id}/error, POST
// /2018-06-01/runtime/init/error, plus the two Extensions API calls that
// aws-lambda-go's WithEnableSIGTERM makes. Status codes and error bodies are
// those of Lambda's runtime (202 {"status":"OK"}, 400 InvalidRequestID, 403
// InvalidStateTransition, 413 RequestEntityTooLarge).
//
// The process model is Lambda's: a sandbox handles one invocation at a time;
// an invocation goes to an idle sandbox (a warm start) or starts a new one
// (a cold start) while fewer than Function.MaxConcurrency exist, and is
// throttled (429, reason ReservedFunctionConcurrentInvocationLimitExceeded)
// beyond; Event invocations wait for a free sandbox instead. A sandbox is
// idle again as soon as its runtime has posted its answer. Each
// invocation's deadline is the moment its runtime receives the event plus
// Function.Timeout; a function still running then is killed (SIGKILL to its
// process group) and, once the process is gone, the invoker gets what
// Lambda answers today:
//
//	{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: <id> Error: Task timed out after 3.00 seconds"}
//
// while the log (Function.Stdout) gets Lambda's classic line
// "2006-01-02T15:04:05.000Z <id> Task timed out after 3.00 seconds". A
// process that exits during an invocation fails it with
// {"errorType":"Runtime.ExitError","errorMessage":"RequestId: <id> Error:
// Runtime exited with error: exit status 2"} ("signal: killed", or "Runtime
// exited without providing a reason" for status 0); one that cannot be
// executed with Runtime.InvalidEntrypoint. A killed or exited sandbox is
// never reused; the next invocation starts a new one. An event assigned to
// an idle sandbox that exits before taking it (aws-lambda-go exits after
// reporting a panic) goes to another sandbox. The init phase is limited to
// 10 s, as on Lambda.
//
// Function ARNs are arn:aws:lambda:<region>:123456789012:function:<name>;
// the region and account of an ARN given to Invoke are not checked, only
// the name and qualifier.
//
// A process sees only the environment Lambda gives: Function.Env (where a
// test gives a function its settings, as template.yaml's Environment
// Variables do: Shardline's are SHARDLINE_<FLAG>, e.g.
// SHARDLINE_STREAM_NAME=words), then
// AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_NAME,
// AWS_LAMBDA_FUNCTION_VERSION ($LATEST), AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
// AWS_LAMBDA_LOG_GROUP_NAME, AWS_LAMBDA_LOG_STREAM_NAME (one per process),
// AWS_LAMBDA_INITIALIZATION_TYPE (on-demand), _HANDLER (bootstrap),
// AWS_REGION and AWS_DEFAULT_REGION (from Function.Env, else us-east-1),
// LAMBDA_TASK_ROOT and LAMBDA_RUNTIME_DIR (the directory of the binary,
// also its working directory), TZ (:UTC), LANG and PATH. Lambda always
// gives a function credentials, so AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
// and AWS_SESSION_TOKEN are set to dummies unless Function.Env has an access
// key (DynamoDB Local keeps tables per access key: pass the tests' own). No
// variable is inherited from the test process, and Start refuses an Env
// that sets a variable Lambda reserves. AWS_LAMBDA_MAX_CONCURRENCY (Lambda
// Managed Instances) is neither set nor accepted, so aws-lambda-go runs one
// invocation at a time per process, as on Lambda.
//
// When Function.Stdout is set, the server writes Lambda's START, END and
// REPORT lines there, and the "Task timed out" line on a timeout, around the
// process's own output.
//
// Not emulated: versions and aliases, async retries and destinations, the
// Logs, Telemetry and response-streaming APIs, X-Amz-Log-Type: Tail, memory
// limits. [Server.Close] stops every process by PID: SIGTERM to its process
// group, SIGKILL 500 ms later (aws-lambda-go's WithEnableSIGTERM contract).
//
// Tests read what happened with [Server.Invocations] and
// [Server.Processes]; [Server.WaitIdle] waits until no invocation is in
// flight or queued.
package lambdaemu
