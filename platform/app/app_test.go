package app

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sparkguard/sparkguard/platform/bus/bustest"
)

func lookupFrom(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// TestMainStopsCleanly: a stop signal, even while the service is still
// setting itself up, ends Main without an error; a service's own failure
// is returned.
func TestMainStopsCleanly(t *testing.T) {
	t.Parallel()
	srv := bustest.StartServer(t, bustest.Options{})
	env := lookupFrom(map[string]string{"NATS_URL": srv.ClientURL(), "METRICS_ADDR": "127.0.0.1:0"})
	tests := []struct {
		name    string
		run     Service
		wantErr string
	}{
		{"stopped during set-up", func(ctx context.Context, _ *Runtime) error {
			<-ctx.Done()
			return errors.Join(errors.New("set up: still retrying"), ctx.Err())
		}, ""},
		{"service fails", func(context.Context, *Runtime) error { return errors.New("boom") }, "boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := Main(ctx, Spec{Name: "test", Run: tc.run}, nil, env, io.Discard)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Main = %v, want nil on a stop", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Main = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestMainReportsEveryConfigProblem(t *testing.T) {
	t.Parallel()
	var cfg struct {
		N int `env:"SOME_NUMBER"`
	}
	err := Main(context.Background(), Spec{Name: "test", Config: &cfg, Run: func(context.Context, *Runtime) error { return nil }},
		nil, lookupFrom(map[string]string{"SOME_NUMBER": "x", "LOG_LEVEL": "loud", "NATS_USER": "u"}), io.Discard)
	for _, want := range []string{"SOME_NUMBER", "LOG_LEVEL", "NATS_USER and NATS_PASSWORD"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to name %s", err, want)
		}
	}
}

func TestMainHelpAndVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"version"}} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			ran := false
			err := Main(context.Background(), Spec{Name: "ingress", Run: func(context.Context, *Runtime) error { ran = true; return nil }},
				args, lookupFrom(nil), &out)
			if err != nil || ran {
				t.Fatalf("err %v, ran %v: want the text only, and no configuration needed", err, ran)
			}
			want := "docs/configuration.md"
			if args[0] == "version" {
				want = "ingress " + Version
			}
			if !strings.Contains(out.String(), want) {
				t.Errorf("output %q lacks %q", out.String(), want)
			}
		})
	}
}
