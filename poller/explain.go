package main

import "github.com/shardline/shardline/shared/coordinator"

func explain(err error) error { return coordinator.Explain(err) }
