// Command fakekinesis serves the in-memory fake Kinesis
// (internal/fakekinesis) on a loopback port until interrupted, for
// consumers run by hand or by other benchmarks, enhanced fan-out included:
//
//	fakekinesis [-tls] [-ca-file F] [-addr 127.0.0.1:PORT] [-stream NAME:SHARDS]...
//	            [-subscription-length D] [-subscribe-window D] [-heartbeat D] [-consumer-activation D]
//
// It prints the endpoint and, with -tls (HTTPS with HTTP/2, as Kinesis
// serves SubscribeToShard), the CA file to pass to the AWS SDKs as
// AWS_CA_BUNDLE, as shell lines:
//
//	KINESIS_ENDPOINT=https://127.0.0.1:41234
//	AWS_CA_BUNDLE=/tmp/fakekinesis-ca-123/ca.pem
//
// Streams may also be made with CreateStream.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/shardline/shardline/shared/bench/peers/internal/fakekinesis"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fakekinesis:", err)
		os.Exit(1)
	}
}

// streamsFlag collects -stream NAME:SHARDS.
type streamsFlag []struct {
	name   string
	shards int
}

func (f *streamsFlag) String() string { return fmt.Sprint(*f) }

func (f *streamsFlag) Set(v string) error {
	name, n, ok := strings.Cut(v, ":")
	shards, err := strconv.Atoi(n)
	if !ok || name == "" || err != nil || shards < 1 {
		return fmt.Errorf("want NAME:SHARDS, got %q", v)
	}
	*f = append(*f, struct {
		name   string
		shards int
	}{name, shards})
	return nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("fakekinesis", flag.ContinueOnError)
	var streams streamsFlag
	fk := fakekinesis.New()
	var o fakekinesis.ServeOptions
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:0", "address to listen on (loopback only)")
	fs.BoolVar(&o.TLS, "tls", false, "serve HTTPS with HTTP/2 (a certificate made at start)")
	fs.StringVar(&o.CAFile, "ca-file", "", "with -tls: where to write the certificate's PEM (default: a temporary file)")
	fs.Var(&streams, "stream", "an empty stream to add, NAME:SHARDS (repeatable)")
	fs.DurationVar(&fk.SubscriptionLength, "subscription-length", fakekinesis.DefaultSubscriptionLength, "how long a SubscribeToShard stream lasts")
	fs.DurationVar(&fk.SubscribeWindow, "subscribe-window", fakekinesis.DefaultSubscribeWindow, "how long after a SubscribeToShard another for the consumer and shard is refused (<0: never)")
	fs.DurationVar(&fk.Heartbeat, "heartbeat", fakekinesis.DefaultHeartbeat, "idle time before an empty event")
	fs.DurationVar(&fk.ConsumerActivation, "consumer-activation", 0, "how long a registered consumer stays CREATING")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range streams {
		if err := fk.AddEmptyStream(s.name, s.shards); err != nil {
			return err
		}
	}
	ep, err := fk.Start(o)
	if err != nil {
		return err
	}
	defer ep.Close()
	fmt.Printf("KINESIS_ENDPOINT=%s\n", ep.URL)
	if ep.CAFile != "" {
		fmt.Printf("AWS_CA_BUNDLE=%s\n", ep.CAFile)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return nil
}
