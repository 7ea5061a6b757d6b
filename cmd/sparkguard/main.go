// Command sparkguard is sparkguard's all-in-one binary and operator CLI.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

const usage = `sparkguard: a secure, scalable back end for Webex bots.

Usage:
  sparkguard help      show this text

The services run as their own binaries (bin/ingress). The all-in-one
commands (run, demo) and the webhook commands arrive in later versions.
`

func run(_ context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		_, err := io.WriteString(stdout, usage)
		return err
	}
	return fmt.Errorf("sparkguard: unknown command %q (see sparkguard help)", args[0])
}
