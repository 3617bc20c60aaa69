package collector

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/source/pull"
	"github.com/stewardhq/steward/internal/store"
)

// Kind is one kind of source as the runner sees it: its settings and
// secrets checked, and its Puller built, from their stored forms. Provider
// adapts a provider package (pull.go's shape) to it; tests write their own.
type Kind struct {
	// Name is the kind's name ("defender", "securityhub", "scc").
	Name string
	// SecretFields name the kind's secrets (their JSON names).
	SecretFields []string
	// Check validates settings and the full set of secrets a source would
	// have. Errors are *steward.Error values naming the field.
	Check func(settings json.RawMessage, secrets store.SourceSecrets) error
	// New builds the Puller of a source.
	New func(settings json.RawMessage, secrets store.SourceSecrets, env pull.Env) (pull.Puller, error)
}

// Registry is the kinds of source this Steward can pull, by name. The
// composition root (internal/server) builds it from the provider packages.
type Registry map[string]Kind

// Names are the registered kinds, sorted.
func (r Registry) Names() []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// settingsOf is the pointer to a provider's Settings, which validates itself.
type settingsOf[S any] interface {
	*S
	Validate() error
}

// secretsOf is a provider's Secrets, checked against its settings.
type secretsOf[S any] interface {
	Validate(settings S) error
}

// Provider adapts a provider package with pull.go's shape (Settings with
// Validate, Secrets with Validate(Settings) whose fields are secret.String,
// New) to a Kind. Settings are decoded strictly: an unknown field is an
// error naming it.
func Provider[S any, PS settingsOf[S], T secretsOf[S]](name string, newFn func(S, T, pull.Env) (pull.Puller, error)) Kind {
	decode := func(settings json.RawMessage, secrets store.SourceSecrets) (S, T, error) {
		var s S
		var t T
		if err := decodeSettings(settings, &s); err != nil {
			return s, t, err
		}
		if err := PS(&s).Validate(); err != nil {
			return s, t, atField("settings", err)
		}
		m := make(map[string]string, len(secrets))
		for k, v := range secrets {
			m[k] = v.Reveal()
		}
		b, err := json.Marshal(m)
		if err != nil {
			return s, t, err
		}
		if err := json.Unmarshal(b, &t); err != nil {
			return s, t, steward.AtField("secrets", steward.Errorf(steward.CodeInvalid, "secrets do not fit kind %s", name))
		}
		return s, t, nil
	}
	return Kind{
		Name:         name,
		SecretFields: secretFields(reflect.TypeFor[T]()),
		Check: func(settings json.RawMessage, secrets store.SourceSecrets) error {
			s, t, err := decode(settings, secrets)
			if err != nil {
				return err
			}
			return atField("secrets", t.Validate(s))
		},
		New: func(settings json.RawMessage, secrets store.SourceSecrets, env pull.Env) (pull.Puller, error) {
			s, t, err := decode(settings, secrets)
			if err != nil {
				return nil, err
			}
			return newFn(s, t, env)
		},
	}
}

func decodeSettings(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			return steward.AtField("settings", steward.Errorf(steward.CodeInvalid, "settings has an unknown field %s", f))
		}
		return steward.AtField("settings", steward.Errorf(steward.CodeInvalid, "settings: %s", strings.TrimPrefix(msg, "json: ")))
	}
	return nil
}

// atField names field (prefixing a field the error already names) on a
// *steward.Error; other errors become CodeInvalid at field.
func atField(field string, err error) error {
	if err == nil {
		return nil
	}
	var e *steward.Error
	if !asError(err, &e) {
		return steward.AtField(field, steward.WrapError(steward.CodeInvalid, err, "%s: %s", field, err.Error()))
	}
	if e.Field != "" && !strings.HasPrefix(e.Field, field+".") && e.Field != field {
		return steward.AtField(field+"."+e.Field, e)
	}
	if e.Field == "" {
		return steward.AtField(field, e)
	}
	return e
}

// secretFields lists the JSON names of t's secret.String fields.
func secretFields(t reflect.Type) []string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	st := reflect.TypeFor[secret.String]()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type != st || !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" && tag != "-" {
			name = tag
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
