package coordinator

import "github.com/shardline/shardline/shared/awserr"

// Explain is awserr.Explain, kept here so that the coordinator's callers
// keep compiling: an SDK error as one line a user can act on.
func Explain(err error) error { return awserr.Explain(err) }
