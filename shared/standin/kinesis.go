package standin

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// KinesisOptions configure StartKinesis. The zero value is a fresh,
// in-memory kinesis-mock on free ports with no streams.
type KinesisOptions struct {
	// CacheDir is where the stand-ins are installed ("": DefaultCacheDir).
	CacheDir string
	// Port is the plain-HTTP port (0: a free one) and TLSPort the HTTPS
	// one (0: a free one; kinesis-mock always opens both).
	Port, TLSPort int
	// InitializeStreams lists streams to create at start-up, as
	// comma-separated name[:shards[:region]], e.g. "words:4". StartKinesis
	// returns once they are ACTIVE.
	InitializeStreams string
	// TransitionDelay is how long streams stay CREATING, DELETING or
	// UPDATING (split, merge, UpdateShardCount) and consumers CREATING or
	// DELETING. kinesis-mock's own default is 500ms; the zero value here
	// means none, so a new stream is ACTIVE within milliseconds.
	TransitionDelay time.Duration
	// ShardLimit caps the open shards of all streams together (0: 100000;
	// kinesis-mock's own default, 50, is soon hit by a test package that
	// makes a stream per test). ON_DEMAND_STREAM_COUNT_LIMIT is raised
	// from 10 to 1000 likewise (override it with Env).
	ShardLimit int
	// PersistDir, if set, makes kinesis-mock save all streams and records
	// to PersistDir/kinesis-data.json at start-up, every PersistInterval
	// and when it stops on SIGTERM (Stop, KillPID), and load them at
	// start-up. A SIGKILL loses what changed since the last save. It
	// writes the whole file each time, in place: slow for big streams.
	PersistDir string
	// PersistInterval is how often a persisting kinesis-mock saves (0: 1s).
	PersistInterval time.Duration
	// LogLevel is kinesis-mock's LOG_LEVEL: ERROR, WARN, INFO (""), DEBUG
	// or TRACE. (kinesis-mock's own default is ERROR, not INFO as its
	// README says.) WARN and above log every failed request with a stack
	// trace.
	LogLevel string
	// Env adds or overrides environment variables of the process
	// (KEY=VALUE), e.g. "ON_DEMAND_STREAM_COUNT_LIMIT=50".
	Env []string
	// Log, if set, receives a copy of the process's output. The last 64 KiB
	// are kept anyway (Server.Output) and shown in start-up errors.
	Log io.Writer
	// Detached starts the process in its own session, not killed when the
	// caller exits, writing its output to LogFile (required); for
	// `standins up`.
	Detached bool
	LogFile  string
	// StartTimeout bounds start-up (0: DefaultStartTimeout).
	StartTimeout time.Duration
}

// StartKinesis installs kinesis-mock if needed, starts it on 127.0.0.1 and
// returns once ListStreams answers and the InitializeStreams are ACTIVE.
// The plain-HTTP endpoint is Server.Endpoint; the HTTPS one (self-signed
// certificate) is Server.TLSEndpoint. Typically ~2 s.
func StartKinesis(ctx context.Context, o KinesisOptions) (*Server, error) {
	in, err := Install(ctx, o.CacheDir)
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("standin: node not found on PATH: kinesis-mock needs Node.js 20+")
	}
	var streams []StreamSpec
	if o.InitializeStreams != "" {
		if streams, err = ParseStreams(o.InitializeStreams); err != nil {
			return nil, err
		}
	}
	timeout := o.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	var tlsPort int
	s, err := startRetrying(ctx, o.Port != 0 && o.TLSPort != 0, func() (processSpec, error) {
		port, tp := o.Port, o.TLSPort
		free, err := freePorts(2)
		if err != nil {
			return processSpec{}, err
		}
		if port == 0 {
			port = free[0]
		}
		if tp == 0 {
			tp = free[1]
			if tp == port {
				tp = free[0]
			}
		}
		tlsPort = tp
		set, err := kinesisEnv(in, o, port, tp)
		if err != nil {
			return processSpec{}, err
		}
		sp := processSpec{
			name:     KinesisName,
			path:     node,
			args:     []string{"--require", in.PreloadScript, filepath.Join(in.KinesisMockDir, "main.js")},
			dir:      in.KinesisMockDir,
			env:      environ(set, []string{"INITIALIZE_STREAMS", "NODE_OPTIONS"}, o.Env),
			port:     port,
			log:      o.Log,
			logFile:  o.LogFile,
			detached: o.Detached,
			timeout:  timeout,
			healthy:  CheckKinesis,
		}
		if len(streams) > 0 {
			sp.ready = func(ctx context.Context, endpoint string) error {
				return waitStreamsActive(ctx, endpoint, streams)
			}
		}
		return sp, nil
	})
	if err != nil {
		return nil, err
	}
	s.TLSEndpoint = fmt.Sprintf("https://127.0.0.1:%d", tlsPort)
	return s, nil
}

func kinesisEnv(in *Installation, o KinesisOptions, port, tlsPort int) (map[string]string, error) {
	delay := fmt.Sprintf("%dms", o.TransitionDelay.Milliseconds())
	shardLimit := o.ShardLimit
	if shardLimit <= 0 {
		shardLimit = 100000
	}
	logLevel := o.LogLevel
	if logLevel == "" {
		logLevel = "INFO"
	}
	set := map[string]string{
		"KINESIS_MOCK_PLAIN_PORT":      strconv.Itoa(port),
		"KINESIS_MOCK_TLS_PORT":        strconv.Itoa(tlsPort),
		"KINESIS_MOCK_CERT_PATH":       filepath.Join(in.KinesisMockDir, "server.json"),
		"SHARDLINE_BIND_HOST":          "127.0.0.1", // read by loopback.js
		"AWS_REGION":                   Region,
		"AWS_ACCOUNT_ID":               "000000000000",
		"SHARD_LIMIT":                  strconv.Itoa(shardLimit),
		"ON_DEMAND_STREAM_COUNT_LIMIT": "1000",
		"LOG_LEVEL":                    logLevel,
		"SHOULD_PERSIST_DATA":          "false",
		"LOAD_DATA_IF_EXISTS":          "false",
	}
	// All of kinesis-mock's transition delays. (In 0.6.2 the variables of
	// three of them are read into the wrong settings; setting all alike
	// makes that moot.)
	for _, k := range []string{
		"CREATE_STREAM_DURATION", "DELETE_STREAM_DURATION",
		"REGISTER_STREAM_CONSUMER_DURATION", "DEREGISTER_STREAM_CONSUMER_DURATION",
		"START_STREAM_ENCRYPTION_DURATION", "STOP_STREAM_ENCRYPTION_DURATION",
		"MERGE_SHARDS_DURATION", "SPLIT_SHARD_DURATION",
		"UPDATE_SHARD_COUNT_DURATION", "UPDATE_STREAM_MODE_DURATION",
	} {
		set[k] = delay
	}
	if o.InitializeStreams != "" {
		set["INITIALIZE_STREAMS"] = o.InitializeStreams
	}
	if o.PersistDir != "" {
		dir, err := filepath.Abs(o.PersistDir)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("standin: persist dir: %w", err)
		}
		interval := o.PersistInterval
		if interval <= 0 {
			interval = time.Second
		}
		set["SHOULD_PERSIST_DATA"] = "true"
		set["LOAD_DATA_IF_EXISTS"] = "true"
		set["PERSIST_PATH"] = dir
		set["PERSIST_FILE_NAME"] = "kinesis-data.json"
		set["PERSIST_INTERVAL"] = fmt.Sprintf("%dms", max(interval.Milliseconds(), 1))
	}
	return set, nil
}
