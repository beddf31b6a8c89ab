package coordinator_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/standin"
)

// The stand-ins, started on first use and stopped by TestMain.
var (
	standinsOnce        sync.Once
	standinsErr         error
	kinesisEP, dynamoEP string
	servers             []*standin.Server
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range servers {
		_ = s.Stop()
	}
	os.Exit(code)
}

func needStandins(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the stand-ins (run without -short)")
	}
	standinsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		type res struct {
			s   *standin.Server
			err error
		}
		kc, dc := make(chan res, 1), make(chan res, 1)
		go func() { s, err := standin.StartKinesis(ctx, standin.KinesisOptions{}); kc <- res{s, err} }()
		go func() { s, err := standin.StartDynamoDB(ctx, standin.DynamoDBOptions{}); dc <- res{s, err} }()
		k, d := <-kc, <-dc
		for _, r := range []res{k, d} {
			if r.s != nil {
				servers = append(servers, r.s)
			}
		}
		if k.err != nil || d.err != nil {
			standinsErr = fmt.Errorf("start stand-ins: kinesis: %v; dynamodb: %v", k.err, d.err)
			return
		}
		kinesisEP, dynamoEP = k.s.Endpoint, d.s.Endpoint
	})
	if standinsErr != nil {
		t.Fatal(standinsErr)
	}
}
