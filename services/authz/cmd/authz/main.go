// Command authz runs sparkguard's authorization stage: see package authz.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sparkguard/sparkguard/platform/app"
	"github.com/sparkguard/sparkguard/services/authz"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cfg authz.Config
	spec := app.Spec{Name: "authz", Config: &cfg, Run: authz.Service(&cfg)}
	if err := app.Main(ctx, spec, os.Args[1:], os.LookupEnv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
