package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type nested struct {
	Token Secret `env:"TOKEN"`
}

type twin struct {
	Count int `env:"COUNT"`
}

// pair has two structs with a field of one name, as the all-in-one has.
type pair struct {
	A twin `envPrefix:"A_"`
	B twin `envPrefix:"B_"`
}

func TestParseErrorNamesTheVariable(t *testing.T) {
	t.Parallel()
	var p pair
	err := Load(lookupFrom(map[string]string{"A_COUNT": "many", "B_COUNT": "2"}), &p)
	if err == nil || !strings.Contains(err.Error(), "A_COUNT") || strings.Contains(err.Error(), "B_COUNT") {
		t.Fatalf("err = %v, want it to name A_COUNT only", err)
	}
}

type testConfig struct {
	Name    string        `env:"NAME" envDefault:"x"`
	TTL     time.Duration `env:"TTL" envDefault:"15m"`
	Enabled bool          `env:"ENABLED"`
	Inner   nested        `envPrefix:"INNER_"`
}

func (c *testConfig) Validate() error {
	if c.Name == "bad" {
		return errors.New("NAME: must not be bad")
	}
	return nil
}

func lookupFrom(env map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    testConfig
		wantErr []string // each must appear in the error
	}{
		{name: "defaults", env: map[string]string{}, want: testConfig{Name: "x", TTL: 15 * time.Minute}},
		{name: "values", env: map[string]string{"NAME": "n", "TTL": "30s", "ENABLED": "true", "INNER_TOKEN": "t"},
			want: testConfig{Name: "n", TTL: 30 * time.Second, Enabled: true, Inner: nested{Token: "t"}}},
		{name: "file variant, trailing newline dropped", env: map[string]string{"INNER_TOKEN_FILE": tokenFile},
			want: testConfig{Name: "x", TTL: 15 * time.Minute, Inner: nested{Token: "from-file"}}},
		{name: "both value and file", env: map[string]string{"INNER_TOKEN": "a", "INNER_TOKEN_FILE": tokenFile},
			wantErr: []string{"INNER_TOKEN and INNER_TOKEN_FILE are both set"}},
		{name: "missing file", env: map[string]string{"INNER_TOKEN_FILE": filepath.Join(dir, "nope")},
			wantErr: []string{"INNER_TOKEN_FILE"}},
		{name: "every parse problem at once", env: map[string]string{"TTL": "soon", "ENABLED": "maybe"},
			wantErr: []string{"TTL: not a valid duration", "ENABLED: not a valid boolean"}},
		{name: "validate runs", env: map[string]string{"NAME": "bad"}, wantErr: []string{"NAME: must not be bad"}},
		{name: "parse problems and validation problems together", env: map[string]string{"NAME": "bad", "TTL": "soon"},
			wantErr: []string{"NAME: must not be bad", "TTL: not a valid duration"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got testConfig
			err := Load(lookupFrom(tc.env), &got)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "soon") || strings.Contains(err.Error(), "maybe") {
					t.Errorf("error echoes a value: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := Secret("hunter2")
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "secret", s, "config", struct{ S Secret }{s})
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "secret", s)
	j, _ := json.Marshal(struct{ S Secret }{s})
	out := fmt.Sprint(s) + fmt.Sprintf("%v %+v %#v %s", s, struct{ S Secret }{s}, s, s) + logs.String() + string(j)
	if strings.Contains(out, "hunter2") {
		t.Fatalf("secret printed: %s", out)
	}
	if s.Reveal() != "hunter2" {
		t.Fatal("Reveal lost the value")
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	got := List(" a, ,b ,,c")
	if strings.Join(got, "|") != "a|b|c" {
		t.Fatalf("List = %q", got)
	}
	if List("") != nil {
		t.Fatal("empty list not nil")
	}
}
