package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/credentials"
	cfgpkg "github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"
)

// runVMware: vmware-go-kcl-v2's polling worker, its own DynamoDB lease
// table (created by the worker), its defaults otherwise (but see
// -vmware-shard-sync: its worker takes one lease per shard sync, every
// 60 s ± 50% by default, so with the defaults a 4-shard stream is read one
// shard at a time over some 4 minutes). The KCL
// de-aggregates KPL records itself; the processor only counts and does not
// checkpoint (like the Shardline run, whose checkpoints are the
// coordinator's own). With cfg.efo (vmware-efo) it reads with enhanced
// fan-out instead of polling.
func runVMware(ctx context.Context, cfg config, c *counter) error {
	creds := credentials.NewStaticCredentialsProvider("local", "local", "")
	kc := cfgpkg.NewKinesisClientLibConfigWithCredential(cfg.app, cfg.stream, cfg.region, "", creds).
		WithKinesisEndpoint(cfg.kinesis).
		WithDynamoDBEndpoint(cfg.dynamodb).
		WithInitialPositionInStream(cfgpkg.TRIM_HORIZON)
	if cfg.efo != "" {
		// Its enhanced fan-out: a consumer named after the application
		// (its default), registered by the worker if missing; one
		// SubscribeToShard per shard through the SDK's client, which it
		// builds with config.LoadDefaultConfig (so AWS_CA_BUNDLE is read).
		kc = kc.WithEnhancedFanOutConsumer(true)
	}
	if cfg.shardSync > 0 {
		kc = kc.WithShardSyncIntervalMillis(int(cfg.shardSync.Milliseconds()))
	}
	w := worker.NewWorker(factory{c}, kc)
	if err := w.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	w.Shutdown()
	return ctx.Err()
}

type factory struct{ c *counter }

// CreateProcessor makes the processor of one shard (the KCL makes one per
// shard consumer and initializes it with the shard's id).
func (f factory) CreateProcessor() kcl.IRecordProcessor { return &processor{c: f.c} }

type processor struct {
	c     *counter
	shard string
}

func (p *processor) Initialize(in *kcl.InitializationInput) { p.shard = in.ShardId }
func (p *processor) ProcessRecords(in *kcl.ProcessRecordsInput) {
	p.c.observe(p.shard, func(i int) []byte { return in.Records[i].Data }, len(in.Records))
}
func (*processor) Shutdown(*kcl.ShutdownInput) {}
