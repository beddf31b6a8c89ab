package coordinator_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/testwait"
)

// writeKinds counts the lease-table UpdateItems by what they write:
// renewals alone, and checkpoints that carry the renewal's progress.
type writeKinds struct {
	mu                sync.Mutex
	renewals          int
	checkpoints       int
	progressOnCheckpt int
}

func (k *writeKinds) add(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countWrites", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		if u, ok := in.Parameters.(*dynamodb.UpdateItemInput); ok {
			names := make([]string, 0, len(u.ExpressionAttributeNames))
			for _, v := range u.ExpressionAttributeNames {
				names = append(names, v)
			}
			cp, renew := slices.Contains(names, "checkpoint"), slices.Contains(names, "shardlineLastRenewal")
			k.mu.Lock()
			switch {
			case cp:
				k.checkpoints++
				if renew {
					k.progressOnCheckpt++
				}
			case renew:
				k.renewals++
			}
			k.mu.Unlock()
		}
		return next.HandleInitialize(ctx, in)
	}), middleware.Before)
}

func (k *writeKinds) get() (renewals, checkpoints, withProgress int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.renewals, k.checkpoints, k.progressOnCheckpt
}

// A shard that checkpoints more often than the renewals come is not
// renewed besides: each checkpoint moves the counter and carries what a
// renewal writes (the last renewal time, the lag, the records handled).
// Once records stop, renewals come back and the lease is kept.
func TestCheckpointsStandInForRenewals(t *testing.T) {
	f := newFixture(t, 1)
	kinds := &writeKinds{}
	dynamo := dynamodb.New(f.dynamo.Options(), func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, kinds.add) })
	c := &collector{}
	r := f.start(c.handle, func(cfg *coordinator.Config) {
		cfg.DynamoDB = dynamo
		cfg.FailoverTime = 3 * time.Second // renewal rounds every 1 s; fresh for 500 ms
		cfg.CheckpointInterval = 100 * time.Millisecond
	})
	testwait.Until(t, 30*time.Second, "the lease taken", func() bool { return len(r.w.Held()) == 1 })
	// Records every 50 ms for 4 s: a checkpoint every ~200 ms (a read).
	renewalsBefore, _, _ := kinds.get()
	sent := 0
	for start := time.Now(); time.Since(start) < 4*time.Second; {
		f.put(1, 5, sent, 0)
		sent += 5
	}
	testwait.Until(t, 30*time.Second, "every record", func() bool { return c.count() >= sent })
	renewals, checkpoints, withProgress := kinds.get()
	if checkpoints < 5 || withProgress != checkpoints {
		t.Fatalf("%d checkpoints, %d with the renewal's progress; want several, all", checkpoints, withProgress)
	}
	// A round may have found the lease a little over 500 ms old once.
	if busy := renewals - renewalsBefore; busy > 1 {
		t.Errorf("%d renewals while the shard checkpointed every read, want at most 1", busy)
	}
	// The progress came with the checkpoints: the lease counts (about)
	// what was handled, with no renewal in between.
	l := f.leases()[r.w.Held()[0]]
	if l.RecordsHandled < int64(sent)/2 || l.LastRenewal.IsZero() {
		t.Errorf("lease counts %d records handled (of %d), last renewal %v: the checkpoints did not carry the progress", l.RecordsHandled, sent, l.LastRenewal)
	}
	// Idle: renewals come back, and the lease stays held.
	testwait.Until(t, 10*time.Second, "a renewal of the idle lease", func() bool {
		n, _, _ := kinds.get()
		return n >= renewals+2
	})
	if len(r.w.Held()) != 1 {
		t.Errorf("held %v after idling, want the shard", r.w.Held())
	}
	if l := f.leases()[r.w.Held()[0]]; l.RecordsHandled != int64(sent) {
		t.Errorf("lease counts %d records handled after a renewal, want %d", l.RecordsHandled, sent)
	}
}
