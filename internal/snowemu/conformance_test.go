package snowemu_test

// Conformance tests, one (or more) per line of the reference's §9 checklist,
// all over real HTTP.

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/snowemu"
)

var (
	sysIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
	datePattern  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)
)

// §9.1: envelopes, string values, UTC dates, 201/204, Location.
func TestChecklist1Envelopes(t *testing.T) {
	t.Parallel()

	t.Run("CreateReadDelete", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		r := b.do(t, http.MethodPost, "/api/now/table/incident?sysparm_exclude_reference_link=true",
			`{"short_description":"Disk full on db-01","impact":2,"urgency":"1","u_unknown":"ignored","active":true}`)
		require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
		require.Equal(t, "application/json;charset=UTF-8", r.header.Get("Content-Type"))
		require.Regexp(t, `^[0-9a-f]{12}$`, r.header.Get("X-Transaction-ID"))
		require.Equal(t, "true", r.header.Get("X-Is-Logged-In"))
		require.Equal(t, "ServiceNow", r.header.Get("Server"))
		require.Equal(t, "no-cache,no-store,must-revalidate,max-age=-1", r.header.Get("Cache-Control"))
		rec := r.result(t)
		id, _ := rec["sys_id"].(string)
		require.Regexp(t, sysIDPattern, id)
		require.Equal(t, b.srv.URL+"/api/now/table/incident/"+id, r.header.Get("Location"))
		for k, v := range rec {
			_, isString := v.(string)
			require.True(t, isString, "field %s is %T, want string", k, v)
		}
		require.NotContains(t, rec, "u_unknown")
		require.Equal(t, "2", rec["impact"])
		require.Equal(t, "2024-03-05 14:02:10", rec["sys_created_on"])
		require.Regexp(t, datePattern, rec["opened_at"])
		require.Empty(t, rec["assigned_to"])

		got := b.do(t, http.MethodGet, "/api/now/table/incident/"+id, "")
		require.Equal(t, http.StatusOK, got.status)
		require.Equal(t, id, got.result(t)["sys_id"])

		list := b.do(t, http.MethodGet, "/api/now/table/incident", "")
		require.Equal(t, http.StatusOK, list.status)
		require.Len(t, list.results(t), 1)

		head := b.do(t, http.MethodHead, "/api/now/table/incident/"+id, "")
		require.Equal(t, http.StatusOK, head.status)
		require.Empty(t, head.body)

		del := b.do(t, http.MethodDelete, "/api/now/table/incident/"+id, "")
		require.Equal(t, http.StatusNoContent, del.status)
		require.Empty(t, del.body)
		require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/api/now/table/incident/"+id, "").status)
	})

	t.Run("VersionedPathsAndEmptyList", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		for _, p := range []string{"/api/now/table/incident", "/api/now/v2/table/incident"} {
			r := b.do(t, http.MethodGet, p, "")
			require.Equal(t, http.StatusOK, r.status)
			require.JSONEq(t, `{"result":[]}`, string(r.body))
		}
		// v1 answered 404 for an empty result (§2.1).
		r := b.do(t, http.MethodGet, "/api/now/v1/table/incident", "")
		require.Equal(t, http.StatusNotFound, r.status)
		b.create(t, "incident", `{"short_description":"x"}`)
		require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/now/v1/table/incident", "").status)
	})

	t.Run("ArrayBodyUsesFirstElement", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		rec := b.create(t, "incident", `[{"short_description":"first"},{"short_description":"second"}]`)
		require.Equal(t, "first", rec["short_description"])
		require.Equal(t, 1, b.emu.Count("incident"))
	})

	t.Run("ClientSuppliedSysID", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		rec := b.create(t, "incident", `{"sys_id":"9d3c1197c0a8016501a4e9ab0c3e0a11","short_description":"x"}`)
		require.Equal(t, "9d3c1197c0a8016501a4e9ab0c3e0a11", rec["sys_id"])
	})

	t.Run("NoResponseBody", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		r := b.do(t, http.MethodPost, "/api/now/table/incident", `{"short_description":"x"}`, withHeader("X-no-response-body", "true"))
		require.Equal(t, http.StatusCreated, r.status)
		require.Empty(t, r.body)
		require.Equal(t, 1, b.emu.Count("incident"))
	})

	t.Run("PutAndPatchArePartial", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		rec := b.create(t, "incident", `{"short_description":"x","description":"keep me"}`)
		id := rec["sys_id"].(string)
		for _, m := range []string{http.MethodPut, http.MethodPatch} {
			r := b.do(t, m, "/api/now/table/incident/"+id, `{"short_description":"`+m+`"}`)
			require.Equal(t, http.StatusOK, r.status)
			res := r.result(t)
			require.Equal(t, m, res["short_description"])
			require.Equal(t, "keep me", res["description"])
		}
	})

	t.Run("MethodOverride", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		id := b.create(t, "incident", `{"short_description":"x"}`)["sys_id"].(string)
		r := b.do(t, http.MethodPost, "/api/now/table/incident/"+id, `{"short_description":"patched"}`, withHeader("X-http-method-override", "PATCH"))
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		require.Equal(t, "patched", r.result(t)["short_description"])
		r = b.do(t, http.MethodPost, "/api/now/table/incident/"+id, "", withHeader("X-http-method-override", "DELETE"))
		require.Equal(t, http.StatusNoContent, r.status)
	})
}

// §9.2: reference rendering matrix with version-aware links.
func TestChecklist2ReferenceMatrix(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	beth := b.user(t, "beth.anglin")
	rec := b.create(t, "incident", mustJSON(t, map[string]string{"short_description": "x", "assigned_to": beth, "state": "2"}))
	id := rec["sys_id"].(string)

	for _, version := range []string{"", "v1/", "v2/"} {
		link := b.srv.URL + "/api/now/" + version + "table/sys_user/" + beth
		tests := []struct {
			params   string
			assigned string
			empty    string
			state    string
		}{
			{"", fmt.Sprintf(`{"link":%q,"value":%q}`, link, beth), `""`, `"2"`},
			{"&sysparm_exclude_reference_link=true", fmt.Sprintf(`%q`, beth), `""`, `"2"`},
			{"&sysparm_display_value=true", fmt.Sprintf(`{"display_value":"Beth Anglin","link":%q}`, link), `""`, `"In Progress"`},
			{"&sysparm_display_value=true&sysparm_exclude_reference_link=true", `"Beth Anglin"`, `""`, `"In Progress"`},
			{"&sysparm_display_value=all", fmt.Sprintf(`{"display_value":"Beth Anglin","link":%q,"value":%q}`, link, beth), `{"display_value":"","value":""}`, `{"display_value":"In Progress","value":"2"}`},
			{"&sysparm_display_value=all&sysparm_exclude_reference_link=true", fmt.Sprintf(`{"display_value":"Beth Anglin","value":%q}`, beth), `{"display_value":"","value":""}`, `{"display_value":"In Progress","value":"2"}`},
		}
		for _, tc := range tests {
			r := b.do(t, http.MethodGet, "/api/now/"+version+"table/incident/"+id+"?sysparm_fields=assigned_to,caller_id,state"+tc.params, "")
			require.Equal(t, http.StatusOK, r.status)
			want := fmt.Sprintf(`{"result":{"assigned_to":%s,"caller_id":%s,"state":%s}}`, tc.assigned, tc.empty, tc.state)
			require.JSONEq(t, want, string(r.body), "version %q params %q", version, tc.params)
		}
	}

	// Dot-walked sysparm_fields keys (§2.3).
	r := b.do(t, http.MethodGet, "/api/now/table/incident/"+id+"?sysparm_fields=number,assigned_to.email,nope", "")
	require.JSONEq(t, `{"result":{"number":"INC0010001","assigned_to.email":"beth.anglin@example.com"}}`, string(r.body))
}

// user returns a seeded user's sys_id.
func (b *testBundle) user(t *testing.T, name string) string {
	t.Helper()
	id, err := b.emu.UserID(name)
	require.NoError(t, err)
	return id
}

// §9.3: X-Total-Count and Link exactly as observed.
func TestChecklist3Paging(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	for i := range 73 {
		_, err := b.emu.Create("incident", snowemu.Record{"short_description": fmt.Sprintf("inc %d", i)}, "")
		require.NoError(t, err)
	}
	base := b.srv.URL + "/api/now/table/incident"

	t.Run("FirstPageLimit1", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodGet, "/api/now/table/incident?sysparm_limit=1", "")
		require.Equal(t, "73", r.header.Get("X-Total-Count"))
		want := "<" + base + `?sysparm_limit=1&sysparm_offset=0>;rel="first",` +
			"<" + base + `?sysparm_limit=1&sysparm_offset=-1>;rel="prev",` +
			"<" + base + `?sysparm_limit=1&sysparm_offset=1>;rel="next",` +
			"<" + base + `?sysparm_limit=1&sysparm_offset=72>;rel="last"`
		require.Equal(t, want, r.header.Get("Link"))
		require.Len(t, r.results(t), 1)
	})

	t.Run("ParamsEchoedLimitOffsetLast", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodGet, "/api/now/table/incident?sysparm_offset=10&query=x&sysparm_limit=5&sysparm_query=active%3Dtrue&display_value=True", "")
		require.Equal(t, "73", r.header.Get("X-Total-Count"))
		p := base + "?query=x&sysparm_query=active%3Dtrue&display_value=True&"
		want := "<" + p + `sysparm_limit=5&sysparm_offset=0>;rel="first",` +
			"<" + p + `sysparm_limit=5&sysparm_offset=5>;rel="prev",` +
			"<" + p + `sysparm_limit=5&sysparm_offset=15>;rel="next",` +
			"<" + p + `sysparm_limit=5&sysparm_offset=70>;rel="last"`
		require.Equal(t, want, r.header.Get("Link"))
		res := r.results(t)
		require.Len(t, res, 5)
		require.Equal(t, "INC0010011", res[0].(map[string]any)["number"])
	})

	t.Run("LastPageHasNoNext", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodGet, "/api/now/table/incident?sysparm_limit=10&sysparm_offset=70", "")
		require.Len(t, r.results(t), 3)
		require.NotContains(t, r.header.Get("Link"), `rel="next"`)
		require.Contains(t, r.header.Get("Link"), `sysparm_offset=70>;rel="last"`)
	})

	t.Run("DefaultLimit10000", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodGet, "/api/now/table/incident?sysparm_fields=number", "")
		require.Len(t, r.results(t), 73)
		require.Contains(t, r.header.Get("Link"), "sysparm_fields=number&sysparm_limit=10000&sysparm_offset=0>;rel=\"first\"")
	})

	t.Run("NoCountAndSuppressedHeader", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodGet, "/api/now/table/incident?sysparm_limit=2&sysparm_no_count=true", "")
		require.Empty(t, r.header.Values("X-Total-Count"))
		require.NotEmpty(t, r.header.Get("Link"))
		r = b.do(t, http.MethodGet, "/api/now/table/incident?sysparm_limit=2&sysparm_suppress_pagination_header=true", "")
		require.Empty(t, r.header.Values("Link"))
		require.Equal(t, "73", r.header.Get("X-Total-Count"))
	})

	t.Run("StrictPagingOmitsPrev", func(t *testing.T) {
		t.Parallel()
		sb := setup(t, snowemu.Options{StrictPaging: true})
		_, err := sb.emu.Create("incident", snowemu.Record{"short_description": "x"}, "")
		require.NoError(t, err)
		r := sb.do(t, http.MethodGet, "/api/now/table/incident?sysparm_limit=1", "")
		require.NotContains(t, r.header.Get("Link"), `rel="prev"`)
		require.Equal(t, "1", r.header.Get("X-Total-Count"))
	})
}

// §9.4: the encoded query engine.
func TestChecklist4Queries(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	beth, don := b.user(t, "beth.anglin"), b.user(t, "don.goodliffe")
	// INC0010001..5, created one day apart; the clock ends at 2024-03-09.
	seed := []snowemu.Record{
		{"short_description": "Disk full on db-01", "impact": "1", "urgency": "1", "caller_id": beth, "correlation_id": "mon-1"},
		{"short_description": "Network storage unavailable", "impact": "2", "urgency": "2", "caller_id": don, "assigned_to": beth},
		{"short_description": "DISK latency", "impact": "3", "urgency": "3", "caller_id": beth, "description": "slow"},
		{"short_description": "Printer jam", "impact": "2", "urgency": "3", "state": "2", "assigned_to": don},
		{"short_description": "VPN down", "impact": "1", "urgency": "2", "state": "3", "hold_reason": "4"},
	}
	for i, rec := range seed {
		if i > 0 {
			b.clock.Advance(24 * time.Hour)
		}
		_, err := b.emu.Create("incident", rec, "")
		require.NoError(t, err)
	}
	// priorities: 1, 3, 5, 4, 2. Created: 03-05 .. 03-09 14:02:10.

	tests := []struct {
		name  string
		query string
		want  string // comma-separated numbers suffixes, in order
	}{
		{"Equals", "correlation_id=mon-1", "1"},
		{"EqualsCaseInsensitive", "correlation_id=MON-1", "1"},
		{"NotEquals", "state!=1^ORDERBYnumber", "4,5"},
		{"In", "priorityIN1,2", "1,5"},
		{"NotIn", "priorityNOT IN1,2", "2,3,4"},
		{"NumericLessEqual", "priority<=3", "1,2,5"},
		{"NumericGreater", "priority>3", "3,4"},
		{"Like", "short_descriptionLIKEdisk", "1,3"},
		{"NotLike", "short_descriptionNOT LIKEdisk", "2,4,5"},
		{"StartsWith", "numberSTARTSWITHINC001000", "1,2,3,4,5"},
		{"EndsWith", "short_descriptionENDSWITHdown", "5"},
		{"IsEmpty", "assigned_toISEMPTY", "1,3,5"},
		{"IsNotEmpty", "assigned_toISNOTEMPTY", "2,4"},
		{"Anything", "descriptionANYTHING", "1,2,3,4,5"},
		{"EmptyString", "descriptionEMPTYSTRING", "1,2,4,5"},
		{"OrBindsToPrecedingTerm", "priority<=3^short_descriptionLIKEdisk^ORshort_descriptionLIKEprinter", "1"},
		{"NewQuery", "priority=1^NQstate=3", "1,5"},
		{"OrderByDesc", "ORDERBYDESCpriority", "3,4,2,5,1"},
		{"OrderByChain", "ORDERBYimpact^ORDERBYDESCurgency", "5,1,4,2,3"},
		{"DotWalk", "caller_id.email=beth.anglin@example.com", "1,3"},
		{"DotWalkStartsWith", "assigned_to.nameSTARTSWITHdon", "4"},
		{"ReferenceLikeUsesDisplayValue", "assigned_toLIKEanglin", "2"},
		{"Chronological", "sys_created_on>=2024-03-07 00:00:00", "3,4,5"},
		{"ChronologicalDateOnly", "sys_created_on<2024-03-07", "1,2"},
		{"Between", "sys_created_onBETWEEN2024-03-06 00:00:00@2024-03-08 00:00:00", "2,3"},
		{"DateGenerate", "sys_created_onBETWEENjavascript:gs.dateGenerate('2024-03-06','start')@javascript:gs.dateGenerate('2024-03-07','end')", "2,3"},
		{"DaysAgo", "sys_created_on>=javascript:gs.daysAgoStart(1)", "4,5"},
		{"DaysAgoEnd", "sys_created_on<=javascript:gs.daysAgoEnd(3)", "1,2"},
		{"BeginningOfToday", "sys_created_on>=javascript:gs.beginningOfToday()^sys_created_on<=javascript:gs.endOfToday()", "5"},
		{"DaysAgoExact", "sys_created_on<javascript:gs.daysAgo(3)", "1"},
		{"On", "sys_created_onONToday@javascript:gs.daysAgoStart(0)@javascript:gs.daysAgoEnd(0)", "5"},
		{"GetUserID", "opened_by=javascript:gs.getUserID()^priority=1", "1"},
		{"InvalidFieldIgnored", "u_typo=1^priority=1", "1"},
		{"AllInvalidReturnsAll", "u_typo=1", "1,2,3,4,5"},
		{"LongestOperatorMatch", "priority>=5^ORpriority<=1", "1,3"},
		{"SameAs", "caller_idSAMEASassigned_to", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := b.do(t, http.MethodGet, "/api/now/table/incident?sysparm_fields=number&sysparm_query="+url.QueryEscape(tc.query), "")
			require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
			var got []string
			for _, x := range r.results(t) {
				got = append(got, strings.TrimPrefix(x.(map[string]any)["number"].(string), "INC001000"))
			}
			require.Equal(t, tc.want, strings.Join(got, ","))
		})
	}

	t.Run("NameValuePairsWithDisplayValues", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodGet, "/api/now/table/incident?sysparm_fields=number&state=on%20hold", "")
		require.JSONEq(t, `{"result":[{"number":"INC0010005"}]}`, string(r.body))
		r = b.do(t, http.MethodGet, "/api/now/table/incident?sysparm_fields=number&assigned_to=Don%20Goodliffe&active=true", "")
		require.JSONEq(t, `{"result":[{"number":"INC0010004"}]}`, string(r.body))
	})

	t.Run("InvalidQueryReturnsNoRows", func(t *testing.T) {
		t.Parallel()
		nb := setup(t, snowemu.Options{InvalidQueryReturnsNoRows: true})
		_, err := nb.emu.Create("incident", snowemu.Record{"short_description": "x"}, "")
		require.NoError(t, err)
		r := nb.do(t, http.MethodGet, "/api/now/table/incident?sysparm_query=u_typo%3D1%5Eactive%3Dtrue", "")
		require.JSONEq(t, `{"result":[]}`, string(r.body))
		r = nb.do(t, http.MethodGet, "/api/now/table/incident?sysparm_query=active%3Dtrue", "")
		require.Len(t, r.results(t), 1)
	})

	t.Run("CaseSensitiveSwitch", func(t *testing.T) {
		t.Parallel()
		cb := setup(t, snowemu.Options{CaseSensitiveMatching: true})
		_, err := cb.emu.Create("incident", snowemu.Record{"short_description": "Disk", "correlation_id": "Abc"}, "")
		require.NoError(t, err)
		r := cb.do(t, http.MethodGet, "/api/now/table/incident?sysparm_query=correlation_id%3Dabc", "")
		require.Empty(t, r.results(t))
		r = cb.do(t, http.MethodGet, "/api/now/table/incident?sysparm_query=correlation_id%3DAbc", "")
		require.Len(t, r.results(t), 1)
	})
}

// §9.5: error bodies and 401 challenge.
func TestChecklist5Errors(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})

	t.Run("NoCredentials", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodGet, "/api/now/table/incident", "", noAuth())
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Equal(t, `BASIC realm="Service-now"`, r.header.Get("WWW-Authenticate"))
		require.Equal(t, `{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}`, string(r.body))
	})
	t.Run("BadCredentials", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodGet, "/api/now/table/incident", "", withBasic("admin", "wrong"))
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Equal(t, `BASIC realm="Service-now"`, r.header.Get("WWW-Authenticate"))
		require.Equal(t, `{"error":{"message":"User is not authenticated","detail":"Required to provide Auth information"},"status":"failure"}`, string(r.body))
	})
	t.Run("SeededUserCanLogIn", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodGet, "/api/now/table/incident", "", withBasic("beth.anglin", snowemu.DefaultUserPassword))
		require.Equal(t, http.StatusOK, r.status)
	})
	t.Run("InvalidTable", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodGet, "/api/now/table/u_not_a_table", "")
		require.Equal(t, http.StatusBadRequest, r.status)
		require.Equal(t, `{"error":{"message":"Invalid table u_not_a_table","detail":null},"status":"failure"}`, string(r.body))
	})
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		for _, m := range []string{http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete} {
			r := b.do(t, m, "/api/now/table/incident/9d3c1197c0a8016501a4e9ab0c3e0a11", `{"state":"2"}`)
			require.Equal(t, http.StatusNotFound, r.status, m)
			require.Equal(t, `{"error":{"message":"No Record found","detail":"Record doesn't exist or ACL restricts the record retrieval"},"status":"failure"}`, string(r.body))
		}
	})
	t.Run("PayloadTooLarge", func(t *testing.T) {
		t.Parallel()
		big := `{"description":"` + strings.Repeat("a", 10485760) + `"}`
		r := b.do(t, http.MethodPost, "/api/now/table/incident", big)
		require.Equal(t, http.StatusBadRequest, r.status)
		want := fmt.Sprintf(`{"error":{"message":"Exception while reading request","detail":"Rejected large REST payload with content-length = %d bytes. Max allowed: 10485760 bytes."},"status":"failure"}`, len(big))
		require.Equal(t, want, string(r.body))
	})
	t.Run("UnknownURI", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodGet, "/api/now/nothing/here", "")
		require.Equal(t, http.StatusBadRequest, r.status)
		require.Equal(t, `{"error":{"message":"Requested URI does not represent any resource","detail":null},"status":"failure"}`, string(r.body))
	})
	t.Run("ReadOnlySystemTable", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodPost, "/api/now/table/sys_audit", `{"fieldname":"x"}`)
		require.Equal(t, http.StatusForbidden, r.status)
		require.Equal(t, `{"error":{"message":"Operation Failed","detail":"ACL Exception Insert Failed due to security constraints"},"status":"failure"}`, string(r.body))
	})
	t.Run("DataPolicy", func(t *testing.T) {
		t.Parallel()
		id := b.create(t, "incident", `{"short_description":"x"}`)["sys_id"].(string)
		r := b.patch(t, "incident", id, `{"state":"6"}`)
		require.Equal(t, http.StatusForbidden, r.status)
		require.Equal(t, `{"error":{"message":"Operation Failed","detail":"Data Policy Exception: \n\tThe following fields are mandatory: Resolution code, Close notes"},"status":"failure"}`, string(r.body))
	})
}
