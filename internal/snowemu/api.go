package snowemu

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ServeHTTP implements http.Handler.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.countRequest(r.Method, r.URL.Path)
	e.mux.ServeHTTP(w, r)
}

func (e *Emulator) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/emulator/admin/", e.handleAdmin)
	mux.HandleFunc("GET /{$}", e.handleUI)
	// Record pages, where ticket links lead (record_page.go).
	mux.HandleFunc("GET /nav_to.do", e.handleNavTo)
	for _, name := range taskTables {
		mux.HandleFunc("GET /"+name+".do", e.handleRecord(name))
	}
	mux.Handle("/oauth_token.do", e.withFaults(http.HandlerFunc(e.handleToken)))
	mux.Handle("/", e.withFaults(http.HandlerFunc(e.handleAPI)))
	return mux
}

// setStdHeaders sets the headers real instances send on every API answer (§0).
func (e *Emulator) setStdHeaders(w http.ResponseWriter, loggedIn bool) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	var id [6]byte
	e.faultMu.Lock()
	for i := range id {
		id[i] = byte(e.rnd.UintN(256))
	}
	e.faultMu.Unlock()
	h.Set("X-Transaction-ID", hex.EncodeToString(id[:]))
	h.Set("X-Is-Logged-In", strconv.FormatBool(loggedIn))
	h.Set("Server", "ServiceNow")
	h.Set("Cache-Control", "no-cache,no-store,must-revalidate,max-age=-1")
	h.Set("Pragma", "no-store,no-cache")
	h.Set("Expires", "0")
	h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Server-Timing", "sem_wait;dur=0, sesh_wait;dur=0")
}

// writeRaw writes a JSON body with the standard headers. HEAD requests get
// the headers only.
func (e *Emulator) writeRaw(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	e.setStdHeaders(w, status != http.StatusUnauthorized)
	if status == http.StatusUnauthorized && r.URL.Path != "/oauth_token.do" {
		w.Header().Set("WWW-Authenticate", authHeaderValue)
	}
	if body != nil {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead && body != nil {
		_, _ = w.Write(body)
	}
}

// errorJSON renders the error envelope of §0.
func errorJSON(aerr *apiError) []byte {
	b := []byte(`{"error":{"message":`)
	b = appendJSONString(b, aerr.message)
	b = append(b, `,"detail":`...)
	if aerr.detail == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, *aerr.detail)
	}
	return append(b, `},"status":"failure"}`...)
}

func (e *Emulator) writeError(w http.ResponseWriter, r *http.Request, aerr *apiError) {
	e.writeRaw(w, r, aerr.status, errorJSON(aerr))
}

// baseURL is the instance URL used in links (§2.5): the configured one, or
// the request's scheme and Host so clients can follow links.
func (e *Emulator) baseURL(r *http.Request) string {
	if e.opts.InstanceURL != "" {
		return strings.TrimRight(e.opts.InstanceURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

// tablePath is a parsed Table API path.
type tablePath struct {
	version string // "", "v1/" or "v2/"
	table   string
	sysID   string
}

// parseTablePath parses /api/now[/v1|/v2]/table/{table}[/{sys_id}].
func parseTablePath(p string) (tablePath, bool) {
	rest, ok := strings.CutPrefix(p, "/api/now/")
	if !ok {
		return tablePath{}, false
	}
	var tp tablePath
	if v, after, found := strings.Cut(rest, "/"); found && (v == "v1" || v == "v2") {
		tp.version, rest = v+"/", after
	}
	rest, ok = strings.CutPrefix(rest, "table/")
	if !ok {
		return tablePath{}, false
	}
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	switch len(parts) {
	case 1:
		tp.table = parts[0]
	case 2:
		tp.table, tp.sysID = parts[0], parts[1]
	default:
		return tablePath{}, false
	}
	return tp, tp.table != ""
}

// acceptsJSON reports whether the Accept header allows JSON; a missing
// Accept or */* defaults to JSON as curl's requests do (§0).
func acceptsJSON(h string) bool {
	if h == "" {
		return true
	}
	for _, part := range strings.Split(h, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "*/*", "application/*", "application/json", "text/json":
			return true
		}
	}
	return false
}

func (e *Emulator) handleAPI(w http.ResponseWriter, r *http.Request) {
	method := r.Method
	if o := r.Header.Get("X-http-method-override"); o != "" {
		method = strings.ToUpper(o) // §0
	}
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		e.writeError(w, r, errNullDetail(e.opts.UnknownURIStatus, "Requested URI does not represent any resource"))
		return
	}
	a, aerr := e.authenticate(r)
	if aerr != nil {
		e.writeError(w, r, aerr)
		return
	}
	tp, ok := parseTablePath(r.URL.Path)
	if !ok {
		e.writeError(w, r, errNullDetail(e.opts.UnknownURIStatus, "Requested URI does not represent any resource"))
		return
	}
	if !acceptsJSON(r.Header.Get("Accept")) {
		e.writeError(w, r, errBody(http.StatusNotAcceptable, "Requested response format not supported", "Supported: application/json"))
		return
	}
	if !e.rateCheck(w, r, a, method, tp.table) {
		return
	}
	def := e.schema[tp.table]
	if def == nil {
		e.writeError(w, r, errInvalidTable(tp.table))
		return
	}
	q := r.URL.Query()
	o := &renderOpts{
		display:     parseDisplay(q.Get("sysparm_display_value")),
		excludeLink: strings.EqualFold(q.Get("sysparm_exclude_reference_link"), "true"),
		fields:      parseFields(q.Get("sysparm_fields")),
		base:        e.baseURL(r),
		version:     tp.version,
	}
	switch {
	case (method == http.MethodGet || method == http.MethodHead) && tp.sysID == "":
		e.handleList(w, r, a, def, tp, o)
	case (method == http.MethodGet || method == http.MethodHead) && tp.sysID != "":
		e.handleGet(w, r, def, tp, o)
	case method == http.MethodPost && tp.sysID == "":
		e.handleWrite(w, r, a, def, tp, o, "")
	case (method == http.MethodPut || method == http.MethodPatch) && tp.sysID != "":
		e.handleWrite(w, r, a, def, tp, o, tp.sysID)
	case method == http.MethodDelete && tp.sysID != "":
		e.handleDelete(w, r, def, tp)
	default:
		e.writeError(w, r, errBody(http.StatusMethodNotAllowed, "Method not Supported", "Method "+method+" not supported for this resource"))
	}
}

func (e *Emulator) handleGet(w http.ResponseWriter, r *http.Request, def *tableDef, tp tablePath, o *renderOpts) {
	e.mu.RLock()
	rec := e.tables[def.name].byID[tp.sysID]
	var body []byte
	if rec != nil {
		body = append(make([]byte, 0, 4096), `{"result":`...)
		body = e.renderRecordLocked(body, def, rec.fields, o)
		body = append(body, '}')
	}
	e.mu.RUnlock()
	if rec == nil {
		e.writeError(w, r, errNotFound())
		return
	}
	e.writeRaw(w, r, http.StatusOK, body)
}

// nameValueQuery turns name=value parameters into an encoded query (§2.3);
// choice and reference fields accept display values.
func (e *Emulator) nameValueQuery(def *tableDef, raw string) string {
	var terms []string
	for _, kv := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(kv, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || k == "" || strings.HasPrefix(k, "sysparm_") {
			continue
		}
		f := def.field(k)
		if f == nil {
			continue // unknown parameters are ignored
		}
		switch f.kind {
		case kindChoice:
			v, _ = f.choiceValue(v)
		case kindReference:
			e.mu.RLock()
			v = e.referenceFromDisplayLocked(f, v)
			e.mu.RUnlock()
		}
		terms = append(terms, k+"="+strings.ReplaceAll(v, "^", "^^"))
	}
	return strings.Join(terms, "^")
}

func (e *Emulator) handleList(w http.ResponseWriter, r *http.Request, a *actor, def *tableDef, tp tablePath, o *renderOpts) {
	q := r.URL.Query()
	limit := 10000 // §2.3 default
	if v, err := strconv.Atoi(q.Get("sysparm_limit")); err == nil && v > 0 {
		limit = v
	}
	offset := 0
	if v, err := strconv.Atoi(q.Get("sysparm_offset")); err == nil && v > 0 {
		offset = v
	}
	noCount := strings.EqualFold(q.Get("sysparm_no_count"), "true")
	encoded := q.Get("sysparm_query")
	if nv := e.nameValueQuery(def, r.URL.RawQuery); nv != "" {
		if encoded != "" {
			encoded = nv + "^" + encoded
		} else {
			encoded = nv
		}
	}

	e.mu.RLock()
	qc := &queryCtx{e: e, def: def, user: a, now: e.now(), fold: !e.opts.CaseSensitiveMatching}
	rows := qc.run(e.tables[def.name], qc.parseQuery(encoded))
	total := len(rows)
	page := rows[min(offset, total):min(offset+limit, total)]
	body := append(make([]byte, 0, 256+len(page)*2048), `{"result":[`...)
	for i, rec := range page {
		if i > 0 {
			body = append(body, ',')
		}
		body = e.renderRecordLocked(body, def, rec.fields, o)
	}
	body = append(body, "]}"...)
	e.mu.RUnlock()

	if tp.version == "v1/" && total == 0 {
		// v1 answered 404 for an empty result; v2 and latest answer 200 (§2.1).
		e.writeError(w, r, errNotFound())
		return
	}
	if !noCount {
		w.Header().Set("X-Total-Count", strconv.Itoa(total))
	}
	if !strings.EqualFold(q.Get("sysparm_suppress_pagination_header"), "true") {
		w.Header().Set("Link", e.linkHeader(r, limit, offset, total, noCount, len(page)))
	}
	e.writeRaw(w, r, http.StatusOK, body)
}

// linkHeader builds the Link header of §2.5: the request's other
// parameters echoed as sent, then sysparm_limit and sysparm_offset last; no
// spaces between entries.
func (e *Emulator) linkHeader(r *http.Request, limit, offset, total int, noCount bool, pageLen int) string {
	var keep []string
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if k, err := url.QueryUnescape(k); err == nil && (k == "sysparm_limit" || k == "sysparm_offset") {
			continue
		}
		keep = append(keep, kv)
	}
	prefix := e.baseURL(r) + r.URL.Path + "?"
	if len(keep) > 0 {
		prefix += strings.Join(keep, "&") + "&"
	}
	link := func(off int, rel string) string {
		return fmt.Sprintf("<%ssysparm_limit=%d&sysparm_offset=%d>;rel=%q", prefix, limit, off, rel)
	}
	parts := []string{link(0, "first")}
	if offset != 0 || !e.opts.StrictPaging {
		parts = append(parts, link(offset-limit, "prev")) // negative on the first page, as observed
	}
	if noCount {
		if pageLen == limit {
			parts = append(parts, link(offset+limit, "next"))
		}
		return strings.Join(parts, ",")
	}
	if offset+limit < total {
		parts = append(parts, link(offset+limit, "next"))
	}
	last := 0
	if total > 0 {
		last = (total - 1) / limit * limit
	}
	parts = append(parts, link(last, "last"))
	return strings.Join(parts, ",")
}

// errTooLarge is the payload error of §2.2 (KB0747638).
func (e *Emulator) errTooLarge(n int64) *apiError {
	return errBody(http.StatusBadRequest, "Exception while reading request",
		fmt.Sprintf("Rejected large REST payload with content-length = %d bytes. Max allowed: %d bytes.", n, e.opts.MaxPayload))
}

// readInput reads a JSON record body. An array uses its first element only
// (§0); values of any JSON type become strings.
func (e *Emulator) readInput(r *http.Request) (map[string]string, *apiError) {
	if r.ContentLength > e.opts.MaxPayload {
		return nil, e.errTooLarge(r.ContentLength)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "text/json") {
			return nil, errBody(http.StatusUnsupportedMediaType, "Requested content type not supported", "Content-Type "+ct+" is not supported; use application/json")
		}
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, e.opts.MaxPayload+1))
	if err != nil {
		return nil, errBody(http.StatusBadRequest, "Exception while reading request", err.Error())
	}
	if int64(len(data)) > e.opts.MaxPayload {
		n, _ := io.Copy(io.Discard, r.Body)
		return nil, e.errTooLarge(int64(len(data)) + n)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return map[string]string{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errBody(http.StatusBadRequest, "Exception while reading request", "The payload is not valid JSON.")
	}
	if arr, ok := v.([]any); ok {
		if len(arr) == 0 {
			return map[string]string{}, nil
		}
		v = arr[0]
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errBody(http.StatusBadRequest, "Exception while reading request", "The payload is not a JSON object.")
	}
	out := make(map[string]string, len(obj))
	for k, x := range obj {
		if s, ok := jsonString(x); ok {
			out[k] = s
		}
	}
	return out, nil
}

func jsonString(x any) (string, bool) {
	switch v := x.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	case map[string]any:
		// Clients sometimes echo {"value": ...} objects back.
		if inner, ok := v["value"]; ok {
			return jsonString(inner)
		}
	}
	return "", false
}

func (e *Emulator) handleWrite(w http.ResponseWriter, r *http.Request, a *actor, def *tableDef, tp tablePath, o *renderOpts, sysID string) {
	input, aerr := e.readInput(r)
	if aerr != nil {
		e.writeError(w, r, aerr)
		return
	}
	inputDisplay := strings.EqualFold(r.URL.Query().Get("sysparm_input_display_value"), "true")
	e.mu.Lock()
	t := e.tables[def.name]
	var res *writeResult
	status := http.StatusOK
	if sysID == "" {
		status = http.StatusCreated
		res, aerr = e.insertLocked(t, input, inputDisplay, a)
	} else if rec := t.byID[sysID]; rec == nil {
		aerr = errNotFound()
	} else {
		res, aerr = e.updateLocked(t, rec, input, inputDisplay, a)
	}
	var body []byte
	if aerr == nil {
		body = append(make([]byte, 0, 4096), `{"result":`...)
		body = e.renderRecordLocked(body, def, res.fields, o)
		body = append(body, '}')
	}
	e.mu.Unlock()
	if aerr != nil {
		e.writeError(w, r, aerr)
		return
	}
	e.hooks.enqueue(res.events)
	if status == http.StatusCreated {
		w.Header().Set("Location", o.base+"/api/now/"+tp.version+"table/"+def.name+"/"+res.fields["sys_id"])
	}
	if strings.EqualFold(r.Header.Get("X-no-response-body"), "true") {
		e.setStdHeaders(w, true)
		w.WriteHeader(status)
		return
	}
	e.writeRaw(w, r, status, body)
}

func (e *Emulator) handleDelete(w http.ResponseWriter, r *http.Request, def *tableDef, tp tablePath) {
	e.mu.Lock()
	t := e.tables[def.name]
	var aerr *apiError
	var events []event
	if rec := t.byID[tp.sysID]; rec == nil {
		aerr = errNotFound()
	} else if aerr = e.deleteLocked(t, rec); aerr == nil && def.task {
		events = append(events, e.eventFor("delete", def, rec.fields))
	}
	e.mu.Unlock()
	if aerr != nil {
		e.writeError(w, r, aerr)
		return
	}
	e.hooks.enqueue(events)
	e.setStdHeaders(w, true)
	w.Header().Del("Content-Type")
	w.WriteHeader(http.StatusNoContent)
}

// apiErrorFrom maps Go API errors to error bodies.
func apiErrorFrom(err error, tableName string) *apiError {
	var aerr *apiError
	switch {
	case errors.As(err, &aerr):
		return aerr
	case errors.Is(err, ErrUnknownTable):
		return errInvalidTable(tableName)
	case errors.Is(err, ErrNotFound):
		return errNotFound()
	case errors.Is(err, ErrUnknownUser):
		return errBody(http.StatusBadRequest, "Invalid user", err.Error())
	}
	return errBody(http.StatusInternalServerError, "Internal error", err.Error())
}
