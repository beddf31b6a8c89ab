package shardline

import "github.com/shardline/shardline/shared/awserr"

func explain(err error) error { return awserr.Explain(err) }
