package logging

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		want    []string
		wantErr string
	}{
		{"json, durations readable", Config{Level: "info", Format: "json"}, []string{`"msg":"hello"`, `"wait":"1m30s"`}, ""},
		{"text", Config{Level: "debug", Format: "text"}, []string{"msg=hello", "wait=1m30s"}, ""},
		{"unknown level", Config{Level: "loud", Format: "json"}, nil, "LOG_LEVEL"},
		{"unknown format", Config{Level: "info", Format: "xml"}, nil, "LOG_FORMAT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log, err := New(&buf, tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to name %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.Info("hello", "wait", 90*time.Second)
			log.Debug("hidden at info")
			for _, want := range tc.want {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("log %q lacks %q", buf.String(), want)
				}
			}
			if tc.cfg.Level == "info" && strings.Contains(buf.String(), "hidden") {
				t.Error("debug line written at info")
			}
		})
	}
}
