// Package cli implements the gatehouse command line: dev, serve, migrate, tenant and
// tenants. main only calls Run, so every command is testable in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/config"
)

// Env is what a command receives from the process.
type Env struct {
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
}

// errUsage marks errors that are about how the command was called.
var errUsage = errors.New("usage")

const usage = `gatehouse: multi-tenant identity platform

Usage:
  gatehouse dev [--addr ADDR] [--data-dir DIR] [--idp-addr ADDR] [--oidc-idp-addr ADDR]
                                                   everything for a first look (private PostgreSQL, demo tenant, dev IdP)
  gatehouse serve [--addr ADDR]                    the production server
  gatehouse migrate up|down [--all|--steps N]|version
  gatehouse tenant create SLUG --name NAME [--admin-email EMAIL]
  gatehouse tenant list|show SLUG|suspend SLUG|activate SLUG
  gatehouse tenant delete SLUG [--grace 720h]
  gatehouse tenant rotate-keys SLUG [--json]       a new OpenID signing key (signs after 2 minutes)
  gatehouse tenants apply DIR [--dry-run]
  gatehouse version
  gatehouse healthcheck [URL]                      exit 0 when URL (default http://127.0.0.1:8080/readyz) answers 200
                                                   (for container health checks: the image has no shell or curl)

Run "gatehouse serve --help" for the configuration variables.
`

// Run runs the command in args (args[0] is the program name).
func Run(ctx context.Context, args []string, env Env) error {
	if len(args) < 2 {
		fmt.Fprint(env.Stderr, usage)
		return fmt.Errorf("%w: no command", errUsage)
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "dev":
		return runDev(ctx, rest, env)
	case "serve":
		return runServe(ctx, rest, env)
	case "migrate":
		return runMigrate(ctx, rest, env)
	case "tenant":
		return runTenant(ctx, rest, env)
	case "tenants":
		return runTenants(ctx, rest, env)
	case "version":
		fmt.Fprintln(env.Stdout, "gatehouse", versionString())
		return nil
	case "healthcheck":
		return runHealthcheck(ctx, rest, env)
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return nil
	}
	fmt.Fprint(env.Stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

// IsUsage reports whether err is about how the command was called (exit code 2).
func IsUsage(err error) bool { return errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) }

// parse parses flags that may stand before, between or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlags(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// newLogger returns the server's logger, writing through a buffer; call the returned
// function before exiting to flush it.
func newLogger(cfg config.Config, w io.Writer) (*slog.Logger, func()) {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel)))
	opts := &slog.HandlerOptions{Level: lvl}
	lw := newLogWriter(w)
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(lw, opts)), lw.Close
	}
	return slog.New(slog.NewJSONHandler(lw, opts)), lw.Close
}

func printVars(w io.Writer) {
	fmt.Fprintln(w, "\nEnvironment:")
	for _, v := range config.Vars {
		fmt.Fprintf(w, "  %-30s %s\n", v[0], v[1])
	}
}
