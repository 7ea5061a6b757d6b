// Package config loads a service's configuration from the environment.
//
// Every service describes its settings as a struct with `env` tags (see
// github.com/caarlos0/env) and loads it with Load, through a lookup function
// so that tests run the real set-up against a fake environment. Every
// variable NAME may instead be given as NAME_FILE, the path of a file that
// holds the value (compose and Kubernetes secrets); a trailing newline in
// the file is dropped.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Lookup reads one environment variable; os.LookupEnv is the real one.
type Lookup func(key string) (string, bool)

// Validator is a configuration that can check itself, reporting every
// problem at once (joined with errors.Join).
type Validator interface {
	Validate() error
}

// Load fills cfg (a pointer to a struct with `env` tags) from lookup,
// resolving *_FILE variants, and then runs cfg's Validate when it has one.
func Load(lookup Lookup, cfg any) error {
	environ, err := resolve(lookup, cfg)
	if err != nil {
		return err
	}
	parseErr := env.ParseWithOptions(cfg, env.Options{Environment: environ})
	if parseErr != nil {
		parseErr = cleanParseError(cfg, environ, parseErr)
	}
	v, ok := cfg.(Validator)
	if !ok {
		return parseErr
	}
	// Validate runs even when a value did not parse, so that every problem
	// shows at once. Each problem is reported once: a variable the parser
	// already named is left out of Validate's lines, and a line repeated by
	// parts that read the same variables (the all-in-one's authz and
	// responder) stands once.
	var parsed string
	if parseErr != nil {
		parsed = parseErr.Error()
	}
	validateErr := v.Validate()
	if validateErr == nil {
		return parseErr
	}
	var errs []error
	if parseErr != nil {
		errs = append(errs, parseErr)
	}
	seen := map[string]bool{}
	for line := range strings.SplitSeq(validateErr.Error(), "\n") {
		name, _, _ := strings.Cut(line, ":")
		if seen[line] || (parsed != "" && strings.Contains(parsed, name+": ")) {
			continue
		}
		seen[line] = true
		errs = append(errs, errors.New(line))
	}
	return errors.Join(errs...)
}

// resolve builds the environment map the parser sees: every variable cfg
// names, read through lookup, with NAME_FILE read from its file when NAME
// itself is not set.
func resolve(lookup Lookup, cfg any) (map[string]string, error) {
	environ := map[string]string{}
	var errs []error
	for _, v := range variables(reflect.TypeOf(cfg), "") {
		name := v.env
		value, ok := lookup(name)
		path, fileOK := lookup(name + "_FILE")
		switch {
		case ok && fileOK:
			errs = append(errs, fmt.Errorf("%s and %s_FILE are both set: use one", name, name))
		case ok:
			environ[name] = value
		case fileOK:
			b, err := os.ReadFile(path)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s_FILE: %w", name, err))
				continue
			}
			environ[name] = strings.TrimRight(string(b), "\r\n")
		}
	}
	return environ, errors.Join(errs...)
}

// variable ties a struct field to the environment variable that sets it.
type variable struct{ field, env string }

// variables lists the variables a struct type reads, following nested and
// embedded structs and the prefixes their `envPrefix` tags give.
func variables(t reflect.Type, prefix string) []variable {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var vars []variable
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" {
			vars = append(vars, variable{field: f.Name, env: prefix + name})
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]() {
			vars = append(vars, variables(ft, prefix+f.Tag.Get("envPrefix"))...)
		}
	}
	return vars
}

// cleanParseError turns the parser's aggregate error into one line per
// variable, naming the variable and never echoing its value (which may be a
// secret).
func cleanParseError(cfg any, environ map[string]string, err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	// The parser names the struct field; one field name can stand in
	// several nested structs (AUTHZ_CONCURRENCY, RESPONDER_CONCURRENCY), so
	// the variable is the one among them whose value does not parse.
	names := map[string][]string{}
	for _, v := range variables(reflect.TypeOf(cfg), "") {
		names[v.field] = append(names[v.field], v.env)
	}
	reported := map[string]bool{}
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			errs = append(errs, e)
			continue
		}
		for _, name := range names[pe.Name] {
			if !reported[name] && !parses(name, pe.Type, environ[name]) {
				reported[name] = true
				errs = append(errs, fmt.Errorf("%s: not a valid %s", name, typeName(pe.Type)))
			}
		}
	}
	return errors.Join(errs...)
}

// parses reports whether value is a valid value of type t for the parser.
func parses(name string, t reflect.Type, value string) bool {
	one := reflect.New(reflect.StructOf([]reflect.StructField{{
		Name: "V", Type: t, Tag: reflect.StructTag(`env:"` + name + `"`),
	}}))
	return env.ParseWithOptions(one.Interface(), env.Options{Environment: map[string]string{name: value}}) == nil
}

func typeName(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "duration (such as 30s or 15m)"
	case reflect.TypeFor[bool]():
		return "boolean (true or false)"
	}
	return t.Kind().String()
}

// List splits a comma-separated value into its trimmed, non-empty items.
func List(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Secret is a string that never prints: it is masked in logs, errors and
// fmt output so a logged config cannot leak it.
type Secret string

// String masks the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString masks the value in %#v output.
func (s Secret) GoString() string { return s.String() }

// LogValue masks the value in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON masks the value when a config is encoded, as slog's JSON
// handler does with structs.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Reveal returns the value itself, for the one place that must use it.
func (s Secret) Reveal() string { return string(s) }
