package main

import (
	"context"
	"io"

	"github.com/shardline/shardline/shared/config"
)

func runResume(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return config.Usagef("resume: not built yet")
}
