package replay

import (
	"context"
	"fmt"
	"sync"

	"github.com/shardline/shardline/shared/shards"
)

// Select picks the shards of a stream's listing to read: those named in
// only (all when only is empty), parents before children
// (shards.Ancestors). A shard picked without its parents keeps its nearest
// picked ancestors as its Parents, so that Each still reads them first. A
// name not in the listing is an *UnknownShardError.
func Select(list []shards.Shard, only []string) ([]shards.Shard, error) {
	ordered := shards.Ancestors(list)
	if len(only) == 0 {
		return ordered, nil
	}
	byID := make(map[string]shards.Shard, len(list))
	for _, s := range list {
		byID[s.ID] = s
	}
	want := map[string]bool{}
	for _, id := range only {
		if _, ok := byID[id]; !ok {
			return nil, &UnknownShardError{ID: id}
		}
		want[id] = true
	}
	// nearest lists the picked ancestors of id closest to it.
	var nearest func(id string, seen map[string]bool) []string
	nearest = func(id string, seen map[string]bool) []string {
		var out []string
		for _, p := range byID[id].Parents {
			if seen[p] {
				continue
			}
			seen[p] = true
			if want[p] {
				out = append(out, p)
			} else {
				out = append(out, nearest(p, seen)...)
			}
		}
		return out
	}
	var picked []shards.Shard
	for _, s := range ordered {
		if want[s.ID] {
			s.Parents = nearest(s.ID, map[string]bool{})
			picked = append(picked, s)
		}
	}
	return picked, nil
}

// UnknownShardError is a shard the stream does not list.
type UnknownShardError struct{ ID string }

func (e *UnknownShardError) Error() string {
	return fmt.Sprintf("shard %s is not a shard of the stream (or is past its retention)", e.ID)
}

// Each calls fn for every shard of list, concurrently, each once every
// parent of it in list has returned nil: the records of one partition key
// come in order across a split or a merge. At most parallel calls run at
// once (0: no limit). The first error cancels ctx for the others (with it
// as the cause) and is returned; a shard whose parent failed is not read.
func Each(parent context.Context, list []shards.Shard, parallel int, fn func(ctx context.Context, s shards.Shard) error) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	done := make(map[string]chan struct{}, len(list))
	for _, s := range list {
		done[s.ID] = make(chan struct{})
	}
	var sem chan struct{}
	if parallel > 0 {
		sem = make(chan struct{}, parallel)
	}
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			cancel(err)
		}
		mu.Unlock()
	}
	for _, s := range list {
		wg.Go(func() {
			for _, p := range s.Parents {
				ch, ok := done[p]
				if !ok {
					continue
				}
				select {
				case <-ch:
				case <-ctx.Done():
					return
				}
			}
			if sem != nil {
				select {
				case sem <- struct{}{}:
					defer func() { <-sem }()
				case <-ctx.Done():
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
			if err := fn(ctx, s); err != nil {
				fail(err)
				return
			}
			close(done[s.ID])
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return context.Cause(parent)
}
