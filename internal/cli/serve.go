package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"

	"github.com/gatehouse-id/gatehouse/internal/app"
	"github.com/gatehouse-id/gatehouse/internal/config"
)

func runServe(ctx context.Context, args []string, env Env) error {
	fs := newFlags("serve", env)
	addr := fs.String("addr", "", "listen address (default GATEHOUSE_ADDR or :8080)")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "Usage: gatehouse serve [--addr ADDR]")
		fs.PrintDefaults()
		printVars(env.Stderr)
	}
	if _, err := parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := config.Load(env.Getenv)
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.Addr = *addr
	}
	logger, flushLogs := newLogger(cfg, env.Stderr)
	defer flushLogs()
	a, err := app.New(ctx, cfg, logger, env.Getenv)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		a.Close()
		return fmt.Errorf("GATEHOUSE_ADDR: %w", err)
	}
	return a.Serve(ctx, ln)
}
