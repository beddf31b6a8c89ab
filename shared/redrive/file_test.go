package redrive

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/shardline/shardline/shared/destination/filedest"
	"github.com/shardline/shardline/shared/dispatch"
)

// TestFileRewriteKeepsConcurrentAppends: a poller's file destination
// (filedest, the real writer) appends lines while the redrive cuts the
// lines it handled, rewriting the file after every one: no line appended
// is lost — none written into the file the rewrite replaces — and none
// handled stays.
func TestFileRewriteKeepsConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	const old, appended = 150, 300
	var fs []dispatch.Failure
	for i := range old {
		fs = append(fs, failure(i, i+1))
	}
	writeLines(t, path, fs...)
	src := NewFileSource(path)
	src.every = 0 // rewrite at every Done: as many chances to lose a line as there are lines
	if err := src.Check(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		d := filedest.New(path)
		for i := range appended {
			if err := d.Send(ctx, failure(old+i, old+i+1)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for {
		msgs, err := src.Next(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		if err := src.Done(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if err := src.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(b) == 0 {
		got = nil
	}
	if len(got) != appended {
		t.Fatalf("the file holds %d lines, want the %d appended while the redrive ran (the %d it handled cut)", len(got), appended, old)
	}
	for i, l := range got {
		e, err := Parse(l)
		if want := fmt.Sprintf("r%d", old+i); err != nil || len(e.Records) != 1 || string(e.Records[0].Data) != want {
			t.Fatalf("line %d of the file: %v, %q; want the record %s appended", i+1, err, l, want)
		}
	}
}
