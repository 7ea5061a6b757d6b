package webex

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestRateLimitIsHonouredByEveryCall: after a 429 with Retry-After, no call
// of any operation reaches Webex before that time has passed; each answers
// at once with a 429 APIError carrying the time still to wait.
func TestRateLimitIsHonouredByEveryCall(t *testing.T) {
	t.Parallel()
	var limited atomic.Bool
	limited.Store(true)
	f := newFakeWebex(t, func(w http.ResponseWriter, r *http.Request) {
		if limited.Load() {
			w.Header().Set("Retry-After", "2")
			writeJSON(w, http.StatusTooManyRequests, []byte(`{"message":"Too Many Requests","trackingId":"T"}`))
			return
		}
		writeJSON(w, http.StatusOK, []byte(`{"id":"P1","type":"person"}`))
	})
	c := f.client(t)
	ctx := context.Background()
	_, err := c.Person(ctx, "P1")
	if ae, ok := err.(*APIError); !ok || ae.Status != 429 || ae.Wait != 2*time.Second {
		t.Fatalf("first call: %v", err)
	}
	limited.Store(false)
	_, err = c.Message(ctx, "M1")
	ae, ok := err.(*APIError)
	if !ok || ae.Status != http.StatusTooManyRequests || ae.Wait <= 0 || ae.Wait > 2*time.Second || ae.Permanent() {
		t.Fatalf("call inside the Retry-After window: %v (%#v)", err, err)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("Webex saw %d requests inside the Retry-After window, want 1", n)
	}
	time.Sleep(ae.Wait + 50*time.Millisecond)
	if _, err := c.Person(ctx, "P1"); err != nil {
		t.Fatalf("call after the window: %v", err)
	}
	if n := len(f.requests()); n != 2 {
		t.Fatalf("Webex saw %d requests, want 2", n)
	}
}
