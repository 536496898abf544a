// Command risk-reset-bot serves the /risk-reset Slack command over Socket
// Mode. Configuration comes from the environment; see README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"risk-reset-bot/internal/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The bot logs to standard error; subcommands (check, version) print
	// their report to standard output.
	out := os.Stderr
	if len(os.Args) > 1 {
		out = os.Stdout
	}
	if err := run(ctx, os.Args[1:], os.Environ(), out); err != nil {
		fmt.Fprintln(os.Stderr, "risk-reset-bot:", err)
		os.Exit(1)
	}
}

// usage is printed for -h, --help and unknown arguments.
const usage = `usage: risk-reset-bot [check | healthcheck | version]

Serves /risk-reset over Slack Socket Mode. Configuration comes from the
environment (see README.md); every problem with it is reported at start.

  check        verify tokens, scopes, channels, user groups and Cloudflare
               permissions against Slack and Cloudflare, without starting
  healthcheck  ask the running bot's /healthz on HTTP_ADDR (for Docker)
  version      print the version
`

func run(ctx context.Context, args, environ []string, out io.Writer, opts ...option) error {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version":
			fmt.Fprintln(out, "risk-reset-bot", buildinfo.Version)
			return nil
		case "check":
			return runCheck(ctx, environ, out)
		case "healthcheck":
			return runHealthcheck(ctx, environ, out)
		case "-h", "--help", "help":
			fmt.Fprint(out, usage)
			return nil
		default:
			return fmt.Errorf("unknown argument %q\n%s", args[0], usage)
		}
	}
	app, err := newApp(environ, out, opts...)
	if err != nil {
		return err
	}
	return app.Run(ctx)
}
