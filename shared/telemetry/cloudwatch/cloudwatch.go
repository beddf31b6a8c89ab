package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/telemetry"
)

// putter is the one CloudWatch call the publisher makes.
type putter interface {
	PutMetricData(ctx context.Context, in *cw.PutMetricDataInput, optFns ...func(*cw.Options)) (*cw.PutMetricDataOutput, error)
}

var _ putter = (*cw.Client)(nil)

// Defaults, and PutMetricData's limit.
const (
	DefaultInterval     = 10 * time.Second
	DefaultFlushTimeout = 5 * time.Second
	// MaxPerCall is the most metric data one PutMetricData call takes.
	MaxPerCall = 1000
)

// maxNamespace is CloudWatch's limit on a namespace's length.
const maxNamespace = 255

// Config configures a Publisher.
type Config struct {
	// Client sends the metrics: a *cloudwatch.Client (NewClient). Required.
	Client putter
	// Snapshot reads the worker's counters (coordinator.Worker.Snapshot).
	// Required. It is called from the publisher's goroutine only.
	Snapshot func() coordinator.Snapshot
	// Namespace is the CloudWatch namespace; default the snapshot's
	// AppName.
	Namespace string
	// Dimensions are the enabled dimensions (config.Run.Dimensions).
	Dimensions metrics.Dimensions
	// Interval is the time between two sends; default 10s. A send is
	// abandoned after Interval.
	Interval time.Duration
	// FlushTimeout bounds the last send, at Stop; default 5s.
	FlushTimeout time.Duration
	// Logger gets the failures; default none.
	Logger *slog.Logger

	ticks   <-chan time.Time             // tests: the sends' ticks (default a Ticker of Interval)
	flushed func(sent int, failed error) // tests: called after each send
}

// Publisher sends a worker's metrics with PutMetricData until Stop.
type Publisher struct {
	cfg    Config
	ns     string
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	// The publisher's goroutine's own.
	prev    coordinator.Snapshot
	failing bool
	dropped int
}

// Start checks cfg, fills in the defaults and starts publishing in a
// goroutine of its own, with a context of its own (ctx's values, not its
// cancellation: the last send comes after the worker has stopped).
func Start(ctx context.Context, cfg Config) (*Publisher, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("cloudwatch: Config.Client is required")
	case cfg.Snapshot == nil:
		return nil, errors.New("cloudwatch: Config.Snapshot is required")
	case cfg.Interval < 0 || cfg.FlushTimeout < 0:
		return nil, fmt.Errorf("cloudwatch: interval %s, flush timeout %s: allowed positive durations (0: the defaults)", cfg.Interval, cfg.FlushTimeout)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.FlushTimeout == 0 {
		cfg.FlushTimeout = DefaultFlushTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{cfg: cfg, ns: cfg.Namespace, done: make(chan struct{}), prev: cfg.Snapshot()}
	if p.ns == "" {
		p.ns = p.prev.AppName
	}
	if p.ns == "" || len(p.ns) > maxNamespace {
		return nil, fmt.Errorf("cloudwatch: namespace %q: allowed 1–%d characters", p.ns, maxNamespace)
	}
	ticks := cfg.ticks
	var ticker *time.Ticker
	if ticks == nil {
		ticker = time.NewTicker(cfg.Interval)
		ticks = ticker.C
	}
	ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go p.run(ctx, ticks, ticker)
	return p, nil
}

// Stop stops the ticks, sends what is left within FlushTimeout and
// returns when the publisher's goroutine has ended. It may be called more
// than once.
func (p *Publisher) Stop() {
	p.once.Do(p.cancel)
	<-p.done
}

func (p *Publisher) run(ctx context.Context, ticks <-chan time.Time, ticker *time.Ticker) {
	defer close(p.done)
	if ticker != nil {
		defer ticker.Stop()
	}
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.FlushTimeout)
			p.send(last)
			cancel()
			return
		case <-ticks:
			call, cancel := context.WithTimeout(ctx, p.cfg.Interval)
			p.send(call)
			cancel()
		}
	}
}

// send publishes the difference from the previous snapshot, at most
// MaxPerCall metric data per call; after a failed call the rest of this
// send is dropped with it.
func (p *Publisher) send(ctx context.Context) {
	cur := p.cfg.Snapshot()
	data := Data(p.prev, cur, p.cfg.Dimensions)
	p.prev = cur
	sent := 0
	var err error
	for chunk := range slices.Chunk(data, MaxPerCall) {
		if _, err = p.cfg.Client.PutMetricData(ctx, &cw.PutMetricDataInput{Namespace: aws.String(p.ns), MetricData: chunk}); err != nil {
			break
		}
		sent += len(chunk)
	}
	p.report(sent, len(data)-sent, err)
	if p.cfg.flushed != nil {
		p.cfg.flushed(sent, err)
	}
}

// report logs the first failure of a streak, and the recovery.
func (p *Publisher) report(sent, dropped int, err error) {
	if err != nil {
		p.dropped += dropped
		if !p.failing {
			p.failing = true
			p.cfg.Logger.Warn("CloudWatch PutMetricData failed: metrics are dropped until a call succeeds (logged once until then)",
				"namespace", p.ns, "dropped", dropped, "err", err)
		}
		return
	}
	if p.failing && sent > 0 {
		p.cfg.Logger.Info("CloudWatch PutMetricData succeeds again", "namespace", p.ns, "dropped", p.dropped)
		p.failing, p.dropped = false, 0
	}
}

// Data is the metric data for what the worker did between prev and cur:
// one datum per point of telemetry.Interval, at cur's time; histograms
// without observations in the interval are left out.
func Data(prev, cur coordinator.Snapshot, dims metrics.Dimensions) []types.MetricDatum {
	at := cur.Time
	if at.IsZero() {
		at = time.Now()
	}
	var out []types.MetricDatum
	for _, p := range telemetry.Interval(prev, cur, dims) {
		d := types.MetricDatum{MetricName: aws.String(p.Name), Unit: types.StandardUnit(p.Unit), Timestamp: aws.Time(at)}
		for _, n := range telemetry.DimensionNames(p) {
			if v := p.Dims[n]; v != "" { // CloudWatch refuses an empty value
				d.Dimensions = append(d.Dimensions, types.Dimension{Name: aws.String(n), Value: aws.String(v)})
			}
		}
		if p.Kind == telemetry.Histogram {
			if d.StatisticValues = Statistics(p.Hist); d.StatisticValues == nil {
				continue
			}
		} else {
			d.Value = aws.Float64(p.Value)
		}
		out = append(out, d)
	}
	return out
}

// Statistics is a histogram's StatisticSet in milliseconds (nil without
// observations): SampleCount and Sum exact, Minimum the lower bound of the
// lowest bucket with observations, Maximum h.Max or the upper bound of the
// highest bucket with observations, whichever is lower.
func Statistics(h metrics.HistSnapshot) *types.StatisticSet {
	if h.Count <= 0 {
		return nil
	}
	lo, hi := -1, -1
	for i, n := range h.Buckets {
		if n > 0 {
			if lo < 0 {
				lo = i
			}
			hi = i
		}
	}
	if lo < 0 {
		return nil
	}
	minimum, maximum := 0.0, ms(h.Max)
	if lo > 0 {
		minimum = ms(metrics.Bounds[lo-1])
	}
	if hi < len(metrics.Bounds) {
		maximum = min(maximum, ms(metrics.Bounds[hi]))
	}
	return &types.StatisticSet{
		SampleCount: aws.Float64(float64(h.Count)),
		Sum:         aws.Float64(ms(h.Sum)),
		Minimum:     aws.Float64(minimum),
		Maximum:     aws.Float64(max(maximum, minimum)),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// NewClient returns a CloudWatch client from cfg
// (awsconf.CloudWatchConfig, which assumes -cloudwatch-role-arn when set).
// Its endpoint is the SDK's: AWS_ENDPOINT_URL_CLOUDWATCH (or
// AWS_ENDPOINT_URL) when set. With an endpoint set — a local stand-in — it
// speaks AWS JSON 1.0 and sends bodies uncompressed: moto_server serves
// neither the SDK's default protocol (Smithy RPC v2 CBOR) nor, for
// CloudWatch, gzip bodies; CloudWatch itself serves both protocols.
func NewClient(cfg aws.Config, optFns ...func(*cw.Options)) *cw.Client {
	return cw.NewFromConfig(cfg, append([]func(*cw.Options){func(o *cw.Options) {
		if o.BaseEndpoint != nil {
			o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
			o.DisableRequestCompression = true
		}
	}}, optFns...)...)
}
