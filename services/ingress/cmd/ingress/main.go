// Command ingress runs sparkguard's webhook ingress: see package ingress.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sparkguard/sparkguard/platform/app"
	"github.com/sparkguard/sparkguard/services/ingress"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cfg ingress.Config
	spec := app.Spec{Name: "ingress", Config: &cfg, Run: ingress.Service(&cfg)}
	if err := app.Main(ctx, spec, os.Args[1:], os.LookupEnv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
