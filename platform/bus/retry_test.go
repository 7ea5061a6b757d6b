package bus

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestRetry(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	t.Run("until success", func(t *testing.T) {
		t.Parallel()
		n := 0
		err := Retry(context.Background(), log, "step", func(context.Context) error {
			n++
			if n < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil || n != 3 {
			t.Fatalf("err %v after %d tries", err, n)
		}
	})
	t.Run("a permanent error stops at once", func(t *testing.T) {
		t.Parallel()
		n := 0
		err := Retry(context.Background(), log, "step", func(context.Context) error {
			n++
			return Permanent(errors.New("401 bad token"))
		})
		if err == nil || n != 1 {
			t.Fatalf("err %v after %d tries, want the permanent error after 1", err, n)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err := Retry(ctx, log, "step", func(context.Context) error { return errors.New("down") })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	})
}
