package snowemu_test

// Compare the emulator with responses captured from real instances
// (testdata/servicenow, provenance in its README).

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/snowemu"
)

func loadSample(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "servicenow", name))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

// requireTaskShape checks that got has every field of the real task record
// want, with the same JSON shape: plain strings stay strings, {link,value}
// references stay {link,value} objects (or "" when empty in got).
func requireTaskShape(t *testing.T, base string, want, got map[string]any) {
	t.Helper()
	for k, wv := range want {
		gv, ok := got[k]
		require.True(t, ok, "field %s of the real record is missing", k)
		switch w := wv.(type) {
		case string:
			if _, isObj := gv.(map[string]any); isObj {
				require.Failf(t, "shape", "field %s: real value is a string, emulator gave an object", k)
			}
			require.IsType(t, "", gv, "field %s", k)
		case map[string]any:
			if s, isStr := gv.(string); isStr {
				require.Empty(t, s, "field %s: a non-empty reference must be an object", k)
				continue
			}
			g, isObj := gv.(map[string]any)
			require.True(t, isObj, "field %s: want reference object, got %T", k, gv)
			require.ElementsMatch(t, mapKeys(w), mapKeys(g), "field %s", k)
			// The real link ends in /api/now/table/<table>/<value>; ours too.
			wl := regexp.MustCompile(`/api/now/table/([a-z_]+)/`).FindStringSubmatch(w["link"].(string))
			require.NotNil(t, wl)
			require.Equal(t, base+"/api/now/table/"+wl[1]+"/"+g["value"].(string), g["link"], "field %s", k)
		default:
			t.Fatalf("field %s: unexpected sample type %T", k, wv)
		}
	}
	for k, gv := range got {
		if _, isStr := gv.(string); !isStr {
			_, isObj := gv.(map[string]any)
			require.True(t, isObj, "field %s has type %T", k, gv)
		}
	}
}

func mapKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestSamplesTaskRecordShape(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})

	created := loadSample(t, "create_ticket.json")["result"].(map[string]any)
	r := b.do(t, http.MethodPost, "/api/now/table/incident", `{"short_description":"My mouse is not working.","impact":"3","urgency":"3"}`)
	require.Equal(t, http.StatusCreated, r.status)
	requireTaskShape(t, b.srv.URL, created, r.result(t))

	_, err := b.emu.Create("problem", snowemu.Record{"short_description": "p"}, "")
	require.NoError(t, err)
	_, err = b.emu.Create("change_request", snowemu.Record{"short_description": "c"}, "")
	require.NoError(t, err)
	list := loadSample(t, "task_ticket_more_than_5.json")["result"].([]any)
	require.Len(t, list, 5)
	for _, table := range []string{"incident", "problem", "change_request"} {
		r := b.do(t, http.MethodGet, "/api/now/table/"+table+"?sysparm_limit=5", "")
		res := r.results(t)
		require.Len(t, res, 1)
		for _, real := range list {
			requireTaskShape(t, b.srv.URL, real.(map[string]any), res[0].(map[string]any))
		}
	}
}

// sampleValue renders a value of the captured change record as the string
// the Table API would send (the capture turned some into numbers/booleans,
// see testdata/servicenow/README.md).
func sampleValue(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case string:
		return x
	}
	return ""
}

func TestSamplesChangeRequestDisplayAll(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	real := loadSample(t, "create_co_from_template_result.json")["result"].(map[string]any)

	rec := b.create(t, "change_request", `{"type":"standard","short_description":"Add network switch to cabinet"}`)
	r := b.do(t, http.MethodGet, "/api/now/table/change_request/"+rec["sys_id"].(string)+"?sysparm_display_value=all&sysparm_exclude_reference_link=true", "")
	got := r.result(t)

	for k, wv := range real {
		if k == "__meta" || strings.HasPrefix(k, "u_") {
			continue // capture artefact and instance customisations
		}
		gv, ok := got[k]
		require.True(t, ok, "field %s of the real change_request is missing", k)
		g, isObj := gv.(map[string]any)
		require.True(t, isObj, "field %s: want {display_value,value}, got %T", k, gv)
		require.ElementsMatch(t, []string{"display_value", "value"}, mapKeys(g), "field %s", k)
		require.IsType(t, "", g["display_value"], "field %s", k)
		require.IsType(t, "", g["value"], "field %s", k)
		_ = wv
	}
	// Fields whose values do not depend on the instance's data must match
	// the capture exactly, value and label.
	for _, k := range []string{
		"type", "state", "upon_reject", "upon_approval", "phase", "phase_state", "approval", "sys_class_name",
		"impact", "urgency", "priority", "risk", "scope", "escalation", "conflict_status", "sys_domain",
		"sys_domain_path", "knowledge", "active", "made_sla", "on_hold", "cab_required", "production_system",
		"outside_maintenance_schedule", "unauthorized", "reassignment_count", "sys_mod_count", "category",
		"short_description", "variables", "closed_by", "assigned_to", "close_code",
	} {
		w := real[k].(map[string]any)
		g := got[k].(map[string]any)
		require.Equal(t, w["display_value"], g["display_value"], "display_value of %s", k)
		require.Equal(t, sampleValue(w["value"]), g["value"], "value of %s", k)
	}
}

func TestSamplesUserLookups(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	_, err := b.emu.AddUser(snowemu.UserSpec{UserName: "beth.anglin2", FirstName: "Beth", LastName: "Anglin", Email: "beth.anglin@example.com"})
	require.NoError(t, err)

	real := loadSample(t, "multiple-users-found.json")["result"].([]any)
	q := url.QueryEscape("email=beth.anglin@example.com^active=true")
	r := b.do(t, http.MethodGet, "/api/now/table/sys_user?sysparm_fields=sys_id&sysparm_limit=2&sysparm_query="+q, "")
	got := r.results(t)
	require.Len(t, got, len(real))
	for i := range real {
		require.Equal(t, mapKeys(real[i].(map[string]any)), mapKeys(got[i].(map[string]any)))
		require.Regexp(t, sysIDPattern, got[i].(map[string]any)["sys_id"])
	}

	notFound, err := os.ReadFile(filepath.Join("..", "..", "testdata", "servicenow", "user-not-found.json"))
	require.NoError(t, err)
	r = b.do(t, http.MethodGet, "/api/now/table/sys_user?sysparm_fields=sys_id&sysparm_query="+url.QueryEscape("email=nobody@example.com"), "")
	require.JSONEq(t, string(notFound), string(r.body))
}
