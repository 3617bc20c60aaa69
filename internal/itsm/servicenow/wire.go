package servicenow

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/itsm"
)

// timeLayout is the raw date-time format: UTC, no zone (reference §0).
const timeLayout = "2006-01-02 15:04:05"

// value is one field of a record in any of the renderings of reference
// §2.4: a plain string; {"link","value"} for references;
// {"display_value","value"} with sysparm_display_value=all. Recorded
// answers also carry JSON numbers, booleans and null, which are kept as
// their text (numbers with a zero fraction in integer form).
type value struct {
	raw        string
	display    string
	hasDisplay bool
}

func (v *value) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var obj struct {
			Value        json.RawMessage `json:"value"`
			DisplayValue json.RawMessage `json:"display_value"`
		}
		if err := json.Unmarshal(b, &obj); err != nil {
			return err
		}
		raw, err := scalar(obj.Value)
		if err != nil {
			return err
		}
		v.raw = raw
		if obj.DisplayValue != nil {
			d, err := scalar(obj.DisplayValue)
			if err != nil {
				return err
			}
			v.display, v.hasDisplay = d, true
			if obj.Value == nil { // sysparm_display_value=true renders references as display value + link only
				v.raw = d
			}
		}
		return nil
	}
	raw, err := scalar(b)
	v.raw = raw
	return err
}

func scalar(b json.RawMessage) (string, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return "", nil
	}
	switch b[0] {
	case '"':
		var s string
		err := json.Unmarshal(b, &s)
		return s, err
	case '{', '[':
		return "", errors.New("nested JSON value")
	}
	return itsm.CanonicalNumber(string(b)), nil // number or boolean literal
}

// record is one Table API record, keyed by field name (dot-walked fields
// keep their dotted name, reference §2.3).
type record map[string]value

func (r record) get(f string) string { return r[f].raw }

func (r record) has(f string) bool {
	_, ok := r[f]
	return ok
}

// envelope is the Table API's answer shape (reference §0).
type envelope struct {
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// errorBody is the error envelope's "error" object; detail may be null, a
// string, or (seen nowhere, tolerated) anything else.
type errorBody struct {
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail"`
}

func (e errorBody) detail() string {
	d := bytes.TrimSpace(e.Detail)
	if len(d) == 0 || string(d) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(d, &s) == nil {
		return s
	}
	return string(d)
}

// ticketFields are the fields every ticket read asks for (sysparm_fields):
// assigned_to.email dot-walks so a sync needs no user lookup per ticket;
// resolution_code is the problem table's close code.
var ticketFields = strings.Join([]string{
	"sys_id", "number", "state", "assigned_to", "assigned_to.email", "correlation_id",
	"sys_updated_on", "sys_mod_count", "sys_updated_by", "close_code", "close_notes", "resolution_code",
}, ",")

const userFields = "sys_id,user_name,name,email,manager,active"

// ticketFromRecord converts a record of table. base is the table whose
// state model applies.
func (c *Client) ticketFromRecord(table string, r record) *itsm.Ticket {
	base := c.baseTable(table)
	t := &itsm.Ticket{
		Table:           table,
		SysID:           r.get("sys_id"),
		Number:          r.get("number"),
		RawState:        itsm.CanonicalNumber(r.get("state")),
		AssignedToSysID: r.get("assigned_to"),
		AssignedToEmail: r.get("assigned_to.email"),
		CorrelationID:   r.get("correlation_id"),
		UpdatedBy:       r.get("sys_updated_by"),
		CloseCode:       r.get("close_code"),
		CloseNotes:      r.get("close_notes"),
	}
	if base == "problem" && t.CloseCode == "" {
		t.CloseCode = r.get("resolution_code")
	}
	t.Link = c.base + "/nav_to.do?uri=" + table + ".do?sys_id=" + t.SysID
	if st := r["state"]; st.hasDisplay {
		t.StateLabel = st.display
	} else {
		t.StateLabel = itsm.StateLabel(base, t.RawState)
	}
	if s, err := itsm.NormalizeState(base, t.RawState); err == nil {
		t.State = s
	}
	if ts, err := time.ParseInLocation(timeLayout, r.get("sys_updated_on"), time.UTC); err == nil {
		t.UpdatedAt = ts
	}
	if n, err := strconv.Atoi(r.get("sys_mod_count")); err == nil {
		t.ModCount = n
	}
	return t
}

func userFromRecord(r record) *itsm.User {
	return &itsm.User{
		SysID:        r.get("sys_id"),
		UserName:     r.get("user_name"),
		Name:         r.get("name"),
		Email:        r.get("email"),
		ManagerSysID: r.get("manager"),
		Active:       r.get("active") == "true",
	}
}

// baseTable returns the table whose state model applies to table: itself
// for incident, problem and change_request, else the one
// Config.TableBase names.
func (c *Client) baseTable(table string) string {
	if b := itsm.BaseTable(table); b != "" {
		return b
	}
	if b, ok := c.cfg.TableBase[table]; ok {
		return b
	}
	return table
}
