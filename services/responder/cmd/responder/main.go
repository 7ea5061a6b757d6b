// Command responder runs sparkguard's responder stage: see package responder.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sparkguard/sparkguard/platform/app"
	"github.com/sparkguard/sparkguard/services/responder"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cfg responder.Config
	spec := app.Spec{Name: "responder", Config: &cfg, Run: responder.Service(&cfg)}
	if err := app.Main(ctx, spec, os.Args[1:], os.LookupEnv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
