package responder

import (
	"strings"
	"testing"
	"time"

	"github.com/sparkguard/sparkguard/platform/config"
)

func lookup(env map[string]string) config.Lookup {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr []string
	}{
		{
			name: "defaults",
			env:  map[string]string{"WEBEX_ACCESS_TOKEN": "t"},
			check: func(t *testing.T, c Config) {
				if c.Concurrency != 16 || c.MaxDeliver != 10 || c.Webex.APIURL != "https://webexapis.com/v1" || c.Webex.Timeout != 10*time.Second {
					t.Errorf("defaults %+v", c)
				}
			},
		},
		{
			name: "set",
			env: map[string]string{
				"WEBEX_ACCESS_TOKEN": "t", "WEBEX_API_URL": "http://127.0.0.1:8900/v1", "WEBEX_API_TIMEOUT": "3s",
				"RESPONDER_CONCURRENCY": "4", "RESPONDER_MAX_DELIVER": "3",
			},
			check: func(t *testing.T, c Config) {
				w := c.workerConfig()
				if c.Webex.Token.Reveal() != "t" || c.Webex.APIURL != "http://127.0.0.1:8900/v1" || c.Webex.Timeout != 3*time.Second ||
					w.Concurrency != 4 || w.MaxDeliver != 3 || w.Stage != "responder" || w.Stream != "SPARKGUARD_AUTHORIZED" {
					t.Errorf("config %+v, worker %+v", c, w)
				}
			},
		},
		{
			name: "every problem at once",
			env: map[string]string{
				"WEBEX_API_URL": "ftp://x", "RESPONDER_CONCURRENCY": "0", "RESPONDER_MAX_DELIVER": "-1",
			},
			wantErr: []string{"WEBEX_ACCESS_TOKEN", "WEBEX_API_URL", "RESPONDER_CONCURRENCY", "RESPONDER_MAX_DELIVER"},
		},
		{
			name:    "too much concurrency",
			env:     map[string]string{"WEBEX_ACCESS_TOKEN": "t", "RESPONDER_CONCURRENCY": "5000"},
			wantErr: []string{"RESPONDER_CONCURRENCY"},
		},
		{
			name:    "not a number",
			env:     map[string]string{"WEBEX_ACCESS_TOKEN": "t", "RESPONDER_MAX_DELIVER": "many"},
			wantErr: []string{"RESPONDER_MAX_DELIVER"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c Config
			err := config.Load(lookup(tt.env), &c)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("load: %v", err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatal("load succeeded")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
		})
	}
}

func TestConfigWorkerTuningKept(t *testing.T) {
	t.Parallel()
	c := Config{Concurrency: 2, MaxDeliver: 5}
	c.Worker.AckWait = 4 * time.Second
	c.Worker.MinBackoff = 10 * time.Millisecond
	c.Worker.Concurrency = 99 // overridden by RESPONDER_CONCURRENCY
	w := c.workerConfig()
	if w.AckWait != 4*time.Second || w.MinBackoff != 10*time.Millisecond || w.Concurrency != 2 || w.MaxDeliver != 5 {
		t.Errorf("worker config %+v", w)
	}
}
