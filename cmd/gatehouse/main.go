// Command gatehouse is the Gatehouse identity platform: server, dev environment and
// operator tools in one binary.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/gatehouse-id/gatehouse/internal/cli"
)

func main() {
	// A server's live heap is small and its allocation rate high: collect at 200% growth
	// instead of Go's 100% unless the operator chose (GOGC, GOMEMLIMIT apply as usual).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args, cli.Env{Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
		if cli.IsUsage(err) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
